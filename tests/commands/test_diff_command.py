"""``netsurgeon diff``: the seed model before/after the seed MEL script, a training run, a
rename, removals, attribute and multiplier changes; exit status 0 equal, 1 different, 2 error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.commands.helpers import one_error

from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.graph.diff import diff_networks

ROOT = Path(__file__).resolve().parents[2]
L4 = {"L4.BFF.W", "L4.BFF.B", "L4.BFF.FF.T", "L4.BFF.FF.P", "L4.RL"}
MEAN_VARIANCE = {"meanVal", "invstdVal", "inputVal"}


def _diff(capsys, a, b, *extra) -> tuple[int, dict]:
    status = main(["diff", str(a), str(b), "--json", *extra])
    return status, json.loads(capsys.readouterr().out)


@pytest.fixture
def seed_pair(tmp_path, capsys) -> tuple[Path, Path]:
    """examples/seed.ndl built and edited with examples/seed.mel, as examples/demo.sh does."""
    seed, seed4 = tmp_path / "seed.dnn", tmp_path / "seed4.dnn"
    assert main(["build", str(ROOT / "examples" / "seed.ndl"), "-o", str(seed)]) == 0
    assert main(["edit", str(ROOT / "examples" / "seed.mel"), "--set", f"inModel={seed}",
                 "--set", f"dumpFile={tmp_path / 'seed.dump'}", "--set",
                 f"outModel={seed4}"]) == 0
    capsys.readouterr()
    return seed, seed4


def test_the_seed_mel_script(seed_pair, capsys):
    status, d = _diff(capsys, *seed_pair)
    assert status == 1 and not d["equal"]
    assert {r["name"] for r in d["added"]} == L4 | MEAN_VARIANCE
    assert sorted((r["node"], r["input"], r["from"], r["to"]) for r in d["rewired"]) == [
        ("CE.BFF.FF.T", 1, "L3.RL", "L4.RL"), ("L1.BFF.FF.T", 1, "features", "inputVal")]
    assert d["removed"] == d["renamed"] == d["changed"] == d["groups"] == d["values"] == []
    added = {r["name"]: r for r in d["added"]}
    assert added["L4.BFF.FF.T"]["inputs"] == ["L4.BFF.W", "L3.RL"]
    assert added["inputVal"]["inputs"] == ["features", "meanVal", "invstdVal"]
    assert added["L4.BFF.W"]["shape"] == [256, 256]
    # the text form: one line per difference
    assert main(["diff", str(seed_pair[0]), str(seed_pair[1])]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert sum(x.startswith("+ added ") for x in lines) == 8
    assert "> rewired CE.BFF.FF.T input 1: L3.RL -> L4.RL" in lines
    assert "> rewired L1.BFF.FF.T input 1: features -> inputVal" in lines
    assert lines[-1] == "8 added, 2 rewired"
    # the other way round: the same nodes removed, the same inputs rewired back
    status, back = _diff(capsys, seed_pair[1], seed_pair[0])
    assert status == 1 and {r["name"] for r in back["removed"]} == L4 | MEAN_VARIANCE
    assert {(r["node"], r["to"]) for r in back["rewired"]} == {("CE.BFF.FF.T", "L3.RL"),
                                                              ("L1.BFF.FF.T", "features")}


def test_equal_models_exit_0(cntk_dir, tmp_path, capsys):
    mc = cntk_dir / "models" / "MC.dnn"
    assert main(["convert", str(mc), str(tmp_path / "mc.nsm")]) == 0
    capsys.readouterr()
    status, d = _diff(capsys, mc, tmp_path / "mc.nsm", "--values")
    assert status == 0 and d["equal"]
    assert {r["node"]: r["max_abs_diff"] for r in d["values"]} == {"w": 0.0, "b": 0.0}
    assert main(["diff", str(mc), str(mc)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no differences"


def test_a_training_run_changes_values_only(cntk_dir, tmp_path, capsys):
    mc = cntk_dir / "models" / "MC.dnn"
    out = tmp_path / "trained.nsm"
    assert main(["train", str(mc), str(cntk_dir / "data" / "Train-3Classes_cntk_text.txt"),
                 "-o", str(out), "--no-progress", "--lr", "0.1", "--minibatch", "25"]) == 0
    capsys.readouterr()
    status, d = _diff(capsys, mc, out)
    assert status == 1
    assert d["added"] == d["removed"] == d["rewired"] == d["changed"] == []
    assert {r["node"] for r in d["values"]} == {"w", "b"}
    a, b = formats.load(mc), formats.load(out)
    for r in d["values"]:
        want = np.abs(a.node(r["node"]).value.astype(np.float64)
                      - b.node(r["node"]).value).max()
        assert r["changed"] and r["max_abs_diff"] == pytest.approx(want) and want > 0
    assert main(["diff", str(mc), str(out), "--values"]) == 1
    text = capsys.readouterr().out
    assert "* values w: max |difference| " in text and text.endswith("2 values changed\n")


def test_renames_are_matched_by_structure(cntk_dir, tmp_path, capsys):
    net = formats.load(cntk_dir / "models" / "cifar10.pretrained.cmf")
    net.rename("z.l2.W", "conv2.weights")
    net.rename("z.p2", "pool2")
    net.update("z.l3.b", learning_rate_multiplier=0.0)
    net.set_attrs("z.p3", auto_padding=(True,))
    net.remove_from_group("evaluation", "errs")
    formats.save(net, tmp_path / "edited.nsm")
    status, d = _diff(capsys, cntk_dir / "models" / "cifar10.pretrained.cmf",
                      tmp_path / "edited.nsm")
    assert status == 1
    assert sorted((r["from"], r["to"]) for r in d["renamed"]) == [
        ("z.l2.W", "conv2.weights"), ("z.p2", "pool2")]
    assert d["added"] == d["removed"] == d["rewired"] == []
    fields = {(r["node"], r["field"]) for r in d["changed"]}
    assert ("z.l3.b", "learning_rate_multiplier") in fields
    assert any(node == "z.p3" and f.startswith("attrs.auto_padding") for node, f in fields)
    assert d["groups"] == [{"group": "evaluation", "added": [], "removed": ["errs"]}]


def test_a_renamed_node_with_other_values_is_removed_and_added(cntk_dir):
    a = formats.load(cntk_dir / "models" / "MC.dnn")
    b = formats.load(cntk_dir / "models" / "MC.dnn")
    b.rename("w", "w2")
    b.update("w2", value=b.node("w2").value + 1)
    d = diff_networks(a, b)
    assert [r["name"] for r in d["removed"]] == ["w"]
    assert [r["name"] for r in d["added"]] == ["w2"]
    assert [(r["node"], r["from"], r["to"]) for r in d["rewired"]] == [
        ("z.PlusArgs[0]", "w", "w2")]


def test_errors_exit_2_with_one_line(cntk_dir, tmp_path, capsys):
    mc = cntk_dir / "models" / "MC.dnn"
    assert main(["diff", str(mc), str(tmp_path / "missing.nsm")]) == 2
    assert "missing.nsm" in one_error(capsys.readouterr().err)
    (tmp_path / "junk.dnn").write_bytes(b"not a model")
    assert main(["diff", str(tmp_path / "junk.dnn"), str(mc)]) == 2
    assert "junk.dnn" in one_error(capsys.readouterr().err)
