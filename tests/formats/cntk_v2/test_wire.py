"""The CNTK v2 protobuf codec (formats/cntk_v2/wire.py) on the files real CNTK 2.7 wrote.

Every file decodes and re-encodes byte for byte; values and types are the ones the spec's
worked decodes list; the large-file variant round-trips; big float payloads are views of
the input and reading them that way gives exactly what protobuf's own parse gives;
malformed input (truncated, flipped, crafted) is a one-line WireError (a FormatError) with
the file, a byte offset and the value's path, found fast and with little memory.
"""

from __future__ import annotations

import random
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from netsurgeon.errors import FormatError
from netsurgeon.formats.cntk_v2 import wire
from netsurgeon.formats.cntk_v2.wire import (
    Axis,
    Float,
    Int,
    Model,
    Shape,
    SizeT,
    Tensor,
    WireError,
    decode,
    encode,
    encode_parts,
    looks_v2,
)

NAMES = ("LR_reg", "MC", "01_OneHidden", "cifar10.pretrained", "cifar10.ResNet",
         "slu.forward.nobn", "blocks/mlp_dense", "blocks/conv_bn_pool", "blocks/lstm_tagger",
         "blocks/nested_seq", "blocks/avgpool")


@pytest.fixture(scope="module")
def files(cntk_dir: Path) -> dict[str, bytes]:
    found = {n: (cntk_dir / "v2" / f"{n}.model").read_bytes() for n in NAMES}
    listed = {p.relative_to(cntk_dir / "v2").with_suffix("").as_posix()
              for p in (cntk_dir / "v2").rglob("*.model")}
    assert listed == set(NAMES), "a v2 file was added or removed: update NAMES"
    return found


@pytest.fixture(scope="module")
def models(files: dict[str, bytes]) -> dict[str, Model]:
    return {n: decode(d, where=n) for n, d in files.items()}


def _backed_by(array: np.ndarray, data: object) -> bool:
    """Whether ``array`` is a view of the buffer ``data`` (no copy)."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return base is data or (isinstance(base, memoryview) and base.obj is data)


def _tensors(value: object) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [t for v in value for t in _tensors(v)]
    return []


def _variables(model: Model) -> dict[str, dict]:
    return {v["uid"]: v for v in model.top["inputs"]}


def _functions(model: Model) -> dict[str, dict]:
    return {f["uid"]: f for f in model.top["primitive_functions"]}


# ---- the real files ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_decodes_and_reencodes_byte_identical(files, models, name):
    data, model = files[name], models[name]
    assert model.version == 2 and not model.large
    assert model.top["type"] == "CompositeFunction"
    assert isinstance(model.top["version"], SizeT)
    assert encode(model) == data
    assert encode(model.top) == data  # a plain dict: version 2, plain file
    assert b"".join(encode_parts(model)) == data


def test_lr_reg_values_from_the_spec(models):
    m = models["LR_reg"]
    assert m.top["root"] == "Combine27" and m.top["version"] == SizeT(3)
    assert "state" not in m.top
    variables = _variables(m)
    assert list(variables) == ["Input1", "Parameter10", "Parameter5", "Input6",
                               "Sigmoid14_Output_0"]
    w = variables["Parameter5"]
    assert w["name"] == "w" and w["kind"] == SizeT(2) and w["needs_gradient"] is True
    assert w["shape"] == Shape([1, 2]) and isinstance(w["shape"], Shape)
    t = w["value"]
    assert t.data_type == Tensor.FLOAT and t.shape == Shape([1, 2])
    assert t.array.dtype == np.float32 and t.array.shape == (2, 1)  # numpy order
    np.testing.assert_allclose(t.array.ravel(), [2.40208, 2.66413], atol=1e-5)
    np.testing.assert_allclose(variables["Parameter10"]["value"].array, [[-12.3976]],
                               atol=1e-4)
    p = variables["Sigmoid14_Output_0"]
    assert p["kind"] == SizeT(4) and type(p["kind"]) is SizeT and p["name"] == "p"
    assert variables["Input1"]["dynamic_axis"] == [
        Axis(Axis.DYNAMIC, "", True), Axis(Axis.DYNAMIC, "defaultBatchAxis", False)]
    assert all(a.is_dynamic for a in variables["Input1"]["dynamic_axis"])
    assert variables["Parameter5"]["dynamic_axis"] == []
    times = _functions(m)["Times7"]
    assert times["op"] == SizeT(31) and times["inputs"] == ["Parameter5", "Input6"]
    assert times["attributes"] == {"outputRank": SizeT(1), "inferInputRankToMap": Int(-1)}
    assert type(times["attributes"]["inferInputRankToMap"]) is Int
    assert [f["uid"] for f in m.top["primitive_functions"]] == [
        "Logistic22", "Times7", "Plus11", "Sigmoid14", "SquaredError17", "Combine27"]


def test_other_spot_values(models):
    slu = models["slu.forward.nobn"]
    slices = [f["attributes"] for f in slu.top["primitive_functions"] if f["op"] == 14]
    assert len(slices) == 4
    assert any(a["beginIndex"] == 300 and a["endIndex"] == 600 for a in slices)
    assert all(type(a["beginIndex"]) is Int for a in slices)
    # unlike spec §2.1's Axis(0), these static axes carry is_ordered_dynamic_axis = true
    assert all(a["axis"] == Axis(0, "staticAxisIdx=0", True) for a in slices)
    scalars = [t for t in _tensors(slu.top) if t.shape == Shape()]
    assert scalars and all(t.array.shape == () for t in scalars)
    assert any(float(t.array) == pytest.approx(0.1) for t in scalars)
    bn = [f["attributes"] for f in models["cifar10.ResNet"].top["primitive_functions"]
          if "epsilon" in f.get("attributes", {})]
    assert bn and isinstance(bn[0]["epsilon"], float) and bn[0]["spatial"] is True
    one = models["01_OneHidden"]
    assert any(t.shape == Shape([200, 784]) for t in _tensors(one.top))


def test_tensors_equal_cntks_onnx_export(cntk_dir, models):
    """Spec §5: numpy order is CNTK's own (its ONNX initializers, element for element)."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    exported = onnx.load(str(cntk_dir / "onnx-from-cntk" / "cifar10.pretrained.onnx"))
    init = {i.name: numpy_helper.to_array(i) for i in exported.graph.initializer}
    variables = {v["name"]: v for v in models["cifar10.pretrained"].top["inputs"]}
    w = variables["z.l1.W"]["value"]
    assert w.shape == Shape([5, 5, 3, 32]) and w.array.shape == (32, 3, 5, 5)
    for name in ("z.l1.W", "z.l2.W", "z.l3.W", "z.z.W", "z.d1.arrayOfFunctions[0].W"):
        np.testing.assert_array_equal(variables[name]["value"].array, init[name])


def test_big_payloads_are_views_of_the_input(files, models):
    for name in ("slu.forward.nobn", "cifar10.ResNet", "01_OneHidden"):
        big = [t for t in _tensors(models[name].top) if t.array.nbytes >= 4096]
        assert big and all(_backed_by(t.array, files[name]) for t in big), name
        assert not any(t.array.flags.writeable for t in big)


def test_cutting_payloads_out_of_the_parse_changes_nothing(files, models, monkeypatch):
    """Every payload cut (threshold 4 bytes) or none cut: the same model, and views."""
    monkeypatch.setattr(wire, "_CUT_MIN", 4)
    for name, data in files.items():
        assert decode(data, where=name) == models[name], name
    monkeypatch.setattr(wire, "_CUT_MIN", 1 << 62)
    for name in ("LR_reg", "slu.forward.nobn"):
        uncut = decode(files[name])
        assert uncut == models[name]
        assert not any(_backed_by(t.array, files[name]) for t in _tensors(uncut.top))


def test_bytearray_and_memoryview_input(files, models):
    data = files["slu.forward.nobn"]
    for form in (bytearray(data), memoryview(data)):
        assert decode(form) == models["slu.forward.nobn"]


def test_canonical_schema_parses_every_file(files):
    dictionary = wire.proto_classes(canonical=True)["Dictionary"]
    for name, data in files.items():
        msg = dictionary.FromString(data)
        assert msg.version == 2 and "inputs" in msg.data, name
        assert msg.ByteSize() == len(data)


# ---- the large-file variant -------------------------------------------------------------
@pytest.mark.parametrize("name", ["LR_reg", "MC", "slu.forward.nobn", "blocks/lstm_tagger"])
def test_large_variant_round_trip(files, models, name):
    model = models[name]
    big = encode(model, large=True)
    assert big[:4] == b"ktnc" and struct.unpack("<I", big[:8][4:])[0] + 8 < len(big)
    assert looks_v2(big[:64])
    back = decode(big, where="big")
    assert back.large and back.top == model.top and back.version == 2
    assert encode(back) == big  # a large model stays large
    assert encode(back, large=False) == files[name]
    tensors = _tensors(back.top)
    assert tensors and all(_backed_by(t.array, big) for t in tensors if t.array.size)
    # the metadata alone is a plain Dictionary whose tensors have no values
    with pytest.raises(WireError, match="holds 0 values but its shape needs"):
        decode(big[8:8 + struct.unpack("<I", big[4:8])[0]])


def test_large_variant_defects(files, models):
    big = encode(models["slu.forward.nobn"], large=True)
    (m,) = struct.unpack("<I", big[4:8])
    cases = {
        big[:5]: ("truncated large-file header", 5),
        big[:8 + m - 1]: ("runs past the end of the file", 4),
        big[:-3]: ("truncated tensor data", None),
        big + b"\0\0": ("2 bytes after the last tensor block", len(big)),
        big[:4] + struct.pack("<I", 2**32 - 1) + big[8:]: ("runs past the end", 4),
    }
    for data, (text, offset) in cases.items():
        with pytest.raises(WireError, match=text) as info:
            decode(data, where="big.model")
        err = info.value
        assert str(err).startswith("big.model, byte ") and "\n" not in str(err)
        if offset is not None:
            assert err.offset == offset
        else:
            assert 8 + m <= err.offset < len(data) and "inputs[" in str(err)


def test_large_variant_refuses_float16_int8_int16():
    for dtype in (np.float16, np.int8, np.int16):
        with pytest.raises(WireError, match="large file cannot hold"):
            encode({"t": np.zeros(3, dtype)}, large=True)
    big = encode({"t": np.arange(3, dtype=np.float32)}, large=True)
    assert decode(big).top["t"].array.tolist() == [0, 1, 2]
    # the same file with data_type Float16 (08 04): CNTK could not read its tail back
    assert big.count(b"\x08\x01\x1a") == 1
    with pytest.raises(WireError, match="Float16 tensor in a large file"):
        decode(big.replace(b"\x08\x01\x1a", b"\x08\x04\x1a"))


def test_large_is_chosen_for_a_model_of_2_gib(monkeypatch):
    monkeypatch.setattr(wire, "LARGE_THRESHOLD", 1000)
    top = {"w": np.zeros(300, np.float32)}
    assert encode(top)[:4] == b"ktnc"
    assert encode(top, large=None)[:4] == b"ktnc"
    with pytest.raises(WireError, match="only the large-file variant"):
        encode(top, large=False)
    assert encode({"w": np.zeros(3, np.float32)})[:4] != b"ktnc"


# ---- encoding values --------------------------------------------------------------------
def test_every_value_type_round_trips():
    top = {
        "none": None, "bool": False, "int": Int(-1), "sizet": SizeT(2**64 - 1), "plain": 5,
        "float": Float(0.5), "double": 0.1, "str": "x\u00e9", "shape": Shape(),
        "unknown": Shape([Shape.UNKNOWN_DIM]), "axis": Axis.static(0),
        "dynamic": Axis.dynamic("defaultBatchAxis", ordered=False), "vector": [],
        "tuple": (1, Int(2), [3.5]), "dict": {}, "nested": {"a": {"b": [True]}},
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f64": np.ones((2, 2)), "f16": np.arange(6, dtype=np.float16).reshape(3, 2),
        "i8": np.arange(-3, 3, dtype=np.int8), "i16": np.array([-300, 7, 32767], np.int16),
        "scalar": np.array(0.25, np.float32), "empty": np.zeros((0, 3), np.float32),
        "np_float32": np.float32(2.5), "np_int": np.int64(7), "np_bool": np.bool_(True),
        "big_endian": np.arange(3, dtype=">f4"),
    }
    data = encode(top)
    back = decode(data).top
    assert list(back) == list(top)
    assert back["none"] is None and back["bool"] is False
    assert type(back["int"]) is Int and back["int"] == -1
    assert type(back["sizet"]) is SizeT and type(back["plain"]) is SizeT
    assert type(back["float"]) is Float and type(back["double"]) is float
    assert back["shape"] == () and type(back["shape"]) is Shape and back["unknown"].is_unknown
    assert back["axis"] == Axis(0, "staticAxisIdx=0") and back["axis"].is_static
    assert back["dynamic"].is_dynamic and not back["dynamic"].ordered
    assert back["tuple"] == [SizeT(1), Int(2), [3.5]] and type(back["tuple"][1]) is Int
    assert back["nested"] == {"a": {"b": [True]}}
    for key in ("f32", "f64", "f16", "i8", "i16", "scalar", "empty"):
        t = back[key]
        assert isinstance(t, Tensor) and t.array.dtype == top[key].dtype, key
        np.testing.assert_array_equal(t.array, top[key])
        assert t.shape == Shape.from_numpy(top[key].shape) and t.shape.numpy == top[key].shape
    assert back["f16"].data_type == Tensor.FLOAT16 and back["i16"].data_type == Tensor.INT16
    assert type(back["np_float32"]) is Float and type(back["np_int"]) is SizeT
    assert back["np_bool"] is True and back["big_endian"].array.tolist() == [0, 1, 2]
    assert encode(decode(data)) == data
    assert decode(encode(top, version=1)).version == 1


def test_a_decoded_dictionary_looks_as_the_spec_says():
    """The exact bytes of spec §2.1: every DictionaryValue starts ``08 02 10 <type>``, the
    member is written even when it holds the default, a [3,1] float tensor is
    ``08 01 1A 04 0A 02 03 01 22 0E 0A 0C <12 bytes>``."""
    assert encode({"b": False}) == b"\x08\x02\x12\x0b\x0a\x01b\x12\x06\x08\x02\x10\x01" \
        b"\x18\x00"
    assert encode({"k": SizeT(0)}).endswith(b"\x08\x02\x10\x03\x28\x00")
    assert encode({"v": []}).endswith(b"\x08\x02\x10\x09\x5a\x00")
    assert encode({"i": Int(-1)}).endswith(b"\x20" + b"\xff" * 9 + b"\x01")
    t = encode({"t": Tensor(Tensor.FLOAT, Shape([3, 1]), np.zeros((1, 3), np.float32))})
    assert b"\x08\x01\x1a\x04\x0a\x02\x03\x01\x22\x0e\x0a\x0c" + bytes(12) in t


@pytest.mark.parametrize(("top", "text", "path"), [
    ({"a": -1}, "use Int for a negative int32", "a"),
    ({"a": Int(2**31)}, "Int value 2147483648 is out of range", "a"),
    ({"a": object()}, "type object cannot be a DictionaryValue", "a"),
    ({1: 2}, "key 1 is not a str", "1"),
    ({"a": [1, {"b": Tensor(1, Shape([3]), np.zeros(3))}]}, "Float tensor holds a float64",
     "a[1].b"),
    ({"a": Tensor(1, Shape([2]), np.zeros(3, np.float32))}, "does not match its array", "a"),
    ({"a": Tensor(3, Shape([3]), np.zeros(3, np.float32))}, "data_type 3 is not one of", "a"),
    ({"a": ["\ud800"]}, "surrogates not allowed", "a[0]"),
    ({"a": Shape([-1])}, "not a uint64", "a"),
    ({"a": Axis(2**40)}, "not an int32", "a"),
    ({"a": np.zeros(2, np.int32)}, "cannot hold dtype int32", "a"),
    ({"a": Float(1e300)}, "beyond float32", "a"),
])
def test_encode_refuses_bad_values(top, text, path):
    with pytest.raises(WireError, match=text) as info:
        encode(top)
    assert isinstance(info.value, FormatError) and f"in {path}: " in str(info.value)


def test_nesting_limit_is_protobufs():
    def nest(k: int) -> dict:
        x: object = 1
        for _ in range(k):
            x = {"a": x}
        return x  # type: ignore[return-value]

    assert decode(encode(nest(33))).top == nest(33)  # 3 messages per Dictionary level
    with pytest.raises(WireError, match="nested deeper than protobuf can read back"):
        encode(nest(34))
    vector: object = 1
    for _ in range(49):
        vector = [vector]
    assert decode(encode({"v": vector})).top == {"v": vector}
    with pytest.raises(WireError, match="nested deeper"):
        encode({"v": [vector]})


def test_too_deep_file_is_refused_with_an_offset(monkeypatch):
    monkeypatch.setattr(wire, "_check_depth", lambda depth: None)
    x: object = 1
    for _ in range(40):
        x = {"a": x}
    data = encode(x)  # type: ignore[arg-type]
    monkeypatch.undo()
    with pytest.raises(WireError, match="nesting deeper than 100 messages") as info:
        decode(data, where="deep.model")
    assert 0 < info.value.offset < len(data)
    assert "in a.a.a.a.(25 more levels).a.a.a.a: " in str(info.value)


def test_value_classes():
    assert Shape.from_numpy((2, 3)) == Shape([3, 2]) and repr(Shape([3, 2])) == "Shape([3, 2])"
    assert Shape([1]) == (1,) and Shape([2**64 - 1])[0] == Shape.INFERRED
    assert Axis.static(-1).name == "staticAxisIdx=-1" and Axis.static(-1).is_static
    assert not Axis(Axis.ALL_STATIC).is_static and not Axis(Axis.ALL_STATIC).is_dynamic
    assert repr(Int(3)) == "Int(3)" and repr(SizeT(3)) == "SizeT(3)"
    assert repr(Float(0.5)) == "Float(0.5)"
    assert Tensor.of(np.zeros(2, np.float16)).data_type == Tensor.FLOAT16
    a = Tensor.of(np.zeros(2, np.float32))
    assert a == Tensor.of(np.zeros(2, np.float32)) and a != Tensor.of(np.ones(2, np.float32))
    assert a != Tensor.of(np.zeros(2, np.float64))
    with pytest.raises(FormatError, match="cannot hold dtype"):
        Tensor.of(np.zeros(2, np.int64))


# ---- crafted defects --------------------------------------------------------------------
def _raw(**fields: object) -> bytes:
    """A top Dictionary with one entry ``x`` whose DictionaryValue has ``fields``."""
    classes = wire.proto_classes(canonical=False)
    msg = classes["Dictionary"](version=2)
    entry = msg.data.add(key="x")
    for name, value in fields.items():
        if isinstance(value, dict):
            getattr(entry.value, name).MergeFrom(classes["NDArrayView"](**value))
        else:
            setattr(entry.value, name, value)
    return msg.SerializeToString()


def _tensor_bytes(**nd: object) -> bytes:
    return _raw(version=2, value_type=11, nd_array_view_value=nd)


@pytest.mark.parametrize(("data", "text"), [
    (_raw(version=2, value_type=4, string_value="s"),
     r"value_type 4 \(Float\) but the value holds string_value"),
    (_raw(version=2, value_type=99, size_t_value=1), "unknown value_type 99"),
    (_raw(version=2, value_type=-5), "unknown value_type -5"),
    (_raw(version=2, value_type=0, bool_value=True), r"value_type 0 \(None\) but"),
    (_tensor_bytes(data_type=1, storage_format=1, shape={"shape_dim": [1]},
                   float_values={"value": [bytes(4)]}), "storage_format 1 is sparse"),
    (_tensor_bytes(data_type=1, shape={"shape_dim": [3]}, float_values={"value": [bytes(8)]}),
     "holds 2 values but its shape needs 3"),
    (_tensor_bytes(data_type=1, shape={"shape_dim": [2**40, 2**40]},
                   float_values={"value": [bytes(8)]}),
     "holds 2 values but its shape needs 1208925819614629174706176"),
    (_tensor_bytes(data_type=1, shape={"shape_dim": [2**64 - 1]}), "special"),
    (_tensor_bytes(data_type=0, shape={"shape_dim": [1]}), r"data_type 0 \(Unknown\)"),
    (_tensor_bytes(data_type=2, shape={"shape_dim": [1]}, float_values={"value": [bytes(4)]}),
     "NDArrayView of data_type Double holds float_values"),
    (_tensor_bytes(data_type=1, shape={"shape_dim": [1]}, float_values={"value": [bytes(5)]}),
     "5 bytes, not a whole number"),
    (_tensor_bytes(data_type=6, shape={"shape_dim": [1]}, sint32_values={"value": [40000]}),
     "outside the int16 range"),
])
def test_crafted_defects(data, text):
    tracemalloc.start()
    with pytest.raises(WireError, match=text) as info:
        decode(data, where="crafted.model")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    err = info.value
    assert str(err).startswith("crafted.model, byte 7, in x: ")  # the value's record
    assert err.offset == 7 and data[7] == 0x12
    assert peak < 1 << 20


def test_missing_member_reads_as_its_default_like_cntk():
    assert decode(_raw(version=2, value_type=3)).top == {"x": SizeT(0)}
    assert decode(_raw(version=2, value_type=9)).top == {"x": []}
    assert decode(_raw(version=2, value_type=7)).top == {"x": Shape()}


def test_unpacked_float_values_are_read():
    """Packed is what CNTK writes; one fixed32 record per value is legal protobuf too."""
    values = b"".join(b"\x0d" + struct.pack("<f", v) for v in (1.5, -2.0))
    nd = b"\x08\x01\x1a\x03\x0a\x01\x02\x22" + bytes([len(values)]) + values
    dv = b"\x08\x02\x10\x0b\x6a" + bytes([len(nd)]) + nd
    entry = b"\x0a\x01x\x12" + bytes([len(dv)]) + dv
    data = b"\x08\x02\x12" + bytes([len(entry)]) + entry
    t = decode(data).top["x"]
    assert t.array.tolist() == [1.5, -2.0] and t.shape == Shape([2])


def test_truncated_at_every_record_boundary_and_inside(files):
    data = files["LR_reg"]
    for n in [*range(0, 40), *range(40, len(data), 23)]:
        try:
            decode(data[:n], where="cut.model")
        except WireError as err:
            assert err.offset is not None and err.offset <= n, (n, str(err))
            assert str(err).startswith("cut.model, ")
    with pytest.raises(WireError, match="empty input"):
        decode(b"")
    with pytest.raises(WireError, match="truncated") as info:
        decode(data[:len(data) - 1], where="x")
    assert "byte" in str(info.value)


def test_protobuf_refusals_are_located():
    with pytest.raises(WireError, match="truncated varint") as info:
        decode(b"\x08\x82", where="a")
    assert info.value.offset == 1
    with pytest.raises(WireError, match="not valid UTF-8") as info:
        decode(b"\x08\x02\x12\x05\x0a\x03a\xffb", where="a")
    assert info.value.offset == 7
    with pytest.raises(WireError, match="wire type 7"):
        decode(b"\x0f", where="a")


def _mutations(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    cases = [data[:n] for n in sorted(rng.sample(range(len(data)), count // 2))]
    for i in rng.sample(range(len(data)), count - len(cases)):
        bad = bytearray(data)
        bad[i] ^= rng.choice((0xFF, 0x01, 0x80, 0x7F, 0x10))
        cases.append(bytes(bad))
    return cases


@pytest.mark.parametrize("name", ["LR_reg", "MC"])
def test_fuzz_truncations_and_flips(files, name, monkeypatch):
    """Each mutation decodes or raises WireError (nothing else), fast, in little memory;
    and cutting every payload out of the parse gives the same result or the same error."""
    cases = _mutations(files[name], random.Random(name), 300)
    outcomes = {}
    tracemalloc.start()
    t0 = time.perf_counter()
    for i, case in enumerate(cases):
        try:
            outcomes[i] = decode(case, where=name)
        except WireError as err:
            assert err.offset is not None and 0 <= err.offset <= len(case), str(err)
            assert str(err).startswith(f"{name}, ") and "\n" not in str(err)
            outcomes[i] = str(err)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 5 and peak < 4 << 20, (elapsed, peak)
    assert sum(isinstance(o, str) for o in outcomes.values()) > len(cases) // 2
    monkeypatch.setattr(wire, "_CUT_MIN", 4)
    for i, case in enumerate(cases):
        try:
            again: object = decode(case, where=name)
        except WireError as err:
            again = str(err)
        assert again == outcomes[i], i


def _outcome(data: bytes) -> object:
    try:
        return decode(data, where="f")
    except WireError as err:
        assert err.offset is not None and 0 <= err.offset <= len(data), str(err)
        return str(err)


def test_fuzz_a_file_whose_payloads_are_cut(files, monkeypatch):
    """Flips and truncations in the metadata of a file with big payloads (which decode cuts
    out of the parse): the same outcome as when protobuf parses the whole file; and the
    same kind of mutations of a large-variant file fail cleanly."""
    data = files["blocks/mlp_dense"]
    cut = wire._cut(data)
    assert cut is not None and len(cut.blocks) == 1  # W 784x50; W 50x10 is under 4 KiB
    inside = [range(a, b) for a, b in cut.blocks]
    rng = random.Random(7)
    spots = [i for i in range(len(data)) if not any(i in r for r in inside)]
    cases = []
    for i in rng.sample(spots, 150):
        bad = bytearray(data)
        bad[i] ^= rng.choice((0xFF, 0x01, 0x80))
        cases += [bytes(bad), data[:i]]
    outcomes = [_outcome(c) for c in cases]
    monkeypatch.setattr(wire, "_CUT_MIN", 1 << 62)
    assert [_outcome(c) for c in cases] == outcomes
    monkeypatch.undo()
    big = encode(decode(files["MC"]), large=True)
    (m,) = struct.unpack("<I", big[4:8])
    for i in random.Random(8).sample(range(m + 8), 150):
        bad = bytearray(big)
        bad[i] ^= 0xFF
        _outcome(bytes(bad))
        _outcome(big[:i])


# ---- first bytes ------------------------------------------------------------------------
def test_looks_v2_on_every_format(cntk_dir, files, tmp_path):
    for name, data in files.items():
        assert looks_v2(data[:wire.HEAD_BYTES]), name
        assert looks_v2(encode(decode(data), large=True)[:64]), name
    for path in sorted((cntk_dir / "models").iterdir()):
        assert not looks_v2(path.read_bytes()[:64]), path.name
    onnx = sorted((cntk_dir / "onnx-from-cntk").glob("*.onnx"))
    assert onnx and not any(looks_v2(p.read_bytes()[:64]) for p in onnx)
    from netsurgeon.formats.native import save
    from netsurgeon.graph import Network

    net = Network("n")
    net.add("features", "InputValue", shape=(3,))
    save(net, tmp_path / "n.nsm")
    assert not looks_v2((tmp_path / "n.nsm").read_bytes()[:64])
    lr = files["LR_reg"]
    for head in (b"", b"\x08", b"\x08\x02", b"\x08\x02\x12", lr[:5], b"ktnc", b"ktnc\0\0\0\0",
                 b"\x08\x04\x12\x04CNTK", b"B\0C\0N\0\0\0", b"\x12\x05\x0a\x03\x01\x02\x03"):
        assert not looks_v2(head), head
    assert looks_v2(lr[:13]) and looks_v2(b"\x12\x06\x0a\x04root")


_BOUNDED = r"""
import resource, struct, sys
import numpy as np
from netsurgeon.formats.cntk_v2 import wire
wire.decode(wire.encode({"warm": np.zeros(3, np.float32)}))  # imports and schema first
with open("/proc/self/status") as f:
    vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.RLIM_INFINITY))
raw = wire.proto_classes(False)
def tensor(dims, payload=None):
    msg = raw["Dictionary"](version=2)
    dv = msg.data.add(key="x").value
    dv.value_type = 11
    nd = dv.nd_array_view_value
    nd.data_type = 1
    nd.shape.shape_dim.extend(dims)
    if payload is not None:
        nd.float_values.value.append(payload)
    return msg.SerializeToString()
big = wire.encode({"x": np.zeros(4, np.float32)}, large=True)
meta = tensor([2**34])  # a large file whose tensor claims 64 GiB of tail
cases = [
    tensor([2**40, 2**40], bytes(8)),            # absurd shape, little data
    tensor([2**62], bytes(8)),
    tensor([2**31, 4], bytes(8192)),            # a cut payload too small for its shape
    big[:4] + struct.pack("<I", 2**32 - 1) + big[8:],  # metadata length beyond the file
    b"ktnc" + struct.pack("<I", len(meta)) + meta + bytes(16),
]
for data in cases:
    try:
        wire.decode(data, where="x")
        print("decoded")
    except wire.WireError as err:
        print("refused:", err)
"""


def test_absurd_sizes_never_allocate(tmp_path):
    """Under an address-space limit of 256 MiB above the interpreter's, shapes and lengths
    claiming terabytes are refused (before anything that size is allocated)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _BOUNDED], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith("refused: x, byte ") for line in lines), \
        out.stdout
    assert "needs 1208925819614629174706176" in lines[0] and "runs past" in lines[3]
    assert "17179869184 Float values need 68719476736 bytes, 16 remain" in lines[4]
