"""The ONNX writer: the streamed file is the ModelProto ``to_model`` builds, names are the
nodes', and models past the protobuf limit keep their tensors in ``<file>.data`` (tested with
a lowered threshold), written atomically and replaced, never appended to."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import netsurgeon.formats.onnx as nx
from netsurgeon import formats
from netsurgeon.errors import FormatError
from netsurgeon.formats.onnx import export_write
from netsurgeon.graph import Network


@pytest.fixture
def hidden(cntk_dir):
    return formats.load(cntk_dir / "models/01_OneHidden.dnn")


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"features": x})[0]


def test_streamed_file_is_the_model_proto(hidden, tmp_path):
    path = tmp_path / "h.onnx"
    assert nx.save(hidden, path, keep_criteria=True) is False
    loaded = onnx.load(str(path))
    assert loaded == nx.to_model(hidden, keep_criteria=True)
    params = {n.name for n in hidden.nodes if n.op == "LearnableParameter"} - {"inputs[2]"}
    assert {t.name for t in loaded.graph.initializer if "/" not in t.name} == params
    node_outputs = {o for n in loaded.graph.node for o in n.output}
    assert {"z.z", "ce", "errs"} <= node_outputs
    assert formats.detect_format(path) == "onnx"


def test_external_data_beside_the_model(hidden, tmp_path, monkeypatch):
    x = np.random.default_rng(0).random((3, 784), dtype=np.float32)
    inline = tmp_path / "inline.onnx"
    nx.save(hidden, inline)
    monkeypatch.setattr(export_write, "EXTERNAL_DATA_THRESHOLD", 100_000)
    path = tmp_path / "big.onnx"
    assert nx.save(hidden, path) is True
    data = tmp_path / "big.onnx.data"
    assert path.stat().st_size < 20_000 < data.stat().st_size
    onnx.checker.check_model(str(path), full_check=True)
    np.testing.assert_array_equal(_run(path, x), _run(inline, x))
    size = data.stat().st_size
    assert nx.save(hidden, path) is True  # a second save replaces the data file
    assert data.stat().st_size == size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data",
                                                          "inline.onnx"]


def test_failed_external_write_leaves_the_old_pair(hidden, tmp_path, monkeypatch):
    monkeypatch.setattr(export_write, "EXTERNAL_DATA_THRESHOLD", 100_000)
    path = tmp_path / "big.onnx"
    nx.save(hidden, path)
    before = path.read_bytes(), (tmp_path / "big.onnx.data").read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_write, "_write_inline", fail)
    with pytest.raises(FormatError, match="no space left on device"):
        nx.save(hidden, path)
    assert (path.read_bytes(), (tmp_path / "big.onnx.data").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]


def test_shared_parameters_share_one_initializer(tmp_path):
    net = Network("shared")
    x = net.add("x", "InputValue", shape=(3,))
    w = net.add_parameter("w", np.arange(6, dtype=np.float32).reshape(3, 2))
    w2 = net.add_parameter("w2", w.value)
    a = net.add("a", "Times", inputs=[w, x])
    b = net.add("b", "Times", inputs=[w2, x])
    net.add("y", "Plus", inputs=[a, b])
    net.validate()
    model = nx.to_model(net)
    assert [t.name for t in model.graph.initializer if t.dims == [3, 2]] == ["w"]
    path = tmp_path / "s.onnx"
    nx.save(net, path)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": np.ones((1, 3), np.float32)})[0]
    np.testing.assert_allclose(got, 2 * np.ones((1, 3)) @ w.value)
