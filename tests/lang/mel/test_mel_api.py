"""The Python editing API (Editor) and the ``netsurgeon edit`` command."""

from __future__ import annotations

import numpy as np
import pytest
from mel_helpers import rbff_network

import netsurgeon.mel as mel
from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.errors import EditError, ValidationError


def test_editor_insert_layer_freeze_save(tmp_path):
    src = tmp_path / "in.nsm"
    formats.save(rbff_network(), src)
    ed = mel.Editor()
    net = ed.load(src, name="m")
    assert ed.default is net and ed.default_name == "m"
    assert [n.name for n in ed.select("*.W")] == ["CE.BFF.W", "L1.BFF.W", "L2.BFF.W", "L3.BFF.W"]
    made = ed.copy("L3.*", "L4.*")
    assert sorted(n.name for n in made) == ["L4.BFF.B", "L4.BFF.FF.P", "L4.BFF.FF.T", "L4.BFF.W",
                                            "L4.RL"]
    with pytest.raises(ValidationError, match="L4.BFF.FF.T"):
        ed.save(tmp_path / "bad.nsm")
    assert not (tmp_path / "bad.nsm").exists()
    ed.set_input("L4.*.T", 1, "L3.RL")
    ed.set_input("CE.*.T", 1, "L4.RL")
    frozen = ed.freeze("L1.*")
    assert sorted(n.name for n in frozen) == ["L1.BFF.B", "L1.BFF.W"]
    ed.rename("L4.*", "Extra.*")
    assert ed.save(tmp_path / "out.nsm") == "native"
    back = formats.load(tmp_path / "out.nsm")
    assert back.get("L1.BFF.W").learning_rate_multiplier == 0
    assert back.get("CE.BFF.FF.T").inputs[1].name == "Extra.RL"
    assert back.get("Extra.BFF.FF.T").inputs[1].name == "L3.RL"
    assert np.array_equal(back.get("Extra.BFF.W").value, back.get("L3.BFF.W").value)


def test_editor_models_and_errors():
    ed = mel.Editor()
    with pytest.raises(EditError, match="no default model"):
        ed.select("x")
    a = ed.add_model("a", rbff_network(layers=1))
    ed.create("b")
    assert ed.default_name == "b"
    ed.set_default("a")
    ed.create("c")
    assert ed.default is a  # SetDefaultModel sticks
    ed.copy("a.L1.*", "c.L1.*")
    assert sorted(n.name for n in ed.model("c").nodes)[0] == "L1.BFF.B"
    ed.unload("a")
    assert ed.default is None and sorted(ed.models) == ["b", "c"]
    with pytest.raises(EditError, match="Model 'zz' does not exist"):
        ed.model("zz")


def test_dump_text_from_api():
    ed = mel.Editor()
    ed.add_model("m", rbff_network(layers=1))
    text = ed.dump_nodes("L1.BFF.FF.*")
    assert "L1.BFF.FF.P=Plus ( L1.BFF.FF.T , L1.BFF.B )" in text
    assert "L1.BFF.FF.T=Times ( L1.BFF.W , features )" in text


def test_run_from_file_with_variables(tmp_path):
    formats.save(rbff_network(), tmp_path / "in.nsm")
    script = tmp_path / "edit.mel"
    script.write_text('m1 = LoadModel("$inModel$")\nRemove(L3.*)\nSetInput(CE.*.T, 1, L2.RL)\n'
                      'SaveModel(m1, "$OUTMODEL$")\n')
    result = mel.run(script, variables={"InModel": tmp_path / "in.nsm",
                                        "outModel": tmp_path / "o.nsm"})
    assert list(result) == ["m1"] and result.written == [str(tmp_path / "o.nsm")]
    assert formats.load(tmp_path / "o.nsm").get("L3.RL") is None


def test_cli_edit(tmp_path, capsys):
    formats.save(rbff_network(), tmp_path / "in.nsm")
    script = tmp_path / "edit.mel"
    script.write_text('m1 = LoadModel("$in$")\nCopy(L3.*, L4.*)\nSetInput(L4.*.T, 1, L3.RL)\n'
                      'SetInput(CE.*.T, 1, L4.RL)\nSaveModel(m1, "$out$")\n')
    args = ["edit", str(script), "--set", f"in={tmp_path / 'in.nsm'}",
            "--set", f"out={tmp_path / 'o.nsm'}"]
    assert main(args + ["--dry-run"]) == 0
    assert not (tmp_path / "o.nsm").exists()
    assert "dry run" in capsys.readouterr().out
    assert main(args) == 0
    assert formats.load(tmp_path / "o.nsm").get("L4.RL") is not None
    script.write_text('m1 = LoadModel("$in$")\nSetInput(L1.BFF.FF.T, 5, features)\n')
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{script}:2:1: input index 5 is out of range" in err
    assert main(["edit", str(script), "--set", "novalue"]) == 1


def test_netsurgeon_mel_is_one_module():
    import netsurgeon
    import netsurgeon.lang.mel

    assert mel is netsurgeon.lang.mel and netsurgeon.mel is mel
    assert mel.Editor is netsurgeon.lang.mel.api.Editor
