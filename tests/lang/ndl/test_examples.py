"""The seed NDL network and the NDL documentation's two-layer example, end to end:
build, validate, save, load, dump; node names and wiring as the documentation shows them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from netsurgeon.lang.ndl import MacroTable, NameCounter, build_file, build_network

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"


def wiring(net):
    return {n.name: (n.op, tuple(i.name for i in n.inputs)) for n in net.nodes}


def test_seed_network_nodes_and_wiring():
    net = build_file(EXAMPLES / "seed.ndl")
    w = wiring(net)
    # L3 = RBFF(L2, HDim, HDim) creates exactly the documented nodes
    assert {k: v for k, v in w.items() if k.startswith("L3.")} == {
        "L3.BFF.B": ("LearnableParameter", ()),
        "L3.BFF.W": ("LearnableParameter", ()),
        "L3.BFF.FF.T": ("Times", ("L3.BFF.W", "L2.RL")),
        "L3.BFF.FF.P": ("Plus", ("L3.BFF.FF.T", "L3.BFF.B")),
        "L3.RL": ("RectifiedLinear", ("L3.BFF.FF.P",)),
    }
    assert w["L1.BFF.FF.T"] == ("Times", ("L1.BFF.W", "features"))
    assert w["CE.BFF.FF.T"] == ("Times", ("CE.BFF.W", "L3.RL"))
    assert w["CE.F"] == ("Softmax", ("CE.BFF.FF.P",))
    assert w["CE.SM"] == ("CrossEntropyWithSoftmax", ("labels", "CE.BFF.FF.P"))
    assert w["Err"] == ("ClassificationError", ("labels", "CE.F"))
    assert len(net) == 24
    # the MEL script's patterns find what the documentation says they find
    assert [n.name for n in net.match("CE.*.T")] == ["CE.BFF.FF.T"]
    assert [n.name for n in net.match("L3.*.P")] == ["L3.BFF.FF.P"]
    assert {n.name for n in net.match("*.W")} == {f"{p}.BFF.W" for p in ("L1", "L2", "L3", "CE")}
    groups = {g: [n.name for n in ns] for g, ns in net.groups().items()}
    assert groups == {"feature": ["features"], "label": ["labels"], "criterion": ["CE.SM"],
                      "evaluation": ["Err"], "output": ["CE.F"]}


def test_seed_network_shapes_and_parameters():
    net = build_file(EXAMPLES / "seed.ndl")
    # CNTK [256 x 784] is numpy (784, 256); the bias is [256]
    assert net.get("L1.BFF.W").value.shape == (784, 256)
    assert net.get("CE.BFF.W").value.shape == (256, 10)
    assert net.get("L1.BFF.FF.T").shape == (256,)
    assert net.get("CE.F").shape == (10,)
    assert net.get("CE.SM").shape == (1,)
    b = net.get("L2.BFF.B")
    assert b.value.shape == (256,) and not b.value.any()  # init=fixedValue, value=0
    w = net.get("L2.BFF.W").value
    assert np.abs(w).max() <= 0.05 and np.abs(w).max() > 0.04  # uniform +-0.05
    # automatic seeds 1, 2, 3, 4 in initialisation order (the biases are not random)
    seeds = [net.get(f"{p}.BFF.W").attrs["init"]["seed"] for p in ("L1", "L2", "L3", "CE")]
    assert seeds == [1, 2, 3, 4]
    # CNTK's counter is process-wide: a second build continues it (5, 6, 7, 8) ...
    more = build_file(EXAMPLES / "seed.ndl")
    assert more.get("L1.BFF.W").attrs["init"]["seed"] == 5
    # ... and a new "process" (reset counters) builds the same values again
    from netsurgeon.ops.cntk_random import reset_seed_counters

    reset_seed_counters()
    again = build_file(EXAMPLES / "seed.ndl")
    assert np.array_equal(again.get("L3.BFF.W").value, net.get("L3.BFF.W").value)


def test_two_layer_example_with_special_lists():
    net = build_file(EXAMPLES / "two_layer.ndl")
    w = wiring(net)
    assert w["Times1"] == ("Times", ("W0", "features"))
    assert w["Plus1"] == ("Plus", ("Times1", "B0"))
    assert w["RL1"] == ("RectifiedLinear", ("Plus1",))
    assert w["Times2"] == ("Times", ("W1", "RL1"))
    assert w["CE"] == ("CrossEntropyWithSoftmax", ("labels", "Plus2"))
    assert w["ErrPredict"] == ("ClassificationError", ("labels", "Plus2"))
    groups = {g: [n.name for n in ns] for g, ns in net.groups().items()}
    assert groups == {"feature": ["features"], "label": ["labels"], "criterion": ["CE"],
                      "evaluation": ["ErrPredict"], "output": ["Plus2"]}
    assert net.get("W0").value.shape == (784, 256)
    assert net.get("B1").value.shape == (1, 10)  # Parameter(LDim, 1) is [10 x 1]


@pytest.mark.parametrize("example, weight, criterion, dumped", [
    ("seed.ndl", "L1.BFF.W", "CE.SM", ["L1.BFF.FF.T=Times ( L1.BFF.W , features )",
                                      "L1.BFF.FF.P=Plus ( L1.BFF.FF.T , L1.BFF.B )"]),
    ("two_layer.ndl", "W1", "CE", ["Times1=Times ( W0 , features )",
                                   "CE=CrossEntropyWithSoftmax ( labels , Plus2 )"]),
])
@pytest.mark.parametrize("suffix", [".nsm", ".dnn"])
def test_examples_save_load_and_dump(tmp_path, example, weight, criterion, dumped, suffix):
    formats = pytest.importorskip("netsurgeon.formats")
    net = build_file(EXAMPLES / example)
    path = tmp_path / ("model" + suffix)
    formats.save(net, path)
    back = formats.load(path)
    back.validate()
    assert wiring(back) == wiring(net)
    assert np.array_equal(back.get(weight).value, net.get(weight).value)
    assert [n.name for n in back.group("criterion")] == [criterion]
    from netsurgeon.formats.dump import dump_text

    text = dump_text(back)
    for line in dumped:
        assert line in text


def test_timit_worked_example_node_names():
    """ndl-mel.md §B.10: load/run sections, a macro defined in the load section, SBFF/SMBFF."""
    text = """
load=ndlMacroDefine
run=net
ndlMacroDefine=[
  MeanVarNorm(x) { xMean = Mean(x)
                   xStdDev = InvStdDev(x)
                   xNorm = PerDimMeanVarNormalization(x, xMean, xStdDev) }
]
net=[
  features=Input(792, tag="feature") ; labels=Input(183, tag="label")
  featNorm = MeanVarNorm(features)
  L1 = SBFF(featNorm, 512, 792)
  CE = SMBFF(L1, 183, 512, labels, tag="criterion")
  Err = ClassificationError(labels, CE.BFF.FF.P, tag="evaluation")
]
"""
    net = build_network(text, source="timit.ndl")
    names = set(net.names())
    assert names == {
        "features", "labels", "featNorm.xMean", "featNorm.xStdDev", "featNorm.xNorm",
        "L1.BFF.B", "L1.BFF.W", "L1.BFF.FF.T", "L1.BFF.FF.P", "L1.S",
        "CE.BFF.B", "CE.BFF.W", "CE.BFF.FF.T", "CE.BFF.FF.P", "CE.F", "CE.SM", "Err",
    }
    assert [n.name for n in net.group("criterion")] == ["CE.SM"]
    assert [i.name for i in net.get("L1.BFF.FF.T").inputs] == ["L1.BFF.W", "featNorm.xNorm"]
    assert [i.name for i in net.get("Err").inputs] == ["labels", "CE.BFF.FF.P"]


def test_user_macro_file_overrides_the_standard_library(tmp_path):
    macros = tmp_path / "my.ndl"
    macros.write_text("RBFF(in, r, c) = [ W = Parameter(r, c)\n T = Times(W, in)\n Y = Tanh(T) ]\n")
    table = MacroTable.standard()
    assert table.load_file(macros) == ["RBFF"]
    net = build_file(EXAMPLES / "seed.ndl", macros=table)
    assert net.get("L1.Y").op == "Tanh"
    assert net.get("L1.RL") is None
    # the standard SMBFF still works beside it
    assert net.get("CE.F").op == "Softmax"


def test_one_million_node_chain_is_linear_enough():
    """A long NDL chain builds (the full 1,000,000 is in bench/ndl_chain.py)."""
    n = 20_000
    text = "x0 = Input(4, tag=feature)\n" + "\n".join(
        f"x{i} = Sigmoid(x{i - 1})" for i in range(1, n))
    net = build_network(text, counter=NameCounter())
    assert len(net) == n
    assert net.get(f"x{n - 1}").inputs[0].name == f"x{n - 2}"
