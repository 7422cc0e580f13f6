"""Writing CNTK v1 files: new networks at the default version, other versions, the §9 checklist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from netsurgeon.errors import FormatError
from netsurgeon.formats import cntk
from netsurgeon.formats.cntk import DEFAULT_VERSION, CntkFormatError, encode, read_buffer
from netsurgeon.graph import GROUPS, Network
from netsurgeon.ops import OPS

BN_FREE = ["LR_reg.dnn", "MC.dnn", "01_OneHidden.dnn", "cifar10.pretrained.cmf",
           "slu.forward.nobn.cmf"]


def same_network(a: Network, b: Network, *, compare_attrs: bool = True) -> None:
    """Identical nodes (name, op, inputs, shape, dtype, multiplier, value, attrs) and groups."""
    assert sorted(n.name for n in a) == sorted(n.name for n in b)
    for na in a:
        nb = b.node(na.name)
        assert nb.op == na.op, na.name
        assert [i.name for i in nb.inputs] == [i.name for i in na.inputs], na.name
        assert nb.shape == na.shape, (na.name, na.shape, nb.shape)
        assert nb.dtype == na.dtype, na.name
        if na.op == "LearnableParameter":
            assert nb.learning_rate_multiplier == na.learning_rate_multiplier, na.name
            assert nb.value.dtype == na.value.dtype
            np.testing.assert_array_equal(nb.value, na.value, err_msg=na.name)
        if compare_attrs:
            spec = OPS.op(na.op)
            for key in spec.attrs:
                if key in ("init",):
                    continue
                va, vb = na.attrs.get(key, spec.attrs[key].default), nb.attrs.get(key)
                assert _norm(va) == _norm(vb), (na.name, key, va, vb)
    for g in GROUPS:
        assert [n.name for n in b.group(g)] == [n.name for n in a.group(g)], g


def _norm(v):
    if isinstance(v, (list, tuple)):
        return tuple(_norm(x) for x in v)
    if isinstance(v, float):
        return float(np.float32(v)) if v == v else "nan"
    return v


def rt(net: Network, version: int | None = None) -> Network:
    return read_buffer(encode(net, version).getvalue(), "<memory>")


def built() -> Network:
    """A network touching most payload kinds, built through the Network API."""
    rng = np.random.default_rng(0)
    n = Network("built")
    n.add("x", "InputValue", shape=(3, 8, 8))
    n.add("labels", "InputValue", shape=(10,))
    n.add("seq", "InputValue", shape=(6,))
    n.add_parameter("W", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    n.add("conv", "Convolution", inputs=("W", "x"), attrs={
        "kernel_shape": (3, 3, 3), "map_count": (4,), "strides": (3, 1, 1),
        "sharing": (True, True, True), "auto_padding": (False, True, True),
        "lower_pad": (0, 0, 0), "upper_pad": (0, 0, 0)})
    n.add("relu", "RectifiedLinear", inputs=("conv",))
    n.add("pool", "Pooling", inputs=("relu",), attrs={
        "kernel_shape": (1, 2, 2), "strides": (1, 2, 2), "pool_kind": "max",
        "auto_padding": (False, False, False), "lower_pad": (0,), "upper_pad": (0,)})
    for p in ("scale", "bias", "mean", "var"):
        n.add_parameter(f"bn.{p}", rng.random((4, 1, 1)).astype(np.float32) + 0.5,
                        learning_rate_multiplier=0.0 if p in ("mean", "var") else 1.0)
    n.add_parameter("bn.count", np.array([123.0], np.float32), learning_rate_multiplier=0.0)
    n.add("bn", "BatchNormalization",
          inputs=("pool", "bn.scale", "bn.bias", "bn.mean", "bn.var", "bn.count"),
          attrs={"spatial": True, "normalization_time_constant": 4096.0, "epsilon": 1e-3,
                 "running_sample_count": 123})
    n.add_parameter("V", rng.standard_normal((64, 10)).astype(np.float32))
    n.add("z", "Times", inputs=("V", "bn"), attrs={"output_rank": 1})
    n.add("ce", "CrossEntropyWithSoftmax", inputs=("labels", "z"))
    n.add("err", "ClassificationError", inputs=("labels", "z"))
    n.add("prev", "PastValue", inputs=("seq",), shape=(6,), attrs={"time_step": 2,
                                                                  "initial_state": 0.25})
    n.add("sl", "Slice", inputs=("prev",), attrs={"begin": (1,), "end": (4,), "axis": (-1,)})
    n.add("tr", "TransposeDimensions", inputs=("x",), attrs={"axes": (-1, -3)})
    n.add("perm", "TransposeDimensions", inputs=("x",), attrs={"permutation": (2, 0, 1)})
    n.add("stack", "RowStack", inputs=("sl", "sl"), attrs={"axis": -1})
    n.add("red", "ReduceElements", inputs=("x",), attrs={"axes": (-1, -2), "operation": "Max"})
    n.add("drop", "Dropout", inputs=("stack",), attrs={"rng_seed": 7, "rng_offset": 3})
    n.add("tanh", "Tanh", inputs=("drop",))
    n.add_to_group("feature", "x")
    n.add_to_group("feature", "labels")
    n.add_to_group("label", "labels")
    n.add_to_group("criterion", "ce")
    n.add_to_group("evaluation", "err")
    n.add_to_group("output", "z")
    return n


def test_default_version_round_trip(tmp_path: Path):
    net = built()
    path = tmp_path / "built.dnn"
    cntk.write(net, path)
    back = cntk.read(path)
    assert back.metadata["cntk"]["version"] == DEFAULT_VERSION
    assert back.metadata["cntk"]["node_order"] == [n.name for n in net.sorted_nodes()]
    same_network(net, back)
    # writing the read-back network again reproduces the file
    again = tmp_path / "again.dnn"
    cntk.write(back, again)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("version", [14, 18, 20, 25, 27, 31])
def test_versions_round_trip(version: int):
    net = built()
    if version < 25:
        net.remove("perm")  # a permutation needs v25
    if version < 27:
        net.set_attrs("red", axes=(-1,))  # several axes need v27
    if version < 16:
        net.set_attrs("drop", rng_seed=0, rng_offset=0)  # no RNG state before v16
    back = rt(net, version)
    assert back.metadata["cntk"]["version"] == version
    if version < 19:
        # the run count travels in the payload; the 6th input is not stored before v19
        assert [i.name for i in back.node("bn").inputs][-1] == "bn.var"
        assert back.node("bn").attrs["running_sample_count"] == 123
        net.set_inputs("bn", list(net.node("bn").inputs[:5]))
    same_network(net, back)


@pytest.mark.parametrize("name", BN_FREE)
@pytest.mark.parametrize("version", [10, 14, 18, 31])
def test_real_models_through_other_versions(cntk_dir: Path, name: str, version: int):
    """Real v10/v14 models written at another version and back give the original bytes."""
    path = cntk_dir / "models" / name
    net = cntk.read(path)
    original = net.metadata["cntk"]["version"]
    other = rt(net, version)
    if version < 12 <= original:
        # inferInputRankToMap does not exist before v12: the v10 file has the default
        for n in other:
            if n.op == "Times":
                assert n.attrs["infer_input_rank_to_map"] == -1
                other.set_attrs(n, infer_input_rank_to_map=net.node(n.name).attrs[
                    "infer_input_rank_to_map"])
    same_network(net, other)
    assert encode(other, original).getvalue() == path.read_bytes()


def test_resnet_batchnorm_versions(cntk_dir: Path):
    """v10 stores inverse std dev; v14 stores variance = 1/isd^2 + eps (CNTK's conversion)."""
    net = cntk.read(cntk_dir / "models" / "cifar10.ResNet.cmf")
    bn = next(n for n in net if n.op == "BatchNormalization")
    isd = np.asarray(bn.inputs[4].value, np.float64)
    v14 = rt(net, 14)
    bn14 = v14.node(bn.name)
    assert bn14.attrs["running_inv_std_dev"] is False
    assert bn14.attrs["running_sample_count"] == 16 * 62560
    np.testing.assert_allclose(bn14.inputs[4].value, 1 / isd ** 2 + bn.attrs["epsilon"], rtol=1e-6)
    back = rt(v14, 10)
    np.testing.assert_allclose(back.node(bn.inputs[4].name).value, isd, rtol=1e-5)
    assert back.node(bn.name).file_fields["cntk_v1.minibatch_count"] == 62560


def test_checklist_unconnected_input(tmp_path: Path):
    net = built()
    net.set_input("tanh", 0, None)
    path = tmp_path / "m.dnn"
    path.write_bytes(b"keep me")
    with pytest.raises(CntkFormatError, match="input 0 of Tanh node 'tanh' is not connected"):
        cntk.write(net, path)
    assert path.read_bytes() == b"keep me"  # the target is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m.dnn"]  # no temp file left


def test_checklist_input_shapes():
    net = Network()
    net.add("s", "InputValue", shape=())
    net.add_to_group("output", "s")
    back = rt(net)
    assert back.node("s").shape == (1,)  # a scalar input is stored as [1]
    net = Network()
    net.add("bad", "InputValue", shape=(5, 0))
    with pytest.raises(CntkFormatError, match="first \\(CNTK\\) dimension of 0"):
        encode(net)


def test_checklist_never_an_empty_list():
    net = built()
    net.set_attrs("conv", sharing=(), auto_padding=())
    back = rt(net)
    assert back.node("conv").attrs["sharing"] == (True, True, True)
    net.add("ed", "EditDistanceError", inputs=("labels", "labels"))
    with pytest.raises(CntkFormatError, match="empty list"):
        encode(net)


def test_checklist_version_gates():
    net = built()
    with pytest.raises(CntkFormatError, match="version >= 25"):
        encode(net, 18)
    net = Network()
    net.add("x", "InputValue", shape=(2,))
    net.add("c", "Cast", inputs=("x",), attrs={"precision": "float64"})
    with pytest.raises(CntkFormatError, match="version 31"):
        encode(net, 27)
    with pytest.raises(CntkFormatError, match="not writable"):
        encode(net, 32)


def test_cast_precision_pair():
    net = Network()
    net.add("x", "InputValue", shape=(2,))
    net.add("c", "Cast", inputs=("x",), attrs={"precision": "double"}, dtype="float64")
    back = rt(net, 31)
    assert back.node("c").file_fields["cntk_v1.precision"] == "double,float"
    assert back.node("c").attrs["precision"] == "double"
    assert back.node("c").dtype == "float64"


def test_names_outside_the_bmp():
    net = Network()
    net.add("x\U0001F600", "InputValue", shape=(2,))
    with pytest.raises(CntkFormatError, match="outside the BMP"):
        encode(net)


def test_overwrite_the_mapped_source(cntk_dir: Path, tmp_path: Path):
    """Saving over the very file a network was mapped from works (atomic replace)."""
    path = tmp_path / "MC.dnn"
    path.write_bytes((cntk_dir / "models" / "MC.dnn").read_bytes())
    net = cntk.read(path)
    net.rename("z", "zz")
    cntk.write(net, path)
    back = cntk.read(path)
    assert back.get("zz") is not None and back.get("z") is None
    np.testing.assert_array_equal(back.node("W").value, net.node("W").value)
    assert [n.name for n in back.group("output")] == ["zz"]


def test_edited_network_uses_cntk_order(cntk_dir: Path):
    net = cntk.read(cntk_dir / "models" / "LR_reg.dnn")
    net.add_parameter("A_new", np.ones((1,), np.float32))
    back = rt(net)
    assert back.metadata["cntk"]["version"] == 10
    assert back.metadata["cntk"]["node_order"] == [n.name for n in net.sorted_nodes()]
    assert back.metadata["cntk"]["node_order"][0] == "A_new"


@pytest.mark.parametrize("version", range(1, 32))
def test_every_version_is_stable(version: int):
    """Every model version 1..31: what is written reads back and rewrites to the same bytes.

    This walks every version gate of every payload in the test network (legacy shapes,
    LearnableParameter before v3, delays before v4, the 2-D convolution before v5,
    BatchNormalization's three layouts, precision tags from v7, ...).
    """
    net = built()
    if version < 25:
        net.remove("perm")
    if version < 27:
        net.set_attrs("red", axes=(-1,))
    first = encode(net, version).getvalue()
    back = read_buffer(first, "<memory>")
    assert back.metadata["cntk"]["version"] == version
    assert sorted(n.name for n in back) == sorted(n.name for n in net)
    for node in net:
        stored = [i.name for i in node.inputs]
        if node.op == "BatchNormalization" and version < 19:
            stored = stored[:5]
        assert [i.name for i in back.node(node.name).inputs] == stored, node.name
    assert back.node("W").dtype == "float32"
    assert encode(back).getvalue() == first


def test_version_1_file_has_no_version_section():
    net = built()
    net.remove("perm")
    net.set_attrs("red", axes=(-1,))
    data = encode(net, 1).getvalue()
    # drop BVersion..EVersion: a genuine version-1 file
    start = data.find("BVersion".encode("utf-16-le"))
    end = data.find("EVersion".encode("utf-16-le")) + len("EVersion".encode("utf-16-le")) + 2
    legacy = data[:start] + data[end:]
    back = read_buffer(legacy, "<memory>")
    assert back.metadata["cntk"]["version"] == 1 and back.metadata["cntk"]["versioned"] is False
    assert encode(back).getvalue() == legacy


def test_precompute_nodes_round_trip():
    net = Network()
    net.add("x", "InputValue", shape=(2, 3))
    net.add("m", "Mean", inputs=("x",))
    net.add("s", "InvStdDev", inputs=("x",), value=np.arange(6, dtype=np.float32).reshape(2, 3),
            attrs={"has_computed": True})
    net.add("n", "PerDimMeanVarNormalization", inputs=("x", "m", "s"))
    net.validate()
    back = rt(net)
    back.validate()
    assert back.node("m").value is None and back.node("m").attrs["has_computed"] is False
    np.testing.assert_array_equal(back.node("s").value.reshape(2, 3), net.node("s").value)
    assert back.node("s").attrs["has_computed"] is True
    assert encode(back).getvalue() == encode(net).getvalue()


def test_unwritable_target(tmp_path: Path):
    with pytest.raises(FormatError, match="cannot write .*does not exist"):
        cntk.write(built(), tmp_path / "no" / "such" / "dir.dnn")


def test_batchnorm_gets_its_run_count_input_from_v19(cntk_dir: Path):
    """From v19 CNTK reads the run count from a 6th input and no longer adds one itself (CNTK
    2.7 refuses a v19+ file with 5): the writer stores the parameter CNTK's loader adds to a
    pre-v19 node, ``<node>.run_sample_count`` of shape (1,), multiplier 0, value 0."""
    net = cntk.read(cntk_dir / "models" / "cifar10.ResNet.cmf")  # v10: 5 inputs each
    bns = [n.name for n in net if n.op == "BatchNormalization"]
    assert rt(net, 18).node(bns[0]).inputs[4].name == net.node(bns[0]).inputs[4].name
    for version in (19, 31):
        back = rt(net, version)
        assert len(back) == len(net) + len(bns)
        for name in bns:
            count = back.node(name).inputs[5]
            assert count.name == name + ".run_sample_count" and count.op == "LearnableParameter"
            assert count.learning_rate_multiplier == 0.0 and count.shape == (1,)
            assert count.value.tolist() == [0.0]  # what CNTK 2.7 holds after loading v10
        back.lint()
        assert encode(back).getvalue() == encode(back, version).getvalue()
        assert len(rt(back, 31)) == len(back)  # 6 inputs now: nothing more is added


def test_batchnorm_run_count_payload_agrees_with_its_new_input(cntk_dir: Path):
    """The node's own count field is CNTK's copy of the 6th input's value: 0 (v31) or
    runCountIsZero (v19) for the added parameter, not the 16 x minibatchCount estimate,
    which stays where no 6th input is stored (v13..v18)."""
    net = cntk.read(cntk_dir / "models" / "cifar10.ResNet.cmf")
    bn = next(n.name for n in net if n.op == "BatchNormalization")
    assert rt(net, 31).node(bn).attrs["running_sample_count"] == 0
    assert rt(net, 19).node(bn).file_fields["cntk_v1.run_count_is_zero"] is True
    assert rt(net, 18).node(bn).attrs["running_sample_count"] == 16 * 62560


def test_batchnorm_run_count_name_does_not_clash(cntk_dir: Path):
    """A node already called ``<bn>.run_sample_count`` keeps its name; the added parameter
    gets a fresh one."""
    net = cntk.read(cntk_dir / "models" / "cifar10.ResNet.cmf")
    bn = next(n.name for n in net if n.op == "BatchNormalization")
    net.add_parameter(bn + ".run_sample_count", np.ones((2,), np.float32))
    back = rt(net, 31)
    assert back.node(bn).inputs[5].name == bn + ".run_sample_count2"
    assert back.node(bn + ".run_sample_count").shape == (2,)


def test_batchnorm_with_six_inputs_round_trips_at_v31(cntk_dir: Path):
    """A v31 file whose BatchNormalization already has 6 inputs is written back unchanged."""
    net = cntk.read(cntk_dir / "models" / "cifar10.ResNet.cmf")
    data = encode(net, 31).getvalue()
    back = read_buffer(data, "<memory>")
    assert encode(back).getvalue() == data


def test_mean_inv_std_dev_flag_follows_computed_values():
    """Statistics computed after reading (netsurgeon train's precompute pass) are written with
    hasComputed true: CNTK 2.7 refuses a file whose Mean/InvStdDev says not precomputed."""
    from netsurgeon.runtime.batch import Minibatch
    from netsurgeon.runtime.train import precompute

    net = Network()
    net.add("x", "InputValue", shape=(3,))
    net.add("m", "Mean", inputs=("x",))
    net.add("s", "InvStdDev", inputs=("x",))
    net.add("n", "PerDimMeanVarNormalization", inputs=("x", "m", "s"))
    net.validate()
    stored = rt(net)
    assert stored.node("m").attrs["has_computed"] is False
    data = np.arange(12, dtype=np.float32).reshape(4, 1, 3)
    assert precompute(stored, lambda: [Minibatch({"x": data}, np.ones(4, np.int64))])
    back = rt(stored)
    for name in ("m", "s"):
        assert back.node(name).attrs["has_computed"] is True, name
        np.testing.assert_array_equal(back.node(name).value, stored.node(name).value)
