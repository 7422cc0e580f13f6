"""The core library and the registry's ``bs`` layer derived from it (library.py)."""

from __future__ import annotations

import pytest

from netsurgeon.lang.brainscript import BS_LIBRARY, LibraryEntry, build_from_text
from netsurgeon.lang.brainscript.library import library_functions
from netsurgeon.ops import OPS, Unsupported, completeness
from netsurgeon.ops.sets import INTERNAL


def test_bs_layer_is_attached_and_complete():
    assert OPS.layer("bs") is BS_LIBRARY
    assert [p for p in completeness(OPS) if " bs " in p or "the bs layer" in p] == []


def test_entries_name_the_library_definitions_and_their_aliases():
    relu = OPS.entry("bs", "RectifiedLinear")
    assert isinstance(relu, LibraryEntry) and relu.functions == (
        "RectifiedLinear", "ReLU", "CNTK2.ReLU", "CNTK2.Relu")
    assert OPS.entry("bs", "If").functions == ("If", "BS.Boolean.If")
    assert OPS.entry("bs", "PastValue").functions == ("PastValue", "CNTK2.PastValue", "Delay")
    # the private __ names through which CNTK2 reaches the top level are not listed
    assert not [f for fs in library_functions().values() for f in fs if f.startswith("__")]
    assert set(OPS.entry("bs", "LearnableParameter").functions) == {
        "LearnableParameter", "ParameterTensor", "Parameter", "CNTK2._Parameter"}
    assert "Input" in OPS.entry("bs", "SparseInputValue").functions  # Input(sparse=true)


def test_every_named_function_is_defined_in_the_library():
    names = sorted({f for fs in library_functions().values() for f in fs})
    members = "\n".join(f"f{i} = {name}" for i, name in enumerate(names))
    net = build_from_text(members + "\nx = Input (2)\n")  # members are evaluated: all must exist
    assert [n.name for n in net.nodes] == ["x"]


def test_ops_outside_the_library_are_unsupported_with_a_true_reason():
    reason = OPS.unsupported_reason("bs", "StableSigmoid")
    assert "new ComputationNode" in reason and "StableSigmoid" in reason
    net = build_from_text("x = Input (3)\n"
                          "z = new ComputationNode [ operation = 'StableSigmoid' ; inputs = x ]\n")
    assert net.node("z").op == "StableSigmoid" and net.node("z").shape == (3,)


def test_internal_ops_are_unsupported():
    assert INTERNAL >= {"TimesPlus", "ConvolutionPlus"}
    for op in INTERNAL:
        entry = BS_LIBRARY.lookup(OPS.op(op))
        assert isinstance(entry, Unsupported) and "internal" in entry.reason


@pytest.mark.parametrize("call, op, inputs", [
    ("Acos (a)", "Acos", ["a"]),
    ("Sinh (a)", "Sinh", ["a"]),
    ("LogPlus (a, b)", "LogPlus", ["a", "b"]),
    ("CosDistance (a, b)", "CosDistance", ["a", "b"]),
    ("ColumnwiseCrossProduct (a, b)", "KhatriRaoProduct", ["a", "b"]),
    ("Scale (a, b)", "ElementTimes", ["a", "b"]),
])
def test_registry_functions_missing_from_the_text_are_generated(call, op, inputs):
    net = build_from_text(f"a = Input (3)\nb = Input (3)\nz = {call}\n")
    z = net.node("z")
    assert z.op == op and [i.name for i in z.inputs] == inputs
    assert OPS.entry("bs", op) is not None
