"""The CNTK v2 writer without CNTK: what it writes reads back as the same network (names,
ops, shapes, values, groups) and evaluates equal — the real v2 files, the six v1 models, every
op of the runtime's reference table — and what it cannot write is refused in one line with
nothing written. CNTK 2.7 loading the files: test_writer_oracle.py."""

from __future__ import annotations

import numpy as np
import pytest
from tests.runtime.test_op_reference import CASES, X, build

from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.errors import FormatError
from netsurgeon.formats.cntk_v2 import wire
from netsurgeon.formats.cntk_v2._layer import CNTK_V2, V2Op
from netsurgeon.formats.cntk_v2.reader import read_bytes_model
from netsurgeon.formats.cntk_v2.writer import to_model
from netsurgeon.graph import Network
from netsurgeon.ops import OPS, Unsupported
from netsurgeon.runtime import evaluate
from netsurgeon.runtime.batch import SparseRows

V2_FILES = ("LR_reg", "MC", "01_OneHidden", "cifar10.pretrained", "cifar10.ResNet",
            "slu.forward.nobn", "blocks/mlp_dense", "blocks/conv_bn_pool", "blocks/lstm_tagger",
            "blocks/nested_seq", "blocks/avgpool")
V1_FILES = ("LR_reg.dnn", "MC.dnn", "01_OneHidden.dnn", "cifar10.pretrained.cmf",
            "cifar10.ResNet.cmf", "slu.forward.nobn.cmf")


def _again(net: Network) -> Network:
    return read_bytes_model(wire.encode(to_model(net)), "<written>", net.name)


def _same(a: Network, b: Network) -> None:
    assert sorted(n.name for n in a.nodes) == sorted(n.name for n in b.nodes)
    for n in a.nodes:
        m = b.node(n.name)
        assert (m.op, m.shape, m.dtype) == (n.op, n.shape, n.dtype), n.name
        if n.value is not None:
            np.testing.assert_array_equal(np.asarray(m.value).reshape(-1),
                                          np.asarray(n.value).reshape(-1))
            assert m.learning_rate_multiplier == n.learning_rate_multiplier, n.name
    for group in ("criterion", "evaluation", "output", "feature", "label"):
        assert [n.name for n in a.group(group)] == [n.name for n in b.group(group)], group


@pytest.mark.parametrize("name", V2_FILES)
def test_real_v2_files_written_again_read_back_the_same(cntk_dir, name):
    net = formats.load(cntk_dir / "v2" / f"{name}.model")
    _same(net, _again(net))


def test_uids_are_kept_and_loops_use_forward_references(cntk_dir):
    net = formats.load(cntk_dir / "v2" / "slu.forward.nobn.model")
    top = to_model(net).top
    uids = net.metadata["cntk_v2"]["uids"]
    written = {f.get("name"): f["uid"] for f in top["primitive_functions"]}
    assert all(written[name] == uid for name, uid in uids.items() if name in written)
    forward = [v for v in top["inputs"] if v["kind"] == 4]
    produced = {f["uid"] + "_Output_0" for f in top["primitive_functions"]}
    assert forward and all(v["uid"] in produced for v in forward)
    delays = [f for f in top["primitive_functions"] if f["op"] == 37]
    states = {v["uid"]: v for v in top["inputs"]}
    for d in delays:  # PastValue(x, initial state): a rank-0 Constant of 0.1
        state = states[d["inputs"][1]]
        assert state["kind"] == 3 and tuple(state["shape"]) == ()
        assert float(state["value"].array) == pytest.approx(0.1)
    root = top["primitive_functions"][-1]
    assert root["uid"] == top["root"] and root["op"] == 44


@pytest.mark.parametrize("name", V1_FILES)
def test_v1_models_as_v2_read_back_the_same(cntk_dir, tmp_path, name):
    v1 = formats.load(cntk_dir / "models" / name)
    path = tmp_path / "m.model"
    assert main(["convert", str(cntk_dir / "models" / name), str(path)]) == 0
    assert formats.detect_format(path) == "cntk-v2"
    back = formats.load(path)
    # an old v1 file keeps BatchNormalization's inverse standard deviation; v2 a variance
    inverse = {bn.inputs[4].name for bn in v1.nodes if bn.op == "BatchNormalization"
               and bn.attrs["running_inv_std_dev"]}
    for node in v1.nodes:
        if node.op == "LearnableParameter" and node.name in back and node.name not in inverse:
            np.testing.assert_array_equal(np.asarray(back.node(node.name).value).reshape(-1),
                                          np.asarray(node.value).reshape(-1))
    for group in ("criterion", "evaluation", "output"):
        assert [n.name for n in v1.group(group)] == [n.name for n in back.group(group)]


def test_per_dim_mean_var_normalization_is_written_as_minus_and_element_times():
    net = Network("mvn")
    x = net.add("x", "InputValue", shape=(3,))
    mean = net.add("m", "Mean", [x], value=np.array([1, 2, 3], np.float32),
                   attrs={"has_computed": True})
    inv = net.add("s", "InvStdDev", [x], value=np.array([2, 2, 0.5], np.float32),
                  attrs={"has_computed": True})
    net.add_to_group("output", net.add("y", "PerDimMeanVarNormalization", [x, mean, inv]))
    net.validate()
    back = _again(net)
    assert back.node("y").op == "ElementTimes" and back.node("y.centered").op == "Minus"
    feed = {"x": np.array([[3, 2, 1]], np.float32)}
    np.testing.assert_allclose(evaluate(back, feed, ["y"])["y"].reshape(-1), [4, 0, -1])


#: reference cases the writer refuses, and why (one line each, nothing written)
NOT_WRITTEN = {
    "Convolution-2d-legacy-HWC": "image layout HWC",
    "TransposeDimensions-pads-rank": "static axis 2 is out of range for a rank-1 operand",
    "ClassificationError-top2-from-frames": "topN as a scalar constant",
}


def reference_cases():
    """The reference-table cases of ops the v2 layer writes, with a data input (a network of
    constants only has nothing to feed)."""
    for case in CASES:
        spec = OPS.op(case.op)
        if not isinstance(CNTK_V2.lookup(spec), Unsupported) and \
                any(isinstance(i, X) for i in case.inputs):
            yield case


def dense(feeds: dict) -> dict:
    return {k: v.to_dense() if isinstance(v, SparseRows) else v for k, v in feeds.items()}


@pytest.mark.parametrize("case", list(reference_cases()), ids=lambda c: c.id)
def test_every_reference_op_written_reads_back_and_evaluates_equal(case):
    """Each op the v2 layer writes, in every configuration of the runtime's reference table
    (CNTK 2.7 loads the same files: test_writer_oracle.py)."""
    net, feeds = build(case)
    if case.id in NOT_WRITTEN:
        with pytest.raises(FormatError, match=NOT_WRITTEN[case.id]) as err:
            _again(net)
        assert "\n" not in str(err.value)
        return
    back = _again(net)
    feeds = dense(feeds)
    want = evaluate(net, feeds, ["y"], lengths=case.lengths)["y"]
    got = evaluate(back, feeds, ["y"], lengths=case.lengths)["y"]
    np.testing.assert_allclose(np.asarray(got).reshape(np.shape(want)), want, rtol=1e-6,
                               atol=1e-6)


def test_every_entry_with_attributes_writes_them():
    """A reader without a writer would lose the attributes: every entry has both or neither."""
    for spec in OPS:
        entry = CNTK_V2.lookup(spec)
        if isinstance(entry, V2Op):
            assert (entry.reader is None) == (entry.writer is None), spec.name


# ---- what cannot be written ---------------------------------------------------------------
def _unwritable() -> Network:
    net = Network("u")
    x = net.add("x", "InputValue", shape=(4,))
    net.add_to_group("output", net.add("t", "Trace", [x]))
    net.validate()
    return net


def test_an_op_cntk_v2_lacks_is_refused_naming_the_node(tmp_path):
    target = tmp_path / "u.model"
    target.write_bytes(b"old contents")
    with pytest.raises(FormatError) as err:
        formats.save(_unwritable(), target)
    text = str(err.value)
    assert "'t' (Trace) cannot be written to a CNTK v2 file" in text and "\n" not in text
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.model"]


def test_never_computed_statistics_are_refused():
    net = Network("s")
    x = net.add("x", "InputValue", shape=(3,))
    mean = net.add("m", "Mean", [x], value=np.zeros(3, np.float32))
    net.add_to_group("output", net.add("y", "Minus", [x, mean]))
    net.validate()
    with pytest.raises(FormatError, match="statistics of 'm' .* were never computed"):
        to_model(net)


def test_hwc_convolution_is_refused():
    net = Network("c")
    x = net.add("x", "InputValue", shape=(8, 8, 3))
    w = net.add_parameter("W", np.zeros((4, 27), np.float32))
    net.add_to_group("output", net.add("c", "Convolution", [w, x], attrs={
        "kernel_shape": (3, 3, 3), "map_count": (4,), "image_layout": "HWC",
        "convolution_2d": True}))
    net.validate()
    with pytest.raises(FormatError, match="'c' .*image layout HWC"):
        to_model(net)


def test_the_format_follows_the_extension_the_option_and_mel(cntk_dir, tmp_path):
    from netsurgeon.lang.mel import run

    assert formats.format_for_path("x.model") == "cntk-v2"
    assert formats.format_for_path("x.dnn") == "cntk"
    src = cntk_dir / "models" / "LR_reg.dnn"
    assert main(["convert", str(src), str(tmp_path / "a.bin"), "--format", "cntk-v2"]) == 0
    assert formats.detect_format(tmp_path / "a.bin") == "cntk-v2"
    # CNTK's MEL wrote v1 whatever the name; format=cntkv2 asks for v2
    run(f'm = LoadModel("{src}")\nSaveModel(m, "{tmp_path}/b.model")\n'
        f'SaveModel(m, "{tmp_path}/c.model", format=cntkv2)\n')
    assert formats.detect_format(tmp_path / "b.model") == "cntk"
    assert formats.detect_format(tmp_path / "c.model") == "cntk-v2"
