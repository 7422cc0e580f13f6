"""Constant folding at import: ONNX ops whose inputs are all constants, computed with numpy.

Exporters compute shapes and reshape weights inside the graph (Shape -> Gather -> Concat ->
Reshape, ``Reshape(W, [576, 64])``); those become constants here, so the network holds only
ops that act on data. A folded value is learnable when a learnable (floating-point
initializer) input went into it. ``Shape`` of a node value folds too, with the batch axes
written as 0 (Reshape's "copy this dimension"); such a value may only flow into a Reshape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["FOLD", "BATCH_SAFE", "fold_reshape"]

Arrays = list[np.ndarray | None]
Attrs = dict[str, Any]


def _axes(attrs: Attrs, arrays: Arrays, index: int) -> list[int] | None:
    """``axes`` from the attribute (older opsets) or from input ``index`` (newer ones)."""
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    if len(arrays) > index and arrays[index] is not None:
        return [int(a) for a in np.asarray(arrays[index]).reshape(-1)]
    return None


def fold_reshape(data: np.ndarray, shape: np.ndarray, allowzero: int = 0) -> np.ndarray:
    """ONNX Reshape: 0 copies the input's dimension (unless ``allowzero``), -1 is inferred."""
    target = [int(s) for s in np.asarray(shape).reshape(-1)]
    if not allowzero:
        target = [data.shape[i] if s == 0 else s for i, s in enumerate(target)]
    return data.reshape(target)


def _unsqueeze(a: Arrays, at: Attrs) -> np.ndarray:
    x, axes = a[0], _axes(at, a, 1) or []
    rank = x.ndim + len(axes)
    for ax in sorted(ax + rank if ax < 0 else ax for ax in axes):
        x = np.expand_dims(x, ax)
    return x


def _squeeze(a: Arrays, at: Attrs) -> np.ndarray:
    axes = _axes(at, a, 1)
    return np.squeeze(a[0]) if axes is None else np.squeeze(a[0], tuple(axes))


def _slice(a: Arrays, at: Attrs) -> np.ndarray:
    x = a[0]
    if "starts" in at:  # opset < 10
        starts, ends = list(at["starts"]), list(at["ends"])
        axes, steps = list(at.get("axes", range(len(starts)))), [1] * len(starts)
    else:
        starts, ends = [int(v) for v in a[1]], [int(v) for v in a[2]]
        axes = [int(v) for v in a[3]] if len(a) > 3 and a[3] is not None else \
            list(range(len(starts)))
        steps = [int(v) for v in a[4]] if len(a) > 4 and a[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[ax] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _many(fn: Callable[..., np.ndarray], a: Arrays) -> np.ndarray:
    out = a[0]
    for x in a[1:]:
        out = fn(out, x)
    return out


def _div(a: Arrays, at: Attrs) -> np.ndarray:
    x, y = a[0], a[1]
    if np.issubdtype(x.dtype, np.integer):
        return np.trunc(x / y).astype(x.dtype)
    return x / y


def _flatten(a: Arrays, at: Attrs) -> np.ndarray:
    x, axis = a[0], int(at.get("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _constant_of_shape(a: Arrays, at: Attrs) -> np.ndarray:
    fill = at.get("value")
    fill = np.zeros(1, np.float32) if fill is None else fill
    return np.full([int(s) for s in a[0]], fill.reshape(-1)[0], fill.dtype)


def _gather(a: Arrays, at: Attrs) -> np.ndarray:
    return np.take(a[0], a[1].astype(np.int64), axis=int(at.get("axis", 0)))


def _cast(a: Arrays, at: Attrs) -> np.ndarray:
    from onnx import helper

    return a[0].astype(helper.tensor_dtype_to_np_dtype(int(at["to"])))


FOLD: dict[str, Callable[[Arrays, Attrs], np.ndarray]] = {
    "Identity": lambda a, at: a[0],
    "Cast": _cast,
    "Reshape": lambda a, at: fold_reshape(a[0], a[1], int(at.get("allowzero", 0))),
    "Shape": lambda a, at: np.asarray(a[0].shape, np.int64)[at.get("start", 0):at.get("end")],
    "Size": lambda a, at: np.asarray(a[0].size, np.int64),
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda a, at: np.concatenate(a, axis=int(at["axis"])),
    "Slice": _slice,
    "Transpose": lambda a, at: np.transpose(a[0], at.get("perm")),
    "Flatten": _flatten,
    "ConstantOfShape": _constant_of_shape,
    "Add": lambda a, at: a[0] + a[1],
    "Sub": lambda a, at: a[0] - a[1],
    "Mul": lambda a, at: a[0] * a[1],
    "Div": _div,
    "Neg": lambda a, at: -a[0],
    "Sqrt": lambda a, at: np.sqrt(a[0]),
    "Reciprocal": lambda a, at: 1 / a[0],
    "MatMul": lambda a, at: np.matmul(a[0], a[1]),
    "Range": lambda a, at: np.arange(a[0], a[1], a[2]),
    "Pow": lambda a, at: np.power(a[0], a[1]).astype(a[0].dtype),
    "Max": lambda a, at: _many(np.maximum, a),
    "Min": lambda a, at: _many(np.minimum, a),
    "Sum": lambda a, at: _many(np.add, a),
    "Exp": lambda a, at: np.exp(a[0]),
    "Log": lambda a, at: np.log(a[0]),
    "Abs": lambda a, at: np.abs(a[0]),
    "Floor": lambda a, at: np.floor(a[0]),
    "Ceil": lambda a, at: np.ceil(a[0]),
    "Equal": lambda a, at: np.equal(a[0], a[1]),
    "Less": lambda a, at: np.less(a[0], a[1]),
    "Greater": lambda a, at: np.greater(a[0], a[1]),
    "Not": lambda a, at: np.logical_not(a[0]),
    "Where": lambda a, at: np.where(a[0], a[1], a[2]),
    "Expand": lambda a, at: a[0] * np.ones([int(d) for d in a[1]], a[0].dtype),
    "Tile": lambda a, at: np.tile(a[0], [int(r) for r in a[1]]),
}

#: ops through which a shape holding the batch size (as 0) may pass on its way to a Reshape
BATCH_SAFE = frozenset({"Identity", "Cast", "Gather", "Unsqueeze", "Squeeze", "Concat",
                        "Slice"})
