"""MEL text reading: comments, quotes, $var$, statement kinds, abbreviations (§A.1-A.3,
§C.2-C.3)."""

from __future__ import annotations

import pytest

from netsurgeon.errors import EditError, ParseError
from netsurgeon.lang.mel import find_command
from netsurgeon.lang.mel._commands import abbreviates
from netsurgeon.lang.mel._script import parse_script, read_mel


def parse(text, variables=None, file="t.mel"):
    lookup = (lambda k: {a.lower(): str(b) for a, b in (variables or {}).items()}.get(k.lower()))
    return parse_script(read_mel(text, file, lookup))


@pytest.mark.parametrize("line, kept", [
    ("# whole line", ""),
    ("   # indented comment", ""),
    ("L1 = RBFF(features, HDim, SDim) # define the first layer",
     "L1 = RBFF(features, HDim, SDim) "),
    ("var = 1#INF", "var = 1#INF"),
    ("x = 1#INF   # note", "x = 1#INF   # note"),  # CNTK: only the first '#' is looked at
    ("  SetInput(a, 1, b)", "  SetInput(a, 1, b)"),
])
def test_comment_rules(line, kept):
    assert read_mel(line, "t.mel").text == kept + "\n"


def test_statements_and_kinds():
    stmts = parse('''
m1 = LoadModel("a.dnn", format=cntk)   # a load
SetDefaultModel(m1)
HDim = 512; x = Times(W, y)
m2 = [
   a = 1
]
Copy(L1.*, L2.*)
''')
    kinds = [(s.kind, s.name or s.target) for s in stmts]
    assert kinds == [("assign", "LoadModel"), ("command", "SetDefaultModel"), ("ndl", ""),
                     ("assign", "Times"), ("snippet", "m2"), ("command", "Copy")]
    assert [s.location.line for s in stmts] == [2, 3, 4, 4, 5, 8]
    assert stmts[0].args[0].quoted and stmts[0].args[0].text == "a.dnn"
    assert stmts[0].args[1].option() == ("format", "cntk")
    assert stmts[5].args[0].text == "L1.*"  # no CNTK custom-separator surprise


def test_mel_keeps_the_first_character_of_a_first_argument():
    (s,) = parse("Copy(*.W, ~/out.W)")  # CNTK's custom-separator rule is not reproduced
    assert [a.text for a in s.args] == ["*.W", "~/out.W"]
    (s,) = parse("SetInput(-x, 0, \"*.y\")")
    assert [(a.text, a.quoted) for a in s.args] == [("-x", False), ("0", False), ("*.y", True)]


def test_snippet_body_keeps_its_line_numbers_past_comment_lines():
    stmts = parse("# a MEL file\n\nm = [\n  # inside\n  a = 1\n\n  b = 2\n]\nSave(m)")
    assert [s.kind for s in stmts] == ["snippet", "command"]
    body = stmts[0].args[0].text
    assert stmts[0].body_location.line == 3
    assert body.split("\n").index("  b = 2") == 4  # line 3 + 4 = line 7, where b is written
    assert stmts[1].location.line == 9


def test_variable_values_keep_the_location_of_the_dollar():
    (s,) = parse("\n  SaveModel(m, \"$dir$/x.dnn\")", {"dir": "/very/long/path"})
    assert s.args[1].text == "/very/long/path/x.dnn"
    assert s.location.line == 2 and s.location.column == 3


def test_typographic_quotes_and_backslashes():
    (s,) = parse("model1 = LoadModel(\u201cc:\\models\\mymodel.dnn\u201d, format=cntk)")
    assert s.args[0].text == "c:\\models\\mymodel.dnn" and s.args[0].quoted


def test_stringize_variables():
    (s,) = parse('m1=LoadModel("$OldModelPath$",format=cntk)', {"oldmodelpath": "/x/y.dnn"})
    assert s.args[0].text == "/x/y.dnn"
    (s,) = parse("HL$newLayer$ = DNNLayer(HDim, HDim, HL$currLayer$.y)",
                 {"NewLayer": 3, "currLayer": 2})
    assert s.text.strip() == "HL3 = DNNLayer(HDim, HDim, HL2.y)"
    with pytest.raises(ParseError, match=r"t.mel:2:11: No variable found with the name 'nope'"):
        parse("\nSaveModel($nope$)")
    assert parse("SaveModel(m, \"a$b\")")[0].args[1].text == "a$b"


@pytest.mark.parametrize("text, message", [
    ("x =", "no value"),
    ("justaword", "expecting a function call"),
    ("Copy(a, b", "no closing"),
    ("Copy(a, b]", "unmatched bracket"),
    ("x = (a, b)", "snippet"),
])
def test_syntax_errors_have_locations(text, message):
    with pytest.raises(ParseError, match=message) as info:
        parse("\n\n" + text)
    assert info.value.location.file == "t.mel" and info.value.location.line == 3


@pytest.mark.parametrize("word, command", [
    ("CreateModel", "CreateModel"), ("CreateModelWithName", "CreateModelWithName"),
    ("LoadModel", "LoadModel"), ("Load", "LoadModel"), ("LoadModelWithName", "LoadModelWithName"),
    ("LoadNDLSnippet", "LoadNDLSnippet"), ("SaveDefaultModel", "SaveDefaultModel"),
    ("SaveModel", "SaveModel"), ("Save", "SaveModel"), ("SaveModelWithName", "SaveModel"),
    ("SetDefaultModel", "SetDefaultModel"), ("SetDefaultMode", "SetDefaultModel"),
    ("UnloadModel", "UnloadModel"), ("Unload", "UnloadModel"),
    ("Dump", "DumpModel"), ("DumpModel", "DumpModel"), ("DumpNetwork", "DumpModel"),
    ("DumpNode", "DumpNode"), ("Copy", "CopyNode"), ("CopyNode", "CopyNode"),
    ("CopySubTree", "CopySubTree"), ("CopyInputs", "CopyNodeInputs"),
    ("CopyNodeInputs", "CopyNodeInputs"), ("SetInput", "SetNodeInput"),
    ("SetNodeInput", "SetNodeInput"), ("SetInputs", "SetNodeInputs"),
    ("SetNodeInputs", "SetNodeInputs"), ("SetProperty", "SetProperty"),
    ("SetPropertyForSubTree", "SetPropertyForSubTree"), ("Remove", "RemoveNode"),
    ("RemoveNode", "RemoveNode"), ("Delete", "DeleteNode"), ("DeleteNode", "DeleteNode"),
    ("Rename", "Rename"), ("ReviseParameter", "ReviseParameter"), ("setinput", "SetNodeInput"),
    ("Sav", None), ("Frobnicate", None),
])
def test_command_names_and_abbreviations(word, command):
    found = find_command(word)
    assert (found.name if found else None) == command


def test_abbreviation_rule_is_half_the_length():
    assert abbreviates("Save", "SaveModel") and not abbreviates("Sav", "SaveModel")
    assert abbreviates("include", "includeData") and not abbreviates("inc", "includeData")


def test_macro_definition_in_mel_is_an_unknown_command(tmp_path):
    from netsurgeon.lang.mel import run

    with pytest.raises(ParseError, match=r"<string>:1:1: .*macros cannot be defined in MEL"):
        run("Foo(x) = [ y = x ]")
    with pytest.raises(EditError, match=r"<string>:1:1: Unknown Editor function 'Frob'"):
        run("Frob(x)")
