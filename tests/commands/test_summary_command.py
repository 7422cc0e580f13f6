"""``netsurgeon summary``: per-node rows in topological order and totals, on the real models,
checked against CNTK's own Dump files and the inventory of the real CNTK files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.commands.helpers import one_error

from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.formats.dump import dump_text

# cifar10.pretrained.cmf by hand: the ImageHandsOn ConvNet (3 x [5x5 conv, ReLU, 3x3/2 max
# pool] with 32, 32, 64 maps, a dense ReLU layer of 64, a dense output of 10) plus the frozen
# feature-normalisation constant. CNTK order, as CNTK prints tensor dimensions.
CIFAR_PARAMETERS = {
    "_z.featNorm": ([1], 1, False),
    "z.l1.W": ([5, 5, 3, 32], 2400, True),
    "z.l1.b": ([1, 1, 32], 32, True),
    "z.l2.W": ([5, 5, 32, 32], 25600, True),
    "z.l2.b": ([1, 1, 32], 32, True),
    "z.l3.W": ([5, 5, 32, 64], 51200, True),
    "z.l3.b": ([1, 1, 64], 64, True),
    "z.d1.arrayOfFunctions[0].W": ([64, 3, 3, 64], 36864, True),
    "z.d1.arrayOfFunctions[0].b": ([64], 64, True),
    "z.z.W": ([10, 64], 640, True),
    "z.z.b": ([10], 10, True),
}
# shared/spec/cntk-model-format.md section 10, the inventory of the real CNTK files
CIFAR_OPS = {"ClassificationError": 1, "Convolution": 3, "CrossEntropyWithSoftmax": 1,
             "InputValue": 2, "LearnableParameter": 11, "Minus": 1, "Plus": 5, "Pooling": 3,
             "RectifiedLinear": 4, "Times": 2}


def _summary(path, capsys, *extra) -> dict:
    assert main(["summary", str(path), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_cifar10_golden(cntk_dir, capsys):
    model = cntk_dir / "models" / "cifar10.pretrained.cmf"
    s = _summary(model, capsys)
    rows = {r["name"]: r for r in s["nodes"]}
    params = {r["name"]: (r["cntk_shape"], r["parameters"], r["trainable"])
              for r in s["nodes"] if r["trainable"] is not None}
    assert params == CIFAR_PARAMETERS
    assert s["totals"] == {"nodes": 33, "parameter_nodes": 11, "parameters": 116907,
                           "trainable": 116906, "frozen": 1, "recurrent_loops": 0,
                           "by_op": CIFAR_OPS}
    assert rows["features"]["shape"] == [3, 32, 32] and rows["features"]["cntk_shape"] == [
        32, 32, 3]
    assert rows["z.p3"]["shape"] == [64, 3, 3] and rows["z.p3"]["inputs"] == ["z.l3.res"]
    assert rows["z.l1.c"]["inputs"] == ["z.l1.W", "z.featNorm"]
    assert rows["z"]["groups"] == ["output"] and rows["ce"]["groups"] == ["criterion"]
    assert rows["errs"]["groups"] == ["evaluation"]
    assert rows["_z.featNorm"]["learning_rate_multiplier"] == 0.0
    # the parameter sizes of CNTK's Dump format ([rows,cols]) hold the same number of values
    dumped = dict(re.findall(r"^(\S+)=LearnableParameter \[(\d+,\d+)\]",
                             dump_text(formats.load(model)), re.M))
    assert {k: eval(v.replace(",", "*")) for k, v in dumped.items()} == {
        k: v[1] for k, v in CIFAR_PARAMETERS.items()}
    # topological order: every input is listed before its user
    seen: set[str] = set()
    for r in s["nodes"]:
        assert all(i in seen for i in r["inputs"]), r
        seen.add(r["name"])


@pytest.mark.parametrize("model", ["MC.dnn", "LR_reg.dnn", "01_OneHidden.dnn"])
def test_names_ops_and_sizes_match_cntks_own_dump(model, cntk_dir, capsys):
    """shared/cntk/dumps/*_Expected.txt: what CNTK itself printed for these models."""
    text = (cntk_dir / "dumps" / f"{model}_Expected.txt").read_text()
    nodes = dict(re.findall(r"^(\S+?)=(\w+)", text, re.M))
    sizes = {k: (int(r), int(c)) for k, r, c in
             re.findall(r"^(\S+)=LearnableParameter \[(\d+),(\d+)\]", text, re.M)}
    rates = dict(re.findall(r"^(\S+)=LearnableParameter .*learningRateMultiplier=(\S+)", text,
                            re.M))
    s = _summary(cntk_dir / "models" / model, capsys)
    rows = {r["name"]: r for r in s["nodes"]}
    assert set(rows) == set(nodes)
    assert len(s["nodes"]) == s["totals"]["nodes"] == len(nodes)
    for name, (r, c) in sizes.items():
        row = rows[name]
        assert row["op"] == "LearnableParameter"
        assert row["parameters"] == r * c
        assert row["cntk_shape"][0] == r  # CNTK's first dimension leads in both
        assert row["trainable"] == (float(rates[name]) > 0)
    assert s["totals"]["parameters"] == sum(r * c for r, c in sizes.values())
    assert s["totals"]["parameter_nodes"] == len(sizes)


def test_recurrent_loops_are_marked(cntk_dir, capsys):
    s = _summary(cntk_dir / "models" / "slu.forward.nobn.cmf", capsys)
    looped = [r for r in s["nodes"] if r["loop"] is not None]
    assert s["totals"]["recurrent_loops"] >= 1 and looped
    assert {r["op"] for r in looped} >= {"PastValue", "ElementTimes", "Plus"}
    assert all(r["loop"] is None for r in s["nodes"] if r["op"] in ("InputValue",
                                                                    "LearnableParameter"))
    assert s["totals"]["parameters"] == 721479  # the inventory of the real file


def test_text_table(cntk_dir, capsys):
    assert main(["summary", str(cntk_dir / "models" / "MC.dnn")]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[1].split()
    assert header[:5] == ["node", "op", "shape", "CNTK", "dims"]
    line = next(x for x in out.splitlines() if x.startswith("w "))
    assert "(2, 3)" in line and "[3 x 2]" in line and " 6 " in line and "yes" in line
    assert "parameters: 9 (trainable 9, frozen 0)" in out
    assert ("by op: ClassificationError 1, CrossEntropyWithSoftmax 1, InputValue 2, "
            "LearnableParameter 2, Plus 1, Times 1") in out  # ErrorPrediction's new name


def test_summary_of_an_ndl_file_and_errors(tmp_path, capsys):
    root = Path(__file__).resolve().parents[2]
    s = _summary(root / "examples" / "seed.ndl", capsys)
    assert s["totals"]["parameters"] == 335114 and s["totals"]["nodes"] == 24
    assert main(["summary", str(tmp_path / "missing.nsm")]) == 1
    assert "missing.nsm" in one_error(capsys.readouterr().err)
