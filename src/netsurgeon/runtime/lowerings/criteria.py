"""Criteria and evaluation nodes (ndl-mel.md §B.9.4): per-frame values summed over the real
frames of the minibatch, shaped (1,) as CNTK's legacy criteria."""

from __future__ import annotations

import numpy as np

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.lowerings import lowering

#: the kernels see each frame's sample as one row (``K.flat``): any input may be rows
_ANY = (0, 1, 2)


def _frames(args, node) -> None:
    if not any(a.dynamic for a in args):
        raise EvaluationError(f"{node.op} needs inputs that carry the minibatch axis",
                              node=node.name)


@lowering("CrossEntropyWithSoftmax", uses_mask=True, takes_rows=_ANY)
def _ce_softmax(em, node, args):
    _frames(args, node)
    return f"K.ce_with_softmax_sum({args[0]}, {args[1]}, {em.mask})"


@lowering("CrossEntropy", uses_mask=True, takes_rows=_ANY)
def _ce(em, node, args):
    _frames(args, node)
    return f"K.masked_sum(K.cross_entropy({args[0]}, {args[1]}), {em.mask})"


@lowering("SquareError", uses_mask=True, takes_rows=_ANY)
def _square_error(em, node, args):
    _frames(args, node)
    a, b = args
    return f"K.masked_sum((K.flat({a}) - K.flat({b})).pow(2).sum(1), {em.mask})"


@lowering("Logistic", uses_mask=True, takes_rows=_ANY)
def _logistic(em, node, args):
    _frames(args, node)
    if len(args) > 2:  # CNTK normalises the weights to average 1 over the minibatch
        return (f"K.weighted_logistic_sum({args[0]}, {args[1]}, {args[2]}, {em.mask}, "
                f"{bool(args[2].dynamic)})")
    return f"K.masked_sum(K.logistic({args[0]}, {args[1]}), {em.mask})"


@lowering("ClassificationError", uses_mask=True, takes_rows=_ANY)
def _class_error(em, node, args):
    """Top-1 error, or top-N when a third input holds N (a constant, read once)."""
    _frames(args, node)
    k = "1"
    if len(args) > 2:
        knode = node.inputs[2]
        if knode.value is not None and not args[2].dynamic:
            k = str(int(round(float(np.asarray(knode.value).reshape(-1)[0]))))
        else:
            k = f"int({args[2]}.reshape(-1)[0].item())"
    return f"K.masked_sum(K.class_error({args[0]}, {args[1]}, {k}), {em.mask})"
