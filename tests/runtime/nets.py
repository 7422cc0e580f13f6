"""Small networks built with the graph API for the runtime tests."""

from __future__ import annotations

import numpy as np

from netsurgeon.graph import Network


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def conv_pads(k, s, n, auto, lo, hi):
    """Low/high padding of one axis, as CNTK: ⌊(k−1)/2⌋ before, the rest after, for odd and
    even kernels (tests/runtime/test_even_auto_padding.py checks it against CNTK 2.7)."""
    if not auto:
        return lo, hi
    out = (n - 1) // s + 1
    total = max((out - 1) * s + k - n, 0)
    low = min((k - 1) // 2, total)
    return low, total - low


def logistic_regression(w=None, b=None) -> Network:
    """CNTK HelloWorld LR: p = Sigmoid(W·x + b); lr = Logistic(labels, p); err = SquareError."""
    net = Network("lr")
    x = net.add("features", "InputValue", shape=(2,))
    y = net.add("labels", "InputValue", shape=(1,))
    W = net.add_parameter("W", np.zeros((2, 1), np.float32) if w is None else w)
    B = net.add_parameter("b", np.zeros((1,), np.float32) if b is None else b)
    t = net.add("t", "Times", inputs=(W, x))
    z = net.add("z", "Plus", inputs=(t, B))
    p = net.add("p", "Sigmoid", inputs=(z,))
    lr = net.add("lr", "Logistic", inputs=(y, p))
    err = net.add("err", "SquareError", inputs=(y, p))
    net.add_to_group("feature", x)
    net.add_to_group("label", y)
    net.add_to_group("criterion", lr)
    net.add_to_group("evaluation", err)
    net.add_to_group("output", p)
    net.validate()
    return net


def mlp(din=6, dh=5, dout=3, seed=0) -> Network:
    """features -> Sigmoid(W1 x + b1) -> W2 h + b2 = z; ce, errs."""
    r = rng(seed)
    net = Network("mlp")
    x = net.add("features", "InputValue", shape=(din,))
    y = net.add("labels", "InputValue", shape=(dout,))
    W1 = net.add_parameter("L1.W", r.normal(size=(din, dh)).astype(np.float32))
    b1 = net.add_parameter("L1.b", r.normal(size=(dh,)).astype(np.float32))
    W2 = net.add_parameter("L2.W", r.normal(size=(dh, dout)).astype(np.float32))
    b2 = net.add_parameter("L2.b", r.normal(size=(dout,)).astype(np.float32))
    h = net.add("L1.s", "Sigmoid", inputs=(net.add("L1.z", "Plus", inputs=(
        net.add("L1.t", "Times", inputs=(W1, x)), b1)),))
    z = net.add("z", "Plus", inputs=(net.add("L2.t", "Times", inputs=(W2, h)), b2))
    ce = net.add("ce", "CrossEntropyWithSoftmax", inputs=(y, z))
    errs = net.add("errs", "ClassificationError", inputs=(y, z))
    net.add_to_group("criterion", ce)
    net.add_to_group("evaluation", errs)
    net.add_to_group("output", z)
    net.validate()
    return net


def rnn(din=3, dh=4, op="PastValue", init=0.1, step=1, seed=0) -> Network:
    """h = Tanh(Wx·x + Wh·Delay(h)); out = h."""
    r = rng(seed)
    net = Network("rnn")
    x = net.add("x", "InputValue", shape=(din,))
    Wx = net.add_parameter("Wx", r.normal(size=(din, dh)).astype(np.float32))
    Wh = net.add_parameter("Wh", r.normal(size=(dh, dh)).astype(np.float32) * 0.5)
    d = net.add("d", op, inputs=(None,), attrs={"time_step": step, "initial_state": init},
                shape=(dh,))
    a = net.add("a", "Plus", inputs=(net.add("ax", "Times", inputs=(Wx, x)),
                                     net.add("ah", "Times", inputs=(Wh, d))))
    h = net.add("h", "Tanh", inputs=(a,))
    net.set_input(d, 0, h)
    net.add_to_group("output", h)
    net.validate()
    return net


def rnn_reference(net: Network, xs: np.ndarray, length: int, backward=False, init=0.1, step=1):
    """numpy loop over one sequence xs (T, din) of the rnn() network."""
    Wx, Wh = net.node("Wx").value.astype(np.float64), net.node("Wh").value.astype(np.float64)
    dh = Wh.shape[0]
    out = np.zeros((length, dh))
    order = range(length - 1, -1, -1) if backward else range(length)
    for t in order:
        src = t + step if backward else t - step
        prev = out[src] if 0 <= src < length else np.full(dh, init)
        out[t] = np.tanh(xs[t] @ Wx + prev @ Wh)
    return out
