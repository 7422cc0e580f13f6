"""The MEL-facing API: NdlScript's pass-by-pass evaluation on a loaded network, snippets,
the macro table and the counter (ndl-mel.md §C.6, §C.7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsurgeon.errors import ParseError, SourceLocation
from netsurgeon.lang.ndl import MacroTable, NameCounter, NdlScript, build_file, evaluate_snippet

SEED = Path(__file__).resolve().parents[3] / "examples" / "seed.ndl"


@pytest.fixture()
def seed_net():
    return build_file(SEED)


def test_in_line_statements_run_the_initial_pass_at_once(seed_net):
    counter = NameCounter(100)
    script = NdlScript(seed_net, counter=counter)
    script.add_statement("meanVal = Mean(features)", SourceLocation("e.mel", 5, 5))
    script.add_statement("invstdVal = InvStdDev(features)")
    script.add_statement("inputVal = PerDimMeanVarNormalization(features,meanVal,invstdVal)")
    node = seed_net.get("inputVal")
    assert node is not None and node.inputs == (None, None, None)  # initial pass only
    assert seed_net.get("meanVal").location == SourceLocation("e.mel", 5, 5)
    script.run_passes("resolve")
    assert [i.name for i in node.inputs] == ["features", "meanVal", "invstdVal"]
    assert script.lookup("inputVal") is node


def test_macros_model_nodes_and_lookup(seed_net):
    counter = NameCounter(100)
    script = NdlScript(seed_net, counter=counter)
    script.add_statement("L4 = RBFF(L3.RL, 256, 256)")
    script.add_statement("k = 2")
    script.add_statement("s = Scale(Constant(k), L4)")
    assert script.lookup("k") == 2.0
    assert script.lookup("L4").name == "L4.RL"
    assert script.lookup("L4.BFF.W").name == "L4.BFF.W"
    assert script.lookup("nothing") is None
    script.run_passes("final")
    # the model node L3.RL is found by its full name; numbers: L4=101, its 256s 102 and 103,
    # k=104, s=105, Constant(k)=106
    assert [i.name for i in seed_net.get("L4.BFF.FF.T").inputs] == ["L4.BFF.W", "L3.RL"]
    assert [i.name for i in seed_net.get("s").inputs] == ["unnamed106", "L4.RL"]
    assert seed_net.get("L4.BFF.W").value.shape == (256, 256)
    assert counter.seed_value == 1
    seed_net.validate()


def test_passes_only_touch_new_statements_and_renames_are_followed(seed_net):
    script = NdlScript(seed_net, counter=NameCounter())
    script.add_statement("a = Sigmoid(L1.RL)")
    script.run_passes("final")
    node = seed_net.get("a")
    seed_net.rename(node, "renamed")
    seed_net.set_input(node, 0, seed_net.get("L2.RL"))  # a MEL SetInput after the resolve pass
    script.add_statement("b = Tanh(a)")
    script.run_passes("final")
    assert node.inputs[0].name == "L2.RL"  # not overwritten by a later pass
    assert seed_net.get("b").inputs[0] is node
    assert script.lookup("a") is node


def test_definitions_are_refused_in_line(seed_net):
    script = NdlScript(seed_net, counter=NameCounter())
    # without definitions a bare call is a nameless call
    script.add_statement("Sigmoid(L1.RL)")
    assert seed_net.get("unnamed1").op == "Sigmoid"
    with pytest.raises(ParseError, match="Undefined function or macro 'M'"):
        script.add_statement("M(x) = [ y = Tanh(x) ]")


def test_forward_references_need_only_exist_by_the_resolve_pass(seed_net):
    script = NdlScript(seed_net, counter=NameCounter())
    script.add_statement("u = Plus(v, L1.RL)")
    script.add_statement("v = Sigmoid(L1.RL)")
    script.run_passes("resolve")
    assert seed_net.get("u").inputs[0].name == "v"


def test_unknown_reference_fails_in_the_resolve_pass(seed_net):
    script = NdlScript(seed_net, counter=NameCounter())
    script.add_statement("u = Plus(nope, L1.RL)", SourceLocation("e.mel", 3, 1))
    with pytest.raises(ParseError, match="could not be resolved 'nope'") as err:
        script.run_passes("resolve")
    assert err.value.location.file == "e.mel" and err.value.location.line == 3


def test_snippet_defines_macros_globally_and_needs_no_feature_node():
    macros = MacroTable.standard()
    counter = NameCounter()
    net = evaluate_snippet("[\n Lay(x) = [ y = Sigmoid(x) ]\n f = Input(3)\n z = Lay(f)\n]",
                           macros=macros, counter=counter, name="m2",
                           location=SourceLocation("e.mel", 7, 6))
    assert net.name == "m2"
    assert [i.name for i in net.get("z.y").inputs] == ["f"]
    assert "Lay" in macros
    # the macro is usable from later in-line NDL of another model
    other = evaluate_snippet("g = Input(2, tag=feature)\nh = Lay(g)", macros=macros,
                             counter=counter)
    assert other.get("h.y").op == "Sigmoid"


def test_seed_snippet_builds_the_documented_model():
    text = SEED.read_text().split("\n", 2)[2]  # drop the two comment lines
    from netsurgeon.lang.config import strip_comments

    net = evaluate_snippet("[" + strip_comments(text) + "]", counter=NameCounter())
    assert [n.name for n in net.group("output")] == ["CE.F"]
    assert len(net) == 24


def test_macro_table_behaviour():
    std = MacroTable.standard()
    assert {"FF", "BFF", "RBFF", "RFF", "SBFF", "SFF", "SMFF", "SMBFF", "RBFFD", "SBFFD",
            "MeanVarNorm", "LogPrior"} <= set(std.names())
    assert "rbff" in std and std.get("rbff").params == ["in", "rowCount", "colCount"]
    other = MacroTable.standard()
    std.load_text("RBFF(a, b, c) = [ y = Sigmoid(a) ]")
    assert other.get("RBFF").standard  # tables are independent
    with pytest.raises(ParseError, match="already defined"):
        std.load_text("RBFF(a, b, c) = [ y = Tanh(a) ]")
    # statements outside definitions in a macro file are parsed but never evaluated
    assert std.load_text("x = Input(3)\nQ(a) = [ z = Tanh(a) ]") == ["Q"]


def test_macro_file_with_variables(tmp_path):
    path = tmp_path / "m.ndl"
    path.write_text("load=defs\ndefs=[ P(x) = [ W = Parameter($Dim$, 3)\n y = Times(W, x) ] ]\n")
    table = MacroTable()
    assert table.load_file(path, variables={"dim": "7"}) == ["P"]
    with pytest.raises(ParseError, match="No variable found with the name 'Dim'"):
        MacroTable().load_file(path, variables={})
    # without variables (MEL's macro files) the text is read as it is
    assert MacroTable().load_file(path) == ["P"]


def test_replacing_a_standard_macro_changes_the_standard_macros_that_use_it():
    macros = MacroTable.standard()
    macros.load_text("BFF(in, rows, cols) = [ W = Parameter(rows, cols)\n FF = Times(W, in) ]")
    from netsurgeon.lang.ndl import build_network

    net = build_network("x = Input(3, tag=feature)\nL = RBFF(x, 2, 3)", macros=macros,
                        counter=NameCounter())
    assert [i.name for i in net.get("L.RL").inputs] == ["L.BFF.FF"]
    assert net.get("L.BFF.B") is None
