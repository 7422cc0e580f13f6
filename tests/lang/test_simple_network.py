"""SimpleNetworkBuilder (cntk-config-driver.md §11.3, §9.2) against the node list CNTK printed
for Simple2d/OneHidden (configs/Simple2d/OneHidden/baseline.cpu.txt)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from tests.conftest import CNTK

from netsurgeon.errors import NetsurgeonError
from netsurgeon.lang.config import mapping_lookup
from netsurgeon.lang.simple_network import build_simple_network

ONE_HIDDEN = dict(layerSizes="2:50*2:2", trainingCriterion='"CrossEntropyWithSoftmax"',
                  evalCriterion='"ClassificationError"', layerTypes='"Sigmoid"',
                  initValueScale="1.0", applyMeanVarNorm="true", uniformInit="true",
                  needPrior="true")
BASELINE = CNTK / "configs" / "Simple2d" / "OneHidden" / "baseline.cpu.txt"


def _build(**overrides: str):
    return build_simple_network(mapping_lookup({**ONE_HIDDEN, **overrides}))


def _cntk_shape(shape: tuple[int, ...], dynamic: bool) -> str:
    dims = " x ".join(str(d) for d in reversed(shape))
    return f"{dims} x *" if dynamic else dims


def _baseline_nodes() -> dict[str, tuple[str, list[str], str]]:
    """name -> (op, inputs, output shape) from the first validation pass of the log."""
    text = BASELINE.read_text()
    block = text[text.index("Validating network. 25 nodes"):]
    block = block[:block.index("Validating network. 17 nodes")]
    nodes = {}
    for m in re.finditer(r"^Validating --> (\S+) = (\w+) ?\(([^)]*)\) : .* -> \[([^\]]*)\]$",
                         block, re.M):
        name, op, args, shape = m.groups()
        inputs = [a.strip() for a in args.split(",") if a.strip()]
        nodes[name] = (op, inputs, re.sub(r"\*\d+", "*", shape))
    return nodes


def test_matches_the_baseline_node_list():
    net = _build()
    want = _baseline_nodes()
    assert len(want) == 25 and len(net) == 25
    assert {n.name for n in net} == set(want)
    for node in net:
        op, inputs, shape = want[node.name]
        assert node.op == op, node.name
        assert [i.name for i in node.inputs] == inputs, node.name
        assert _cntk_shape(node.shape, bool(node.dynamic)) == shape, node.name


def test_groups_and_seeds():
    net = _build()
    assert [n.name for n in net.group("feature")] == ["features"]
    assert [n.name for n in net.group("label")] == ["labels"]
    assert [n.name for n in net.group("criterion")] == ["CrossEntropyWithSoftmax"]
    assert [n.name for n in net.group("evaluation")] == ["EvalClassificationError"]
    assert [n.name for n in net.group("output")] == ["ScaledLogLikelihood"]
    seeds = {n.name: n.attrs["init"]["seed"] for n in net if n.op == "LearnableParameter"
             and n.attrs["init"]["kind"] == "uniform"}
    assert seeds == {"W0": 1, "W1": 2, "W2": 3}
    for b in ("B0", "B1", "B2"):
        assert not np.any(net.node(b).value)
    # CNTK's generator: seed 1, U(-0.05, 0.05), column-major (§9.3)
    w0 = net.node("W0").value
    assert w0.shape == (2, 50)
    np.testing.assert_allclose(w0.ravel()[:3], [-0.0366123356, -0.0363592952, -0.00487850979],
                               rtol=1e-6)
    # a second build starts counting at 1 again
    assert np.array_equal(_build().node("W0").value, w0)


def test_plain_net_without_norm_and_prior():
    net = _build(layerSizes="3:4:5", applyMeanVarNorm="false", needPrior="false",
                 layerTypes="Tanh", trainingCriterion="SquareError",
                 evalCriterion="CrossEntropyWithSoftmax", uniformInit="false",
                 initValueScale="2")
    names = [n.name for n in net]
    assert "MeanOfFeatures" not in names and "Prior" not in names
    assert net.node("H1").op == "Tanh"
    assert [i.name for i in net.node("W0*features").inputs] == ["W0", "features"]
    assert net.node("SquareError").op == "SquareError"
    assert net.node("EvalCrossEntropyWithSoftmax").op == "CrossEntropyWithSoftmax"
    assert [n.name for n in net.group("output")] == ["HLast"]
    assert net.node("W1").attrs["init"]["kind"] == "gaussian"
    assert net.node("W1").attrs["init"]["scale"] == 2.0
    assert net.node("HLast").shape == (1, 5)


@pytest.mark.parametrize("key, value", [
    ("rnnType", "LSTM"), ("layerTypes", "Softplus"), ("trainingCriterion", "Foo"),
    ("evalCriterion", "Bar"), ("nbrClass", "50"), ("sparseinput", "true"),
    ("addDropoutNodes", "true"), ("layerSizes", "2"), ("layerSizes", "2:x:2"),
    ("uniformInit", "maybe"),
])
def test_refusals_name_the_key(key, value):
    with pytest.raises(NetsurgeonError) as info:
        _build(**{key: value})
    message = str(info.value)
    assert key in message and "\n" not in message
    assert info.value.config_key == key


def test_missing_criterion():
    keys = dict(ONE_HIDDEN)
    del keys["trainingCriterion"]
    with pytest.raises(NetsurgeonError, match="trainingCriterion"):
        build_simple_network(mapping_lookup(keys))
