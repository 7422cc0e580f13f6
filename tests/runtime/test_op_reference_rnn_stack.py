"""OptimizedRNNStack against a hand-written numpy LSTM / GRU / RNN over the same flat weights.

The reference reads the weights in cuDNN's canonical layout on its own (it does not use the
runtime's ``weight_layout``): for each layer and direction the input matrices of the gates,
then the recurrent matrices, each ``(hidden, in)`` row-major; after every matrix, in the same
layer/direction order, the input biases of the gates, then the recurrent biases. Gates: LSTM
i, f, g, o; GRU r, z, n. Sequences are padded, with other values in the padding, so padding
leaking into the backward direction (or anywhere) shows.

No CNTK oracle: CNTK 2.7's CPU build cannot run OptimizedRNNStack (it is cuDNN only), so these
numbers are checked against this reference only. The cases reuse the harness of
``test_op_reference`` (Case, X, C, build, expected).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.runtime.test_op_reference import LENGTHS, C, Case, X, build, expected, normal, seq

import netsurgeon
from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network

GATES = {"lstm": 4, "gru": 3, "rnnTanh": 1, "rnnReLU": 1}


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def cudnn_size(mode, inputs, hidden, layers, bidirectional):
    g, dirs = GATES[mode], 2 if bidirectional else 1
    return sum(dirs * g * hidden * ((inputs if k == 0 else hidden * dirs) + hidden + 2)
               for k in range(layers))


def split_cudnn(w, mode, inputs, hidden, layers, bidirectional):
    """{(layer, direction): (W gates, R gates, bW gates, bR gates)} from the flat weights."""
    flat, g, dirs = w.reshape(-1), GATES[mode], 2 if bidirectional else 1
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        out = flat[pos:pos + n].reshape(shape)
        pos += n
        return out

    mats = {}
    for k in range(layers):
        width = inputs if k == 0 else hidden * dirs
        for d in range(dirs):
            mats[k, d] = ([take(hidden, width) for _ in range(g)],
                          [take(hidden, hidden) for _ in range(g)])
    out = {}
    for k in range(layers):
        for d in range(dirs):
            out[k, d] = mats[k, d] + ([take(hidden) for _ in range(g)],
                                      [take(hidden) for _ in range(g)])
    assert pos == flat.size
    return out


def cell(mode, p, x, h, c):
    W, R, bW, bR = p

    def pre(i, with_r=True):
        return W[i] @ x + bW[i] + ((R[i] @ h + bR[i]) if with_r else 0)

    if mode == "lstm":
        i, f, o = _sigmoid(pre(0)), _sigmoid(pre(1)), _sigmoid(pre(3))
        c = f * c + i * np.tanh(pre(2))
        return o * np.tanh(c), c
    if mode == "gru":
        r, z = _sigmoid(pre(0)), _sigmoid(pre(1))
        n = np.tanh(pre(2, False) + r * (R[2] @ h + bR[2]))
        return (1 - z) * n + z * h, c
    a = pre(0)
    return (np.tanh(a) if mode == "rnnTanh" else np.maximum(a, 0)), c


def rnn_stack_ref(w, x, mode, hidden, layers=1, bidirectional=False, lengths=LENGTHS):
    """numpy OptimizedRNNStack of a padded (batch, time, *sample) batch."""
    b, t = x.shape[:2]
    x = x.reshape(b, t, -1)
    params = split_cudnn(w, mode, x.shape[2], hidden, layers, bidirectional)
    dirs = 2 if bidirectional else 1
    out = np.zeros((b, t, dirs * hidden))
    for s, n in enumerate(lengths):
        inp = x[s, :n]
        for k in range(layers):
            per_dir = []
            for d in range(dirs):
                h, c = np.zeros(hidden), np.zeros(hidden)
                ys = np.zeros((n, hidden))
                for step in (range(n) if d == 0 else reversed(range(n))):
                    h, c = cell(mode, params[k, d], inp[step], h, c)
                    ys[step] = h
                per_dir.append(ys)
            inp = np.concatenate(per_dir, 1)
        out[s, :n] = inp
    return out


def rnn_case(mode, hidden, layers, bidirectional, sample=(3,), w_shape=None, suffix=""):
    inputs = int(np.prod(sample))
    n = cudnn_size(mode, inputs, hidden, layers, bidirectional)
    w = (0.6 * normal(n)).reshape(w_shape(n, inputs) if w_shape else (n,))
    attrs = {"recurrent_op": mode, "hidden_size": hidden, "num_layers": layers,
             "bidirectional": bidirectional}
    name = f"{mode}-{layers}-layer{'-bidirectional' if bidirectional else ''}{suffix}"
    return Case(name, "OptimizedRNNStack", [C(w), X(seq(*sample))],
                lambda w, x: rnn_stack_ref(w, x, mode, hidden, layers, bidirectional),
                attrs=attrs, lengths=LENGTHS)


CASES = [rnn_case(mode, 2 if mode == "lstm" else 3, layers, bidi)
         for mode in ("lstm", "gru", "rnnTanh", "rnnReLU")
         for layers in (1, 2) for bidi in (False, True)] + [
    # CNTK's Python API declares W as (Inferred, inputDim): numpy (n / inputDim, inputDim)
    rnn_case("lstm", 4, 1, True, w_shape=lambda n, i: (n // i, i), suffix="-W-matrix"),
    # a sample of several axes is one input vector of their product
    rnn_case("gru", 2, 2, True, sample=(2, 3), suffix="-sample-2x3"),
]
# the spellings of files before v14
for _old, _new in (("LSTM", "lstm"), ("GRU", "gru"), ("RNN_TANH", "rnnTanh")):
    _c = rnn_case(_new, 2, 1, True, suffix=f"-spelled-{_old}")
    _c.attrs["recurrent_op"] = _old
    CASES.append(_c)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rnn_stack_matches_numpy(case: Case):
    net, feeds = build(case)
    got = netsurgeon.evaluate(net, feeds, ["y"], lengths=case.lengths)["y"]
    want = expected(case)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=case.tol, atol=case.tol)


def test_the_reference_reads_pytorchs_cudnn_view_of_the_weights():
    """The reference's gate formulas agree with torch.nn.LSTM given the same matrices (a check
    of the reference itself, independent of the runtime)."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 2, num_layers=2, bidirectional=True, batch_first=True)
    weights, biases = [], []
    for k in range(2):
        for sfx in ("", "_reverse"):
            weights += [getattr(lstm, f"weight_{g}_l{k}{sfx}") for g in ("ih", "hh")]
            biases += [getattr(lstm, f"bias_{g}_l{k}{sfx}") for g in ("ih", "hh")]
    flat = torch.cat([p.detach().reshape(-1) for p in weights + biases]).double().numpy()
    x = seq(3).astype(np.float64)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x).float(),
                                                     torch.tensor(LENGTHS), batch_first=True,
                                                     enforce_sorted=False)
    with torch.no_grad():
        y = torch.nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True,
                                                   total_length=x.shape[1])[0].numpy()
    np.testing.assert_allclose(rnn_stack_ref(flat, x, "lstm", 2, 2, True), y, atol=1e-5)


def test_padding_does_not_reach_the_backward_direction():
    case = rnn_case("lstm", 2, 2, True)
    net, feeds = build(case)
    first = netsurgeon.evaluate(net, feeds, ["y"], lengths=LENGTHS)["y"]
    x = feeds["x1"].copy()
    real = np.arange(x.shape[1])[None, :] < np.asarray(LENGTHS)[:, None]
    x[~real] = 1e3
    again = netsurgeon.evaluate(net, {"x1": x}, ["y"], lengths=LENGTHS)["y"]
    np.testing.assert_array_equal(first, again)
    assert np.all(again[~real] == 0)


def _net(mode="lstm", hidden=2, layers=1, bidirectional=False, w=None, delay=False, **attrs):
    """x -> OptimizedRNNStack -> y; with ``delay`` also an output PastValue(x)."""
    net = Network("rnn")
    x = net.add("x", "InputValue", shape=(3,))
    if w is None:
        w = 0.5 * normal(cudnn_size(mode, 3, hidden, layers, bidirectional))
    weights = net.add_parameter("W", w)
    y = net.add("y", "OptimizedRNNStack", inputs=(weights, x),
                attrs={"recurrent_op": mode, "hidden_size": hidden, "num_layers": layers,
                       "bidirectional": bidirectional, **attrs})
    net.add_to_group("output", y)
    if delay:
        net.add_to_group("output", net.add("d", "PastValue", inputs=(x,), shape=(3,)))
    net.validate()
    return net


def _ref(net, x, mode, hidden, layers, bidirectional):
    return rnn_stack_ref(net.node("W").value.astype(np.float64), x.astype(np.float64), mode,
                         hidden, layers, bidirectional)


def test_training_mode_gives_the_weights_a_gradient():
    net = _net("gru", 3, 2, True, delay=True)
    module = netsurgeon.to_torch(net).train()
    x = seq(3)
    y = module(x=torch.from_numpy(x), lengths=torch.tensor(LENGTHS))["y"]
    np.testing.assert_allclose(y.detach().numpy(), _ref(net, x, "gru", 3, 2, True), atol=1e-5)
    y.sum().backward()
    (grad,) = [p.grad for p in module.parameters()]
    assert grad is not None and grad.shape == net.node("W").value.shape
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_standalone_module_runs_the_stack(tmp_path, monkeypatch):
    import importlib

    from netsurgeon.runtime.standalone import write_module

    net = _net("lstm", 2, 2, True, delay=True)
    write_module(net, tmp_path / "rnn_stack_m.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("rnn_stack_m").load()
    x = seq(3)
    with torch.no_grad():
        got = module(x=torch.from_numpy(x), lengths=torch.tensor(LENGTHS))["y"].numpy()
    np.testing.assert_allclose(got, _ref(net, x, "lstm", 2, 2, True), atol=1e-5)


def test_a_module_of_a_stack_without_delays_takes_sequences():
    """A recurrent op makes a torch module a sequence module (time axis, lengths=), not only
    PastValue/FutureValue."""
    net = _net("lstm", 2, 1, False)
    module = netsurgeon.to_torch(net, ["y"])
    x = seq(3)
    with torch.no_grad():
        got = module(x=torch.from_numpy(x), lengths=torch.tensor(LENGTHS))["y"].numpy()
    np.testing.assert_allclose(got, _ref(net, x, "lstm", 2, 1, False), atol=1e-5)


@pytest.mark.parametrize("build_net, message", [
    (lambda: _net(w=normal(7)), "needs 56"),
    (lambda: _net(axis=-2), "dynamic axis"),
], ids=["weight-count", "spatial-axis"])
def test_what_the_kernel_cannot_run_is_an_error_naming_the_node(build_net, message):
    try:
        net = build_net()
    except Exception as exc:  # the shape rule may refuse first; then nothing to evaluate
        pytest.skip(f"refused at validation: {exc}")
    with pytest.raises(EvaluationError, match=message) as info:
        netsurgeon.evaluate(net, {"x": normal(2, 4, 3)}, ["y"], lengths=[4, 2])
    assert info.value.node == "y"


def test_unknown_recurrent_op_is_an_error():
    net = _net(w=normal(56), recurrent_op="peephole")
    with pytest.raises(EvaluationError, match="unknown recurrent_op 'peephole'"):
        netsurgeon.evaluate(net, {"x": normal(2, 4, 3)}, ["y"], lengths=[4, 2])


def test_the_op_has_a_kernel_and_cases_here():
    import netsurgeon.runtime  # noqa: F401
    from netsurgeon.ops import OPS

    assert OPS.op("OptimizedRNNStack").has_math
    assert OPS.entry("torch", "OptimizedRNNStack") is not None
    assert {c.op for c in CASES} == {"OptimizedRNNStack"}


def _infer_w(w_shape, x_shape, **attrs):
    """(output shape, W's shape after inference) by the registry's OptimizedRNNStack rule."""
    from netsurgeon.ops import OPS
    from netsurgeon.ops._spec import ShapeContext

    full = {"recurrent_op": "lstm", "num_layers": 1, "bidirectional": False, "axis": 1} | attrs
    ctx = ShapeContext("OptimizedRNNStack", "y", full, [w_shape, x_shape], [False, True],
                       input_ops=["LearnableParameter", "InputValue"])
    out = OPS.op("OptimizedRNNStack").infer_shape(ctx)
    return tuple(out), tuple(ctx.shapes[0])


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnnTanh", "rnnReLU", "RNN_RELU"])
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (3, True)])
def test_unknown_weights_get_cudnns_count(mode, layers, bidirectional):
    from netsurgeon.runtime.lowerings.rnn_stack import rnn_mode, weight_count

    want = cudnn_size(rnn_mode(mode), 6, 5, layers, bidirectional)
    assert weight_count(rnn_mode(mode), 6, 5, layers, bidirectional) == want
    # BrainScript's ParameterTensor {0:0}: CNTK [count x 1]; the sample (2, 3) is 6 inputs
    out, w = _infer_w((0, 0), (2, 3), recurrent_op=mode, hidden_size=5, num_layers=layers,
                      bidirectional=bidirectional)
    assert w == (1, want) and out == (10 if bidirectional else 5,)


def test_a_single_unknown_weight_dimension_is_completed():
    n = cudnn_size("gru", 4, 2, 1, False)  # 3 * 2 * (4 + 2 + 2) = 48
    assert _infer_w((0, 4), (4,), recurrent_op="gru", hidden_size=2)[1] == (n // 4, 4)
    assert _infer_w((0,), (4,), recurrent_op="gru", hidden_size=2)[1] == (n,)
    assert _infer_w((7, 7), (4,), recurrent_op="gru", hidden_size=2)[1] == (7, 7)  # known: kept
    with pytest.raises(netsurgeon.errors.ShapeError, match=r"cannot infer input 0 .* 48 "
                                                           "elements"):
        _infer_w((0, 5), (4,), recurrent_op="gru", hidden_size=2)
    # a network is refused at validation, naming the node
    with pytest.raises(netsurgeon.errors.ShapeError, match=r"node 'y'.*\(0, 3\) to hold 56"):
        _net(w=np.zeros((0, 3), np.float32))
