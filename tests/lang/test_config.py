"""The shared config layer (ndl-mel.md §A): comments, $var$, records, dictionaries, arrays."""

from __future__ import annotations

import math

import pytest

from netsurgeon.errors import ParseError
from netsurgeon.lang.config import (
    SourceText,
    Tokenizer,
    mapping_lookup,
    parse_config,
    read_source,
    split_array,
    strip_comments,
    strtod,
    substitute_variables,
    to_bool,
    to_float,
    to_int,
    tokenize,
)


# ---- A.1 comments ------------------------------------------------------------------------------
def test_comment_after_blank_is_removed_and_leading_blanks_dropped():
    assert strip_comments("   x = 1   # note\n") == "x = 1   \n"


def test_full_line_comments_and_blank_lines_are_dropped():
    assert strip_comments("# c\n\n   \t\n  # indented\nx=1\n") == "x=1\n"


def test_line_without_comment_keeps_leading_whitespace():
    assert strip_comments("    x = 1\n") == "    x = 1\n"


def test_hash_not_after_blank_keeps_the_whole_line_with_later_comments():
    # the quirk: the first '#' decides, so '# note' survives
    assert strip_comments("x = 1#INF   # note\n") == "x = 1#INF   # note\n"


def test_comments_ignore_quotes():
    assert strip_comments('p = "a #b"\n') == 'p = "a \n'


def test_crlf_lines_keep_the_cr_which_is_a_separator():
    text = strip_comments("a=1\r\nb=2\r\n")
    assert [r.text for r in tokenize(text, ";")] == ["a=1", "b=2"]


def test_typographic_quotes_read_as_plain_quotes():
    assert split_array("(\u201ca b\u201d, c)") == ["a b", "c"]


def test_line_map_points_at_the_original_text():
    src = read_source("# header\n\n   x = Times(W, y)   # c\n", "f.ndl")
    loc = src.location(src.text.index("Times"))
    assert (loc.file, loc.line, loc.column) == ("f.ndl", 3, 8)


def test_dropped_lines_can_be_kept_empty_so_line_numbers_stay_aligned():
    text = "# header\n\n   x = Times(W, y)   # c\n"
    src = read_source(text, "f.mel", keep_empty_lines=True)
    assert src.text == "\n\nx = Times(W, y)   \n\n"
    assert [r.text for r in tokenize(src)] == [r.text for r in tokenize(read_source(text))]
    loc = src.location(src.text.index("Times"))
    assert (loc.line, loc.column) == (3, 8)
    assert src.location(1).line == 2


# ---- A.2 $var$ -----------------------------------------------------------------------------------
def test_variables_are_substituted_and_locations_survive():
    src = read_source("x = $Long$ + $b$ y\n", "f", mapping_lookup({"long": "LONGVALUE", "B": "7"}))
    assert src.text == "x = LONGVALUE + 7 y\n"
    # text after a substitution maps back to where it was written
    assert src.location(src.text.index("y")).column == 18
    # inserted text maps to its '$'
    assert src.location(src.text.index("7")).column == 14


def test_unknown_variable_is_an_error_with_location():
    with pytest.raises(ParseError) as err:
        read_source("\n  a = $Nope$\n", "f.ndl", mapping_lookup({}))
    assert "No variable found with the name 'Nope'" in str(err.value)
    assert (err.value.location.line, err.value.location.column) == (2, 7)


def test_dollar_dollar_is_an_error():
    with pytest.raises(ParseError, match=r"\$\$"):
        substitute_variables("a = $$x", mapping_lookup({}))


def test_dollar_not_followed_by_a_name_or_not_closed_is_left_alone():
    look = mapping_lookup({"a": "1"})
    assert substitute_variables("cost $5 and $a b$ and $a$", look) == "cost $5 and $a b$ and 1"


def test_values_are_resolved_recursively_and_cycles_fail():
    assert substitute_variables("$a$", mapping_lookup({"a": "$b$x", "b": "y"})) == "yx"
    with pytest.raises(ParseError, match="itself"):
        substitute_variables("$a$", mapping_lookup({"a": "$a$"}))


# ---- A.3 records ---------------------------------------------------------------------------------
def test_records_split_on_separators_and_stop_after_a_bracket_match():
    recs = tokenize("a=1; b=Times(W, x) c\n d=[x=1]", ";")
    assert [r.text for r in recs] == ["a=1", "b=Times(W, x)", "c", "d=[x=1]"]


def test_outer_block_is_entered_and_inner_brackets_kept_whole():
    recs = tokenize('[ x=1\n {a, b}\n "q r" ]', ";")
    assert [(r.text, r.braced, r.quoted) for r in recs] == [
        ("x=1", False, False), ("{a, b}", True, False), ("q r", False, True)]


@pytest.mark.parametrize("text, expected", [
    ("(-1, x)", ["1", "x"]),          # '-' becomes the block's separator
    ("(*.W, y)", [".W", "y"]),
    ("(_a, b)", ["a", "b"]),
    ("(~/m.dnn)", ["/m.dnn"]),
    ("(../m.dnn, x)", ["../m.dnn", "x"]),   # paths are left alone
    ('("-1", x)', ["-1", "x"]),       # quoting protects
])
def test_custom_separator_quirk(text, expected):
    assert split_array(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("(-1, x)", ["-1", "x"]),
    ("(*.W, y)", ["*.W", "y"]),
    ("(~/m.dnn)", ["~/m.dnn"]),
])
def test_custom_separator_rule_can_be_turned_off(text, expected):
    tok = Tokenizer(text, ",", custom_separators=False)
    assert [r.text for r in tok] == expected


def test_bracket_errors():
    with pytest.raises(ParseError, match="unmatched bracket"):
        tokenize("f(a]", ";")
    with pytest.raises(ParseError, match=r"no closing \)") as err:
        tokenize("x\ny = f(a", ";")
    assert err.value.location.line == 2


def test_tokenizer_position_can_be_moved_by_the_caller():
    tok = Tokenizer("a, b, c", ";")
    assert tok.next_record().text == "a"
    tok.pos = 5
    assert [r.text for r in tok] == ["c"]


# ---- A.4 dictionaries ----------------------------------------------------------------------------
def test_config_dictionary_keys_sections_and_fallthrough():
    cfg = parse_config('command=train:test\nDim=3\nx\ntrain=[ a=$dim$0 ; q="hello world" ]\n'
                       "train=[ b=2 ]\nTRAIN2=[ c=[ d=4 ] ]\n")
    assert cfg.get("COMMAND") == "train:test"
    assert cfg.get("x") == "true"
    train = cfg.section("train")
    assert train.get("a") == "30"  # substitution looks through the parent
    assert train.get("q") == "hello world"  # quotes removed
    assert train.get("b") == "2"  # sections with the same key merge
    assert train.get("dim") == "3"  # lookup falls through
    assert cfg.section("train2").section("c").get("d") == "4"
    assert ("d" in [k for _s, k, _v in cfg.walk()])


def test_repeated_plain_key_replaces():
    cfg = parse_config("a=1\na=2\n")
    assert cfg.get("a") == "2"


# ---- A.5 arrays ----------------------------------------------------------------------------------
def test_arrays_repeat_and_split_on_colons():
    assert split_array("(HDim*2, 10)") == ["HDim", "HDim", "10"]
    assert split_array("(10:20)") == ["10", "20"]
    assert split_array("({a, b}, (c,d), f(x*2))") == ["{a, b}", "(c,d)", "f(x*2)"]


# ---- A.6 scalars ---------------------------------------------------------------------------------
def test_integers_are_whole_base10_strings():
    assert to_int(" 784 ") == 784
    for bad in ("784.0", "1e3", "", "0x10"):
        with pytest.raises(ParseError):
            to_int(bad)


def test_floats_follow_strtod_plus_inf_marker():
    assert to_float("1#INF") == math.inf
    assert to_float("1#inf") == math.inf
    assert to_float("-1.5e-3") == -0.0015
    assert to_float("0x1p3") == 8.0
    assert strtod(".5") == 0.5 and strtod("inf") == math.inf and math.isnan(strtod("nan"))
    assert strtod("") == 0.0 and strtod("1e") is None and strtod("1#INF") is None
    with pytest.raises(ParseError):
        to_float("abc")


def test_booleans_have_exact_spellings():
    for t in ("t", "true", "T", "True", "TRUE", "1"):
        assert to_bool(t) is True
    for f in ("f", "false", "F", "False", "FALSE", "0", ""):
        assert to_bool(f) is False
    with pytest.raises(ParseError, match="boolean"):
        to_bool("tRUE")


def test_plain_source_text_maps_continuation_lines():
    from netsurgeon.errors import SourceLocation

    src = SourceText.plain("a\nbc", location=SourceLocation("m.mel", 10, 5))
    assert src.location(0).column == 5 and src.location(3).line == 11


def test_deferred_location_is_the_location_it_stands_for():
    import copy
    import pickle

    from netsurgeon.errors import SourceLocation

    src = read_source("a = 1\n  # note\n  b = Sigmoid(a)  # c\n", "f.ndl")
    offset = src.text.index("Sigmoid")
    lazy, plain = src.map.deferred(offset), src.location(offset)
    assert plain == SourceLocation("f.ndl", 3, 7)
    assert lazy == plain and plain == lazy and hash(lazy) == hash(plain)
    assert (str(lazy), repr(lazy)) == (str(plain), repr(plain)) == ("f.ndl:3:7", repr(plain))
    assert isinstance(lazy, SourceLocation) and (lazy.file, lazy.line, lazy.column) == \
        ("f.ndl", 3, 7)
    for back in (pickle.loads(pickle.dumps(lazy)), copy.deepcopy(lazy)):
        assert type(back) is SourceLocation and back == plain
    with pytest.raises(AttributeError):
        lazy.line = 4  # frozen, as SourceLocation


# ---- reading files (issue 10: through netsurgeon._inputs) ----------------------------------------
def test_read_text_file_names_the_kind_of_file_and_raises_parse_error(tmp_path):
    from netsurgeon.lang.config import parse_config_file, read_file, read_text_file

    for name, what in (("a.ndl", "NDL file"), ("a.MEL", "MEL script"), ("a.bs", "BrainScript file"),
                       ("a.cntk", "config file"), ("a.txt", "input file")):
        with pytest.raises(ParseError, match=f"cannot read the {what}: not found"):
            read_text_file(tmp_path / name)
    with pytest.raises(ParseError, match="cannot read the macro file: it is a directory"):
        read_text_file(tmp_path, "macro file")
    with pytest.raises(ParseError, match="a.conf: cannot read the config file: not found"):
        parse_config_file(tmp_path / "a.conf")
    (tmp_path / "ok.ndl").write_bytes(b"x = 1 # c\n")
    assert read_file(tmp_path / "ok.ndl").text == "x = 1 \n"


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs")
def test_read_text_file_refuses_a_fifo_without_reading_it(tmp_path):
    import os

    from netsurgeon.lang.config import read_text_file

    os.mkfifo(tmp_path / "p.ndl")
    with pytest.raises(ParseError, match="p.ndl: cannot read the NDL file: it is a FIFO"):
        read_text_file(tmp_path / "p.ndl")  # returns at once: nothing opens the FIFO


def test_utf16_text_is_one_error_line_with_its_location(tmp_path):
    from netsurgeon.lang.config import read_text_file

    path = tmp_path / "net.ndl"
    path.write_bytes(("x = Input(3)\n" * 40).encode("utf-16"))
    with pytest.raises(ParseError) as info:
        read_text_file(path)
    text = str(info.value)
    assert text.startswith(f"{path}:1:1: cannot read the NDL file: it is UTF-16")
    assert "\n" not in text and "\0" not in text and "iconv" in text
    assert info.value.location.file == str(path)


def test_text_files_above_the_cap_are_refused(tmp_path, monkeypatch):
    from netsurgeon.lang.config import read_text_file

    path = tmp_path / "big.mel"
    path.write_bytes(b"#" * 2048)
    monkeypatch.setenv("NETSURGEON_MAX_TEXT_BYTES", "1K")
    with pytest.raises(ParseError, match="big.mel: cannot read the MEL script: it is 2048 bytes, "
                                         "above the limit of 1024 bytes"):
        read_text_file(path)
