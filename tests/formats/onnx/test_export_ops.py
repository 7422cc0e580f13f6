"""Every op of the runtime's reference table exported to ONNX and run in onnxruntime, against
the same numpy references (tests/runtime/test_op_reference.py): the ONNX graph computes what
the PyTorch runtime computes.

Feed-forward cases feed their real frames as the batch (the padding of a criterion case is
left out: without a delay the export has no lengths input); delay cases run in sequence mode,
(batch, time, ...) plus lengths. Recurrent loops become Scan (the running-sum loops below).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from tests.runtime.test_op_reference import CASES, LENGTHS, B, T, X, build, expected, seq

import netsurgeon.formats.onnx as nx
from netsurgeon.errors import FormatError
from netsurgeon.graph import Network
from netsurgeon.ops import OPS

#: runtime cases whose op the ONNX layer refuses, with the reason it gives
REFUSED = {"CosDistanceWithNegativeSamples": "cyclic shift", "TimesPlus": "internal op",
           "ConvolutionPlus": "internal op"}


def session(model) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def run(net: Network, feeds: dict[str, np.ndarray], outputs=("y",)) -> list[np.ndarray]:
    model = nx.to_model(net, list(outputs))
    onnx.checker.check_model(model, full_check=True)
    sess = session(model)
    wanted = {i.name for i in sess.get_inputs()}
    return sess.run(None, {k: v for k, v in feeds.items() if k in wanted})


def _mask() -> np.ndarray:
    return np.arange(T)[None, :] < np.asarray(LENGTHS)[:, None]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_matches_numpy(case):
    net, _ = build(case)
    if case.op in REFUSED:
        with pytest.raises(FormatError, match=f"'y' \\({case.op}\\).*{REFUSED[case.op]}"):
            nx.to_model(net, ["y"])
        return
    sequences = any(n.op in ("PastValue", "FutureValue") for n in net.nodes)
    feeds = {}
    for i, spec in enumerate(case.inputs):
        if isinstance(spec, X):
            data = spec.data.astype(np.float32)
            if case.lengths and not sequences:
                data = data[_mask()]  # the real frames only
            feeds[f"x{i}"] = data
    if sequences:
        feeds["lengths"] = np.asarray(LENGTHS, np.int64)
    (got,) = run(net, feeds)
    want = expected(case)
    if case.lengths and not case.total:
        mask = _mask()
        want = want[mask]
        got = got[mask] if sequences else got
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=case.tol, atol=case.tol)


def test_every_op_with_an_onnx_entry_has_a_case():
    covered = {c.op for c in CASES} | {"InputValue", "SparseInputValue", "LearnableParameter",
                                       "EnvironmentInput", "Mean", "InvStdDev",
                                       "GroupedConvolution"}
    missing = sorted(op.name for op in OPS
                     if OPS.entry("onnx", op.name) is not None and op.name not in covered)
    assert missing == []


def _loop(op: str, step_input: bool = False) -> Network:
    """y = x + Delay(y): a running sum over each sequence (backwards for FutureValue)."""
    net = Network("loop")
    x = net.add("x", "InputValue", shape=(2,))
    inputs = (None, net.add_parameter("i", np.float32([0.5, -0.5]))) if step_input else (None,)
    d = net.add("d", op, inputs=inputs, attrs={"initial_state": 0.0}, shape=(2,))
    y = net.add("y", "Plus", inputs=(x, d))
    net.set_input(d, 0, y)
    net.add_to_group("output", y)
    net.validate()
    return net


@pytest.mark.parametrize("op", ["PastValue", "FutureValue"])
@pytest.mark.parametrize("init", [False, True])
def test_recurrent_loop_becomes_a_scan_over_variable_lengths(op, init):
    xs = seq(2)
    net = _loop(op, init)
    model = nx.to_model(net)
    assert [n.op_type for n in model.graph.node].count("Scan") == 1
    (got,) = run(net, {"x": xs, "lengths": np.asarray(LENGTHS, np.int64)})
    start = np.float64([0.5, -0.5]) if init else np.zeros(2)
    want = np.zeros((B, T, 2))
    for b, n in enumerate(LENGTHS):
        part = xs[b, :n].astype(np.float64)
        want[b, :n] = np.cumsum(part, 0) + start if op == "PastValue" else \
            np.cumsum(part[::-1], 0)[::-1] + start
    mask = _mask()
    np.testing.assert_allclose(got[mask], want[mask], rtol=1e-5, atol=1e-5)


def test_environment_input_is_0():
    net = Network("env")
    x = net.add("x", "InputValue", shape=(2,))
    e = net.add("e", "EnvironmentInput")
    net.add("y", "ElementTimes", inputs=(x, e))
    net.validate()
    (got,) = run(net, {"x": np.ones((3, 2), np.float32)})
    assert np.all(got == 0)


def test_grouped_convolution_matches_the_runtime():
    import netsurgeon

    rng = np.random.default_rng(3)
    net = Network("grouped")
    x = net.add("x", "InputValue", shape=(4, 5, 6))
    w = net.add_parameter("w", rng.standard_normal((6, 2, 3, 3)).astype(np.float32))
    net.add("y", "GroupedConvolution", inputs=[w, x],
            attrs={"kernel_shape": (3, 3), "groups": 2, "strides": (1, 2), "lower_pad": (1, 0),
                   "upper_pad": (1, 2)})
    net.validate()
    xs = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    (got,) = run(net, {"x": xs})
    want = netsurgeon.evaluate(net, {"x": xs}, ["y"])["y"]
    np.testing.assert_allclose(got, want.reshape(got.shape), rtol=1e-5, atol=1e-5)


def test_argmax_is_onnx_argmax_cast_to_float_and_two_axes_are_refused():
    """ReduceElements Argmax/Argmin: ArgMax/ArgMin (first index on ties) + Cast to float;
    the runtime cases above check the values."""
    net, _ = build(next(c for c in CASES if c.id == "ReduceElements-argmin-drop"))
    ops = [n.op_type for n in nx.to_model(net, ["y"]).graph.node]
    assert "ArgMin" in ops and ops[ops.index("ArgMin") + 1] == "Cast"
    from tests.runtime.test_op_reference import Case, normal

    net, _ = build(Case("argmax-two-axes", "ReduceElements", [X(normal(B, 2, 3))], None,
                        attrs={"operation": "Argmax"}))
    with pytest.raises(FormatError, match=r"'y' \(ReduceElements\).*Argmax over 2 sample axes"):
        nx.to_model(net, ["y"])
