"""The ONNX package's own backend cases through netsurgeon's importer and torch runtime
(``netsurgeon.runtime.onnx_backend``): every model-zoo ``light`` network matches its stored
output, and a few node cases per supported op family pass (bench/onnx_backend_report.py runs
them all)."""

from __future__ import annotations

import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import numpy_helper  # noqa: E402

from netsurgeon.errors import FormatError  # noqa: E402
from netsurgeon.runtime.onnx_backend import NetsurgeonBackend  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
SLOW = {"vgg19", "zfnet512", "inception_v1", "resnet50", "densenet121", "bvlc_alexnet"}
NETWORKS = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
            "shufflenet", "squeezenet", "vgg19", "zfnet512"]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in NETWORKS])
def test_light_network_matches_stored_output(name):
    from onnx.backend.test.runner import Runner

    file = f"light_{name}.onnx"
    model = onnx.load(os.path.join(LIGHT, file))
    inits = {i.name for i in model.graph.initializer}
    inputs = [Runner.generate_dummy_data(x, seed=0, name=file, random=False)
              for x in model.graph.input if x.name not in inits]
    t = onnx.TensorProto()
    with open(os.path.join(LIGHT, f"light_{name}_output_0.pb"), "rb") as f:
        t.ParseFromString(f.read())
    want = numpy_helper.to_array(t)
    got = NetsurgeonBackend.prepare(model).run(inputs)[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-3, atol=1e-5)


_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)


def _model(op, attrs=None, consts=(), shape=(2, 3, 6, 6), outputs=1, opset=17):
    """A one-node model: data input ``x`` of ``shape``, then constant inputs (initializers)."""
    from onnx import TensorProto, helper

    names = ["x"] + [f"c{i}" for i in range(len(consts))]
    outs = ["y"] + [f"y{i}" for i in range(1, outputs)]
    node = helper.make_node(op, names, outs, **(attrs or {}))
    inits = [numpy_helper.from_array(np.asarray(c), n) for n, c in zip(names[1:], consts)]
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, list(shape))], [onnx.ValueInfoProto(name="y")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    out = onnx.shape_inference.infer_shapes(model).graph.value_info
    del model.graph.output[:]
    model.graph.output.append(next((v for v in out if v.name == "y"), None) or
                              helper.make_tensor_value_info("y", TensorProto.FLOAT, []))
    return model


NODE_CASES = {
    "relu": ("Relu", {}, ()), "sigmoid": ("Sigmoid", {}, ()), "leaky": ("LeakyRelu", {}, ()),
    "hardswish": ("HardSwish", {}, ()), "clip": ("Clip", {}, (np.float32(-.5), np.float32(.5))),
    "add_bcast": ("Add", {}, (np.ones((6, 1), np.float32),)),
    "div_const": ("Div", {}, (np.full((6,), 2, np.float32),)),
    "max_scalar": ("Max", {}, (np.float32(0.25),)), "min_scalar": ("Min", {}, (np.float32(0),)),
    "pow2": ("Pow", {}, (np.float32(2),)), "pow_half": ("Pow", {}, (np.float32(-1),)),
    "pow3": ("Pow", {}, (np.float32(3),)),
    "conv_pads": ("Conv", {"pads": [1, 0, 1, 2], "strides": [2, 1]},
                  (_RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),)),
    "conv_group": ("Conv", {"group": 3}, (_RNG.standard_normal((6, 1, 3, 3))
                                          .astype(np.float32),)),
    "maxpool_ceil": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
                     ()),
    "avgpool_pads": ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, ()),
    "global_avg": ("GlobalAveragePool", {}, ()),
    "batchnorm": ("BatchNormalization", {}, tuple(_RNG.uniform(.5, 1.5, 3).astype(np.float32)
                                                  for _ in range(4))),
    "lrn": ("LRN", {"size": 3, "alpha": 0.01, "beta": 0.6, "bias": 2.0}, ()),
    "lrn_even": ("LRN", {"size": 2}, ()),
    "reduce_mean": ("ReduceMean", {"keepdims": 0}, (np.asarray([2, 3]),), (2, 3, 6, 6), 1, 18),
    "reduce_sum": ("ReduceSum", {}, (np.asarray([1]),)),
    "reshape": ("Reshape", {}, (np.asarray([0, -1, 4]),)),
    "flatten": ("Flatten", {}, ()), "transpose": ("Transpose", {"perm": [0, 2, 3, 1]}, ()),
    "slice": ("Slice", {}, (np.asarray([1, -4]), np.asarray([3, 100]), np.asarray([1, 3]))),
    "slice_step": ("Slice", {}, (np.asarray([0]), np.asarray([6]), np.asarray([2]),
                                 np.asarray([2]))),
    "softmax": ("Softmax", {"axis": 1}, (), (2, 5)),
    "dropout_mask_unused": ("Dropout", {}, (), (2, 3, 6, 6), 2),
    "max_tensor": ("Max", {}, (np.linspace(-1, 1, 6).astype(np.float32),)),
    "elu": ("Elu", {"alpha": 0.5}, ()), "softplus": ("Softplus", {}, ()),
    "prelu": ("PRelu", {}, (np.float32([[[0.1]], [[-0.2]], [[0.3]]]),)),
    "pad_reflect": ("Pad", {"mode": "reflect"}, (np.asarray([0, 0, 1, 2, 0, 0, 3, 0]),)),
    "split": ("Split", {"axis": 1}, (np.asarray([1, 2]),), (2, 3, 6, 6), 2),
    "tile": ("Tile", {}, (np.asarray([1, 2, 1, 1]),)),
    "gather": ("Gather", {"axis": 2}, (np.asarray([5, 0, 1]),)),
    "layer_norm": ("LayerNormalization", {"axis": 1}, (np.float32(1.5),)),
    "depth_to_space": ("DepthToSpace", {"blocksize": 1}, ()),
    "upsample_nearest": ("Resize", {}, (np.float32([]), np.float32([1, 1, 2, 3]))),
}


def _lrn(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    """ONNX LRN over the channel window [c - floor((size-1)/2), c + ceil((size-1)/2)]
    (onnx.reference's LRN loops over the batch axis instead of the channels)."""
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), (lo, hi), (0, 0), (0, 0)))
    total = sum(sq[:, i:i + x.shape[1]] for i in range(size))
    return (x / (bias + alpha / size * total) ** beta).astype(np.float32)


@pytest.mark.parametrize("name", sorted(NODE_CASES))
def test_node_case(name):
    from onnx.reference import ReferenceEvaluator

    op, attrs, consts, *rest = NODE_CASES[name]
    model = _model(op, attrs, consts, *rest)
    x = X if not rest else _RNG.standard_normal(rest[0]).astype(np.float32)
    want = _lrn(x, **attrs) if op == "LRN" else ReferenceEvaluator(model).run(None, {"x": x})[0]
    got = NetsurgeonBackend.prepare(model).run([x])[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model,why", [
    (("Gelu", {}, (), (2, 3, 6, 6), 1, 20),
     r"\(Gelu\): Gelu is supported with approximate='tanh' only"),
    (("ArgMax", {"axis": 1, "select_last_index": 1}, ()),
     r"\(ArgMax\): ArgMax with select_last_index 1 is not supported"),
    (("Slice", {}, (np.asarray([3]), np.asarray([0]), np.asarray([1]), np.asarray([-1]))),
     r"\(Slice\): Slice with step -1 is not supported"),
    (("Dropout", {}, (np.float32(.5), np.asarray(True)), (2, 3, 6, 6)),
     r"\(Dropout\): training-mode Dropout is not supported"),
    (("Scan", {"num_scan_inputs": 1, "body": None}, ()), r"\(Scan\): Scan is supported in "
                                                         "sequence models"),
], ids=["gelu_erf", "argmax", "slice_back", "dropout_training", "scan"])
def test_unsupported_node_is_one_line(model, why):
    from onnx import helper

    op, attrs, consts, *rest = model
    if op == "Scan":
        body = helper.make_graph([], "b", [], [])
        attrs = {"num_scan_inputs": 1, "body": body}
    with pytest.raises(FormatError, match=why) as err:
        NetsurgeonBackend.prepare(_model(op, attrs, consts, *rest))
    assert "\n" not in str(err.value)


def test_a_sequence_model_takes_its_lengths_through_the_backend(cntk_dir, tmp_path):
    """netsurgeon's own export of the slu LSTM: (batch, time, 943) plus ``lengths``, fed by
    position or by name, equals onnxruntime on every real frame."""
    import onnx
    import onnxruntime as ort

    import netsurgeon
    from netsurgeon.formats import onnx as onnx_format

    path = tmp_path / "slu.onnx"
    onnx_format.save(netsurgeon.load(cntk_dir / "models" / "slu.forward.nobn.cmf"), path, ["z"])
    rep = NetsurgeonBackend.prepare(onnx.load(str(path)))
    rng = np.random.RandomState(0)
    x = np.zeros((3, 5, 943), np.float32)
    x[np.arange(3)[:, None], np.arange(5)[None], rng.randint(0, 943, (3, 5))] = 1
    lengths = np.array([5, 3, 4], np.int64)
    by_name = rep.run({"query": x, "lengths": lengths})[0]
    by_position = rep.run([x, lengths])[0]
    want = ort.InferenceSession(str(path)).run(None, {"query": x, "lengths": lengths})[0]
    np.testing.assert_array_equal(by_name, by_position)
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(by_name[b, :n], want[b, :n], rtol=1e-4, atol=1e-5)
