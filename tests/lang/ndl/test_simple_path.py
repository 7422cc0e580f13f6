"""The one-step path for plain ``name = Function(args)`` statements builds exactly what the
general statement parser builds: the same nodes, inputs, attributes, ``unnamedN`` numbers,
locations, groups and errors (the path is switched off to get the reference)."""

from __future__ import annotations

import pytest

from netsurgeon.errors import ParseError
from netsurgeon.lang.ndl import NameCounter, build_network
from netsurgeon.lang.ndl._parser import Parser
from netsurgeon.ops.cntk_random import reset_seed_counters

SCRIPT = """
SigLayer(x, n) = [
    W = LearnableParameter(n, 4, init=uniform)
    y = Sigmoid(Times(W, x))
]
features = Input(4, tag=feature)
labels = InputValue(3, tag="label")
h0 = Tanh(later)
W1 = LearnableParameter(3, 4, init=fixedValue, value=0.5, learningRateMultiplier=0)
t1 = Times( W1 , features )
s = SigLayer(features, 3)
p1 = Plus(t1, s.y)
later = Sigmoid(features)
c = Constant(2); d = Scale(c, p1)
ce = CrossEntropyWithSoftmax(labels, d, tag=criterion)
"""


def _snapshot(net, counter):
    nodes = [(n.name, n.op, tuple(i.name if i is not None else None for i in n.inputs),
              dict(n.attrs), n.shape, n.learning_rate_multiplier, str(n.location),
              sorted(n.tags)) for n in net]
    return nodes, {g: [n.name for n in m] for g, m in net.groups().items()}, repr(counter)


def _build(text, general: bool, monkeypatch):
    with monkeypatch.context() as m:
        if general:
            m.setattr(Parser, "simple_calls", lambda self, *a: None)
        reset_seed_counters()  # automatic seeds are process-wide
        counter = NameCounter()
        net = build_network(text, source="net.ndl", counter=counter)
        return _snapshot(net, counter)


def test_same_network_as_the_general_path(monkeypatch):
    fast = _build(SCRIPT, False, monkeypatch)
    assert fast == _build(SCRIPT, True, monkeypatch)
    names = [n[0] for n in fast[0]]
    assert "h0" in names and "unnamed" in " ".join(names)  # numbers were counted


@pytest.mark.parametrize("line", [
    "h = Sigmoid(nowhere)",            # unresolved reference: its own line:column
    "h = Sigmoid(features, features)",  # too many arguments for the function
    "h = Sigmoid(features, bogus=1)",   # an unknown option (ignored, as CNTK did)
    "h = Sigmoid(features, outptRank=1)",  # a misspelt option
    "Sigmoid = Sigmoid(features)",      # a reserved name
    "features = Sigmoid(features)",     # a name already taken
    "h = NoSuchFunction(features)",
    "h = Plus(features, -1)",
])
def test_same_errors_as_the_general_path(line, monkeypatch):
    text = "features = Input(4, tag=feature)\n  " + line + "\n"
    outcomes = []
    for general in (False, True):
        try:
            outcomes.append(_build(text, general, monkeypatch))
        except ParseError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
