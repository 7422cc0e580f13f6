"""``netsurgeon build``: variables from --set and from a CNTK config file, macro files, and
one-line errors with file:line:col and a non-zero exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsurgeon.cli import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

pytest.importorskip("netsurgeon.formats")


def test_build_seed_then_validate_and_dump(tmp_path, capsys):
    out = tmp_path / "seed.nsm"
    assert main(["build", str(EXAMPLES / "seed.ndl"), "-o", str(out)]) == 0
    assert "24 nodes" in capsys.readouterr().out
    assert main(["validate", str(out)]) == 0
    assert "criterion: CE.SM" in capsys.readouterr().out
    assert main(["dump", str(out)]) == 0
    assert "L3.BFF.FF.T=Times ( L3.BFF.W , L2.RL )" in capsys.readouterr().out


NET = """# a network parameterised like real CNTK recipes
features = Input($FeatDim$, tag=feature)
labels = Input($LabelDim$, tag=label)
L1 = $Layer$(features, $HiddenDim$, $FeatDim$)
CE = SMBFF(L1, $LabelDim$, $HiddenDim$, labels, tag=criterion)
"""

CONFIG = """# a CNTK config file
FeatDim = 39
command = train
train = [
    action = train
    HiddenDim = 64      # nested variables count too
    NDLNetworkBuilder = [
        networkDescription = net.ndl
        Layer = "SBFF"
    ]
]
"""


def test_variables_from_set_and_config(tmp_path, capsys):
    (tmp_path / "net.ndl").write_text(NET)
    (tmp_path / "run.cntk").write_text(CONFIG)
    out = tmp_path / "m.nsm"
    code = main(["build", str(tmp_path / "net.ndl"), "-o", str(out), "--config",
                 str(tmp_path / "run.cntk"), "--set", "LabelDim=5", "--section", "train"])
    assert code == 0, capsys.readouterr().err
    from netsurgeon.formats import load

    net = load(out)
    assert net.get("L1.S").op == "Sigmoid"
    assert net.get("L1.BFF.W").shape == (39, 64)
    assert net.get("CE.F").shape == (5,)


def test_set_wins_over_config_and_macros_option(tmp_path, capsys):
    (tmp_path / "net.ndl").write_text(NET)
    (tmp_path / "run.cntk").write_text(CONFIG)
    (tmp_path / "mine.ndl").write_text(
        "MyLayer(x, r, c) = [ W = Parameter(r, c)\n T = Times(W, x) ]\n")
    out = tmp_path / "m.nsm"
    code = main(["build", str(tmp_path / "net.ndl"), "-o", str(out), "--config",
                 str(tmp_path / "run.cntk"), "--set", "LabelDim=5", "--set", "Layer=MyLayer",
                 "--set", "hiddendim=8", "--macros", str(tmp_path / "mine.ndl")])
    assert code == 0, capsys.readouterr().err
    from netsurgeon.formats import load

    net = load(out)
    assert net.get("L1.T").shape == (8,)


def test_errors_are_one_line_with_location_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.ndl"
    bad.write_text("x = Input(3, tag=feature)\n# comment\ny = Sigmoid(x\n")
    assert main(["build", str(bad), "-o", str(tmp_path / "o.nsm")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{bad}:3:12:" in err and "no closing )" in err
    assert not (tmp_path / "o.nsm").exists()


def test_missing_variable_and_missing_file(tmp_path, capsys):
    (tmp_path / "net.ndl").write_text(NET)
    assert main(["build", str(tmp_path / "net.ndl"), "-o", str(tmp_path / "o.nsm")]) == 1
    err = capsys.readouterr().err
    assert "net.ndl:2:18: No variable found with the name 'FeatDim'" in err
    assert main(["build", str(tmp_path / "nope.ndl"), "-o", str(tmp_path / "o.nsm")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_section_supplies_macro_files_and_run(tmp_path, capsys):
    (tmp_path / "net.ndl").write_text("run=a\na=[ x = Input(3, tag=feature) ]\n"
                                      "b=[ x = Input(3, tag=feature)\n y = Lay(x) ]\n")
    (tmp_path / "lay.ndl").write_text("Lay(x) = [ z = Tanh(x) ]\n")
    (tmp_path / "run.cntk").write_text(
        "train=[ NDLNetworkBuilder=[ networkDescription=$ConfigDir$/net.ndl\n"
        "  ndlMacros=$ConfigDir$/lay.ndl\n  run=b\n  randomSeedOffset=5 ] ]\n")
    out = tmp_path / "m.nsm"
    code = main(["build", str(tmp_path / "net.ndl"), "-o", str(out), "--config",
                 str(tmp_path / "run.cntk"), "--section", "train"])
    assert code == 0, capsys.readouterr().err
    from netsurgeon.formats import load

    assert load(out).get("y.z").op == "Tanh"
