"""Bad ONNX input: one-line FormatErrors naming the file (and the node), never a hang or an
allocation beyond the file; format detection from the first bytes."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tests.formats.onnx.models import graph_model

from netsurgeon.errors import FormatError
from netsurgeon.formats.onnx.importer import HEAD_BYTES, looks_onnx, read, read_model
from netsurgeon.runtime import evaluate


def _mlp(extra=()):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
             helper.make_node("Relu", ["h"], ["y"], name="relu"), *extra]
    return graph_model(nodes, [("x", ("N", 3))], [("y", ("N", 2))],
                       [("W", np.arange(6, dtype=np.float32).reshape(3, 2))])


def _one_line(exc: pytest.ExceptionInfo, *parts: str) -> None:
    text = str(exc.value)
    assert "\n" not in text
    for part in parts:
        assert part in text, text


def _save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def test_unsupported_op_names_node_and_op(tmp_path):
    model = _mlp()
    model.graph.node[1].op_type = "Erf"
    with pytest.raises(FormatError) as exc:
        read(_save(tmp_path, model))
    _one_line(exc, "m.onnx: node 'relu' (Erf): ONNX op Erf is not supported")


def test_argmax_of_the_last_index_is_refused(tmp_path):
    model = _mlp([helper.make_node("ArgMax", ["y"], ["k"], name="am", axis=1,
                                   select_last_index=1)])
    model.graph.output.append(helper.make_tensor_value_info("k", TensorProto.INT64, None))
    with pytest.raises(FormatError) as exc:
        read(_save(tmp_path, model))
    _one_line(exc, "node 'am' (ArgMax): ArgMax with select_last_index 1 is not supported")


def test_other_domain_is_refused(tmp_path):
    model = _mlp()
    model.graph.node[1].domain = "com.microsoft"
    with pytest.raises(FormatError, match="node 'relu' .*domain 'com.microsoft'"):
        read(_save(tmp_path, model))


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.97])
def test_truncated_file(tmp_path, cut):
    data = _mlp().SerializeToString()
    path = tmp_path / "t.onnx"
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(FormatError) as exc:
        read(path)
    _one_line(exc, str(path))


def test_corrupted_file(tmp_path):
    path = tmp_path / "c.onnx"
    path.write_bytes(b"\x08\x07\x12\xff\xff\xff\xff\x0fgarbage" * 3)
    with pytest.raises(FormatError) as exc:
        read(path)
    _one_line(exc, str(path), "truncated or corrupted")


def test_cycle(tmp_path):
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second"),
             helper.make_node("Relu", ["a"], ["y"], name="out")]
    model = graph_model(nodes, [("x", ("N", 3))], [("y", ("N", 3))])
    with pytest.raises(FormatError) as exc:
        read(_save(tmp_path, model))
    _one_line(exc, "m.onnx: the graph has a cycle through node")


def test_dangling_input(tmp_path):
    model = _mlp()
    model.graph.node[0].input[1] = "nowhere"
    with pytest.raises(FormatError) as exc:
        read(_save(tmp_path, model))
    _one_line(exc, "node 'mm' (MatMul): input 'nowhere' is not produced")


def test_hostile_dims_are_refused_before_allocating(tmp_path):
    model = _mlp()
    w = model.graph.initializer[0]
    del w.dims[:]
    w.dims.extend([1 << 20, 1 << 20])
    with pytest.raises(FormatError) as exc:
        read(_save(tmp_path, model))
    _one_line(exc, "initializer 'W'", "do not hold dims")


def test_external_data(tmp_path):
    model = _mlp()
    onnx.save_model(model, tmp_path / "big.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="big.weights", size_threshold=0)
    net = read(tmp_path / "big.onnx")
    y = evaluate(net, {"x": np.ones((1, 3), np.float32)}, ["y"])["y"]
    np.testing.assert_array_equal(y, [[6.0, 9.0]])
    os.remove(tmp_path / "big.weights")
    with pytest.raises(FormatError) as exc:
        read(tmp_path / "big.onnx")
    _one_line(exc, "big.onnx: tensor 'W': its external data file", "big.weights' is missing")


def test_external_data_outside_the_folder_is_refused(tmp_path):
    model = _mlp()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="../../etc/passwd")
    with pytest.raises(FormatError, match="must be a relative path inside the model's folder"):
        read(_save(tmp_path, model))


def test_not_a_regular_file(tmp_path):
    with pytest.raises(FormatError, match="it is a directory"):
        read(tmp_path)
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match="FIFO"):
        read(fifo)


def test_batch_axis_ops_are_refused():
    model = _mlp([helper.make_node("Concat", ["y", "y"], ["z"], name="cat", axis=0)])
    model.graph.output[0].name = "z"
    with pytest.raises(FormatError, match=r"node 'cat' \(Concat\): axis 0 is a batch axis"):
        read_model(model)


def test_input_without_batch_axis():
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [("x", ())], [("y", ())])
    with pytest.raises(FormatError, match="input 'x' has rank 0"):
        read_model(model)


def test_free_sample_dimension():
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [("x", ("N", "L"))],
                        [("y", ("N", "L"))])
    with pytest.raises(FormatError, match="free dimension"):
        read_model(model)


def test_looks_onnx(cntk_dir, tmp_path):
    for path in sorted((cntk_dir / "onnx-from-cntk").glob("*.onnx")):
        assert looks_onnx(path.read_bytes()[:16]), path
        assert looks_onnx(path.read_bytes()[:HEAD_BYTES]), path
    assert looks_onnx(_mlp().SerializeToString()[:HEAD_BYTES])
    for path in [*(cntk_dir / "models").iterdir(), *(cntk_dir / "v2").glob("*.model")]:
        assert not looks_onnx(path.read_bytes()[:HEAD_BYTES]), path
    import netsurgeon

    netsurgeon.save(read_model(_mlp()), tmp_path / "m.nsm")
    assert not looks_onnx((tmp_path / "m.nsm").read_bytes()[:HEAD_BYTES])
    for head in (b"", b"\x08", b"\x08\x04", b"net = ...", b"\x00" * 16, b"\x08\x00\x12\x01a"):
        assert not looks_onnx(head), head
