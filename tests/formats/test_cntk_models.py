"""The six real CNTK v1 models: load, validate, dump, and round-trip byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from netsurgeon.formats import cntk, detect_format, load, save
from netsurgeon.formats.dump import dump_text

MODELS = ["LR_reg.dnn", "MC.dnn", "01_OneHidden.dnn", "cifar10.pretrained.cmf",
          "cifar10.ResNet.cmf", "slu.forward.nobn.cmf"]
VERSIONS = {"LR_reg.dnn": 10, "MC.dnn": 10, "01_OneHidden.dnn": 10, "cifar10.pretrained.cmf": 14,
            "cifar10.ResNet.cmf": 10, "slu.forward.nobn.cmf": 14}
NODE_COUNTS = {"LR_reg.dnn": 9, "MC.dnn": 8, "01_OneHidden.dnn": 17, "cifar10.pretrained.cmf": 33,
               "cifar10.ResNet.cmf": 192, "slu.forward.nobn.cmf": 32}


@pytest.fixture(scope="module")
def models(cntk_dir: Path) -> Path:
    return cntk_dir / "models"


@pytest.mark.parametrize("name", MODELS)
def test_loads_with_file_facts(models: Path, name: str):
    path = models / name
    assert cntk.is_cntk_file(path.read_bytes()[:8])
    assert detect_format(path) == "cntk"
    net = cntk.read(path)
    facts = net.metadata["cntk"]
    assert facts["version"] == VERSIONS[name]
    assert len(net) == NODE_COUNTS[name]
    assert facts["node_order"] == [n.name for n in net.sorted_nodes()]  # CNTK's CI order
    # every payload field landed on a registry attribute; the only file fields are the read
    # alias spelling (ErrorPrediction) and v10 BatchNormalization's minibatch count
    fields = {k for n in net for k in n.file_fields}
    assert fields <= {"cntk_v1.op_name", "cntk_v1.minibatch_count"}, fields
    net.lint()  # attributes complete and canonical, file fields declared by their codec


@pytest.mark.parametrize("name", MODELS)
def test_round_trip_is_byte_identical(models: Path, name: str, tmp_path: Path):
    path = models / name
    net = cntk.read(path)
    out = tmp_path / name
    cntk.write(net, out)
    assert out.read_bytes() == path.read_bytes()
    # and through the generic save/load dispatch
    again = load(out)
    out2 = tmp_path / ("2" + name)
    save(again, out2, format="cntk")
    assert out2.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("name", MODELS)
def test_validates(models: Path, name: str):
    net = cntk.read(models / name)
    net.validate()
    for node in net.group("output"):
        assert node.shape is not None


@pytest.mark.parametrize("name", MODELS)
def test_dump_runs(models: Path, name: str):
    net = cntk.read(models / name)
    text = dump_text(net)
    headers = [line.split("=")[0] for line in text.split("\n")[1:] if "=" in line]
    assert headers == [n.name for n in net.sorted_nodes()]


def test_parameters_are_numpy_order_views(models: Path):
    path = models / "01_OneHidden.dnn"
    net = cntk.read(path)
    w = net.node("h1._.W")  # CNTK [200, 784] -> numpy (784, 200)
    assert w.shape == (784, 200) and w.value.shape == (784, 200)
    assert w.value.dtype == np.float32 and not w.value.flags.writeable
    assert w.value.base is not None  # a view of the mapped file, not a copy
    # element (r, c) of the CNTK column-major matrix is value[c, r]
    raw = path.read_bytes()
    import struct

    offset = raw.find("h1._.W".encode("utf-16-le") + b"\0\0")
    # name, f32 multiplier, shape (u32 2, 200, 784), 'd', BMAT, u64, "unnamed", i32, u64, u64
    data_at = offset + 14 + 4 + 12 + 1 + 10 + 8 + 16 + 4 + 16
    first = struct.unpack_from("<3f", raw, data_at)
    assert w.value[0, 0] == pytest.approx(first[0])
    assert w.value[0, 1] == pytest.approx(first[1])  # r=1, c=0: next in memory
    inputs = net.node("features")
    assert inputs.shape == (784,) and inputs.op == "InputValue"


def test_groups_and_legacy_names(models: Path):
    net = cntk.read(models / "MC.dnn")
    groups = {g: [n.name for n in ns] for g, ns in net.groups().items()}
    assert groups == {"feature": ["features", "labels"], "label": ["labels"], "criterion": ["ce"],
                      "evaluation": ["errs"], "output": ["z"]}
    errs = net.node("errs")
    assert errs.op == "ClassificationError"
    assert errs.file_fields == {"cntk_v1.op_name": "ErrorPrediction"}


def test_version_specific_payloads(models: Path):
    resnet = cntk.read(models / "cifar10.ResNet.cmf")  # v10
    bn = next(n for n in resnet if n.op == "BatchNormalization")
    assert bn.file_fields["cntk_v1.minibatch_count"] == 62560
    assert bn.attrs["running_inv_std_dev"] is True
    assert len(bn.inputs) == 5 and bn.inputs[4].name.endswith("runInvStdDev")
    tr = next(n for n in resnet if n.op == "TransposeDimensions")
    assert tr.attrs["axes"] == (-1, -3)
    times = next(n for n in resnet if n.op == "Times")
    assert times.attrs["infer_input_rank_to_map"] == -1  # absent before v12: registry default
    conv = cntk.read(models / "cifar10.pretrained.cmf")  # v14
    c = next(n for n in conv if n.op == "Convolution")
    assert c.attrs["kernel_shape"][-2:] == (5, 5) and c.attrs["image_layout"] == "CHW"
    pools = sorted({n.attrs["pool_kind"] for n in conv if n.op == "Pooling"})
    assert set(pools) <= {"max", "average"}
    slu = cntk.read(models / "slu.forward.nobn.cmf")
    sl = next(n for n in slu if n.op == "Slice")
    assert sl.attrs["axis"] == (-1,) and sl.attrs["end"][0] - sl.attrs["begin"][0] == 300
    pv = next(n for n in slu if n.op == "PastValue")
    assert pv.attrs["time_step"] == 1 and pv.shape in ((150,), (300,))


def _normalize_exponent(text: str) -> str:
    """CNTK's dumps were written on Windows, whose printf uses 3-digit exponents (e-005)."""
    return re.sub(r"e([+-])0(\d\d)\b", r"e\1\2", text)


@pytest.mark.parametrize("name", ["LR_reg.dnn", "MC.dnn", "01_OneHidden.dnn"])
def test_dump_with_data_reproduces_cntk(cntk_dir: Path, name: str):
    """Dump(includeData=true) gives CNTK's own dump line for line.

    The only difference is float formatting: the expected files come from Windows printf,
    which writes 3-digit exponents (``8.72182936e-005`` where C/Python write ``e-05``). That
    is normalized; every other character must match.
    """
    net = cntk.read(cntk_dir / "models" / name)
    got = dump_text(net, include_data=True)
    expected = (cntk_dir / "dumps" / f"{name}_Expected.txt").read_text()
    assert got.splitlines() == _normalize_exponent(expected).splitlines()
    if name != "01_OneHidden.dnn":
        assert got == expected  # no exponents in these: byte for byte


def test_cli_dump_and_convert(models: Path, tmp_path: Path, capsys):
    from netsurgeon.cli import main

    assert main(["dump", str(models / "LR_reg.dnn"), "--data", "-o", str(tmp_path / "d.txt")]) == 0
    assert (tmp_path / "d.txt").read_text().startswith(" \nb=LearnableParameter [1,1]")
    # cntk -> native -> cntk gives the original bytes back
    assert main(["convert", str(models / "slu.forward.nobn.cmf"), str(tmp_path / "m.nsm")]) == 0
    assert main(["convert", str(tmp_path / "m.nsm"), str(tmp_path / "m.bin"),
                 "--format", "cntk"]) == 0
    assert (tmp_path / "m.bin").read_bytes() == (models / "slu.forward.nobn.cmf").read_bytes()
    assert main(["convert", str(models / "MC.dnn"), str(tmp_path / "mc31.dnn"),
                 "--cntk-version", "31", "--validate"]) == 0
    assert cntk.read(tmp_path / "mc31.dnn").metadata["cntk"]["version"] == 31
    assert "wrote" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "d.txt"), str(tmp_path / "x.dnn")]) == 1
    assert "not a netsurgeon" in capsys.readouterr().err


def test_reading_and_writing_restore_the_collector(models: Path, tmp_path: Path):
    import gc

    from netsurgeon.formats.cntk import CntkFormatError

    path = models / "LR_reg.dnn"
    assert gc.isenabled()
    net = cntk.read(path)
    assert gc.isenabled()
    bad = tmp_path / "bad.dnn"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CntkFormatError):
        cntk.read(bad)
    assert gc.isenabled()
    gc.disable()
    try:
        cntk.write(net, tmp_path / "again.dnn")
        assert not gc.isenabled()  # left off when it was off
    finally:
        gc.enable()
