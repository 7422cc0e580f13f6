"""MaxUnpooling and ROIPooling (brainscript.md §library, cntk-model-format.md), numpy order.

**MaxUnpooling(x, pool_input)** undoes a max pooling with the same geometry attributes: the
output has ``pool_input``'s shape (C, *spatial), every value of ``x`` (C, *pooled) goes to
the position of the max of its window in ``pool_input`` and the rest is zero. Checked
against CNTK 2.7 (tests/runtime/test_op_reference_pooling_extra.py): on ties the first max
in memory order (row-major in numpy order) is taken, and where overlapping windows pick the
same position the last window writes (no sum). Padded cells never win. The gradient flows
to ``x`` at the positions written; ``pool_input`` gets none.

**ROIPooling(x, rois)**: ``x`` a feature map (C, H, W), ``rois`` (R, 4) regions per sample
(CNTK [4 x R]), each ``(x1, y1, x2, y2)``: absolute corners, inclusive, in pixels of the
image the map was computed from (not (x, y, w, h), not relative). Output (R, C, *roi_output_
shape). As CNTK 2.7's MaxROIPoolingForward (after Fast R-CNN): the corners are multiplied
by ``spatial_scale`` and rounded half away from zero; the region is max(x2 - x1 + 1, 1)
wide (so for y); bin i of n spans [⌊i·w/n⌋, ⌈(i+1)·w/n⌉) from x1 (w/n in the model's
precision), clipped to the map; an empty bin is 0. CNTK 2.7 evaluates max pooling only
("Average ROI pooling is not supported."), so average is refused here too. CNTK's CPU
kernel computes in unsigned integers: for a region with a corner left of / above the map or
x2 < x1 it gives other numbers (bins starting outside the map are 0 there, partly undefined
behaviour) — netsurgeon clips such bins to the map as Fast R-CNN does.
"""

from __future__ import annotations

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.lowerings import lowering
from netsurgeon.runtime.lowerings.conv import Geometry, _as_images


def _result(node, expr: str) -> str:
    """The kernels work on a leading frame axis; a constant input has one frame (the
    kernels broadcast it to the other's frames)."""
    return expr if node.dynamic else f"{expr}.squeeze(0)"


@lowering("MaxUnpooling")
def _max_unpooling(em, node, args):
    z, x = args
    if node.attrs["pool_kind"] not in ("max", "none"):
        raise EvaluationError(f"MaxUnpooling with pool_kind {node.attrs['pool_kind']!r}: "
                              "only max pooling can be undone", node=node.name)
    x_shape, z_shape = tuple(x.shape), tuple(z.shape)
    if len(z_shape) != len(x_shape) or z_shape[0] != x_shape[0]:
        raise EvaluationError(f"MaxUnpooling of {z_shape} into {x_shape}: the pooled values "
                              "need the pooling input's rank and channels", node=node.name)
    g = Geometry(node, x_shape, z_shape, pooling=True)
    if any(d != 1 for d in g.d):
        raise EvaluationError("dilated unpooling is not supported", node=node.name)
    ceil_out = bool(node.attrs["ceil_out_dim"])
    for i, k, s, (lo, hi) in zip(g.spatial, g.k, g.s, g.pads):
        span = x_shape[i] + lo + hi - k
        fits = {span // s + 1} | ({-(-span // s) + 1} if ceil_out else set())
        if span < 0 or z_shape[i] not in fits:
            raise EvaluationError(
                f"MaxUnpooling: the pooled values {z_shape} do not fit a pooling of "
                f"{x_shape} with kernel {tuple(g.k)}, stride {tuple(g.s)} (axis {i} would "
                f"be {sorted(fits)[0]})", node=node.name)
    pads = "(" + "".join(f"({lo}, {hi}), " for lo, hi in g.pads) + ")"
    return _result(node, f"K.max_unpool({_as_images(z)}, {_as_images(x)}, "
                         f"{tuple(g.k)!r}, {tuple(g.s)!r}, {pads})")


@lowering("ROIPooling")
def _roi_pooling(em, node, args):
    x, rois = args
    kind = node.attrs["pool_kind"]
    if kind != "max":
        raise EvaluationError(f"ROIPooling with pool_kind {kind!r}: CNTK 2.7 computes max "
                              "ROI pooling only ('Average ROI pooling is not supported.')",
                              node=node.name)
    if len(x.shape) != 3:
        raise EvaluationError(f"ROIPooling needs a (C, H, W) feature map, not {x.shape}",
                              node=node.name)
    if not rois.shape or rois.shape[-1] != 4:
        raise EvaluationError(f"ROIPooling needs 4 coordinates per region, not {rois.shape}",
                              node=node.name)
    out = tuple(int(d) for d in node.attrs["roi_output_shape"])
    if len(out) != 2 or min(out) < 1:
        raise EvaluationError(f"roi_output_shape {out} must be (height, width)",
                              node=node.name)
    r = _as_images(rois)
    r = f"{r}.unsqueeze(1)" if len(rois.shape) == 1 else \
        f"{r}.flatten(1, -2)" if len(rois.shape) > 2 else r
    expr = (f"K.roi_pool({_as_images(x)}, {r}, {out!r}, "
            f"{float(node.attrs['spatial_scale'])!r})")
    shape = ", ".join(str(int(d)) for d in node.shape)
    return _result(node, f"{expr}.reshape(-1, {shape})")
