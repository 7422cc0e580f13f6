"""Recurrence (ndl-mel.md §B.9.6): PastValue/FutureValue delays, the cuDNN RNN stack, and
the sequence ops TimeReverse and Shift.

A delay's input 0 is *delayed*: loops through it are allowed, and validation may use the
node's declared shape (``PastValue(rows, x)``) before ``x`` is inferred.
"""

from __future__ import annotations

from math import prod
from typing import Any

from netsurgeon.ops._build import define
from netsurgeon.ops._category import Category as C
from netsurgeon.ops._convert import NodeOption, np_shape
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._shapes import broadcast, complete_dims, same_as_input
from netsurgeon.ops._spec import (
    AttrSpec,
    Form,
    FunctionSpec,
    NodeRecipe,
    Param,
    Shape,
    ShapeContext,
    fmt_shape,
)

__all__ = ["register", "DELAY_ATTRS", "RNN_OPS", "rnn_weight_count"]

DELAY_ATTRS = {
    "time_step": AttrSpec("int", 1, "delay in steps (file i32 timeStep)"),
    "initial_state": AttrSpec("float", 0.1, "value before the sequence start when input 1 is "
                              "absent (NDL defaultHiddenActivity, BrainScript "
                              "defaultHiddenActivation; file elem initialStateValue, v >= 2)"),
}

#: recurrentOp spellings (v >= 14; older files used LSTM, GRU, RNN_RELU, RNN_TANH)
RNN_OPS = ("lstm", "gru", "rnnReLU", "rnnTanh")


def _delay(ctx: ShapeContext) -> Shape:
    x = tuple(ctx.shapes[0])
    declared = tuple(ctx.declared) if ctx.declared is not None else ()
    if declared and 0 not in declared and 0 not in x and prod(declared) != prod(x):
        ctx.fail(f"the declared dimension {fmt_shape(declared)} does not match the input "
                 f"{fmt_shape(x)}")
    if 0 in x and declared and 0 not in declared:
        return declared
    if len(ctx.shapes) > 1 and 0 not in ctx.shapes[1] and 0 not in x:
        s = tuple(ctx.shapes[1])
        if prod(s) not in (1, prod(x)):
            ctx.fail(f"the initial state {fmt_shape(s)} must be a scalar or match the input "
                     f"{fmt_shape(x)}")
    return x


def _make_delay(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    rows = int(bound["rows"])
    step = int(bound.get("timeStep", 1))
    if step == 1 and bound.get("delayTime") is not None:
        step = int(bound["delayTime"])
    recipe = NodeRecipe(op=fn.op, inputs=[bound.get("x")], shape=(rows,),
                        attrs={"time_step": step,
                               "initial_state": float(bound.get("defaultHiddenActivity", 0.1))})
    return recipe


def _finish_delay(recipe: NodeRecipe, bound: dict[str, Any]) -> None:
    if "shape" in bound:
        recipe.shape = np_shape(bound["shape"])


#: gates per cell of each recurrent_op, by its lower-cased spelling (old and new)
_RNN_GATES = {"lstm": 4, "gru": 3, "rnnrelu": 1, "rnntanh": 1, "rnn_relu": 1, "rnn_tanh": 1}


def rnn_weight_count(recurrent_op: str, input_size: int, hidden: int, layers: int,
                     bidirectional: bool) -> int | None:
    """Elements of an OptimizedRNNStack's flat weights (cuDNN's parameter count): for each
    layer and direction, gates x hidden x (in + hidden + 2), ``in`` = the input dimension for
    layer 0 and hidden x directions above; None for an unknown recurrent_op."""
    gates = _RNN_GATES.get(str(recurrent_op).lower())
    if gates is None:
        return None
    dirs = 2 if bidirectional else 1
    return sum(dirs * gates * hidden * ((input_size if layer == 0 else hidden * dirs)
                                        + hidden + 2) for layer in range(layers))


def _rnn(ctx: ShapeContext) -> Shape:
    hidden = int(ctx.attrs["hidden_size"])
    if hidden <= 0:
        ctx.fail("hidden_size must be positive")
    w, x = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    layers = int(ctx.attrs["num_layers"])
    if 0 in w and w and x and 0 not in x and layers > 0:
        # ParameterTensor {0:0}: W gets cuDNN's element count; when every dimension is unknown
        # the last numpy one takes it all (CNTK [count x 1]), else the single unknown one
        count = rnn_weight_count(ctx.attrs["recurrent_op"], prod(x), hidden, layers,
                                 bool(ctx.attrs["bidirectional"]))
        if count is not None:
            if all(d == 0 for d in w):
                w = (1,) * (len(w) - 1) + (0,)
            ctx.refine(0, complete_dims(ctx, 0, w, count))
    return (hidden * (2 if ctx.attrs["bidirectional"] else 1),)


def _shift(ctx: ShapeContext) -> Shape:
    x = tuple(ctx.shapes[0])
    if int(ctx.attrs["boundary_mode"]) not in (-1, 0):
        ctx.fail(f"boundaryMode {ctx.attrs['boundary_mode']} is unknown: -1 (boundary value) "
                 "or 0 (duplicate the edge frame)")
    b = tuple(ctx.shapes[1])
    if 0 not in x and 0 not in b and prod(b) != 1 and broadcast(ctx, [x, b]) != x:
        ctx.fail(f"the boundary value {fmt_shape(b)} must broadcast to the input "
                 f"{fmt_shape(x)}")
    return x


def register(ops: OpRegistry) -> None:
    """Register the recurrent ops."""
    define(ops, "TimeReverse", (1, 1), same_as_input(0), inputs=("x",),
           categories={C.RECURRENT},
           doc="Each sequence's frames in reverse order (y_t = x_{length-1-t}); a value "
               "without a dynamic axis passes through. CNTK's BrainScript could not construct "
               "it ('undefined operation'), so its numbers are unverified.")
    define(ops, "Shift", (2, 2), _shift, inputs=("x", "boundary"),
           attrs={
               "from_offset": AttrSpec("int", 0, "y_t = x_{t+from_offset} (negative: past)"),
               "boundary_mode": AttrSpec("int", -1, "-1: frames outside the sequence come "
                                         "from the boundary input (per frame when it has a "
                                         "dynamic axis); 0: the edge frame is duplicated"),
               "dim": AttrSpec("int", -1, "CNTK axis to shift along; only -1 (the dynamic "
                               "axis) is evaluated"),
           },
           categories={C.RECURRENT},
           node_options=(NodeOption("fromOffset", "from_offset", "int"),
                         NodeOption("boundaryMode", "boundary_mode", "int"),
                         NodeOption("dim", "dim", "int")),
           doc="Shift along the dynamic axis within each sequence: y_t = x_{t+from_offset}, "
               "boundary value (or the edge frame) outside. Not a delay: a loop through it is "
               "refused. CNTK compiled ShiftNode out of its BrainScript, so the semantics "
               "follow its source comments, unverified by numbers.")
    ndl_forms = (
        Form((Param("rows", "int"), Param("x", "input"))),
        Form((Param("rows", "int"), Param("cols", "int"), Param("x", "input"))),
    )
    ndl_options = {
        "timeStep": Param("timeStep", "int", 1),
        "delayTime": Param("delayTime", "int", None),
        "defaultHiddenActivity": Param("defaultHiddenActivity", "float", 0.1),
    }
    for name, aliases, doc in (
        ("PastValue", ("Delay",), "y_t = x_{t-time_step}; before the start: input 1 or "
                                  "initial_state."),
        ("FutureValue", (), "y_t = x_{t+time_step}; after the end: input 1 or initial_state."),
    ):
        define(ops, name, (1, 2), _delay, inputs=("x", "initial_state"), attrs=DELAY_ATTRS,
               categories={C.DELAY, C.RECURRENT}, delayed=(0,), aliases=aliases,
               node_options=(NodeOption("timeStep", "time_step", "int"),
                             NodeOption("defaultHiddenActivation", "initial_state", "float",
                                        aliases=("defaultHiddenActivity",)),
                             NodeOption("shape", "_shape", "shape")),
               node_finish=lambda r, b: (r.attrs.pop("_shape", None), _finish_delay(r, b)),
               functions=(FunctionSpec(name, name, ndl_forms, ndl_options, aliases,
                                       make=_make_delay, languages=frozenset({"ndl"}),
                                       doc="(rows, x) or (rows, cols, x); cols is ignored"),),
               doc=doc)
    define(ops, "OptimizedRNNStack", (2, 2), _rnn, inputs=("W", "x"), aliases=("RNN",),
           attrs={
               "bidirectional": AttrSpec("bool", False, "file u64 0/1"),
               "num_layers": AttrSpec("int", 1, "stacked layers"),
               "hidden_size": AttrSpec("int", 0, "hidden dimension per direction"),
               "recurrent_op": AttrSpec("str", "lstm", "lstm, gru, rnnReLU or rnnTanh (kept as "
                                        "the file spelled it; before v14 LSTM, GRU, RNN_RELU, "
                                        "RNN_TANH)"),
               "axis": AttrSpec("int", 1, "recurrence axis, registry convention (CNTK -1 = the "
                                "dynamic axis -> 1; CNTK 2 = spatial -> -2); file v >= 14"),
           },
           categories={C.RECURRENT},
           node_options=(NodeOption("bidirectional", "bidirectional", "bool"),
                         NodeOption("numLayers", "num_layers", "int"),
                         NodeOption("hiddenSize", "hidden_size", "int",
                                    aliases=("hiddenDims",)),
                         NodeOption("recurrentOp", "recurrent_op", "str"),
                         NodeOption("axis", "axis", "axis")),
           doc="cuDNN-style stacked RNN over the dynamic axis: per frame, the last layer's "
               "hidden state (forward and backward concatenated when bidirectional), zero "
               "initial states. W is flat (any shape), in cuDNN's canonical layout (the specs "
               "are silent); unknown (0) dimensions of W are inferred from x to cuDNN's "
               "element count, sum over layers and directions of gates * hidden * (in + "
               "hidden + 2) (all unknown: numpy (1, count), CNTK [count x 1]). Layout: "
               "first every matrix, for each layer and direction the input then "
               "the recurrent matrices of the gates, (hidden, in) row-major each; then every "
               "bias, in the same layer/direction order, the input then the recurrent biases "
               "of the gates. Gates: LSTM i, f, g, o; GRU r, z, n; rnnReLU/rnnTanh one. No "
               "CNTK oracle: CNTK 2.7's CPU build cannot run it (cuDNN only).")
