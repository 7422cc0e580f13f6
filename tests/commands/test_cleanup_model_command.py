"""``netsurgeon cleanup MODEL -o OUT`` (drop nodes no output, criterion or evaluation node
needs) beside the temporary-file clean-up of directories, and MEL ``Remove``'s warning about
the nodes it orphans."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.commands.helpers import one_error

from netsurgeon import formats
from netsurgeon.cli import main


@pytest.fixture
def mc_with_old_head(cntk_dir, tmp_path):
    """MC.dnn with a new head: z2 replaces z everywhere, the old weights stay behind."""
    net = formats.load(cntk_dir / "models" / "MC.dnn")
    w2 = net.add_parameter("w2", np.ones((2, 3), np.float32))
    t2 = net.add("t2", "Times", inputs=(w2, "features"))
    z2 = net.add("z2", "Plus", inputs=(t2, "b"))
    for user in ("ce", "errs"):
        net.set_input(user, 1, z2)
    net.remove_from_group("output", "z")
    net.add_to_group("output", z2)
    net.validate()
    path = tmp_path / "edited.nsm"
    formats.save(net, path)
    return path


def test_drops_the_old_head(mc_with_old_head, tmp_path, capsys):
    out = tmp_path / "clean.dnn"
    assert main(["cleanup", str(mc_with_old_head), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dropped 3 unneeded nodes: w, z, z.PlusArgs[0]" in text
    clean = formats.load(out)
    assert sorted(n.name for n in clean) == ["b", "ce", "errs", "features", "labels", "t2",
                                             "w2", "z2"]
    clean.validate()
    # nothing left to drop: a second clean-up changes nothing, and diff agrees
    assert main(["cleanup", str(out), "-o", str(tmp_path / "again.nsm"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == []
    assert main(["diff", str(out), str(tmp_path / "again.nsm")]) == 0


def test_dry_run_and_keep(mc_with_old_head, tmp_path, capsys):
    assert main(["cleanup", str(mc_with_old_head), "-n", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == ["w", "z", "z.PlusArgs[0]"]
    assert main(["cleanup", str(mc_with_old_head), "-o", str(tmp_path / "k.nsm"), "--keep",
                 "z.PlusArgs[0]", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == ["z"]
    assert "w" in formats.load(tmp_path / "k.nsm")


def test_real_model_keeps_everything(cntk_dir, tmp_path, capsys):
    out = tmp_path / "c.nsm"
    assert main(["cleanup", str(cntk_dir / "models" / "cifar10.pretrained.cmf"), "-o",
                 str(out)]) == 0
    assert "dropped 0 unneeded nodes" in capsys.readouterr().out
    assert len(formats.load(out)) == 33


def test_model_errors_are_one_line(mc_with_old_head, tmp_path, capsys):
    assert main(["cleanup", str(mc_with_old_head)]) == 1
    assert "give -o OUT" in one_error(capsys.readouterr().err)
    assert main(["cleanup", str(mc_with_old_head), str(tmp_path), "-o", "x.nsm"]) == 1
    assert "takes one model file" in one_error(capsys.readouterr().err)
    assert main(["cleanup", str(tmp_path), "--json"]) == 1
    assert "apply to a model" in one_error(capsys.readouterr().err)
    assert main(["cleanup", str(tmp_path / "nope.nsm"), "-o", str(tmp_path / "o.nsm")]) == 1
    assert "nope.nsm" in one_error(capsys.readouterr().err)
    net = formats.load(mc_with_old_head)
    for g in ("output", "criterion", "evaluation"):
        for n in net.group(g):
            net.remove_from_group(g, n)
    formats.save(net, tmp_path / "nogroups.nsm")
    assert main(["cleanup", str(tmp_path / "nogroups.nsm"), "-o", str(tmp_path / "o.nsm")]) == 1
    assert "no output, criterion or evaluation node" in one_error(capsys.readouterr().err)
    assert not (tmp_path / "o.nsm").exists()


def test_directories_still_get_the_temporary_file_cleanup(tmp_path, capsys):
    assert main(["cleanup", str(tmp_path), "-n"]) == 0
    assert "would remove 0 stale temporary files" in capsys.readouterr().out


def test_mel_remove_warns_about_orphans(cntk_dir, tmp_path, capsys):
    script = tmp_path / "rm.mel"
    script.write_text(
        f'm = LoadModel("{cntk_dir / "models" / "cifar10.pretrained.cmf"}", format=cntk)\n'
        "Remove(errs, ce)\n"
        f'SaveModel(m, "{tmp_path / "noce.nsm"}", format=native)\n')
    assert main(["edit", str(script)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["WARNING: Remove left 1 node of model m that no output, criterion or "
                   "evaluation node needs: labels (netsurgeon cleanup MODEL -o OUT drops them)"]
    assert main(["cleanup", str(tmp_path / "noce.nsm"), "-o", str(tmp_path / "c.nsm")]) == 0
    assert "dropped 1 unneeded node: labels" in capsys.readouterr().out
    # removing what only feeds a removed node warns about it, nothing else does
    script.write_text(
        f'm = LoadModel("{cntk_dir / "models" / "cifar10.pretrained.cmf"}", format=cntk)\n'
        "Remove(errs)\n"
        f'SaveModel(m, "{tmp_path / "noerrs.nsm"}", format=native)\n')
    assert main(["edit", str(script)]) == 0
    assert capsys.readouterr().err == ""
