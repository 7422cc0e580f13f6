"""The native format: safe (no code), memory-mapped, atomic, versioned, readable by safetensors."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from netsurgeon.errors import FormatError
from netsurgeon.formats import detect_format, load, native, save
from netsurgeon.graph import Network


def model() -> Network:
    net = Network("m")
    x = net.add("features", "InputValue", shape=(4,), tags={"feature"})
    w = net.add_parameter("L1.W", np.arange(12, dtype=np.float32).reshape(4, 3))
    b = net.add_parameter("L1.B", np.ones(3, np.float64), learning_rate_multiplier=0.0)
    t = net.add("L1.T", "Times", inputs=(w, x), attrs={"output_rank": 1})
    p = net.add("L1.P", "Plus", inputs=(t, b))
    net.add("z.PlusArgs[0]", "Sigmoid", inputs=(p,))
    net.add_to_group("feature", x)
    net.add_to_group("output", "z.PlusArgs[0]")
    net.metadata["origin"] = {"tuple": (1, 2), "inf": float("inf")}
    return net


def test_round_trip_keeps_everything(tmp_path):
    net = model()
    net.validate()
    path = tmp_path / "m.nsm"
    save(net, path)
    back = load(path)
    assert [n.name for n in back.nodes] == [n.name for n in net.nodes]
    for a, b in zip(net.nodes, back.nodes):
        assert (a.op, a.attrs, a.shape, a.dtype, a.learning_rate_multiplier, a.tags, a.dynamic) == \
               (b.op, b.attrs, b.shape, b.dtype, b.learning_rate_multiplier, b.tags, b.dynamic)
        assert [i.name for i in a.inputs] == [i.name for i in b.inputs]
        if a.value is not None:
            assert b.value.dtype == a.value.dtype
            np.testing.assert_array_equal(a.value, b.value)
    assert {g: [n.name for n in m] for g, m in back.groups().items()} == \
           {g: [n.name for n in m] for g, m in net.groups().items()}
    assert back.metadata == {"origin": {"tuple": (1, 2), "inf": float("inf")}}
    back.lint()


def test_weights_are_memory_mapped_copy_on_write(tmp_path):
    path = tmp_path / "m.nsm"
    save(model(), path)
    before = path.read_bytes()
    back = load(path)
    w = back.node("L1.W").value
    assert not w.flags.owndata  # a view of the mapped file, not a copy
    w[0, 0] = 99.0  # edits stay private
    assert path.read_bytes() == before


def test_file_is_plain_safetensors(tmp_path):
    from safetensors.numpy import load_file

    path = tmp_path / "m.nsm"
    save(model(), path)
    tensors = load_file(str(path))
    np.testing.assert_array_equal(tensors["L1.W"], np.arange(12, dtype=np.float32).reshape(4, 3))
    assert detect_format(path) == "native"


def test_save_is_atomic_and_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "m.nsm"
    save(model(), path)
    before = path.read_bytes()
    bad = model()
    bad.node("L1.W").value = np.zeros(2, dtype=np.complex64)
    with pytest.raises(FormatError):
        save(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.nsm"]


def test_overwrite_the_file_it_was_loaded_from(tmp_path):
    path = tmp_path / "m.nsm"
    save(model(), path)
    net = load(path)
    net.rename("L1.W", "W")
    save(net, path)
    again = load(path)
    np.testing.assert_array_equal(again.node("W").value, np.arange(12, dtype=np.float32).reshape(4, 3))


def _write_raw(path, header: dict, data: bytes = b"") -> None:
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


@pytest.mark.parametrize("mutate", ["truncate", "header_len", "json", "no_graph", "version", "offsets"])
def test_damaged_files_raise_format_error(tmp_path, mutate):
    path = tmp_path / "m.nsm"
    save(model(), path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    if mutate == "truncate":
        path.write_bytes(raw[: len(raw) - 7])
    elif mutate == "header_len":
        path.write_bytes(struct.pack("<Q", 1 << 60) + raw[8:])
    elif mutate == "json":
        path.write_bytes(raw[:8] + b"{" + raw[9 + 5:])
    elif mutate == "no_graph":
        del header["__metadata__"]
        _write_raw(path, header, raw[8 + n:])
    elif mutate == "version":
        g = json.loads(header["__metadata__"]["graph"]); g["version"] = 99
        header["__metadata__"]["graph"] = json.dumps(g)
        _write_raw(path, header, raw[8 + n:])
    elif mutate == "offsets":
        header["L1.W"]["data_offsets"] = [0, 10 ** 12]
        _write_raw(path, header, raw[8 + n:])
    with pytest.raises(FormatError):
        native.load(path)


def test_unknown_file_is_rejected(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"hello world, not a model")
    with pytest.raises(FormatError, match="not a netsurgeon"):
        load(path)
