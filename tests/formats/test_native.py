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


def saved_model(tmp_path):
    """The validated :func:`model` and the native file it was saved to."""
    net = model()
    net.validate()
    path = tmp_path / "m.nsm"
    save(net, path)
    return net, path


def test_round_trip_keeps_everything(tmp_path):
    net, path = saved_model(tmp_path)
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
    bad.update("L1.W", value=np.zeros(2, dtype=np.complex64))
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
    np.testing.assert_array_equal(again.node("W").value,
                                  np.arange(12, dtype=np.float32).reshape(4, 3))


def _write_raw(path, header: dict, data: bytes = b"") -> None:
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


@pytest.mark.parametrize("mutate", ["truncate", "header_len", "json", "no_graph", "version",
                                    "offsets"])
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
        g = json.loads(header["__metadata__"]["graph"])
        g["version"] = 99
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


def _graph_doc(path) -> dict:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(json.loads(raw[8:8 + n])["__metadata__"]["graph"])


def test_graph_is_stored_by_columns(tmp_path):
    net, path = saved_model(tmp_path)
    doc = _graph_doc(path)
    assert doc["version"] == native.GRAPH_VERSION == 2
    assert doc["names"] == [n.name for n in net.nodes]
    assert [doc["ops"][i] for i in doc["op"]] == [n.op for n in net.nodes]
    assert doc["arity"] == [0, 0, 0, 2, 2, 1] and doc["inputs"] == [1, 0, 3, 2, 4]
    assert doc["dynamic"] == "100111"
    # only nodes with attributes, values, multipliers, dtypes or tags have an extra record
    assert [i for i, _ in doc["extra"]] == [0, 1, 2, 3]
    assert doc["groups"] == {"feature": [0], "output": [5]}


def test_forward_inputs_missing_inputs_and_odd_names(tmp_path):
    """Inputs that come later in insertion order (a recurrence, a renamed node), a missing
    input, and a node called like safetensors' own metadata key."""
    net = Network("loop")
    x = net.add("x", "InputValue", shape=(3,))
    pv = net.add("pv", "PastValue", shape=(3,), attrs={"time_step": 2})
    h = net.add("h", "Plus", inputs=(x, pv))
    net.set_inputs(pv, [h])
    net.add("gap", "Minus", inputs=(x, None))
    net.add_parameter("__metadata__", np.full((3,), 2.0, np.float32))
    net.rename("x", "x_last")  # now last in insertion order, but input of h
    save(net, tmp_path / "m.nsm")
    back = load(tmp_path / "m.nsm")
    assert [n.name for n in back.nodes] == [n.name for n in net.nodes]
    assert [i.name for i in back.node("pv").inputs] == ["h"]
    assert [i.name for i in back.node("h").inputs] == ["x_last", "pv"]
    assert back.node("gap").inputs[1] is None
    assert back.node("pv").attrs["time_step"] == 2
    np.testing.assert_array_equal(back.node("__metadata__").value, np.full((3,), 2.0))
    back.lint()


def test_file_fields_survive_and_cntk_bytes_come_back(cntk_dir, tmp_path):
    from netsurgeon.formats import cntk

    for name in ("MC.dnn", "cifar10.ResNet.cmf"):
        src = cntk_dir / "models" / name
        net = cntk.read(src)
        save(net, tmp_path / "m.nsm")
        back = load(tmp_path / "m.nsm")
        for a in net:
            assert back.node(a.name).file_fields == a.file_fields, a.name
        back.lint()
        cntk.write(back, tmp_path / name)
        assert (tmp_path / name).read_bytes() == src.read_bytes()


def _v1_file(path) -> None:
    """A graph-version-1 file as netsurgeon wrote it before file fields: one JSON object per
    node, inputs by name, CNTK file facts among the attributes."""
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    nodes = [
        {"name": "features", "op": "InputValue", "inputs": [], "shape": [2], "dynamic": True,
         "attrs": {"dynamic_axis": "", "num_dynamic_axes": 1, "rows_placeholder": 0,
                   "cols_placeholder": 7, "legacy_shape": False, "cntk_input_lr_is_one": True},
         "lr": 0.0, "tags": ["feature"]},
        {"name": "W", "op": "LearnableParameter", "inputs": [], "shape": [3, 2],
         "dynamic": False, "value": "W",
         "attrs": {"init": None, "legacy_shape": False, "cntk_matrix_name": "W0"}},
        {"name": "z", "op": "Times", "inputs": ["w", "features"],  # names fold case, as before
         "attrs": {"output_rank": 1, "infer_input_rank_to_map": -1}, "loc": ["m.ndl", 3, 5]},
        {"name": "errs", "op": "ClassificationError", "inputs": ["z", "z"],
         "attrs": {"legacy_name": "ErrorPrediction"}},
        {"name": "prev", "op": "PastValue", "inputs": ["z"], "shape": [3],
         "attrs": {"time_step": 1, "initial_state": {"__float__": "inf"}, "legacy_cols": 4}},
        {"name": "cast", "op": "Cast", "inputs": ["z"], "dtype": "float64",
         "attrs": {"precision": "double", "cntk_precision": "double,float"}},
    ]
    graph = {"format": "netsurgeon", "version": 1, "name": "old", "nodes": nodes,
             "groups": {"output": ["z"], "evaluation": ["errs"]},
             "metadata": {"cntk": {"version": 31}}}
    header = {"W": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, w.nbytes]},
              "__metadata__": {"format": "netsurgeon", "version": "1",
                               "graph": json.dumps(graph)}}
    _write_raw(path, header, w.tobytes())


def test_reads_graph_version_1_and_moves_cntk_attrs_to_file_fields(tmp_path):
    path = tmp_path / "old.nsm"
    _v1_file(path)
    net = load(path)
    assert net.name == "old" and net.metadata == {"cntk": {"version": 31}}
    f = net.node("features")
    assert f.attrs == {"dynamic_axis": ""}
    # values the writer assumes anyway are dropped; the rest are cntk_v1 file fields
    assert f.file_fields == {"cntk_v1.cols_placeholder": 7, "cntk_v1.input_lr_is_one": True}
    assert (f.learning_rate_multiplier, f.tags, f.dynamic) == (0.0, {"feature"}, True)
    w = net.node("W")
    assert w.attrs == {"init": None} and w.file_fields == {"cntk_v1.matrix_name": "W0"}
    np.testing.assert_array_equal(w.value, np.arange(6, dtype=np.float32).reshape(3, 2))
    z = net.node("z")
    assert [i.name for i in z.inputs] == ["W", "features"] and z.location.line == 3
    assert net.node("errs").file_fields == {"cntk_v1.op_name": "ErrorPrediction"}
    prev = net.node("prev")
    assert prev.attrs["initial_state"] == float("inf")
    assert prev.file_fields == {"cntk_v1.legacy_cols": 4}
    cast = net.node("cast")
    assert cast.file_fields == {"cntk_v1.precision": "double,float"}
    assert cast.dtype == "float64" and cast.attrs["precision"] == "double"
    assert [n.name for n in net.group("evaluation")] == ["errs"]
    net.lint()
    # saved again, it is a version 2 file holding the same
    save(net, tmp_path / "new.nsm")
    assert _graph_doc(tmp_path / "new.nsm")["version"] == 2
    again = load(tmp_path / "new.nsm")
    for a in net:
        b = again.node(a.name)
        assert (b.attrs, b.file_fields, b.shape, b.dtype) == (a.attrs, a.file_fields, a.shape,
                                                              a.dtype), a.name


def test_unknown_op_names_the_node(tmp_path):
    path = tmp_path / "m.nsm"
    save(model(), path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    g = json.loads(header["__metadata__"]["graph"])
    g["ops"][g["op"][3]] = "Tims"
    header["__metadata__"]["graph"] = json.dumps(g)
    _write_raw(path, header, raw[8 + n:])
    with pytest.raises(FormatError, match="node 'L1.T' has unknown operation 'Tims'"):
        load(path)


def _chain(n: int) -> Network:
    net = Network("chain")
    prev = net.add("x", "InputValue", shape=(4,))
    for i in range(n):
        prev = net.add(f"n{i}", "Sigmoid", inputs=(prev,))
    net.validate()
    return net


def test_loading_tracks_as_few_objects_per_node_at_any_size(tmp_path):
    """Loading adds a constant number of collector-tracked objects per node, so it stays
    linear with the collector on (times: bench/bench_graph.py, bench/bench_native.py)."""
    from tests.graph.test_invariants import tracked_per_node

    paths = {}
    for n in (10_000, 100_000):
        paths[n] = tmp_path / f"c{n}.nsm"
        save(_chain(n), paths[n])
    small, large = (tracked_per_node(lambda n: load(paths[n]), n) for n in paths)
    assert large <= 2.05 and abs(small - large) < 0.05, (small, large)

