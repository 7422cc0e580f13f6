"""BrainScript parser and CNTK's parse-tree dump format (brainscript.md §1, §2, §7)."""

from __future__ import annotations

import pytest

from netsurgeon.errors import ParseError
from netsurgeon.lang.brainscript.diagnostics import source_excerpt
from netsurgeon.lang.brainscript.lexer import tokenize
from netsurgeon.lang.brainscript.parser import dump_tree, parse


def norm(text: str) -> str:
    """The CNTK harness normalisation: CRs removed, trailing blanks at the very end stripped."""
    return text.replace("\r", "").rstrip(" \n")


def test_times_binds_tighter_than_plus_and_dump_format():
    tree = parse("do = Parameter(13,42) * Input(42) + Parameter(13,1)")
    expected = (
        " []\n"
        " do =\n"
        "  +\n"
        "   *\n"
        "    (\n"
        "     Parameter\n"
        "     ()\n"
        "      13\n"
        "      42\n"
        "\n"
        "\n"
        "    (\n"
        "     Input\n"
        "     ()\n"
        "      42\n"
        "\n"
        "\n"
        "\n"
        "   (\n"
        "    Parameter\n"
        "    ()\n"
        "     13\n"
        "     1\n"
    )
    assert norm(dump_tree(tree)) == norm(expected)


def test_array_keyword_has_trailing_space_and_booleans_print_as_digits():
    out = dump_tree(parse("x = array [1..10] (i=>i*i) ; y = !false ; z = true"))
    assert "  array \n" in out
    assert "  !(\n   0\n" in out
    assert " z =\n  1\n" in out


def test_members_are_sorted_by_code_point():
    out = dump_tree(parse("b = 1 ; _c = 2 ; a = 3 ; Z = 4"))
    names = [line.strip() for line in out.splitlines() if line.endswith(" =")]
    assert names == ["Z =", "_c =", "a =", "b ="]


def test_colon_flattens_left_but_nests_parenthesised_right():
    tree = parse("x = (13:(fortytwo:1):100)")
    arr = tree.named["x"]
    assert arr.op == ":" and len(arr.args) == 3
    assert arr.args[1].op == ":" and [a.id for a in arr.args[1].args] == ["fortytwo", ""]
    left = parse("x = (a:b):c").named["x"]
    assert left.op == ":" and len(left.args) == 3


def test_unary_binds_weaker_than_postfix_tighter_than_times():
    e = parse("x = -a.b * c").named["x"]
    assert e.op == "*" and e.args[0].op == "-(" and e.args[0].args[0].op == "."


def test_if_else_takes_in_colon_array():
    e = parse("x = Sequential (if u then A{} else Identity : R{h})").named["x"]
    cond = e.args[1].args[0]
    assert cond.op == "if" and cond.args[2].op == ":"


def test_definitions_desugar_to_lambdas_and_arrays():
    t = parse("f(x, o=3) = x ; g{y} = y ; h[i:1..5] = i*i ; k[i:0..2](x) = x")
    assert t.named["f"].op == "=>" and t.named["f"].args[0].named["o"].value == 3.0
    assert t.named["g"].op == "=>"
    h = t.named["h"]
    assert h.op == "array" and h.args[2].op == "=>"
    k = t.named["k"]
    assert k.op == "array" and k.args[2].args[1].op == "=>"


def test_newlines_do_not_end_expressions():
    t = parse("a = 1 b = 2\nf = g\n(x)\nc = 1\n + 2")
    assert t.named["f"].op == "(" and t.named["c"].op == "+"


def test_number_rule_1_dot_dot_10_and_comments():
    toks = [t.text for t in tokenize("1..10 /* a ** / b */ 0x10 .5 # c\n // d\n x")][:-1]
    assert toks == ["1", "..", "10", "0x10", ".5", "x"]
    assert [t.text for t in tokenize("/* x * */ z")][:-1] == ["z"]


def test_star_quirk_double_star_slash_does_not_close():
    toks = [t.text for t in tokenize("/* a **/ still comment */ z")][:-1]
    assert toks == ["z"]


def test_strings_without_escapes_and_both_quotes():
    t = parse("s = \"it's [>\" ; q = 'say \"x\"'")
    assert t.named["s"].value == "it's [>" and t.named["q"].value == 'say "x"'
    assert "  'it's [>'" in dump_tree(t)


def test_duplicate_member_is_an_error():
    with pytest.raises(ParseError, match="duplicate member definition 'a'"):
        parse("a = 1 ; a = 2")


def test_lambda_needs_identifier_left_side():
    with pytest.raises(ParseError, match="left side of '=>'"):
        parse("x = a : y => y")
    assert parse("x = (y => y) : a").named["x"].op == ":"


def test_syntax_error_has_file_line_column_and_caret(tmp_path):
    f = tmp_path / "bad.bs"
    f.write_text("a = 1\nb = [ c = 2 + ; d = 3 ]\n")
    with pytest.raises(ParseError) as info:
        parse(f.read_text(), str(f))
    msg = str(info.value)
    assert msg == f"{f}:2:15: expected an expression, found ';'"  # one line
    assert source_excerpt(info.value.location) == ("    b = [ c = 2 + ; d = 3 ]\n"
                                                   "                  ^")


def test_illegal_character_and_unclosed_string():
    with pytest.raises(ParseError, match=r"<string>:1:5: invalid character '\$'"):
        parse("x = $dim$")
    with pytest.raises(ParseError, match="string literal is not closed"):
        parse("x = 'abc")


def test_include_splices_tokens(tmp_path):
    (tmp_path / "inc.bs").write_text("b = 2\n")
    t = parse("a = 1\ninclude 'inc.bs'\nc = 3", str(tmp_path / "main.bs"), [tmp_path])
    assert sorted(t.named) == ["a", "b", "c"]


def test_core_library_parses():
    from netsurgeon.lang.brainscript.library import STDLIB

    t = parse(STDLIB.read_text(), str(STDLIB))
    assert {"LinearLayer", "DenseLayer", "Sequential", "BS", "RecurrentLSTMLayer"} <= set(t.named)


def test_deep_nesting_parses_and_dumps_without_recursion_error():
    n = 10_000
    t = parse("z = " + "(" * n + "1" + ")" * n + "\nw = " + "-" * n + "1\nq = "
              + "[a=" * n + "1" + "]" * n)
    out = dump_tree(t)
    assert out.count("-(") == n


def test_cli_parse_tree(tmp_path, capsys):
    from netsurgeon.cli import main

    f = tmp_path / "t.bs"
    f.write_text("x = new PrintAction [ what = 'hello' ]\n")
    assert main(["bs", "--parse-tree", str(f)]) == 0
    out = capsys.readouterr().out
    assert out == " []\n x =\n  new PrintAction\n   []\n    what =\n     'hello'\n\n\n\n"
