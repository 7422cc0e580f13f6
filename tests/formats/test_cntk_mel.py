"""NDL-built network, edited with the seed MEL example, written as a CNTK file and read back."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from netsurgeon.formats import cntk

ndl = pytest.importorskip("netsurgeon.lang.ndl")
mel = pytest.importorskip("netsurgeon.lang.mel")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SEED_DOC = ROOT.parent / "shared" / "spec" / "seeds" / "ModelEditingLanguage.md"


def seed_network():
    table = ndl.MacroTable.standard()  # holds RBFF and SMBFF
    extra = EXAMPLES / "seed_macros.ndl"
    if extra.exists():
        table.load_file(str(extra))
    path = EXAMPLES / "seed.ndl"
    return ndl.build_network(path.read_text(), source=str(path), macros=table)


def seed_script(src: Path, dump: Path, out: Path) -> str:
    block = re.findall(r"```\n(.*?)```", SEED_DOC.read_text(encoding="utf-8"), re.S)[0]
    return (block.replace(r"c:\models\mymodel.dnn", str(src))
            .replace(r"c:\temp\originalModel.dmp", str(dump))
            .replace(r"c:\models\mymodel4HiddenWithMeanVarNorm.dnn", str(out)))


def assert_identical(a, b) -> None:
    """Same nodes (op, inputs, shape, dtype, multiplier, value, attrs) and the same groups."""
    assert sorted(n.name for n in a) == sorted(n.name for n in b)
    for na in a:
        nb = b.node(na.name)
        assert (nb.op, [i.name for i in nb.inputs]) == (na.op, [i.name for i in na.inputs]), na.name
        assert nb.shape == na.shape and nb.dtype == na.dtype, na.name
        if na.op == "LearnableParameter":
            assert nb.learning_rate_multiplier == na.learning_rate_multiplier, na.name
        if na.value is None:
            assert nb.value is None, na.name  # e.g. Mean/InvStdDev not computed yet
        else:
            np.testing.assert_array_equal(nb.value, na.value, err_msg=na.name)
        for key, value in na.attrs.items():
            if key != "init":
                assert nb.attrs.get(key) == value, (na.name, key)
    for group, members in a.groups().items():
        assert [n.name for n in b.group(group)] == [n.name for n in members], group


def test_ndl_mel_cntk_round_trip(tmp_path: Path):
    net = seed_network()
    net.validate()
    src = tmp_path / "mymodel.dnn"
    cntk.write(net, src)
    first = cntk.read(src)
    first.validate()
    assert_identical(net, first)  # NDL network -> CNTK file -> identical

    out = tmp_path / "out.dnn"
    result = mel.run(seed_script(src, tmp_path / "orig.dmp", out))
    edited = result["model1"]
    edited.validate()
    back = cntk.read(out)  # MEL's SaveModel wrote it (format=cntk from the extension)
    back.validate()
    assert back.metadata["cntk"]["version"] == cntk.DEFAULT_VERSION
    assert {"L4.BFF.W", "meanVal", "invstdVal", "inputVal"} <= {n.name for n in back}
    assert_identical(edited, back)
    assert back.node("meanVal").attrs["has_computed"] is False

    # and the edited network written again by this writer is byte-identical to MEL's save
    again = tmp_path / "again.dnn"
    cntk.write(back, again)
    assert again.read_bytes() == out.read_bytes()
