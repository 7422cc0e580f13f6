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


#: plain calls only: built while parsing up to the first that needs a later statement
EARLY = """
features = Input(4, tag=feature)
labels = Input(3, tag=label)
W = LearnableParameter(3, 4, init=uniform)
t = Times(W, features)
s = Sigmoid(t)
s2 = Sigmoid(s)
p = Plus(s2, t)
ce = CrossEntropyWithSoftmax(labels, p, tag=criterion)
err = ErrorPrediction(labels, p, tag=evaluation)
V = LearnableParameter(3, 4, init=gaussian)
u = Times(V, features, tag=output)
h = Tanh(late)
late = Sigmoid(u)
"""


def _versioned(text, general, monkeypatch, tail=""):
    """The network of ``text + tail`` with its edit counter (a change made twice shows)."""
    with monkeypatch.context() as m:
        if general:
            m.setattr(Parser, "simple_calls", lambda self, *a: None)
        reset_seed_counters()
        counter = NameCounter()
        net = build_network(text + tail, source="net.ndl", counter=counter)
        return _snapshot(net, counter), net.version


@pytest.mark.parametrize("tail", [
    "",
    "out = s2\n",                   # an alias renames a node built already: built again
    "x = Sigmoid(s2); y = Plus(x, s)\n",
    "q = RBFF(features, 3, 4)\nr = Sigmoid(q)\n",  # a macro call: the passes take over
])
def test_building_while_parsing_gives_the_passes_network(tail, monkeypatch):
    fast = _versioned(EARLY, False, monkeypatch, tail)
    assert fast == _versioned(EARLY, True, monkeypatch, tail)
    groups = fast[0][1]
    assert groups["criterion"] == ["ce"] and groups["output"] == ["u"]
    if tail.startswith("out"):
        assert "out" in [n[0] for n in fast[0][0]] and "s2" not in [n[0] for n in fast[0][0]]


def test_progress_counts_every_statement_once():
    counts = []

    class Bar:
        def __init__(self, label, total, unit):
            self.total, self.n = total, 0

        def update(self, n=1):
            self.n += n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            counts.append((self.n, self.total))

    build_network(EARLY, counter=NameCounter(),
                  progress=lambda label, total, unit: Bar(label, total, unit))
    assert counts == [(3 * 13, 3 * 13)]


@pytest.mark.parametrize("tail", [
    "k = Sigmoid(p\n",                       # a syntax error after built statements
    "k = LearnableParameter(3, 4, init=unifrm)\n",
    "k = Sigmoid(p)\nK = Tanh(p)\n",         # a name taken (names are case-insensitive)
])
def test_errors_after_building_while_parsing(tail, monkeypatch):
    outcomes = []
    for general in (False, True):
        try:
            outcomes.append(_versioned(EARLY, general, monkeypatch, tail))
        except ParseError as exc:
            outcomes.append(str(exc))
    assert isinstance(outcomes[0], str) and outcomes[0] == outcomes[1]
    assert outcomes[0].startswith(("net.ndl:15:", "net.ndl:16:"))


def test_plain_calls_are_built_while_parsing():
    from netsurgeon.graph import Network
    from netsurgeon.lang.config import read_source
    from netsurgeon.lang.ndl import NdlScript

    script = NdlScript(Network("m"), counter=NameCounter(), allow_definitions=True)
    script.build_while_parsing()
    script.parse(read_source(EARLY, "net.ndl"))
    # up to the forward reference; the final pass waits from the parameter W on (its seed)
    assert script._done == {"initial": 11, "resolve": 11, "final": 2}
    assert [n.name for n in script.network][-1] == "u"
