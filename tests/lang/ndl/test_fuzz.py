"""Fuzzing: any text gives a result or the project's error, never another exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsurgeon.errors import NetsurgeonError
from netsurgeon.graph import Network
from netsurgeon.lang import config
from netsurgeon.lang.ndl import MacroTable, NameCounter, NdlScript, build_network, evaluate_snippet

CHARS = st.sampled_from(list("abcxyzLW0123456789 \t\n\r=(){}[]\",;:.*#$-_+~!@?'\\")
                        + ["\u201c", "\u201d"])
FRAGMENTS = st.sampled_from([
    "x", "y", "W", "L1", "L1.BFF.FF.P", "CE.F", " = ", "=", "(", ")", "[", "]", "{", "}", ",", ";",
    "\n", " ", "\"", "#", " # c", "$v$", "$$", "1", "-1", "784", "1#INF", "1e3", "*2", ":",
    "Input(3, tag=feature)", "Parameter(2, 3)", "Sigmoid(", "Times(", "Plus(x, y)", "RBFF(x, 3, 3)",
    "SMBFF(x, 2, 3, y, tag=criterion)", "tag=", "init=gaussian", "M(a) = [ b = Tanh(a) ]",
    "M(a)\n{\n b = Tanh(a) }\n", "FeatureNodes=(x)", "OutputNodes=", "load=", "run=", "sec=[",
    "PastValue(3, z)", "Constant(", "Const(5)", "x.y.z", "unnamed1", "Pooling(x, \"max\", 2)",
])
TEXT = st.one_of(st.text(CHARS, max_size=80), st.lists(FRAGMENTS, max_size=30).map("".join))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _lookup(name):
    return {"v": "3", "w": "$v$"}.get(name.lower())


@FUZZ
@given(TEXT)
def test_config_layer_never_crashes(text):
    for call in (
        lambda: config.read_source(text, "f", _lookup),
        lambda: config.tokenize(text, ";"),
        lambda: config.tokenize(text, ","),
        lambda: config.split_array(text),
        lambda: config.parse_config(text).walk() and list(config.parse_config(text).walk()),
        lambda: config.to_int(text),
        lambda: config.to_float(text),
        lambda: config.to_bool(text),
        lambda: config.substitute_variables(text, _lookup),
    ):
        try:
            call()
        except NetsurgeonError:
            pass


@FUZZ
@given(TEXT)
def test_ndl_build_never_crashes(text):
    try:
        build_network(text, counter=NameCounter(), variables={"v": "3"})
    except NetsurgeonError:
        pass


@FUZZ
@given(TEXT)
def test_snippets_and_in_line_statements_never_crash(text):
    macros = MacroTable.standard()
    try:
        evaluate_snippet(text, macros=macros, counter=NameCounter())
    except NetsurgeonError:
        pass
    net = Network("m")
    net.add("x", "InputValue", shape=(3,))
    script = NdlScript(net, macros=macros, counter=NameCounter())
    try:
        script.add_statement(text)
        script.run_passes("final")
        script.lookup(text)
    except NetsurgeonError:
        pass
