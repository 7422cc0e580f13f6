"""Criteria and evaluation nodes: per-frame values summed over the real frames, shaped (1,) as
CNTK's legacy criteria (``runtime/lowerings/criteria`` and ``runtime/_kernels``)."""

from __future__ import annotations

from math import prod

import numpy as np

from netsurgeon.formats.onnx._layer import export_entry
from netsurgeon.formats.onnx.export_context import refuse
from netsurgeon.formats.onnx.export_reductions import masked_total

EPS_IN_LOG = 1e-37  # CNTK clamps arguments of log in its criteria
_INT64 = 7  # onnx.TensorProto.INT64 (this module imports no onnx)
_BOOL = 9  # onnx.TensorProto.BOOL


def _frames(node, args) -> None:
    if not any(a.dynamic for a in args):
        raise refuse(node, "the criterion needs inputs that carry the minibatch axis")


def _flat(ctx, v) -> str:
    """(rows, *sample) -> (rows, prod(sample)): CNTK treats a sample as one column."""
    return v.name if len(v.shape) == 1 else ctx.add(
        "Reshape", [v.name, ctx.ints((-1, prod(v.shape)))], "flat")


def _row_sum(ctx, name: str, negate: bool = False) -> str:
    total = ctx.add("ReduceSum", [name, ctx.ints([1])], "row_sum", keepdims=0)
    return ctx.add("Neg", [total], "neg") if negate else total


def _safe_log(ctx, name: str) -> str:
    return ctx.add("Log", [ctx.add("Max", [name, ctx.scalar(EPS_IN_LOG, "eps_in_log")],
                                   "clamped")], "log")


@export_entry("CrossEntropyWithSoftmax", uses_mask=True)
def _ce_softmax(ctx, node, args):
    _frames(node, args)
    labels, z = args
    logp = ctx.add("LogSoftmax", [_flat(ctx, z)], "log_softmax", axis=1)
    per = _row_sum(ctx, ctx.add("Mul", [_flat(ctx, labels), logp], "weighted"), negate=True)
    return masked_total(ctx, True, per)


@export_entry("CrossEntropy", uses_mask=True)
def _ce(ctx, node, args):
    _frames(node, args)
    labels, p = args
    per = ctx.add("Mul", [_flat(ctx, labels), _safe_log(ctx, _flat(ctx, p))], "weighted")
    return masked_total(ctx, True, _row_sum(ctx, per, negate=True))


@export_entry("SquareError", uses_mask=True)
def _square_error(ctx, node, args):
    _frames(node, args)
    a, b = args
    d = ctx.add("Sub", [_flat(ctx, a), _flat(ctx, b)], "diff")
    return masked_total(ctx, True, _row_sum(ctx, ctx.add("Mul", [d, d], "square")))


@export_entry("Logistic", uses_mask=True)
def _logistic(ctx, node, args):
    """−Σ w·[y·log p + (1−y)·log(1−p)] per frame."""
    _frames(node, args)
    y, p = _flat(ctx, args[0]), _flat(ctx, args[1])
    one = ctx.scalar(1.0, "one")
    pos = ctx.add("Mul", [y, _safe_log(ctx, p)], "pos")
    neg = ctx.add("Mul", [ctx.add("Sub", [one, y], "not_y"),
                          _safe_log(ctx, ctx.add("Sub", [one, p], "not_p"))], "neg_part")
    per = ctx.add("Add", [pos, neg], "both")
    if len(args) <= 2:
        return masked_total(ctx, True, _row_sum(ctx, per, negate=True))
    w = args[2]
    weights = _flat(ctx, w) if w.dynamic else w.name
    per = ctx.add("Mul", [per, weights], "weighted")
    total = masked_total(ctx, True, _row_sum(ctx, per, negate=True))
    # CNTK normalises the weights to average 1 over the minibatch (the runtime's rule)
    if w.dynamic:
        ones = ctx.add("Add", [ctx.add("Mul", [weights, ctx.scalar(0.0, "zero")], "zeros"),
                               one], "ones")
        mean = ctx.add("Div", [masked_total(ctx, True, weights, 1),
                               masked_total(ctx, True, ones, 1)], "mean_weight")
    else:
        mean = ctx.add("ReduceMean", [w.name], "mean_weight", keepdims=0)
    return ctx.add("Div", [total, mean], "Logistic")


@export_entry("ClassificationError", uses_mask=True)
def _class_error(ctx, node, args):
    """1 per frame whose label's class is not z's argmax (or not among its top N, when a
    third, constant input holds N)."""
    _frames(node, args)
    labels, z = _flat(ctx, args[0]), _flat(ctx, args[1])
    label = ctx.add("ArgMax", [labels], "label", axis=1, keepdims=0)
    classes = prod(args[1].shape)
    k: int | str = 1
    if len(args) > 2:
        knode = node.inputs[2]
        if knode.value is not None and not args[2].dynamic:
            k = min(int(round(float(np.asarray(knode.value).reshape(-1)[0]))), classes)
        else:  # the first value of the input, as the runtime reads it
            first = ctx.add("Slice", [ctx.add("Reshape", [args[2].name, ctx.ints([-1])], "k_all"),
                                      ctx.ints([0]), ctx.ints([1])], "k_first")
            k = ctx.add("Min", [ctx.add("Cast", [ctx.add("Round", [first], "k_round")], "k_int",
                                        to=_INT64), ctx.ints([classes])], "k")
    if k == 1:
        hit = ctx.add("Equal", [ctx.add("ArgMax", [z], "guess", axis=1, keepdims=0), label],
                      "hit")
    else:
        _, top = ctx.add("TopK", [z, k if isinstance(k, str) else ctx.ints([k])], "top",
                         outputs=2, axis=1)
        col = ctx.add("Unsqueeze", [label, ctx.ints([1])], "label_col")
        found = ctx.add("Cast", [ctx.add("Equal", [top, col], "match")], "found", to=_INT64)
        hit = ctx.add("Cast", [ctx.add("ReduceMax", [found, ctx.ints([1])], "any", keepdims=0)],
                      "hit", to=_BOOL)
    wrong = ctx.add("Cast", [ctx.add("Not", [hit], "miss")], "wrong", to=ctx.elem)
    return masked_total(ctx, True, wrong)


@export_entry("DummyCriterion", uses_mask=True)
def _dummy(ctx, node, args):
    """The value is the objective input's total (the derivatives only steer training)."""
    obj = args[0]
    return masked_total(ctx, obj.dynamic, obj.name, len(obj.shape))
