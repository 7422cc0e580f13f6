"""Lowerings of the ops of imported models (``netsurgeon.ops.imported``)."""

from __future__ import annotations

from netsurgeon.errors import EvaluationError
from netsurgeon.ops.imported import per_axis
from netsurgeon.runtime.lowerings import lowering


def _tuple(values) -> str:
    return "(" + ", ".join(str(int(v)) for v in values) + ",)"


@lowering("GroupedConvolution")
def _grouped_convolution(em, node, args):
    """One ``F.convNd(..., groups=g)``; asymmetric padding goes through ``F.pad`` first."""
    w, x = args
    attrs = node.attrs
    rank = len(attrs["kernel_shape"])
    if rank not in (1, 2, 3):
        raise EvaluationError(f"{rank}-d grouped convolution is not supported", node=node.name)
    lo, hi = per_axis(attrs["lower_pad"], rank), per_axis(attrs["upper_pad"], rank)
    xs = x.expr if x.dynamic else f"{x.expr}.unsqueeze(0)"
    if lo == hi:
        padding = _tuple(lo)
    else:
        flat = [p for pair in reversed(list(zip(lo, hi))) for p in pair]
        xs = f"F.pad({xs}, {_tuple(flat)})"
        padding = "0"
    expr = (f"F.conv{rank}d({xs}, {w.expr}, None, {_tuple(per_axis(attrs['strides'], rank))}, "
            f"{padding}, {_tuple(per_axis(attrs['dilation'], rank))}, {int(attrs['groups'])})")
    return expr if node.dynamic else f"{expr}.squeeze(0)"
