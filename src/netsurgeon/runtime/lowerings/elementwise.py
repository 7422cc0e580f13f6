"""Element-wise ops (ndl-mel.md §B.9.2) with CNTK broadcasting in numpy order."""

from __future__ import annotations

from netsurgeon.runtime.lowerings import TORCH, Lowering, lowering

UNARY = {
    "Sigmoid": "torch.sigmoid({0})",
    "StableSigmoid": "torch.sigmoid({0})",
    "Tanh": "torch.tanh({0})",
    "RectifiedLinear": "torch.relu({0})",
    "Abs": "torch.abs({0})",
    "Acos": "torch.acos({0})",
    "Asin": "torch.asin({0})",
    "Cosh": "torch.cosh({0})",
    "Cosine": "torch.cos({0})",
    "Sin": "torch.sin({0})",
    "Sinh": "torch.sinh({0})",
    "Tan": "torch.tan({0})",
    "Atan": "torch.atan({0})",
    "Asinh": "torch.asinh({0})",
    "Atanh": "torch.atanh({0})",
    "ExponentialLinearUnit": "F.elu({0})",
    "Exp": "torch.exp({0})",
    "Log": "torch.log({0})",
    "Floor": "torch.floor({0})",
    "Sqrt": "torch.sqrt({0})",
    "Reciprocal": "torch.reciprocal({0})",
    "Negate": "torch.neg({0})",
    "Pass": "{0}",
    "LabelsToGraph": "{0}",
    "StraightThrough": "K.straight_through({0})",
    "StopGradient": "{0}.detach()",
}

BINARY = {
    "Plus": "{0} + {1}",
    "Minus": "{0} - {1}",
    "ElementTimes": "{0} * {1}",
    "LogPlus": "torch.logaddexp({0}, {1})",
    "Pow": "torch.pow({0}, {1})",
    "Equal": "({0} == {1}).to({0}.dtype)",
    "NotEqual": "({0} != {1}).to({0}.dtype)",
    "Less": "({0} < {1}).to({0}.dtype)",
    "LessEqual": "({0} <= {1}).to({0}.dtype)",
    "Greater": "({0} > {1}).to({0}.dtype)",
    "GreaterEqual": "({0} >= {1}).to({0}.dtype)",
}


def aligned(em, node, args) -> list[str]:
    """Input expressions reshaped so torch broadcasting equals CNTK's: a frame value whose
    sample rank is below the output rank gets size-1 sample axes in front."""
    rank = len(node.shape or ())
    out = []
    for a in args:
        if a.dynamic and len(a.shape) < rank and node.dynamic:
            dims = (1,) * (rank - len(a.shape)) + tuple(a.shape)
            out.append(f"{a.expr}.reshape(-1, {', '.join(map(str, dims))})")
        else:
            out.append(a.expr)
    return out


def unary(template: str) -> Lowering:
    """The lowering of a unary element-wise op: ``template`` with ``{0}`` for the input (held
    as rows, its result is too where the node may be)."""

    def fn(em, node, args):
        a = args[0]
        if a.rows and em.rows_ok:
            em.out_rows = True
            return template.format(a.expr)
        return template.format(a.full)

    return Lowering(fn, takes_rows=(0,))


def binary(template: str) -> Lowering:
    """The lowering of a binary element-wise op (CNTK broadcasting, see :func:`aligned`)."""

    def fn(em, node, args):
        a, b = aligned(em, node, args)
        return template.format(a, b)

    return Lowering(fn)


for _name, _tpl in UNARY.items():
    TORCH.add(_name, unary(_tpl))
for _name, _tpl in BINARY.items():
    TORCH.add(_name, binary(_tpl))


@lowering("Clip")
def _clip(em, node, args):
    lo, hi, x = aligned(em, node, args)
    return f"torch.minimum(torch.maximum({x}, {lo}), {hi})"


@lowering("If")
def _if(em, node, args):
    c, a, b = aligned(em, node, args)
    return f"torch.where({c} != 0, {a}, {b})"


@lowering("Dropout")
def _dropout(em, node, args):
    """Identity at inference; at training the rate comes from the trainer (CNTK's dropoutRate)."""
    rate = float(em.config.get("dropout_rate", 0.0) or node.attrs["dropout_rate"])
    if not em.training or rate <= 0:
        return args[0].expr
    return f"F.dropout({args[0].expr}, p={rate}, training=True)"
