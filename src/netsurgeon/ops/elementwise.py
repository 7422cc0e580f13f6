"""Element-wise ops (ndl-mel.md §B.9.2): unary functions, broadcasting binary and ternary ones,
comparisons, and the per-column Softmax family (same shape as the input).

Reserved-but-broken NDL names (``Atan``, ``Tan``) are registered here as functions that fail
with CNTK's message when called. ``Asinh`` and ``Atanh`` failed the same way in CNTK (not in its
creation table); netsurgeon defines them in NDL and BrainScript (docs/brainscript.md).
"""

from __future__ import annotations

from netsurgeon.ops._build import NDL, define, simple_function
from netsurgeon.ops._category import Category as C
from netsurgeon.ops._convert import NodeOption
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._shapes import broadcast_rule, same_as_input
from netsurgeon.ops._spec import AttrSpec, FunctionSpec

__all__ = ["register", "UNARY", "BINARY", "COMPARISON", "BROKEN", "broken_function"]

# canonical op name -> (NDL aliases, categories beyond elementwise/unary, has NDL function)
UNARY: dict[str, tuple[tuple[str, ...], frozenset[str], bool]] = {
    "Abs": ((), frozenset(), True),
    "Acos": ((), frozenset(), True),
    "Asin": ((), frozenset(), True),
    "Cosh": ((), frozenset(), True),
    "Cosine": (("Cos",), frozenset(), True),
    "Exp": ((), frozenset(), True),
    "Floor": ((), frozenset({C.NO_GRADIENT}), True),
    "Log": ((), frozenset(), True),
    "Negate": ((), frozenset(), True),
    "Pass": ((), frozenset({C.IDENTITY}), True),
    "LabelsToGraph": ((), frozenset({C.IDENTITY}), True),
    "Reciprocal": ((), frozenset(), True),
    "RectifiedLinear": (("ReLU",), frozenset(), True),
    "Sigmoid": ((), frozenset(), True),
    "StableSigmoid": ((), frozenset(), False),
    "Sin": ((), frozenset(), True),
    "Sinh": ((), frozenset(), True),
    "Sqrt": ((), frozenset(), True),
    "Tanh": ((), frozenset(), True),
    "StopGradient": ((), frozenset({C.IDENTITY, C.NO_GRADIENT}), True),
    "StraightThrough": ((), frozenset(), False),
    # CNTK 2.x ops (v2 files, ONNX); NDL reserves Tan/Atan and fails (BROKEN); Asinh/Atanh
    # are callable (CNTK's NDL and BrainScript refused them: "undefined operation")
    "Tan": ((), frozenset(), False),
    "Atan": ((), frozenset(), False),
    "Asinh": ((), frozenset(), True),
    "Atanh": ((), frozenset(), True),
    "ExponentialLinearUnit": ((), frozenset(), False),  # CNTK 2.x ELU (alpha 1)
}

# per-column over the sample: same shape, not element-wise in the math sense
COLUMNWISE: dict[str, tuple[str, ...]] = {"Softmax": (), "LogSoftmax": (), "Hardmax": ()}

# op name -> (NDL aliases, op aliases a file or BrainScript may use)
BINARY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Plus": ((), ()),
    "Minus": ((), ()),
    "ElementTimes": (("ColumnElementTimes", "RowElementTimes", "Scale"),
                     ("ColumnElementTimes", "RowElementTimes", "Scale")),
    "LogPlus": ((), ()),
}

COMPARISON: tuple[str, ...] = ("Less", "Equal", "Greater", "GreaterEqual", "NotEqual", "LessEqual")

#: names NDL reserves but cannot create (ndl-mel.md §B.9.2)
BROKEN: tuple[str, ...] = ("Atan", "Tan")


def broken_function(name: str) -> FunctionSpec:
    """A reserved NDL name whose use fails as in CNTK."""
    return FunctionSpec(name, name, broken=f"Attempted to instantiate undefined operation {name}",
                        languages=NDL, doc="reserved; creating it fails")


def register(ops: OpRegistry) -> None:
    """Register the element-wise ops."""
    for name, (aliases, cats, ndl) in UNARY.items():
        define(ops, name, (1, 1), same_as_input(0), inputs=("x",),
               categories={C.ELEMENTWISE, C.UNARY, *cats},
               functions=(simple_function(name, name, "x", aliases=aliases),) if ndl else ())
    for name, aliases in COLUMNWISE.items():
        define(ops, name, (1, 1), same_as_input(0), inputs=("z",),
               categories={C.COLUMNWISE, C.UNARY},
               functions=(simple_function(name, name, "z", aliases=aliases),))
    for name, (fn_aliases, op_aliases) in BINARY.items():
        define(ops, name, (2, 2), broadcast_rule, inputs=("a", "b"),
               categories={C.ELEMENTWISE, C.BINARY}, aliases=op_aliases,
               functions=(simple_function(name, name, "a", "b", aliases=fn_aliases),))
    define(ops, "Pow", (2, 2), broadcast_rule, inputs=("base", "exponent"),
           categories={C.ELEMENTWISE, C.BINARY},
           doc="base ** exponent, broadcasting (a CNTK 2.x op: v2 files and ONNX).")
    for name in COMPARISON:
        define(ops, name, (2, 2), broadcast_rule, inputs=("a", "b"),
               categories={C.ELEMENTWISE, C.BINARY, C.COMPARISON, C.NO_GRADIENT},
               functions=(simple_function(name, name, "a", "b"),))
    define(ops, "Clip", (3, 3), broadcast_rule, inputs=("min", "max", "x"),
           categories={C.ELEMENTWISE, C.TERNARY},
           functions=(simple_function("Clip", "Clip", "min", "max", "x"),),
           doc="min(max(x, min), max), broadcasting all three inputs.")
    define(ops, "If", (3, 3), broadcast_rule, inputs=("cond", "then", "else"),
           categories={C.ELEMENTWISE, C.TERNARY},
           functions=(simple_function("If", "If", "cond", "then", "else"),),
           doc="Element-wise select: cond != 0 -> then, else else.")
    define(ops, "Dropout", (1, 1), same_as_input(0), inputs=("x",),
           attrs={
               "dropout_rate": AttrSpec("float", 0.0, "rate during training; not stored in v1 "
                                        "files (CNTK took it from the SGD config)"),
               "rng_seed": AttrSpec("int", 0, "RNG seed (v1 files v >= 16)"),
               "rng_offset": AttrSpec("int", 0, "RNG offset (v1 files v >= 16)"),
           },
           categories={C.ELEMENTWISE, C.UNARY, C.RANDOM},
           node_options=(NodeOption("dropoutRate", "dropout_rate", "float"),
                         NodeOption("rngSeed", "rng_seed", "int"),
                         NodeOption("rngOffset", "rng_offset", "int")),
           functions=(simple_function("Dropout", "Dropout", "x"),),
           doc="Training-time dropout; identity at inference.")
    for name in BROKEN:
        ops.add_function(broken_function(name))

