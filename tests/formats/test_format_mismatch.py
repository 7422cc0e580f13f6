"""Issue 15 traps: a format given that does not fit the file says what the file is and which
format to give (``load(format=)``, ``--format``, MEL ``format=``), and a missing model file
raises an error that is both a FormatError and a FileNotFoundError."""

from __future__ import annotations

import shutil

import pytest
from tests.commands.helpers import one_error

import netsurgeon
from netsurgeon.cli import main
from netsurgeon.errors import FormatError


@pytest.fixture
def mc(cntk_dir, tmp_path):
    path = tmp_path / "MC.dnn"
    shutil.copyfile(cntk_dir / "models/MC.dnn", path)
    return path


def test_load_with_the_wrong_format_names_the_right_one(mc, tmp_path):
    with pytest.raises(FormatError) as err:
        netsurgeon.load(mc, format="native")
    assert "this is a CNTK v1 model file" in str(err.value)
    assert "use format=cntk" in str(err.value)
    netsurgeon.save(netsurgeon.load(mc), tmp_path / "m.nsm")
    with pytest.raises(FormatError, match="this is a netsurgeon .* use format=native"):
        netsurgeon.load(tmp_path / "m.nsm", format="cntk")


def test_cli_format_native_on_a_cntk_file(mc, capsys):
    assert main(["validate", str(mc), "--format", "native"]) == 1
    msg = one_error(capsys.readouterr().err)
    assert "this is a CNTK v1 model file" in msg and "--format cntk" in msg
    assert "header length" not in msg


def test_mel_format_native_on_a_cntk_file(mc, tmp_path, capsys):
    script = tmp_path / "s.mel"
    script.write_text(f'm = LoadModel("{mc}", format=native)\nSaveModel(m, "{tmp_path}/o.nsm")\n')
    assert main(["edit", str(script)]) == 1
    msg = one_error(capsys.readouterr().err)
    assert "this is a CNTK v1 model file; use format=cntk" in msg
    assert "s.mel:1" in msg


def test_a_missing_model_is_also_a_file_not_found_error(tmp_path, capsys):
    missing = tmp_path / "nope.dnn"
    with pytest.raises(FileNotFoundError) as err:
        netsurgeon.load(missing)
    assert isinstance(err.value, FormatError)
    assert str(err.value) == f"{missing}: cannot read the model file: not found"
    for fmt in ("cntk", "native", "onnx", "cntk-v2"):
        with pytest.raises(FileNotFoundError):
            netsurgeon.load(missing, format=fmt)
    from netsurgeon.formats import cntk
    from netsurgeon.formats.cntk import CntkFormatError

    with pytest.raises(CntkFormatError) as err:
        cntk.read(missing)
    assert isinstance(err.value, FileNotFoundError)
    assert str(err.value) == f"{missing}: cannot read the model file: not found"
    assert main(["validate", str(missing)]) == 1
    assert one_error(capsys.readouterr().err).endswith("not found")
