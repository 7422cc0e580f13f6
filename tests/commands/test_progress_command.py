"""Progress bars of the commands (issue 15, item 6): count/total of a real evaluation and of a
training run on a terminal; nothing on stderr off a terminal, with -q or with --json (whose
stdout stays valid JSON); an error raised while a bar is drawn starts on a line of its own."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from tests.test_progress import TTY, screen

from netsurgeon.cli import main
from netsurgeon.progress import _screen

_ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str]) -> tuple[int, str, str]:
    """``netsurgeon ARGV`` in-process with stderr a (fake) terminal: (status, stdout,
    stderr). (Set here, not in a fixture: pytest puts its own streams back after set-up.)"""
    out, err = io.StringIO(), TTY()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        status = main(argv)
    finally:
        sys.stdout, sys.stderr = saved
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _no_bar_left():
    yield
    assert not _screen.stack


@pytest.fixture
def slu(cntk_dir):
    return [str(cntk_dir / "models/slu.forward.nobn.cmf"), str(cntk_dir / "data/atis.test.ctf"),
            "--map", "query=S0", "--map", "slotLabels=S2"]


def test_eval_of_the_atis_slot_tagger_shows_count_and_total(slu):
    # the first 200 sequences of the ATIS test set: 2,782 words (CNTK: 82 slot errors)
    status, out, err = run(["eval", *slu, "--max-sequences", "200", "--minibatch", "500"])
    assert status == 0
    drawn = re.findall(r"eval \S* ?([\d,]+)/([\d,]+) samples (\d+)% .* ETA \S+", err)
    assert drawn, err
    assert {total for _, total, _ in drawn} == {"2,782"}
    assert screen(err) == [""]  # the bar's line is cleared at the end
    assert "2782 samples in 200 sequences" in out
    assert "errs (ClassificationError): sum = 82," in out


def test_eval_of_mc_on_its_test_set(cntk_dir):
    data = cntk_dir / "data/Test-3Classes_cntk_text.txt"
    status, out, err = run(["eval", str(cntk_dir / "models/MC.dnn"), str(data),
                            "--minibatch", "100"])
    assert status == 0
    assert re.search(r"[\d,]+/500 samples", err)
    assert "500 samples" in out


@pytest.mark.parametrize("flag", ["-q", "--quiet", "--json"])
def test_quiet_and_json_show_no_bar(cntk_dir, flag):
    data = cntk_dir / "data/Test-3Classes_cntk_text.txt"
    argv = ["eval", str(cntk_dir / "models/MC.dnn"), str(data), "--minibatch", "100", flag]
    status, out, err = run(argv)
    assert status == 0
    assert err == ""
    if flag == "--json":
        assert json.loads(out)["samples"] == 500


def test_no_bar_when_stderr_is_not_a_terminal(cntk_dir, capsys):
    data = cntk_dir / "data/Test-3Classes_cntk_text.txt"
    assert main(["eval", str(cntk_dir / "models/MC.dnn"), str(data), "--minibatch", "100"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "500 samples" in captured.out


def test_an_error_during_a_bar_starts_on_its_own_line(cntk_dir, tmp_path):
    lines = (cntk_dir / "data/Test-3Classes_cntk_text.txt").read_text().splitlines()
    lines[400] = "|features 1 abc |labels 0 1 0"
    bad = tmp_path / "bad.ctf"
    bad.write_text("\n".join(lines) + "\n")
    status, out, err = run(["eval", str(cntk_dir / "models/MC.dnn"), str(bad), "--minibatch", "50"])
    assert status == 1
    text = err
    assert "/500 samples" in text  # the bar was drawn before the bad line was read
    assert "\nnetsurgeon: error: " in text
    shown = screen(text)
    error = next(line for line in shown if "error:" in line)
    assert error.startswith("netsurgeon: error: ") and ":401: " in error
    assert re.search(r"eval .*/500 samples", shown[shown.index(error) - 1])  # kept above it


def test_train_bar_has_the_total_of_all_epochs_and_an_eta(cntk_dir, tmp_path):
    data = cntk_dir / "data/Train-3Classes_cntk_text.txt"  # 1,000 samples
    argv = ["train", str(cntk_dir / "models/MC.dnn"), str(data), "-o", str(tmp_path / "m.dnn"),
            "--epochs", "2", "--minibatch", "100"]
    status, out, err = run(argv)
    assert status == 0
    drawn = re.findall(r"epoch (\d)/2 \S* ?[\d,]+/2,000 samples \d+% .* ETA \S+ loss \d",
                       err)
    assert drawn and drawn[0] == "1", err
    assert screen(err) == [""]
    assert "epoch 2: 1000 samples" in out
    status, out, err = run([*argv, "--no-progress", "-o", str(tmp_path / "n.dnn")])
    assert status == 0
    assert err == ""


def test_convert_counts_the_bytes_written(cntk_dir, tmp_path):
    out = tmp_path / "cifar.nsm"
    status, out, err = run(["convert", str(cntk_dir / "models/cifar10.pretrained.cmf"), str(out)])
    assert status == 0
    assert re.search(r"write cifar\.nsm .*/\d+\.\d KiB \d+%", err) or \
        re.search(r"write cifar\.nsm .*/\d+\.\d MiB \d+%", err), err
    assert "wrote" in out


def test_build_counts_statements(tmp_path):
    out = tmp_path / "seed.nsm"
    status, out, err = run(["build", str(_ROOT / "examples/seed.ndl"), "-o", str(out)])
    assert status == 0
    assert re.search(r"build seed \S* ?\d+/\d+ statements", err), err
    assert re.search(r"write seed\.nsm ", err)
