"""BrainScriptNetworkBuilder blocks in .cntk configs: errors at the file's lines, inheritance
of a top-level builder, and ``netsurgeon bs -o`` into new directories."""

from __future__ import annotations

import pytest

from netsurgeon.cli import main
from netsurgeon.errors import NetsurgeonError
from netsurgeon.lang.brainscript import build_from_config

CONFIG = """\
# a comment line
command = train

dim = 3
prefix = "a much longer value than the variable"

train = [
    action = "train"
    # a comment inside the section

    BrainScriptNetworkBuilder = [
        x = Input ($dim$)

        # another comment, and an empty line above
        z = Plus (x, undefinedThing)
    ]
]
"""


def test_errors_in_a_builder_block_count_lines_from_the_file(tmp_path, capsys):
    cfg = tmp_path / "run.cntk"
    cfg.write_text(CONFIG)
    with pytest.raises(NetsurgeonError) as info:
        build_from_config(cfg, "train")
    # line 15 of the file, column of 'undefinedThing' (line 5 of the block before)
    assert str(info.value).startswith(f"{cfg}:15:22: unknown identifier 'undefinedThing'")
    assert main(["bs", "--config", str(cfg), "--section", "train", "--show-source"]) == 1
    err = capsys.readouterr().err.split("\n")
    assert err[1:3] == ["            z = Plus (x, undefinedThing)",
                        "                         ^"]


def test_columns_after_a_substituted_variable_are_the_files(tmp_path):
    cfg = tmp_path / "run.cntk"
    cfg.write_text('long = "12"\ntrain = [ BrainScriptNetworkBuilder = [\n'
                   "  x = Input ($long$) ; y = Tanh (x, nope = 1) ] ]\n")
    with pytest.raises(NetsurgeonError) as info:
        build_from_config(cfg, "train")
    # the error is at the argument's value, located as written ($long$ is 6 characters of the
    # file, its value "12" only 2 of the block)
    line = cfg.read_text().split("\n")[2]
    column = line.index("nope = 1") + len("nope = ") + 1
    assert str(info.value).startswith(f"{cfg}:3:{column}: function does not have an optional "
                                      "argument 'nope'"), str(info.value)


def test_a_section_inherits_the_top_level_builder(tmp_path):
    cfg = tmp_path / "run.cntk"
    cfg.write_text("command = train:test\n"
                   "BrainScriptNetworkBuilder = [\n  x = Input (2)\n  z = Plus (x, x)\n]\n"
                   'train = [ action = "train" ]\n'
                   'test = [ action = "test" ; BrainScriptNetworkBuilder = [ x = Input (4)\n'
                   "  z = Minus (x, x) ] ]\n")
    net = build_from_config(cfg, "train")
    assert net.node("z").op == "Plus" and net.node("x").shape == (2,)
    own = build_from_config(cfg, "test")  # a section's own builder wins
    assert own.node("z").op == "Minus" and own.node("x").shape == (4,)


def test_a_missing_builder_is_one_line(tmp_path):
    cfg = tmp_path / "run.cntk"
    cfg.write_text('train = [ action = "train" ]\n')
    with pytest.raises(NetsurgeonError, match="section 'train' has no BrainScriptNetworkBuilder "
                                              r"\(and the file has none at the top level\)"):
        build_from_config(cfg, "train")


def test_bs_output_into_missing_directories_creates_them(tmp_path, capsys):
    import netsurgeon

    f = tmp_path / "net.bs"
    f.write_text("x = Input (2)\nz = Tanh (x)\n")
    out = tmp_path / "new" / "deeper" / "net.dnn"
    assert main(["bs", str(f), "-o", str(out)]) == 0
    assert netsurgeon.load(out).node("z").op == "Tanh"
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["bs", str(f), "-o", str(blocker / "sub" / "net.nsm")]) == 1
    err = capsys.readouterr().err
    assert err == (f"netsurgeon: error: cannot write {blocker / 'sub' / 'net.nsm'}: {blocker} "
                   "is a file, not a directory (choose another output path)\n")
