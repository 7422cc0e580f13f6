"""Every PyTorch lowering against a numpy reference, on tiny networks built with the graph API.

One table of cases: (op, attributes, input arrays, numpy reference). Each case builds a
network ``inputs -> op -> y`` (frame inputs are InputValue / SparseInputValue nodes, the
others constant parameters), runs it through ``netsurgeon.evaluate`` and compares with the
reference computed in float64. Criteria run on padded sequences (the padding must not count);
delays run on sequences, in and outside recurrent loops; sparse inputs reach the lowerings that
accept them; Dropout and BatchNormalization also run in training mode.

The cases of ``ClassBasedCrossEntropyWithSoftmax``, ``EditDistanceError``, ``LambdaRank``,
``NDCG1Eval``, ``MaxUnpooling``, ``ROIPooling``, ``OptimizedRNNStack``, ``TimeReverse``,
``Shift``, ``GMMLogLikelihood``, ``Where``, ``PackedIndex``, ``GatherPacked`` and
``ScatterPacked`` are in the sibling ``test_op_reference_*.py`` files (with their CNTK 2.7
oracle checks where CNTK computes them); the coverage test below counts them.

Ops with math that have no reference here, and why:

* ``DynamicAxis``: a declaration, not a value.
* ``InputValue``, ``SparseInputValue``, ``LearnableParameter``: no computation of their own;
  every case below feeds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from tests.runtime import nets

import netsurgeon
from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network
from netsurgeon.runtime import Evaluator, compile_network
from netsurgeon.runtime.batch import Minibatch, SparseRows
from netsurgeon.runtime.evaluate import batch_from_arrays

R = np.random.default_rng(1234)
B, T = 3, 4
LENGTHS = [4, 2, 3]


# ---- inputs -------------------------------------------------------------------------------
@dataclass
class X:
    """A frame input: ``data`` (batch, *sample), or (batch, time, *sample) for sequences."""

    data: np.ndarray
    sparse: bool = False  # fed as a SparseRows stream
    op: str = "InputValue"


@dataclass
class C:
    """A constant (a LearnableParameter with learning-rate multiplier 0)."""

    value: np.ndarray


def normal(*shape) -> np.ndarray:
    return R.normal(size=shape).astype(np.float32)


def uniform(lo, hi, *shape) -> np.ndarray:
    return R.uniform(lo, hi, size=shape).astype(np.float32)


def onehot(n, *lead) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[R.integers(0, n, lead)]


def ints(*shape) -> np.ndarray:
    return R.integers(0, 3, shape).astype(np.float32)


def seq(*sample, fn=normal) -> np.ndarray:
    """A padded (B, T, *sample) batch whose padding holds other values (that must not count)."""
    return fn(B, T, *sample)


# ---- references ---------------------------------------------------------------------------
def softmax(z, axes):
    e = np.exp(z - z.max(axes, keepdims=True))
    return e / e.sum(axes, keepdims=True)


def per_sample(z):
    """The sample axes of a (batch, *sample) array (a column in CNTK)."""
    return tuple(range(1, z.ndim))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def cos(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def pads(k, s, n, auto, lo=0, hi=0):
    return nets.conv_pads(k, s, n, auto, lo, hi)


def conv_ref(x, w, stride=(1, 1), auto=(True, True), bias=None):
    """numpy (batch, C, H, W) convolved with (M, C, kh, kw), CNTK padding."""
    kh, kw = w.shape[2:]
    ph = pads(kh, stride[0], x.shape[2], auto[0])
    pw = pads(kw, stride[1], x.shape[3], auto[1])
    xp = np.pad(x, ((0, 0), (0, 0), ph, pw))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    out = np.einsum("bchwij,mcij->bmhw", win, w)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def pool_ref(x, k, s, kind, auto=(False, False)):
    """numpy pooling of (batch, C, H, W); padded cells never count (CNTK)."""
    ph = pads(k[0], s[0], x.shape[2], auto[0])
    pw = pads(k[1], s[1], x.shape[3], auto[1])
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), ph, pw), constant_values=fill)
    real = np.pad(np.ones_like(x), ((0, 0), (0, 0), ph, pw))
    win = sliding_window_view(xp, k, axis=(2, 3))[:, :, ::s[0], ::s[1]]
    if kind == "max":
        return win.max((-2, -1))
    count = sliding_window_view(real, k, axis=(2, 3))[:, :, ::s[0], ::s[1]].sum((-2, -1))
    return win.sum((-2, -1)) / count


def shift(x, lengths, step, init, future=False):
    """PastValue/FutureValue over each sequence of a (batch, time, *sample) array."""
    out = np.zeros_like(x)
    for b, n in enumerate(lengths):
        for t in range(n):
            src = t + step if future else t - step
            out[b, t] = x[b, src] if 0 <= src < n else init
    return out


def bn_ref(x, scale, bias, mean, var, eps=1e-5, spatial=False):
    shape = (1, -1) + (1,) * (x.ndim - 2) if spatial else (1,) + x.shape[1:]
    r = lambda a: a.reshape(shape)
    return (x - r(mean)) / np.sqrt(r(var) + eps) * r(scale) + r(bias)


# ---- the table ----------------------------------------------------------------------------
@dataclass
class Case:
    """One op application. ``ref`` gets the inputs as float64 arrays (frame inputs with their
    batch/time axes) and returns the expected output; for ``total`` cases it returns
    per-frame values and the expected output is their sum over the real frames, shaped (1,)
    (then ``post`` applied), as CNTK's criteria."""

    id: str
    op: str
    inputs: list[X | C]
    ref: Callable[..., np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)
    lengths: list[int] | None = None
    total: bool = False
    post: Callable[[np.ndarray], np.ndarray] | None = None
    tol: float = 1e-5


def unary(op, fn, data=None):
    return Case(op, op, [X(normal(B, 2, 3) if data is None else data)], fn)


def binary(op, fn, a=None, b=None):
    return Case(op, op, [X(normal(B, 2, 3) if a is None else a), C(normal(3) if b is None else b)],
                fn)


def _weighted_logistic(y, p, w):
    """Per-frame −Σ w·[y·log p + (1−y)·log(1−p)] with the weights divided by their mean over
    the real frames (CNTK 2.7 normalises them to average 1 per minibatch)."""
    mask = _mask()
    mean = w[mask].mean()
    return -(w / mean * (y * np.log(p) + (1 - y) * np.log(1 - p))).sum(2)


def criterion(op, inputs, fn, **kw):
    return Case(op + kw.pop("suffix", ""), op, inputs, fn, lengths=LENGTHS, total=True, **kw)


_W43 = normal(4, 3)
_W235 = normal(2, 3, 5)
_W423 = normal(4, 2, 3)
_IMG = normal(B, 3, 6, 7)
_KER = normal(4, 3, 3, 3)
_HWC = normal(B, 6, 7, 3)

CASES = [
    # element-wise, unary
    unary("Abs", np.abs),
    unary("Acos", np.arccos, uniform(-0.9, 0.9, B, 4)),
    unary("Asin", np.arcsin, uniform(-0.9, 0.9, B, 4)),
    unary("Cosh", np.cosh),
    unary("Cosine", np.cos),
    unary("Exp", np.exp),
    unary("Floor", np.floor, normal(B, 5) * 3),
    unary("Log", np.log, uniform(0.2, 3, B, 4)),
    unary("Negate", np.negative),
    unary("Pass", lambda x: x),
    unary("LabelsToGraph", lambda x: x),
    unary("Reciprocal", np.reciprocal, uniform(0.5, 2, B, 4)),
    unary("RectifiedLinear", lambda x: np.maximum(x, 0)),
    unary("Sigmoid", sigmoid),
    unary("StableSigmoid", sigmoid),
    unary("Sin", np.sin),
    unary("Sinh", np.sinh),
    unary("Tan", np.tan, uniform(-1.2, 1.2, B, 4)),
    unary("Atan", np.arctan),
    unary("Asinh", np.arcsinh),
    unary("Atanh", np.arctanh, uniform(-0.9, 0.9, B, 4)),
    unary("ExponentialLinearUnit", lambda x: np.where(x > 0, x, np.expm1(x))),
    unary("Sqrt", np.sqrt, uniform(0.1, 4, B, 4)),
    unary("Tanh", np.tanh),
    unary("StopGradient", lambda x: x),
    unary("StraightThrough", lambda x: np.where(x > 0, 1.0, -1.0)),
    unary("Trace", lambda x: x),
    unary("Dropout", lambda x: x),  # identity at inference
    # per sample (a CNTK column is the whole sample)
    unary("Softmax", lambda z: softmax(z, per_sample(z))),
    unary("LogSoftmax", lambda z: np.log(softmax(z, per_sample(z)))),
    unary("Hardmax", lambda z: (z == z.max(per_sample(z), keepdims=True)).astype(float)),
    Case("Softmax-vector", "Softmax", [X(normal(B, 5))], lambda z: softmax(z, (1,))),
    Case("Hardmax-const", "Hardmax", [C(normal(2, 3))],
         lambda z: (z == z.max()).astype(float)),
    Case("Softmax-const", "Softmax", [C(normal(2, 3))], lambda z: softmax(z, (0, 1))),
    # element-wise, binary, with CNTK broadcasting (numpy order)
    binary("Plus", np.add),
    binary("Minus", np.subtract),
    binary("ElementTimes", np.multiply),
    binary("LogPlus", np.logaddexp),
    binary("Pow", np.power, uniform(0.5, 2.0, B, 2, 3)),
    binary("Less", np.less, ints(B, 2, 3), ints(3)),
    binary("LessEqual", np.less_equal, ints(B, 2, 3), ints(3)),
    binary("Greater", np.greater, ints(B, 2, 3), ints(3)),
    binary("GreaterEqual", np.greater_equal, ints(B, 2, 3), ints(3)),
    binary("Equal", np.equal, ints(B, 2, 3), ints(3)),
    binary("NotEqual", np.not_equal, ints(B, 2, 3), ints(3)),
    Case("Plus-frames-rank", "Plus", [X(normal(B, 3)), C(normal(2, 3))],
         lambda a, b: a[:, None, :] + b),
    Case("Minus-both-frames", "Minus", [X(normal(B, 3)), X(normal(B, 2, 3))],
         lambda a, b: a[:, None, :] - b),
    Case("Clip", "Clip", [C(np.float32([-0.5])), C(np.float32([0.7])), X(normal(B, 2, 3))],
         lambda lo, hi, x: np.clip(x, lo, hi)),
    Case("If", "If", [X(ints(B, 4)), X(normal(B, 4)), C(normal(4))],
         lambda c, a, b: np.where(c != 0, a, b)),
    # linear algebra
    Case("Times", "Times", [C(_W43), X(normal(B, 4))], lambda w, x: x @ w),
    Case("Times-rank2-input", "Times", [C(_W235), X(normal(B, 2, 3))],
         lambda w, x: np.einsum("bij,ijo->bo", x, w)),
    Case("Times-output-rank-2", "Times", [C(_W423), X(normal(B, 4))],
         lambda w, x: np.einsum("bk,kij->bij", x, w), attrs={"output_rank": 2}),
    Case("Times-sparse", "Times", [C(_W43), X(onehot(4, B), sparse=True)],
         lambda w, x: x @ w),
    Case("Times-sparse-rank2-out", "Times", [C(_W423), X(onehot(4, B), sparse=True)],
         lambda w, x: np.einsum("bk,kij->bij", x, w), attrs={"output_rank": 2}),
    Case("Times-frames-A", "Times", [X(normal(B, 4, 3)), X(normal(B, 4))],
         lambda a, x: np.einsum("bko,bk->bo", a, x)),
    Case("Times-frames-A-const-B", "Times", [X(normal(B, 4, 3)), C(normal(4))],
         lambda a, x: np.einsum("bko,k->bo", a, x)),
    Case("Times-const", "Times", [C(_W43), C(normal(4))], lambda w, x: x @ w),
    Case("TimesPlus", "TimesPlus", [C(_W43), X(normal(B, 4)), C(normal(3))],
         lambda w, x, b: x @ w + b),
    Case("TimesPlus-output-rank-2", "TimesPlus", [C(_W423), X(normal(B, 4)), C(normal(2, 3))],
         lambda w, x, b: np.einsum("bk,kij->bij", x, w) + b, attrs={"output_rank": 2}),
    Case("TimesPlus-rank2-input", "TimesPlus", [C(_W235), X(normal(B, 2, 3)), C(normal(1, 5))],
         lambda w, x, b: np.einsum("bij,ijo->bo", x, w)[:, None] + b),
    Case("TransposeTimes", "TransposeTimes", [C(normal(3, 4)), X(normal(B, 4))],
         lambda a, x: x @ a.T),
    Case("transpose-times-frame-A", "TransposeTimes", [X(normal(B, 3, 4)), X(normal(B, 4))],
         lambda a, x: np.einsum("bmk,bk->bm", a, x)),
    Case("transpose-times-frame-vectors", "TransposeTimes", [X(normal(B, 4)), X(normal(B, 4))],
         lambda a, x: (a * x).sum(-1, keepdims=True)),  # v2 criteria blocks: labelsᵀ·p
    Case("DiagTimes", "DiagTimes", [C(normal(3)), X(normal(B, 2, 3))], lambda d, x: x * d),
    Case("KhatriRaoProduct", "KhatriRaoProduct", [X(normal(B, 3)), X(normal(B, 2))],
         lambda a, b: np.einsum("bi,bj->bji", a, b).reshape(B, -1)),
    Case("CosDistance", "CosDistance", [X(normal(B, 4)), X(normal(B, 4))],
         lambda a, b: cos(a, b)[:, None]),
    Case("CosDistanceWithNegativeSamples", "CosDistanceWithNegativeSamples",
         [X(normal(5, 4)), X(normal(5, 4)), C(np.float32([[1]])), C(np.float32([[2]]))],
         lambda a, b, s, n: np.stack([cos(a, b)] + [cos(a, np.roll(b, -(1 + i - 1), 0))
                                                    for i in (1, 2)], 1),
         attrs={"num_negative_samples": 2}),
    Case("LookupTable", "LookupTable", [C(normal(5, 3)), X(onehot(5, B, 2).reshape(B, 10))],
         lambda w, x: (x.reshape(B, 2, 5) @ w).reshape(B, 6)),
    Case("LookupTable-sparse", "LookupTable", [C(normal(5, 3)), X(onehot(5, B), sparse=True)],
         lambda w, x: x @ w),
    Case("LookupTable-sparse-two-words", "LookupTable",
         [C(normal(5, 3)), X(onehot(5, B, 2).reshape(B, 10), sparse=True)],
         lambda w, x: (x.reshape(B, 2, 5) @ w).reshape(B, 6)),
    # reshaping
    Case("Slice", "Slice", [X(normal(B, 3, 5))], lambda x: x[:, :, 1:4],
         attrs={"begin": (1,), "end": (4,), "axis": (-1,)}),
    Case("Slice-stride-to-end", "Slice", [X(normal(B, 6, 4))], lambda x: x[:, 1::2],
         attrs={"begin": (1,), "end": (0,), "axis": (-2,), "stride_multiplier": (2,)}),
    Case("Slice-two-axes-negative-begin", "Slice", [X(normal(B, 3, 5))],
         lambda x: x[:, 0:2, 3:5], attrs={"begin": (-2, 0), "end": (0, 2), "axis": (-1, -2),
                                           "stride_multiplier": (1, 1)}),
    Case("Slice-const", "Slice", [C(normal(4, 3))], lambda x: x[1:3],
         attrs={"begin": (1,), "end": (3,), "axis": (-2,)}),
    Case("RowStack", "RowStack", [X(normal(B, 2, 3)), C(normal(2, 1))],
         lambda a, c: np.concatenate([a, np.broadcast_to(c, (B, 2, 1))], -1)),
    Case("RowStack-broadcast-size-1", "RowStack", [X(normal(B, 2, 3)), X(normal(B, 1, 2))],
         lambda a, b: np.concatenate([a, np.broadcast_to(b, (B, 2, 2))], -1)),
    Case("RowStack-channels", "RowStack", [X(normal(B, 2, 3, 3)), C(normal(1, 3, 3))],
         lambda a, c: np.concatenate([a, np.broadcast_to(c, (B, 1, 3, 3))], 1),
         attrs={"axis": -3}),
    Case("RowRepeat", "RowRepeat", [X(normal(B, 2, 3))],
         lambda x: np.concatenate([x] * 3, -1), attrs={"num_repeats": 3}),
    Case("LegacyReshape", "LegacyReshape", [X(normal(B, 6))], lambda x: x.reshape(B, 2, 3, 1),
         attrs={"num_rows": 6, "target_shape": (2, 3, 1)}),
    Case("Reshape", "Reshape", [X(normal(B, 2, 6))], lambda x: x.reshape(B, 3, 4),
         attrs={"shape": (3, 4)}),
    Case("Reshape-axis-range", "Reshape", [X(normal(B, 2, 3, 4))],
         lambda x: x.reshape(B, 2, 12), attrs={"shape": (12,), "begin_axis": -1,
                                                "end_axis": -3}),
    Case("Reshape-const", "Reshape", [C(normal(2, 6))], lambda x: x.reshape(12),
         attrs={"shape": (12,)}),
    Case("TransposeDimensions-axes", "TransposeDimensions", [X(normal(B, 2, 3))],
         lambda x: x.transpose(0, 2, 1)),
    Case("TransposeDimensions-permutation", "TransposeDimensions", [X(normal(B, 2, 3, 4))],
         lambda x: x.transpose(0, 3, 1, 2), attrs={"permutation": (2, 0, 1)}),
    Case("TransposeDimensions-pads-rank", "TransposeDimensions", [X(normal(B, 3))],
         lambda x: x.reshape(B, 1, 1, 3).transpose(0, 3, 2, 1), attrs={"axes": (-1, -3)}),
    Case("TransposeDimensions-const", "TransposeDimensions", [C(normal(2, 3))],
         lambda x: x.T),
    Case("Diagonal", "Diagonal", [X(normal(B, 3, 3))],
         lambda x: np.diagonal(x, axis1=1, axis2=2).reshape(B, 3, 1)),
    Case("Diagonal-const", "Diagonal", [C(normal(3, 3))], lambda x: np.diag(x).reshape(3, 1)),
    Case("Crop", "Crop", [X(normal(B, 2, 5, 6)), X(normal(B, 2, 3, 4))],
         lambda a, b: a[:, :, 2:5, 1:5], attrs={"x_offset": 1.0, "y_offset": 2.0}),
    Case("Cast", "Cast", [X(normal(B, 4))], lambda x: x),
    Case("Cast-double", "Cast", [X(normal(B, 4))], lambda x: x, attrs={"precision": "double"}),
    Case("ReconcileDynamicAxis", "ReconcileDynamicAxis", [C(normal(3)), X(normal(B, 2))],
         lambda d, layout: np.broadcast_to(d, (B, 3))),
    Case("ReconcileDynamicAxis-frames", "ReconcileDynamicAxis",
         [X(normal(B, 3)), X(normal(B, 2))], lambda d, layout: d),
    # reductions
    Case("SumColumnElements", "SumColumnElements", [X(normal(B, 2, 3))],
         lambda x: x.sum((1, 2))[:, None]),
    Case("SumColumnElements-const", "SumColumnElements", [C(normal(2, 3))],
         lambda x: x.sum().reshape(1)),
    criterion("SumElements", [X(seq(2, 3))], lambda x: x.sum((2, 3))),
    Case("SumElements-const", "SumElements", [C(normal(2, 3))], lambda x: x.sum().reshape(1)),
    Case("ReduceElements-sum-all", "ReduceElements", [X(normal(B, 2, 3))],
         lambda x: x.sum((1, 2), keepdims=True)),
    Case("ReduceElements-max-axis", "ReduceElements", [X(normal(B, 2, 3))],
         lambda x: x.max(2, keepdims=True), attrs={"operation": "Max", "axes": (-1,)}),
    Case("ReduceElements-min-drop", "ReduceElements", [X(normal(B, 2, 3))],
         lambda x: x.min(2), attrs={"operation": "Min", "axes": (-1,),
                                    "keep_dimensions": False}),
    Case("ReduceElements-mean", "ReduceElements", [X(normal(B, 2, 3))],
         lambda x: x.mean(1, keepdims=True), attrs={"operation": "Mean", "axes": (-2,)}),
    Case("ReduceElements-prod-axis", "ReduceElements", [X(normal(B, 2, 3))],
         lambda x: x.prod(1, keepdims=True), attrs={"operation": "Prod", "axes": (-2,)}),
    Case("ReduceElements-logsum", "ReduceElements", [X(normal(B, 2, 3))],
         lambda x: np.log(np.exp(x).sum((1, 2), keepdims=True)),
         attrs={"operation": "LogSum"}),
    Case("ReduceElements-const", "ReduceElements", [C(normal(2, 3))],
         lambda x: x.sum(0, keepdims=True), attrs={"axes": (-2,)}),
    # Argmax/Argmin: the index along the axis as a value, the first extremum on ties (ints)
    Case("ReduceElements-argmax-axis", "ReduceElements", [X(ints(B, 4, 5))],
         lambda x: x.argmax(2)[..., None], attrs={"operation": "Argmax", "axes": (-1,)}),
    Case("ReduceElements-argmin-drop", "ReduceElements", [X(ints(B, 4, 5))],
         lambda x: x.argmin(1), attrs={"operation": "Argmin", "axes": (-2,),
                                       "keep_dimensions": False}),
    Case("ReduceElements-argmax-all-rank1", "ReduceElements", [X(ints(B, 6))],
         lambda x: x.argmax(1)[:, None], attrs={"operation": "Argmax"}),
    Case("ReduceElements-argmin-const", "ReduceElements", [C(ints(4, 5))],
         lambda x: x.argmin(0)[None], attrs={"operation": "Argmin", "axes": (-2,)}),
    # criteria and evaluation nodes: sums over the real frames of padded sequences
    criterion("CrossEntropyWithSoftmax", [X(seq(fn=lambda *s: onehot(4, *s[:2]))), X(seq(4))],
              lambda y, z: -(y * np.log(softmax(z, (2,)))).sum(2)),
    criterion("CrossEntropy", [X(seq(fn=lambda *s: onehot(4, *s[:2]))),
                               X(softmax(seq(4), (2,)).astype(np.float32))],
              lambda y, p: -(y * np.log(p)).sum(2)),
    criterion("SquareError", [X(seq(2, 2)), X(seq(2, 2))],
              lambda a, b: ((a - b) ** 2).sum((2, 3))),
    criterion("Logistic", [X(seq(3, fn=ints).clip(0, 1)), X(seq(3, fn=lambda *s: uniform(
        0.05, 0.95, *s)))], lambda y, p: -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(2)),
    criterion("Logistic", [X(seq(3, fn=ints).clip(0, 1)),
                           X(seq(3, fn=lambda *s: uniform(0.05, 0.95, *s))),
                           X(seq(3, fn=lambda *s: uniform(0, 2, *s)))],
              lambda y, p, w: _weighted_logistic(y, p, w), suffix="-weighted"),
    criterion("Logistic", [X(seq(1, fn=ints).clip(0, 1)),
                           X(seq(1, fn=lambda *s: uniform(0.05, 0.95, *s))),
                           X(seq(1, fn=lambda *s: uniform(0, 2, *s)))],
              lambda y, p, w: _weighted_logistic(y, p, w), suffix="-weighted-binary"),
    criterion("ClassificationError", [X(seq(fn=lambda *s: onehot(4, *s[:2]))), X(seq(4))],
              lambda y, z: (y.argmax(2) != z.argmax(2)).astype(float)),
    criterion("ClassificationError", [X(seq(fn=lambda *s: onehot(4, *s[:2]))), X(seq(4)),
                                      C(np.float32([2]))],
              lambda y, z, k: ~(np.argsort(-z, 2)[:, :, :2] == y.argmax(2)[:, :, None]).any(2),
              suffix="-top2"),
    criterion("ClassificationError", [X(seq(fn=lambda *s: onehot(4, *s[:2]))), X(seq(4)),
                                      X(np.full((B, T, 1), 2, np.float32))],
              lambda y, z, k: ~(np.argsort(-z, 2)[:, :, :2] == y.argmax(2)[:, :, None]).any(2),
              suffix="-top2-from-frames"),
    criterion("DummyCriterion", [X(seq(1)), X(seq(3)), X(seq(3))],
              lambda obj, der, pred: obj[:, :, 0]),
    criterion("MatrixL1Reg", [X(seq(2, 3))], lambda x: np.abs(x).sum((2, 3))),
    criterion("MatrixL2Reg", [X(seq(2, 3))], lambda x: (x * x).sum((2, 3)), post=np.sqrt),
    Case("MatrixL1Reg-const", "MatrixL1Reg", [C(normal(2, 3))],
         lambda x: np.abs(x).sum().reshape(1)),
    Case("MatrixL2Reg-const", "MatrixL2Reg", [C(normal(2, 3))],
         lambda x: np.sqrt((x * x).sum()).reshape(1)),
    Case("DummyCriterion-const", "DummyCriterion", [C(normal(1)), C(normal(3)), C(normal(3))],
         lambda obj, der, pred: obj.sum().reshape(1)),
    # normalization
    Case("PerDimMeanVarNormalization", "PerDimMeanVarNormalization",
         [X(normal(B, 4)), C(normal(4)), C(uniform(0.5, 2, 4))], lambda x, m, s: (x - m) * s),
    Case("PerDimMeanVarDeNormalization", "PerDimMeanVarDeNormalization",
         [X(normal(B, 4)), C(normal(4)), C(uniform(0.5, 2, 4))], lambda x, m, s: x / s + m),
    Case("BatchNormalization", "BatchNormalization",
         [X(normal(B, 4)), C(normal(4)), C(normal(4)), C(normal(4)), C(uniform(0.5, 2, 4))],
         bn_ref, tol=1e-4),
    Case("BatchNormalization-spatial", "BatchNormalization",
         [X(normal(B, 3, 2, 2)), C(normal(3, 1, 1)), C(normal(3, 1, 1)), C(normal(3, 1, 1)),
          C(uniform(0.5, 2, 3, 1, 1))],
         lambda *a: bn_ref(*a, spatial=True), attrs={"spatial": True}, tol=1e-4),
    Case("BatchNormalization-const", "BatchNormalization",
         [C(normal(4)), C(normal(4)), C(normal(4)), C(normal(4)), C(uniform(0.5, 2, 4))],
         lambda x, *a: bn_ref(x[None], *a)[0], tol=1e-4),
    # delays outside loops: one shift over whole sequences
    Case("PastValue", "PastValue", [X(seq(2))], lambda x: shift(x, LENGTHS, 1, -1.0),
         attrs={"initial_state": -1.0}, lengths=LENGTHS),
    Case("PastValue-step-2", "PastValue", [X(seq(2))], lambda x: shift(x, LENGTHS, 2, 0.1),
         attrs={"time_step": 2}, lengths=LENGTHS),
    Case("PastValue-initial-input", "PastValue", [X(seq(2)), C(np.float32([0.5, -0.5]))],
         lambda x, i: shift(x, LENGTHS, 1, i), lengths=LENGTHS),
    Case("FutureValue", "FutureValue", [X(seq(2))],
         lambda x: shift(x, LENGTHS, 1, 2.0, future=True), attrs={"initial_state": 2.0},
         lengths=LENGTHS),
    Case("FutureValue-step-2-initial-input", "FutureValue", [X(seq(2)), C(np.float32([3, 4]))],
         lambda x, i: shift(x, LENGTHS, 2, i, future=True), attrs={"time_step": 2},
         lengths=LENGTHS),
    # convolution and pooling: images numpy (C, H, W)
    Case("Convolution", "Convolution", [C(_KER), X(_IMG)], lambda w, x: conv_ref(x, w),
         attrs={"kernel_shape": (3, 3, 3), "map_count": (4,), "strides": (3, 1, 1),
                "auto_padding": (False, True, True)}, tol=1e-4),
    Case("Convolution-stride-explicit-pad", "Convolution", [C(_KER), X(_IMG)],
         lambda w, x: conv_ref(np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 2))), w, (2, 2),
                               (False, False)),
         attrs={"kernel_shape": (3, 3, 3), "map_count": (4,), "strides": (3, 2, 2),
                "auto_padding": (False,), "lower_pad": (0, 1, 0), "upper_pad": (0, 1, 2)},
         tol=1e-4),
    Case("ConvolutionPlus", "ConvolutionPlus", [C(_KER), X(_IMG), C(normal(4, 1, 1))],
         lambda w, x, b: conv_ref(x, w, bias=b),
         attrs={"kernel_shape": (3, 3, 3), "map_count": (4,), "strides": (3, 1, 1),
                "auto_padding": (False, True, True)}, tol=1e-4),
    Case("Convolution-2d-legacy-HWC", "Convolution", [C(normal(27, 4)), X(_HWC)],
         lambda w, x: conv_ref(x.transpose(0, 3, 1, 2),
                               w.reshape(4, 3, 3, 3).transpose(0, 3, 1, 2), (1, 2),
                               (False, False)).transpose(0, 2, 3, 1),
         attrs={"convolution_2d": True, "kernel_shape": (1, 3, 3), "map_count": (4, 1, 1),
                "strides": (1, 1, 2), "auto_padding": (False,), "image_layout": "HWC"},
         tol=1e-4),
    Case("ConvolutionPlus-2d-legacy-CHW", "ConvolutionPlus",
         [C(normal(27, 4)), X(_IMG), C(normal(4, 1, 1))],
         lambda w, x, b: conv_ref(x, w.reshape(4, 3, 3, 3), bias=b),
         attrs={"convolution_2d": True, "kernel_shape": (1, 3, 3), "map_count": (4, 1, 1),
                "strides": (1, 1, 1), "auto_padding": (True,), "image_layout": "CHW"},
         tol=1e-4),
    Case("Convolution-const-image", "Convolution", [C(_KER), C(_IMG[0])],
         lambda w, x: conv_ref(x[None], w)[0],
         attrs={"kernel_shape": (3, 3, 3), "map_count": (4,), "strides": (3, 1, 1),
                "auto_padding": (False, True, True)}, tol=1e-4),
    Case("GroupedConvolution", "GroupedConvolution", [C(normal(6, 1, 3, 2)), X(_IMG)],
         lambda w, x: np.concatenate([conv_ref(np.pad(x[:, g:g + 1], ((0, 0), (0, 0), (1, 0),
                                                                      (2, 1))),
                                               w[2 * g:2 * g + 2], (2, 1), (False, False))
                                      for g in range(3)], 1),
         attrs={"kernel_shape": (3, 2), "strides": (2, 1), "lower_pad": (1, 2),
                "upper_pad": (0, 1), "groups": 3}, tol=1e-4),
    Case("Pooling-max", "Pooling", [X(_IMG)], lambda x: pool_ref(x, (3, 3), (2, 2), "max"),
         attrs={"kernel_shape": (1, 3, 3), "strides": (1, 2, 2), "auto_padding": (False,)}),
    Case("Pooling-max-1x1-strided", "Pooling", [X(_IMG)],  # lowered as a strided slice
         lambda x: pool_ref(x, (1, 1), (2, 3), "max", (True, True)),
         attrs={"kernel_shape": (1, 1, 1), "strides": (1, 2, 3),
                "auto_padding": (False, True, True)}),
    Case("Pooling-average-1x1-strided", "Pooling", [X(_IMG)],
         lambda x: pool_ref(x, (1, 1), (3, 2), "average"),
         attrs={"kernel_shape": (1, 1, 1), "strides": (1, 3, 2), "pool_kind": "average",
                "auto_padding": (False,)}),
    Case("Pooling-max-auto", "Pooling", [X(_IMG)],
         lambda x: pool_ref(x, (3, 3), (2, 2), "max", (True, True)),
         attrs={"kernel_shape": (1, 3, 3), "strides": (1, 2, 2),
                "auto_padding": (False, True, True)}),
    Case("Pooling-average-auto", "Pooling", [X(_IMG)],
         lambda x: pool_ref(x, (2, 2), (1, 1), "average", (True, True)),
         attrs={"kernel_shape": (1, 2, 2), "strides": (1, 1, 1), "pool_kind": "average",
                "auto_padding": (False, True, True)}),
    Case("Pooling-average-asymmetric", "Pooling", [X(_IMG)],
         lambda x: pool_ref(x, (3, 3), (1, 1), "average", (True, True)),
         attrs={"kernel_shape": (1, 3, 3), "strides": (1, 1, 1), "pool_kind": "average",
                "auto_padding": (False, True, True), "lower_pad": (0,),
                "upper_pad": (0,)}),
    Case("Pooling-average-include-pad", "Pooling", [X(_IMG)],
         lambda x: sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3),
                                       axis=(2, 3))[:, :, ::2, ::2].mean((-2, -1)),
         attrs={"kernel_shape": (1, 3, 3), "strides": (1, 2, 2), "pool_kind": "average",
                "auto_padding": (False,), "lower_pad": (0, 1, 1), "upper_pad": (0, 1, 1),
                "pool_include_pad": True}),
    Case("Pooling-average-include-pad-asymmetric", "Pooling", [X(_IMG)],
         lambda x: sliding_window_view(np.pad(x, ((0, 0), (0, 0), (0, 2), (1, 1))), (2, 2),
                                       axis=(2, 3)).mean((-2, -1)),
         attrs={"kernel_shape": (1, 2, 2), "strides": (1, 1, 1), "pool_kind": "average",
                "auto_padding": (False,), "lower_pad": (0, 0, 1), "upper_pad": (0, 2, 1),
                "pool_include_pad": True}),
    Case("MaxPooling-HWC", "MaxPooling", [X(_HWC)],
         lambda x: pool_ref(x.transpose(0, 3, 1, 2), (2, 3), (2, 2), "max").transpose(
             0, 2, 3, 1),
         attrs={"window_height": 2, "window_width": 3, "vertical_subsample": 2,
                "horizontal_subsample": 2}),
    Case("AveragePooling-CHW", "AveragePooling", [X(_IMG)],
         lambda x: pool_ref(x, (2, 2), (2, 2), "average"),
         attrs={"window_height": 2, "window_width": 2, "vertical_subsample": 2,
                "horizontal_subsample": 2, "image_layout": "CHW"}),
    Case("MaxPooling-HWC-const", "MaxPooling", [C(_HWC[0])],
         lambda x: pool_ref(x.transpose(2, 0, 1)[None], (2, 2), (2, 2), "max")[0].transpose(
             1, 2, 0),
         attrs={"window_height": 2, "window_width": 2, "vertical_subsample": 2,
                "horizontal_subsample": 2}),
]


# ---- the harness --------------------------------------------------------------------------
def _sparse(data: np.ndarray) -> SparseRows:
    rows = data.reshape(data.shape[0], -1)
    nz = [np.flatnonzero(r) for r in rows]
    indptr = np.concatenate([[0], np.cumsum([len(i) for i in nz])]).astype(np.int64)
    indices = np.concatenate(nz).astype(np.int64)
    values = rows[np.arange(len(rows)).repeat([len(i) for i in nz]), indices]
    return SparseRows(indptr, indices, values.astype(np.float32), len(rows), rows.shape[1])


def build(case: Case) -> tuple[Network, dict[str, Any]]:
    """The network ``inputs -> op -> y`` of a case and its feeds."""
    net = Network(case.id)
    nodes, feeds = [], {}
    for i, spec in enumerate(case.inputs):
        if isinstance(spec, X):
            sample = spec.data.shape[2:] if case.lengths else spec.data.shape[1:]
            op = "SparseInputValue" if spec.sparse else spec.op
            node = net.add(f"x{i}", op, shape=sample)
            feeds[node.name] = _sparse(spec.data) if spec.sparse else spec.data
        else:
            node = net.add_parameter(f"c{i}", spec.value, learning_rate_multiplier=0)
        nodes.append(node)
    if not feeds:  # a minibatch needs some input
        feeds[net.add("dummy", "InputValue", shape=(1,)).name] = np.zeros((B, 1), np.float32)
    y = net.add("y", case.op, inputs=nodes, attrs=case.attrs)
    net.add_to_group("output", y)
    net.validate()
    return net, feeds


def _mask() -> np.ndarray:
    return np.arange(T)[None, :] < np.asarray(LENGTHS)[:, None]


def expected(case: Case) -> np.ndarray:
    args = [np.asarray(s.data if isinstance(s, X) else s.value, np.float64) for s in case.inputs]
    want = np.asarray(case.ref(*args), np.float64)
    if case.total:
        if case.lengths:
            want = want * _mask().reshape((B, T) + (1,) * (want.ndim - 2))
        want = want.sum().reshape(1)
        return case.post(want) if case.post else want
    if case.lengths and want.ndim >= 2:
        want = want * _mask().reshape((B, T) + (1,) * (want.ndim - 2))
    return want


def feed_batch(net: Network, feeds: dict[str, Any], lengths) -> Minibatch:
    if any(isinstance(v, SparseRows) for v in feeds.values()):
        return Minibatch(dict(feeds), np.ones(next(
            v.rows for v in feeds.values() if isinstance(v, SparseRows)), np.int64))
    return batch_from_arrays(net, feeds, lengths)[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_matches_numpy(case: Case):
    net, feeds = build(case)
    if any(isinstance(v, SparseRows) for v in feeds.values()):
        got = netsurgeon.evaluate(net, feed_batch(net, feeds, None), ["y"])["y"]
        got = got[:, 0] if net.node("y").dynamic else got  # a Minibatch has a time axis
    else:
        got = netsurgeon.evaluate(net, feeds, ["y"], lengths=case.lengths)["y"]
    want = expected(case)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=case.tol, atol=case.tol)


def test_every_op_with_a_kernel_has_a_case():
    import importlib
    import pkgutil

    import tests.runtime as here

    import netsurgeon.runtime  # noqa: F401
    from netsurgeon.ops import OPS

    tables = [importlib.import_module(f"tests.runtime.{m.name}") for m in
              pkgutil.iter_modules(here.__path__) if m.name.startswith("test_op_reference_")]
    cases = CASES + [c for t in tables for c in getattr(t, "CASES", [])]
    covered = {c.op for c in cases} | {"InputValue", "SparseInputValue", "LearnableParameter",
                                       "EnvironmentInput", "Mean", "InvStdDev"}
    missing = sorted(op.name for op in OPS
                     if OPS.entry("torch", op.name) is not None and op.name not in covered)
    assert missing == []


# ---- what the table cannot say ------------------------------------------------------------
def _loop(op: str) -> Network:
    """y = x + Delay(y): a running sum over each sequence (backwards for FutureValue)."""
    net = Network("loop")
    x = net.add("x", "InputValue", shape=(2,))
    d = net.add("d", op, inputs=(None,), attrs={"initial_state": 0.0}, shape=(2,))
    y = net.add("y", "Plus", inputs=(x, d))
    net.set_input(d, 0, y)
    net.add_to_group("output", y)
    net.validate()
    return net


@pytest.mark.parametrize("op", ["PastValue", "FutureValue"])
def test_delay_in_a_recurrent_loop_is_a_running_sum(op):
    xs = seq(2)
    got = netsurgeon.evaluate(_loop(op), {"x": xs}, ["y"], lengths=LENGTHS)["y"]
    want = np.zeros((B, T, 2))
    for b, n in enumerate(LENGTHS):
        part = xs[b, :n].astype(np.float64)
        want[b, :n] = np.cumsum(part, 0) if op == "PastValue" else \
            np.cumsum(part[::-1], 0)[::-1]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_sparse_input_densified_for_an_op_without_sparse_support():
    net = Network("dense")
    x = net.add("x", "SparseInputValue", shape=(5,))
    net.add("y", "Tanh", inputs=(x,))
    net.add("z", "Sigmoid", inputs=(x,))
    net.validate()
    data = onehot(5, B) * 0.5
    out = netsurgeon.evaluate(net, Minibatch({"x": _sparse(data)}, np.ones(B, np.int64)),
                              ["y", "z"])
    np.testing.assert_allclose(out["y"][:, 0], np.tanh(data), rtol=1e-6)
    np.testing.assert_allclose(out["z"][:, 0], sigmoid(data), rtol=1e-6)
    text = compile_network(net, ["y", "z"], sparse_inputs={"x"}).text
    assert text.count(".to_dense()") == 1  # densified once, shared by both users


def test_sparse_stream_into_a_recurrent_loop():
    net = Network("loop")
    x = net.add("x", "SparseInputValue", shape=(3,))
    d = net.add("d", "PastValue", inputs=(None,), attrs={"initial_state": 0.0}, shape=(3,))
    y = net.add("y", "Plus", inputs=(x, d))
    net.set_input(d, 0, y)
    net.validate()
    data = onehot(3, 1, T)  # one sequence of T one-hot frames
    mb = Minibatch({"x": _sparse(data.reshape(T, 3))}, np.array([T]))
    got = netsurgeon.evaluate(net, mb, ["y"])["y"][0]
    np.testing.assert_allclose(got, np.cumsum(data[0], 0), rtol=1e-6)


def test_environment_input_is_1_only_in_training():
    net = Network("env")
    x = net.add("x", "InputValue", shape=(2,))
    e = net.add("e", "EnvironmentInput")
    y = net.add("y", "ElementTimes", inputs=(x, e))
    net.add_to_group("output", y)
    net.validate()
    xs = normal(B, 2)
    assert np.all(netsurgeon.evaluate(net, {"x": xs}, ["y"])["y"] == 0)
    batch = batch_from_arrays(net, {"x": xs})[0]
    got = compile_network(net, ["y"], training=True)(batch)["y"].detach().numpy()
    np.testing.assert_allclose(got, xs)


def test_environment_input_other_than_is_training_is_refused():
    net = Network("env")
    net.add("x", "InputValue", shape=(1,))
    net.add("e", "EnvironmentInput", attrs={"property_name": "epoch"})
    net.validate()
    with pytest.raises(EvaluationError, match="'epoch' is unknown"):
        netsurgeon.evaluate(net, {"x": np.zeros((1, 1))}, ["e"])


def test_precomputed_mean_and_inv_std_dev():
    """The Mean/InvStdDev pre-pass over the data, then both are constants at run time."""
    from netsurgeon.runtime.train import precompute

    net = Network("mvn")
    x = net.add("x", "InputValue", shape=(3,))
    m = net.add("m", "Mean", inputs=(x,))
    s = net.add("s", "InvStdDev", inputs=(x,))
    y = net.add("y", "PerDimMeanVarNormalization", inputs=(x, m, s))
    net.add_to_group("output", y)
    net.validate()
    with pytest.raises(EvaluationError, match="has not been computed"):
        netsurgeon.evaluate(net, {"x": normal(2, 3)}, ["y"])
    data = seq(3) * 2 + 1
    batch = batch_from_arrays(net, {"x": data}, LENGTHS)[0]
    version = net.version
    assert precompute(net, lambda: [batch]) == [m, s]
    assert net.version > version and m.attrs["has_computed"] and s.attrs["has_computed"]
    frames = np.concatenate([data[b, :n] for b, n in enumerate(LENGTHS)]).astype(np.float64)
    np.testing.assert_allclose(m.value, frames.mean(0), rtol=1e-5)
    np.testing.assert_allclose(s.value, 1 / frames.std(0), rtol=1e-4)
    got = netsurgeon.evaluate(net, {"x": data}, ["y"], lengths=LENGTHS)["y"]
    want = (data - frames.mean(0)) / frames.std(0) * _mask()[:, :, None]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_dropout_in_training_scales_the_kept_values():
    net, feeds = build(Case("d", "Dropout", [X(np.ones((64, 50), np.float32))], lambda x: x))
    batch = batch_from_arrays(net, feeds)[0]
    torch.manual_seed(0)
    c = compile_network(net, ["y"], training=True, config={"dropout_rate": 0.25})
    out = c(batch)["y"].detach().numpy()
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    assert 0.2 < (out == 0).mean() < 0.3


@pytest.mark.parametrize("spatial", [False, True])
def test_batch_normalization_training_uses_minibatch_statistics_over_real_frames(spatial):
    sample = (2, 3, 3) if spatial else (4,)
    stat = (2, 1, 1) if spatial else sample
    x = seq(*sample)
    params = [normal(*stat), normal(*stat), normal(*stat), uniform(0.5, 2, *stat)]
    case = Case("bn", "BatchNormalization", [X(x)] + [C(p) for p in params], bn_ref,
                attrs={"spatial": spatial, "normalization_time_constant": 0.0},
                lengths=LENGTHS)
    net, feeds = build(case)
    batch = batch_from_arrays(net, feeds, LENGTHS)[0]
    got = compile_network(net, ["y"], training=True)(batch)["y"].detach().numpy()
    frames = np.concatenate([x[b, :n] for b, n in enumerate(LENGTHS)]).astype(np.float64)
    axes = (0, 2, 3) if spatial else (0,)
    mean, var = frames.mean(axes), frames.var(axes)
    want = bn_ref(frames, params[0], params[1], mean.reshape(stat), var.reshape(stat),
                  spatial=spatial)
    real = _mask().reshape(-1)
    np.testing.assert_allclose(got[real], want, rtol=1e-4, atol=1e-4)
    # time constant 0: the running statistics are replaced by the minibatch's
    np.testing.assert_allclose(net.node("c3").value.reshape(-1), mean.reshape(-1), rtol=1e-5)
    np.testing.assert_allclose(net.node("c4").value.reshape(-1), var.reshape(-1), rtol=1e-4)


@pytest.mark.parametrize("op,reason", [
    ("DynamicAxis", "a named dynamic axis is a declaration"),
    ("QuantizedTimes", "no defined math"),
])
def test_an_op_without_kernel_is_refused_with_its_reason(op, reason):
    from netsurgeon.ops import OPS

    net = Network("u")
    x = net.add("x", "InputValue", shape=(4,))
    net.validate()
    y = net.add("y", op, inputs=[x] * OPS.op(op).arity[0], shape=(1,), dynamic=True)
    with pytest.raises(EvaluationError, match=f"{op} cannot be evaluated: {reason}") as info:
        Evaluator(net, ["y"]).run(batch_from_arrays(net, {"x": normal(2, 4)})[0])
    assert info.value.node == y.name


REFUSED = [
    Case("reduce-over-sequence", "ReduceElements", [X(normal(B, 3))], None,
         attrs={"axes": (2,)}),
    Case("reduce-argmax-two-axes", "ReduceElements", [X(normal(B, 2, 3))], None,
         attrs={"operation": "Argmax"}),
    Case("crop-automatic", "Crop", [X(normal(B, 2, 5, 6)), X(normal(B, 2, 3, 4))], None),
    Case("pooling-none", "Pooling", [X(_IMG)], None,
         attrs={"kernel_shape": (1, 2, 2), "pool_kind": "none", "auto_padding": (False,)}),
    Case("criterion-of-constants", "SquareError", [C(normal(3)), C(normal(3))], None),
    Case("delay-step-0", "PastValue", [X(normal(B, 2))], None, attrs={"time_step": 0}),
    Case("delay-frame-initial-state", "PastValue", [X(normal(B, 2)), X(normal(B, 2))], None),
    Case("cos-negative-count-unknown", "CosDistanceWithNegativeSamples",
         [X(normal(5, 4)), X(normal(5, 4)), C(np.float32([[1]])), C(np.float32([[2]]))], None),
    Case("times-plus-frame-weight", "TimesPlus", [X(normal(B, 4, 3)), X(normal(B, 4)),
                                                  C(normal(3))], None),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_what_a_lowering_cannot_compute_is_an_error_naming_the_node(case):
    net, feeds = build(case)
    with pytest.raises(EvaluationError) as info:
        netsurgeon.evaluate(net, feeds, ["y"])
    assert info.value.node == "y"


def test_stale_evaluation_recompiles_after_an_edit():
    """An Evaluator compiled before ``net.update`` runs the new weights, never stale code."""
    net = nets.mlp()
    batch = batch_from_arrays(net, {"features": normal(5, 6)})[0]
    ev = Evaluator(net, ["L1.z"])
    before = ev.run(batch)["L1.z"].numpy().copy()
    W = net.node("L1.W")
    b = net.node("L1.b").value
    net.update(W, value=3 * W.value)
    after = ev.run(batch)["L1.z"].numpy()
    np.testing.assert_allclose(after - b, 3 * (before - b), rtol=1e-5, atol=1e-5)
