"""Less common ops: casts, identities, the environment flag, DummyCriterion, Crop,
GMMLogLikelihood, the packed-index ops of a new dynamic axis (Where, PackedIndex, GatherPacked,
ScatterPacked), and the ops the PyTorch runtime cannot evaluate (marked unsupported, with the
reason).
"""

from __future__ import annotations

from math import prod

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.lowerings import TORCH, lowering

_DTYPES = {"float": "torch.float32", "double": "torch.float64", "float16": "torch.float16"}


@lowering("Cast")
def _cast(em, node, args):
    precision = node.attrs["precision"]
    dtype = _DTYPES.get(precision)
    if dtype is None:
        raise EvaluationError(f"Cast precision {precision!r} is unknown; use float, double or "
                              "float16", node=node.name)
    return f"{args[0]}.to({dtype})"


@lowering("ReconcileDynamicAxis")
def _reconcile(em, node, args):
    data, layout = args
    em.out_axis = layout.axis if layout.dynamic else data.axis
    if data.dynamic or not layout.dynamic:
        return data.expr
    dims = ", ".join(str(d) for d in data.shape)
    return f"{data}.expand({layout}.shape[0]{', ' if dims else ''}{dims})"


@lowering("Trace")
def _trace(em, node, args):
    return args[0].expr  # logging is not reproduced; the value passes through


@lowering("EnvironmentInput")
def _environment(em, node, args):
    name = node.attrs["property_name"]
    if name != "isTraining":
        raise EvaluationError(f"EnvironmentInput property {name!r} is unknown", node=node.name)
    return em.const([1.0 if em.training else 0.0], "is_training")


@lowering("Diagonal")
def _diagonal(em, node, args):
    x = args[0]
    if len(x.shape) != 2:
        raise EvaluationError("Diagonal needs a matrix", node=node.name)
    if x.dynamic:
        return f"torch.diagonal({x}, dim1=1, dim2=2).reshape(-1, {', '.join(map(str, node.shape))})"
    return f"torch.diagonal({x}).reshape({', '.join(map(str, node.shape))})"


@lowering("DummyCriterion", uses_mask=True)
def _dummy(em, node, args):
    """Value = objective; gradient to the prediction = the derivatives input (CNTK)."""
    obj, der, pred = args
    total = f"K.masked_sum({obj}, {em.mask})" if obj.dynamic else f"{obj}.sum().reshape(1)"
    push = (f"K.masked_sum(K.flat({pred}) * K.flat({der}).detach(), {em.mask})" if pred.dynamic
            else f"({pred} * {der}.detach()).sum().reshape(1)")
    return f"{total} + ({push} - ({push}).detach())"


@lowering("CosDistanceWithNegativeSamples")
def _cos_neg(em, node, args):
    a, b, shift, neg = args
    n = int(node.shape[0]) - 1
    if n < 1:
        raise EvaluationError("the number of negative samples is unknown; set the attribute "
                              "num_negative_samples", node=node.name)
    k = str(int(round(float(node.inputs[2].value.reshape(-1)[0])))) \
        if node.inputs[2].value is not None else f"int({shift}.reshape(-1)[0].item())"
    return f"K.cos_with_negatives({a}, {b}, {k}, {n})"


@lowering("GMMLogLikelihood")
def _gmm(em, node, args):
    prior, means, _, x = args
    k, d = prod(prior.shape), prod(x.shape)
    if not k or not d or prod(means.shape) != k * d:
        raise EvaluationError("GMMLogLikelihood needs known sizes: K prior components, D "
                              "features and K*D means", node=node.name)
    flags = tuple(a.dynamic for a in args)
    return f"K.gmm_log_likelihood({', '.join(a.expr for a in args)}, {flags}, {k}, {d})"


@lowering("Crop")
def _crop(em, node, args):
    x = args[0]
    h, w = node.shape[-2:]
    if len(args) == 2 or len(args) == 4:
        ox, oy = node.attrs["x_offset"], node.attrs["y_offset"]
        if ox > 1e300 or oy > 1e300:
            raise EvaluationError("Crop without explicit offsets (automatic from the node "
                                  "graph) is not supported; give xOffset/yOffset",
                                  node=node.name)
        lead = ":, " * (len(x.shape) - 2 + (1 if x.dynamic else 0))
        ox, oy = int(ox), int(oy)
        return f"{x}[{lead}{oy}:{oy + h}, {ox}:{ox + w}]"
    raise EvaluationError("Crop needs 2 or 4 inputs", node=node.name)


TORCH.unsupported("DynamicAxis", "a named dynamic axis is a declaration, not a value")


# ---- the packed-index ops: a Where makes a new dynamic axis --------------------------------
# A new axis lives in the minibatch's (batch, time) grid: sequence b's frames at the front of
# row b, zeros after its own length (a 0/1 condition never selects more frames than the
# sequence has). Its lengths and mask are variables of the generated code; every value
# records which axis it is on (codegen.Arg.axis), so masks, criteria and FutureValue use the
# right lengths.
def _needs_axis(node, *args) -> None:
    for a in args:
        if not a.dynamic:
            raise EvaluationError(f"{node.op} needs inputs with a dynamic axis (input "
                                  f"'{a.node.name}' has none)", node=node.name)


@lowering("Where")
def _where(em, node, args):
    cond = args[0]
    _needs_axis(node, cond)
    if em.in_loop:
        raise EvaluationError("Where inside a recurrent loop is not supported", node=node.name)
    out = em.tmp(node.name)
    lengths, mask = em.new_axis(node.name)
    em.pre(f"{out}, {lengths}, {mask} = K.where_frames({cond}, {em.batch}, {em.steps}, "
           f"{em.lengths})")
    return out


@lowering("PackedIndex")
def _packed_index(em, node, args):
    source, index = args
    _needs_axis(node, source, index)
    em.out_axis = index.axis
    return f"K.packed_index({index}, {em.batch}, {em.steps})"


def _mask_of(em, arg) -> str:
    mask = em.builder.axis_mask[arg.axis]
    if mask == "mask":  # the minibatch's mask is None when every frame is real
        return f"(mask if mask is not None else torch.ones({arg}.shape[0], device={arg}.device))"
    return mask


@lowering("GatherPacked")
def _gather_packed(em, node, args):
    index, source = args
    _needs_axis(node, index, source)
    em.out_axis = index.axis
    return f"K.gather_packed({index}, {source}, {_mask_of(em, index)})"


@lowering("ScatterPacked")
def _scatter_packed(em, node, args):
    layout, index, source = args
    _needs_axis(node, layout, index, source)
    em.out_axis = layout.axis
    return f"K.scatter_packed({layout}, {index}, {source}, {_mask_of(em, source)})"
