"""CNTK's Dump / DumpNode text (ndl-mel.md §D), in CNTK dims order.

Every token is written with one space before it, line breaks are tokens of their own, nodes
come in case-insensitive name order, and parameter data is printed row by row of the CNTK
(column-major) matrix with ``%.9g`` (float) or ``%.17g`` (double).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from netsurgeon.formats.cntk._codec import OP_NAME
from netsurgeon.graph import Network, Node
from netsurgeon.ops.sets import INPUTS, PARAMETERS, PRECOMPUTED

__all__ = ["dump_text", "dump_node", "cntk_dims"]

_HASHES = "#" * 68
_POOL_KINDS = {"none": 0, "max": 1, "average": 2}
#: CNTK's legacy 2-D pooling nodes, which print their geometry
_LEGACY_POOLING = frozenset({"MaxPooling", "AveragePooling"})
#: subclasses of CNTK's ConvolutionNodeBase whose DumpNodeInfo prints the pool kind
_CONVOLUTION_BASE = frozenset({"Convolution", "Pooling", "MaxUnpooling"})


def cntk_dims(shape: tuple[int, ...] | None) -> list[int]:
    """CNTK dims (first = fastest) from a numpy-order shape."""
    return list(reversed(shape or ()))


def _matrix(value: np.ndarray) -> np.ndarray:
    """The CNTK [rows, cols] matrix of a numpy-order tensor (rows = CNTK's first dim)."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        return arr.reshape(1, 1)
    rows = arr.shape[-1]
    return arr.reshape(-1, rows).T


def _rows_cols(node: Node) -> tuple[int, int]:
    shape = node.shape if node.shape is not None else (
        tuple(node.value.shape) if node.value is not None else ())
    dims = cntk_dims(shape)
    if not dims:
        return 1, 1
    return dims[0], math.prod(dims[1:])


def _fmt(x: float, double: bool) -> str:
    return ("%.17g" if double else "%.9g") % x


def _op_name(node: Node) -> str:
    """The op name as CNTK printed it: the name stored in the model file, if it differs."""
    return str(node.file_fields.get(OP_NAME) or node.op)


def dump_node(node: Node, include_data: bool = False) -> list[str]:
    """The tokens of one node's record (each token already has its leading space)."""
    out = [" \n" + node.name + "=" + _op_name(node)]
    if node.inputs:
        out.append(" (")
        for i, inp in enumerate(node.inputs):
            if i:
                out.append(" ,")
            out.append(" " + ("NULL" if inp is None else inp.name))
        out.append(" )")
    if node.op in PARAMETERS:
        r, c = _rows_cols(node)
        mult = node.learning_rate_multiplier
        out.append(f" [{r},{c}]  ")
        needs = "true" if mult > 0 else "false"
        out.append(f" learningRateMultiplier={mult:f}  NeedsGradient={needs}")
        if include_data:
            out.extend(_data_tokens(node))
    elif node.op in INPUTS:
        out.append(" [")
        out.append(" " + " x ".join(str(d) for d in cntk_dims(node.shape)))
        out.append(" ]")
    elif node.op in PRECOMPUTED:
        r, c = _rows_cols(node)
        computed = node.attrs["has_computed"]
        out.append(f" [{r},{c}]  ")
        out.append(f" HasComputed={'true' if computed else 'false'}")
        if include_data and node.value is not None:
            out.extend(_data_tokens(node))
    elif node.op in _LEGACY_POOLING:
        out.extend(_legacy_pooling_tokens(node))
    elif node.op in _CONVOLUTION_BASE:
        out.append(f" PoolKind: {_POOL_KINDS.get(node.attrs['pool_kind'].lower(), 0)}")
        out.append(" \n")
    return out


def _data_tokens(node: Node) -> list[str]:
    if node.value is None:
        return []
    double = np.asarray(node.value).dtype == np.float64
    tokens = [" \n"]
    for row in _matrix(node.value):
        tokens.append("".join(" " + _fmt(float(v), double) for v in row))
        tokens.append(" \n")
    tokens.append(" " + _HASHES)
    return tokens


def _image(shape: tuple[int, ...] | None, layout: str) -> tuple[int, int, int]:
    """(width, height, channels) of a numpy-order image shape under ``layout``."""
    dims = cntk_dims(shape)
    dims = (dims + [1, 1, 1])[:3]
    if layout in ("CHW", "cudnn"):
        w, h, c = dims
    else:
        c, w, h = dims
    return w, h, c


def _legacy_pooling_tokens(node: Node) -> list[str]:
    a = node.attrs
    layout = a["image_layout"]
    src = node.inputs[0].shape if node.inputs and node.inputs[0] is not None else None
    iw, ih, ic = _image(src, layout)
    ow, oh, oc = _image(node.shape, layout)
    ww, wh = a["window_width"], a["window_height"]
    hs, vs = a["horizontal_subsample"], a["vertical_subsample"]
    return [
        " \n", f" Input[Width:{iw}, Height:{ih}, Channels:{ic}]  ",
        " \n", f" PoolingWindow[Width:{ww}, Height:{wh}]  "
                f"SubSampling[Horizontal:{hs}, Vertical:{vs}]",
        " \n", f" Output[Width:{ow}, Height:{oh}, Channels:{oc}]  ",
        " \n", f" TotalSizePerSample[Input:{iw * ih * ic}, Output:{ow * oh * oc}]  ",
    ]


def dump_text(network: Network, include_data: bool = False,
              nodes: Iterable[Node] | None = None) -> str:
    """The Dump text of the whole network (name order) or of ``nodes`` (in the order given)."""
    chosen = network.sorted_nodes() if nodes is None else list(nodes)
    tokens: list[str] = []
    for node in chosen:
        tokens.extend(dump_node(node, include_data))
    return "".join(tokens)
