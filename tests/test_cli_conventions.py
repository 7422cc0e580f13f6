"""Issue 15 conventions of the command line: ``--version``; ``-v``/``-q`` and ``--debug``
before or after the command (also where a command has its own ``-q``); a top-level
``--help`` written for users; an error never glued to a progress bar's line; ``dump --node``
prints a node once and says 'did you mean'."""

from __future__ import annotations

import shutil

import pytest
from tests.commands.helpers import one_error
from tests.runtime import nets

import netsurgeon
from netsurgeon import formats
from netsurgeon.cli import main


@pytest.fixture
def mc(cntk_dir, tmp_path):
    path = tmp_path / "MC.dnn"
    shutil.copyfile(cntk_dir / "models/MC.dnn", path)
    return str(path)


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"netsurgeon {netsurgeon.__version__}"


def test_top_level_help_is_for_users(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: netsurgeon")
    assert "Open, edit, evaluate, train and save trained neural networks" in text
    for flag in ("--version", "--debug", "-v, --verbose", "-q, --quiet"):
        assert flag in text
    for developer_words in ("dispatcher", "configure(parser)", "run(args)", "NetsurgeonError"):
        assert developer_words not in text


@pytest.mark.parametrize("argv", [
    ["-v", "validate", "{m}"], ["validate", "{m}", "-v"], ["--verbose", "validate", "{m}"],
    ["-q", "validate", "{m}"], ["validate", "{m}", "-q"], ["validate", "-q", "{m}", "--quiet"],
    ["-q", "-v", "dump", "{m}", "--debug"], ["--debug", "dump", "{m}", "-vv"],
])
def test_common_options_before_or_after_the_command(mc, argv, capsys):
    assert main([a.format(m=mc) for a in argv]) == 0
    err = capsys.readouterr().err
    if "-v" in argv or "--verbose" in argv or "-vv" in argv:
        assert "took" in err
    else:
        assert err == ""


def test_debug_after_the_command_shows_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "missing.dnn")
    assert main(["validate", missing]) == 1
    assert one_error(capsys.readouterr().err).endswith("not found")
    for argv in (["--debug", "validate", missing], ["validate", missing, "--debug"]):
        with pytest.raises(FileNotFoundError):
            main(argv)


def test_quiet_before_a_command_with_its_own_quiet(mc, tmp_path, capsys):
    script = tmp_path / "s.mel"
    script.write_text(f'm = LoadModel("{mc}")\nSaveModel(m, "{tmp_path}/o.nsm")\n')
    assert main(["edit", str(script)]) == 0
    assert capsys.readouterr().out != ""
    for argv in (["-q", "edit", str(script)], ["edit", str(script), "-q"],
                 ["edit", "--quiet", str(script)]):
        assert main(argv) == 0
        assert capsys.readouterr().out == ""


def _on_a_terminal(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` with stderr a (fake) terminal, where bars are drawn: (status, stderr)."""
    import sys

    from tests.test_progress import TTY

    err, saved = TTY(), sys.stderr
    sys.stderr = err
    try:
        return main(argv), err.getvalue()
    finally:
        sys.stderr = saved


def test_an_error_starts_on_its_own_line_after_a_progress_bar(tmp_path, capsys):
    formats.save(nets.logistic_regression(), tmp_path / "lr.nsm")
    good = "".join(f"|features 0.5 {i / 40:.3f} |labels {i % 2}\n" for i in range(40))
    (tmp_path / "train.ctf").write_text(good + "|features 0.5 zz |labels 1\n")
    status, err = _on_a_terminal(["train", str(tmp_path / "lr.nsm"), str(tmp_path / "train.ctf"),
                                  "-o", str(tmp_path / "out.nsm"), "--minibatch", "5"])
    assert status == 1
    assert "epoch 1/1" in err  # the bar was drawn
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith("netsurgeon: error: ") and "'zz' is not a number" in last
    assert "\nnetsurgeon: error: " in err


def test_quiet_hides_the_progress_bar(tmp_path, capsys):
    formats.save(nets.logistic_regression(), tmp_path / "lr.nsm")
    good = "".join(f"|features 0.5 {i / 40:.3f} |labels {i % 2}\n" for i in range(40))
    (tmp_path / "train.ctf").write_text(good)
    argv = ["train", str(tmp_path / "lr.nsm"), str(tmp_path / "train.ctf"), "-o",
            str(tmp_path / "out.nsm")]
    assert "epoch 1/1" in _on_a_terminal(argv)[1]
    assert _on_a_terminal([*argv, "-q"]) == (0, "")


def test_dump_prints_a_node_once_whatever_matches_it(mc, capsys):
    assert main(["dump", mc, "--node", "z*", "--node", "z", "--node", "*"]) == 0
    out = capsys.readouterr().out
    for name in ("z", "z.PlusArgs[0]", "w", "b", "ce", "errs", "features", "labels"):
        assert sum(line.startswith(f"{name}=") for line in out.splitlines()) == 1, name


@pytest.mark.parametrize("pattern, suggestion", [
    ("zz", "z"), ("feature", "features"), ("zz.*", "z.*"), ("*.PlusArg[0]", "*.PlusArgs[0]")])
def test_dump_node_says_did_you_mean(mc, capsys, pattern, suggestion):
    assert main(["dump", mc, "--node", pattern]) == 1
    msg = one_error(capsys.readouterr().err)
    assert f"no node matches '{pattern}'" in msg and "did you mean: " in msg
    assert suggestion in msg.split("did you mean: ")[1]


def test_every_command_takes_the_common_options(capsys):
    from netsurgeon.cli import COMMANDS

    for name in COMMANDS:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = capsys.readouterr().out
        for flag in ("--debug", "--verbose", "--quiet"):
            assert flag in text, (name, flag)
