"""netsurgeon-written CNTK v2 files loaded by the real CNTK 2.7 (the cntk_eval oracle): every
output CNTK computes from the written file equals netsurgeon's, for the eleven real v2 files
saved again (unedited, after a MEL edit, after training), the six v1 models converted to v2,
and the Block models converted to v1.

Inputs are random (seeded) for every argument CNTK lists, sequences of lengths 3, 1 and 4;
outputs are compared per frame (sequence outputs), per sample (batch outputs) or as totals
(criteria reduced over the minibatch), relative to the largest magnitude, at 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.oracle import cntk_info, cntk_outputs, needs_oracle

from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.graph import Network
from netsurgeon.runtime import evaluate

pytestmark = needs_oracle

V2_MODELS = ("LR_reg", "MC", "01_OneHidden", "cifar10.pretrained", "cifar10.ResNet",
             "slu.forward.nobn")
BLOCK_MODELS = ("mlp_dense", "conv_bn_pool", "lstm_tagger", "nested_seq", "avgpool")
V1_MODELS = {"LR_reg": "LR_reg.dnn", "MC": "MC.dnn", "01_OneHidden": "01_OneHidden.dnn",
             "cifar10.pretrained": "cifar10.pretrained.cmf",
             "cifar10.ResNet": "cifar10.ResNet.cmf", "slu.forward.nobn": "slu.forward.nobn.cmf"}
LENGTHS = np.array([3, 1, 4])
BATCH = 3


def _v2_path(cntk_dir: Path, name: str) -> Path:
    if name in BLOCK_MODELS:
        return cntk_dir / "v2" / "blocks" / f"{name}.model"
    return cntk_dir / "v2" / f"{name}.model"


def _is_sequence(arg: dict) -> bool:
    return any(a.startswith("seq:") for a in arg["dynamic_axes"])


def _feeds(info: dict, tmp: Path) -> tuple[dict[str, str], dict[str, np.ndarray], bool]:
    """(cntk_eval inputs, netsurgeon feeds, whether there are sequences) for every argument."""
    rng = np.random.default_rng(7)
    tmp.mkdir(parents=True, exist_ok=True)
    lens = tmp / "lens.npy"
    np.save(lens, LENGTHS)
    oracle, ours, sequences = {}, {}, False
    for arg in info["arguments"]:
        shape = tuple(arg["shape_numpy"])
        seq = _is_sequence(arg)
        count = int(LENGTHS.sum()) if seq else BATCH
        if arg["sparse"] or (len(shape) == 1 and "label" in arg["name"].lower()):
            data = np.eye(shape[0], dtype=np.float32)[rng.integers(0, shape[0], count)]
        else:
            data = rng.standard_normal((count, *shape)).astype(np.float32)
        path = tmp / f"{arg['uid']}.npy"
        np.save(path, data)
        oracle[arg["name"]] = f"{path}:{lens}" if seq else str(path)
        if seq:
            sequences = True
            padded = np.zeros((BATCH, LENGTHS.max(), *shape), np.float32)
            starts = np.concatenate([[0], np.cumsum(LENGTHS)[:-1]])
            for i, (s, n) in enumerate(zip(starts, LENGTHS)):
                padded[i, :n] = data[s:s + n]
            ours[arg["name"]] = padded
        else:
            ours[arg["name"]] = data
    return oracle, ours, sequences


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.abs(b).max()), 1e-30) if b.size else 1.0
    return float(np.abs(a - b).max()) / scale if b.size else 0.0


def _keys(info: dict) -> dict[str, str]:
    """How to ask cntk_eval for each output (it names the file after it): the name where
    it is unique, else the uid."""
    names = [o["name"] for o in info["outputs"]]
    return {o["uid"]: o["name"] if o["name"] and names.count(o["name"]) == 1 else o["uid"]
            for o in info["outputs"]}


def assert_cntk_equals_netsurgeon(written: Path, tmp: Path) -> dict[str, np.ndarray]:
    """Every output CNTK 2.7 lists for ``written`` equals the netsurgeon evaluation of the
    network read back from it; returns CNTK's values by output uid."""
    info = cntk_info(written)
    net = formats.load(written)
    known = net.metadata["cntk_v2"]["outputs"] if "cntk_v2" in net.metadata else {}
    oracle_in, ours_in, sequences = _feeds(info, tmp)
    keys = _keys(info)
    by_key = cntk_outputs(written, oracle_in, list(keys.values()), tmp / "cntk")
    want = {uid: by_key[key] for uid, key in keys.items()}
    names = {o["uid"]: known.get(o["uid"], o["name"]) for o in info["outputs"]}
    got = evaluate(net, ours_in, list(dict.fromkeys(names.values())),
                   lengths=LENGTHS if sequences else None)
    mask = np.arange(LENGTHS.max())[None, :] < LENGTHS[:, None]
    for out in info["outputs"]:
        mine, theirs = np.asarray(got[names[out["uid"]]]), want[out["uid"]]
        if _is_sequence(out):
            mine = mine[mask]
        elif not out["dynamic_axes"]:
            mine, theirs = np.asarray(mine.sum()), np.asarray(theirs.sum())
        assert _rel(mine.reshape(theirs.shape), theirs) <= 1e-5, (written.name, out["name"])
    return want


def _write_v2(net: Network, path: Path) -> Path:
    assert formats.save(net, path) == "cntk-v2"
    return path


@pytest.mark.parametrize("name", V2_MODELS + BLOCK_MODELS)
def test_v2_files_saved_again_load_in_cntk_with_netsurgeons_outputs(cntk_dir, tmp_path, name):
    net = formats.load(_v2_path(cntk_dir, name))
    written = _write_v2(net, tmp_path / f"{name}.model")
    assert_cntk_equals_netsurgeon(written, tmp_path)


@pytest.mark.parametrize("name", V2_MODELS)
def test_v1_models_converted_to_v2_give_the_v1_outputs_in_cntk(cntk_dir, tmp_path, name):
    v1 = cntk_dir / "models" / V1_MODELS[name]
    written = tmp_path / f"{name}.model"
    assert main(["convert", str(v1), str(written)]) == 0
    got = assert_cntk_equals_netsurgeon(written, tmp_path / "v2")
    info = cntk_info(written)
    oracle_in, _, _ = _feeds(info, tmp_path / "v2")
    names = [o["name"] for o in info["outputs"]]
    from_v1 = cntk_outputs(v1, oracle_in, names, tmp_path / "v1")
    for out in info["outputs"]:
        assert _rel(got[out["uid"]], from_v1[out["name"]]) <= 1e-6, out["name"]


@pytest.mark.parametrize("name", BLOCK_MODELS)
def test_block_models_converted_to_v1_load_in_cntk(cntk_dir, tmp_path, name):
    written = tmp_path / f"{name}.dnn"
    assert main(["convert", str(_v2_path(cntk_dir, name)), str(written)]) == 0
    info = cntk_info(written)
    oracle_in, ours_in, sequences = _feeds(info, tmp_path)
    names = [o["name"] for o in info["outputs"]]
    want = cntk_outputs(written, oracle_in, names, tmp_path / "cntk")
    net = formats.load(written)
    got = evaluate(net, ours_in, names, lengths=LENGTHS if sequences else None)
    mask = np.arange(LENGTHS.max())[None, :] < LENGTHS[:, None]
    for out in info["outputs"]:
        mine = np.asarray(got[out["name"]])
        theirs = want[out["name"]]
        if _is_sequence(out):
            mine = mine[mask]
        elif not out["dynamic_axes"]:
            mine, theirs = np.asarray(mine.sum()), np.asarray(theirs.sum())
        assert _rel(mine.reshape(theirs.shape), theirs) <= 1e-5, out["name"]


# ---- after a MEL edit -------------------------------------------------------------------
MEL_EDITS = {  # a layer copied and rewired, a node renamed
    "MC": """m = LoadModel("$IN$")
SetDefaultModel(m)
Copy(z, z2, copy=all)
SetInputs(z2, z.PlusArgs[0], b)
SetInput(ce, 1, z2)
Rename(b, bias)
SaveModel(m, "$OUT$", format=cntkv2)
""",
    "mlp_dense": """m = LoadModel("$IN$")
SetDefaultModel(m)
Copy(Block32*, Head2*, copy=all)
SetInput(Head2.Times24, 1, Block14)
SetInput(ce.ReduceElements43, 0, Head2)
SetInput(ce.TransposeTimes40, 1, Head2)
Rename(Block32, logits)
SaveModel(m, "$OUT$", format=cntkv2)
""",
    "lstm_tagger": """m = LoadModel("$IN$")
SetDefaultModel(m)
Rename(classify, slots)
SaveModel(m, "$OUT$", format=cntkv2)
""",
}


@pytest.mark.parametrize("name", sorted(MEL_EDITS))
def test_v2_files_edited_by_mel_load_in_cntk(cntk_dir, tmp_path, name):
    from netsurgeon.lang.mel import run

    written = tmp_path / f"{name}.edited.model"
    script = MEL_EDITS[name].replace("$IN$", str(_v2_path(cntk_dir, name)))
    run(script.replace("$OUT$", str(written)))
    assert formats.detect_format(written) == "cntk-v2"
    edited = formats.load(written)
    info = cntk_info(written)
    assert {o["name"] for o in info["outputs"]} >= {n.name for n in edited.group("output")}
    if name == "mlp_dense":
        assert "Head2.W" in edited and "logits" in edited
        assert edited.node("ce.TransposeTimes40").inputs[1].name == "Head2"
    assert_cntk_equals_netsurgeon(written, tmp_path)


# ---- after training ---------------------------------------------------------------------
def _synthetic_ctf(path: Path, features: int, labels: int, count: int = 40) -> Path:
    rng = np.random.default_rng(3)
    with open(path, "w") as f:
        for _ in range(count):
            x = " ".join(f"{v:.4f}" for v in rng.random(features))
            k = rng.integers(labels)
            y = " ".join("1" if i == k else "0" for i in range(labels))
            f.write(f"|features {x} |labels {y}\n")
    return path


def _training_data(cntk_dir: Path, name: str, tmp: Path) -> tuple[Path, list[str]]:
    if name == "LR_reg":
        return cntk_dir / "data" / "Train_cntk_text.txt", []
    if name == "MC":
        return cntk_dir / "data" / "Train-3Classes_cntk_text.txt", []
    if name == "lstm_tagger":
        lines = (cntk_dir / "data" / "atis.test.ctf").read_text().splitlines()[:300]
        path = tmp / "atis.head.ctf"
        path.write_text("\n".join(lines) + "\n")
        return path, ["--map", "query=S0", "--map", "slot_labels=S2"]
    return _synthetic_ctf(tmp / "synthetic.ctf", 784, 10), []


@pytest.mark.parametrize("name", ["LR_reg", "MC", "mlp_dense", "lstm_tagger"])
def test_v2_files_after_training_load_in_cntk(cntk_dir, tmp_path, name):
    source = _v2_path(cntk_dir, name)
    data, extra = _training_data(cntk_dir, name, tmp_path)
    written = tmp_path / f"{name}.trained.model"
    assert main(["train", str(source), str(data), "-o", str(written), "--epochs", "1",
                 "--minibatch", "16", "--lr", "0.01", "--no-progress", *extra]) == 0
    before, after = formats.load(source), formats.load(written)
    changed = [n.name for n in after.nodes if n.op == "LearnableParameter"
               and n.learning_rate_multiplier and n.name in before
               and not np.array_equal(n.value, before.node(n.name).value)]
    assert changed, "training changed no parameter"
    assert_cntk_equals_netsurgeon(written, tmp_path)


# ---- every op the writer writes, on the runtime's reference inputs -----------------------
def _case_feeds(case, feeds: dict, tmp: Path) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    """cntk_eval inputs (frames and lengths), the lengths, and the real-frame mask."""
    from tests.formats.cntk_v2.test_writer import dense

    feeds = dense(feeds)
    tmp.mkdir(parents=True, exist_ok=True)
    first = next(iter(feeds.values()))
    lengths = np.asarray(case.lengths if case.lengths else [1] * len(first), np.int64)
    mask = np.arange(lengths.max())[None, :] < lengths[:, None]
    np.save(tmp / "lens.npy", lengths)
    oracle = {}
    for name, data in feeds.items():
        frames = data[mask] if case.lengths else data
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(frames, np.float32))
        oracle[name] = f"{tmp / name}.npy:{tmp / 'lens.npy'}"
    return oracle, lengths, mask


def _oracle_cases():
    from tests.formats.cntk_v2.test_writer import NOT_WRITTEN, reference_cases

    return [c for c in reference_cases() if c.id not in NOT_WRITTEN and c.id not in NOT_IN_CNTK]


#: cases netsurgeon computes and writes but CNTK 2.7 does not compute
NOT_IN_CNTK = {
    "Logistic-weighted": "CNTK's weighted Logistic takes one label, prediction and weight "
                         "per sample; 3 each fail ('The input matrix dimensions do not "
                         "match')",
    "Logistic-weighted-binary": "on sequences of unequal lengths CNTK divides by the mean "
                                "weight over all columns of its layout, padding included "
                                "(12 for these 9 frames); netsurgeon over the real frames "
                                "(equal without padding: the next test)",
}


def test_weighted_logistic_normalises_the_weights_as_cntk(tmp_path):
    """CNTK 2.7 divides the weighted sum by the mean weight of the minibatch."""
    rng = np.random.default_rng(0)
    net = Network("l")
    y, p, w = (net.add(n, "InputValue", shape=(1,)) for n in "ypw")
    net.add_to_group("criterion", net.add("lr", "Logistic", [y, p, w]))
    net.validate()
    written = _write_v2(net, tmp_path / "l.model")
    data = {"y": (rng.random((5, 1)) > 0.5).astype(np.float32),
            "p": rng.uniform(0.05, 0.95, (5, 1)).astype(np.float32),
            "w": rng.uniform(0, 2, (5, 1)).astype(np.float32)}
    np.save(tmp_path / "lens.npy", np.ones(5, np.int64))
    for name, value in data.items():
        np.save(tmp_path / f"{name}.npy", value)
    theirs = cntk_outputs(written, {n: f"{tmp_path}/{n}.npy:{tmp_path}/lens.npy" for n in data},
                          ["lr"], tmp_path / "cntk")["lr"]
    mine = evaluate(net, data, ["lr"])["lr"]
    assert _rel(np.asarray(mine).reshape(-1), theirs.reshape(-1)) <= 1e-6


@pytest.mark.parametrize("case", _oracle_cases(), ids=lambda c: c.id)
def test_every_written_op_computes_in_cntk_as_in_netsurgeon(case, tmp_path):
    """The attribute writers mean in CNTK 2.7 what the registry means: each op of the
    reference table, written as v2, computes in CNTK what netsurgeon computes."""
    from tests.formats.cntk_v2.test_writer import dense
    from tests.runtime.test_op_reference import build

    net, feeds = build(case)
    written = _write_v2(net, tmp_path / "op.model")
    oracle_in, lengths, mask = _case_feeds(case, feeds, tmp_path)
    info = cntk_info(written)
    (out,) = [o for o in info["outputs"] if o["name"] == "y"]
    theirs = cntk_outputs(written, oracle_in, ["y"], tmp_path / "cntk")["y"]
    mine = np.asarray(evaluate(net, dense(feeds), ["y"], lengths=case.lengths)["y"])
    if not out["dynamic_axes"]:
        mine, theirs = np.asarray(mine.sum()), np.asarray(theirs.sum())
    elif case.lengths:
        mine = mine[mask]
    assert _rel(mine.reshape(theirs.shape), theirs) <= 1e-5


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_double_and_half_networks_load_with_their_types(tmp_path, dtype):
    """float64 evaluates as netsurgeon does; float16 loads as float16 (cntk_eval feeds
    float32 only, so it is not evaluated)."""
    rng = np.random.default_rng(0)
    net = Network("d")
    x = net.add("x", "InputValue", shape=(4,), dtype=dtype)
    w = net.add_parameter("W", rng.normal(size=(4, 3)).astype(dtype))
    net.add_to_group("output", net.add("z", "Times", [w, x]))
    net.validate()
    written = _write_v2(net, tmp_path / "d.model")
    info = cntk_info(written)
    assert [a["dtype"] for a in info["arguments"]] == [dtype]
    assert formats.load(written).node("W").dtype == dtype
    if dtype == "float64":
        data = rng.normal(size=(5, 4)).astype(np.float32)
        np.save(tmp_path / "x.npy", data)
        theirs = cntk_outputs(written, {"x": tmp_path / "x.npy"}, ["z"], tmp_path / "o")["z"]
        mine = evaluate(net, {"x": data.astype(dtype)}, ["z"])["z"]
        assert _rel(np.asarray(mine).reshape(theirs.shape), theirs) <= 1e-12


@pytest.mark.parametrize("pads", ["explicit", "auto"])
def test_transposed_convolution_computes_as_in_cntk(tmp_path, pads):
    """CNTK's transposed convolution (kernel [4 x 4 x 2], map count = the input's channels,
    stride 2): output shape and values as netsurgeon computes them."""
    rng = np.random.default_rng(0)
    net = Network("up")
    x = net.add("x", "InputValue", shape=(2, 5, 6))
    w = net.add_parameter("W", rng.normal(size=(2, 2, 4, 4)).astype(np.float32))
    geometry = {"lower_pad": (0, 1, 1), "upper_pad": (0, 1, 1), "auto_padding": (False,)} \
        if pads == "explicit" else {"auto_padding": (False, True, True)}
    net.add_to_group("output", net.add("up", "Convolution", [w, x], attrs={
        "kernel_shape": (2, 4, 4), "map_count": (2,), "strides": (1, 2, 2),
        "transpose": True, **geometry}))
    net.validate()
    written = _write_v2(net, tmp_path / "up.model")
    (out,) = cntk_info(written)["outputs"]
    assert tuple(out["shape_numpy"]) == net.node("up").shape
    data = rng.normal(size=(3, 2, 5, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", data)
    theirs = cntk_outputs(written, {"x": tmp_path / "x.npy"}, ["up"], tmp_path / "o")["up"]
    mine = evaluate(net, {"x": data}, ["up"])["up"]
    assert _rel(np.asarray(mine).reshape(theirs.shape), theirs) <= 1e-5
