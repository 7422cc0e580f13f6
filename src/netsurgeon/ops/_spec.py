"""The records the node-type registry is made of: :class:`OpSpec` and :class:`FunctionSpec`.

An *op* is a node type as CNTK stores it in a model file (``Times``, ``LearnableParameter``).
A *function* is a name a language calls to create one (``Parameter``, ``Const``, ``Scale``,
``RowSlice``): several functions may create the same op, with different argument lists.

NOTE: why two records. CNTK's NDL ``Constant(0.5)`` and ``Parameter(10, 20)`` both create a
``LearnableParameter``, and ``Scale``/``ElementTimes`` both an ``ElementTimes``. Keeping the
op (shape rule, attributes, file payload, kernel) apart from the spellings that create it means
a new spelling never touches the op, and a new layer (file codec, kernel) never touches a spelling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NoReturn

import numpy as np

from netsurgeon._sentinel import Sentinel
from netsurgeon.errors import ArgumentError, ShapeError
from netsurgeon.ops._category import Category

__all__ = [
    "REQUIRED",
    "AttrSpec",
    "Param",
    "Form",
    "FunctionSpec",
    "NodeRecipe",
    "OpSpec",
    "ShapeContext",
    "Shape",
]

Shape = tuple[int, ...]


#: the default of a parameter or attribute that must be given
REQUIRED: Any = Sentinel("REQUIRED")


_SCALAR_KINDS = {"int": int, "float": float, "bool": bool, "str": str}
_LIST_KINDS = {"ints": int, "bools": bool, "floats": float}


def _scalar(kind: str, value: Any) -> Any:
    """``value`` as a scalar of ``kind``; raises ArgumentError when it is not one."""
    if kind == "str":
        if isinstance(value, str):
            return value
    elif kind == "bool":
        if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer))
                                                    and value in (0, 1)):
            return bool(value)
    elif kind == "int":
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
    elif kind == "float":
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return float(value)
    raise ArgumentError(f"{value!r} is not a {kind}")


@dataclass(frozen=True, slots=True)
class AttrSpec:
    """One typed attribute of an op.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``str``, ``ints`` (tuple of int, numpy
    order where it is a shape), ``bools``, ``floats`` or ``any`` (a JSON-serialisable value).
    ``default`` is what a new node gets; REQUIRED means every node must set it.
    """

    kind: str
    default: Any = REQUIRED
    doc: str = ""

    def coerce(self, value: Any) -> Any:
        """``value`` in this attribute's canonical form (lists become tuples, ``3.0`` an int).

        Raises:
            ArgumentError: the value is not of this kind.
        """
        if self.kind == "any":
            return _freeze(value)
        if self.kind in _SCALAR_KINDS:
            return _scalar(self.kind, value)
        if self.kind in _LIST_KINDS:
            item = {int: "int", bool: "bool", float: "float"}[_LIST_KINDS[self.kind]]
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                return (_scalar(item, value),)
            return tuple(_scalar(item, v) for v in value)
        raise ArgumentError(f"unknown attribute kind {self.kind!r}")

    def accepts(self, value: Any) -> bool:
        """True if ``value`` is already in canonical form (what lint checks)."""
        if self.kind == "any":
            return True
        try:
            canonical = self.coerce(value)
        except ArgumentError:
            return False
        if self.kind in _LIST_KINDS:
            return isinstance(value, tuple) and all(
                type(a) is type(b) for a, b in zip(value, canonical))
        return type(value) is type(canonical)

    def default_fits(self) -> bool:
        """Whether the default is REQUIRED, None (for ``any``) or a canonical value."""
        if self.default is REQUIRED or (self.default is None and self.kind == "any"):
            return True
        return self.accepts(self.default)


def _freeze(value: Any) -> Any:
    """A copy of a JSON-like value that shares no mutable container with the caller."""
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a language function.

    ``kind`` says how the argument is read:

    * ``input``: a node that becomes the next node input;
    * ``inputs``: any number of node inputs (must be the last positional);
    * ``int`` / ``float`` / ``bool``: a scalar read with CNTK's conversion rules (A.6);
    * ``ints``: any number of integer scalars (``Input(28, 28, 1)``), must be last or before inputs;
    * ``shape``: a scalar or an array of integers (``{3, 3, 64}``);
    * ``text``: the raw text of the argument (``Pooling(x, "max", ...)``);
    * ``any``: passed through unconverted.
    """

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def is_input(self) -> bool:
        return self.kind in ("input", "inputs")


@dataclass(frozen=True, slots=True)
class Form:
    """One positional signature of a function; a function may accept several (Convolution)."""

    params: tuple[Param, ...]

    @property
    def min_count(self) -> int:
        return sum(1 for p in self.params
                   if p.default is REQUIRED and p.kind not in ("inputs", "ints"))

    @property
    def max_count(self) -> int | None:
        if any(p.kind in ("inputs", "ints") for p in self.params):
            return None
        return len(self.params)

    def accepts(self, count: int) -> bool:
        top = self.max_count
        if any(p.kind in ("inputs", "ints") and p.default is REQUIRED for p in self.params):
            # a required variadic needs at least one value
            return count >= self.min_count + 1 and (top is None or count <= top)
        return count >= self.min_count and (top is None or count <= top)


@dataclass(slots=True)
class NodeRecipe:
    """What a function call asks the builder to create: one node, before it is named and wired.

    ``inputs`` holds whatever the caller passed for the input parameters (nodes, references,
    None for a missing input), in input order. ``shape`` is set for leaves (numpy order).
    ``init`` describes how a LearnableParameter gets its value (see ``netsurgeon.ops.init``).
    """

    op: str
    inputs: list[Any] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    shape: Shape | None = None
    learning_rate_multiplier: float | None = None
    init: dict[str, Any] | None = None
    tag: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _default_make(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    """Inputs in parameter order; every other bound value that names an op attribute."""
    recipe = NodeRecipe(op=fn.op)
    for p in form.params:
        if p.kind == "input":
            value = bound.get(p.name)
            if value is None and p.default is not REQUIRED:
                continue  # an optional input left out (ClassificationError's top-N)
            recipe.inputs.append(value)
        elif p.kind == "inputs":
            recipe.inputs.extend(bound.get(p.name) or ())
    for key, value in bound.items():
        if key in fn.attr_names:
            recipe.attrs[key] = value
    return recipe


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function name of NDL and/or BrainScript that creates one op.

    Args:
        name: canonical function name (``LearnableParameter``).
        op: the op it creates.
        forms: accepted positional signatures, tried in order by argument count.
        options: named parameters with defaults (``init='uniform'``).
        aliases: other spellings (``Parameter``). Matching is exact, case-insensitive.
        make: builds the :class:`NodeRecipe` from bound arguments; default: inputs in order
            and attributes by name.
        broken: if set, the name is reserved but creating it fails with this message.
        languages: which languages know the name (``ndl``, ``bs``).
        attr_names: bound values copied into attributes by the default ``make``.
    """

    name: str
    op: str
    forms: tuple[Form, ...] = ()
    options: Mapping[str, Param] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    make: Callable[[FunctionSpec, dict[str, Any], Form], NodeRecipe] = _default_make
    broken: str | None = None
    languages: frozenset[str] = frozenset({"ndl", "bs"})
    attr_names: frozenset[str] = frozenset()
    doc: str = ""

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def form_for(self, count: int) -> Form | None:
        """The first form that accepts ``count`` positional arguments."""
        for form in self.forms:
            if form.accepts(count):
                return form
        return None

    def option(self, name: str) -> Param | None:
        """Look up a named parameter case-insensitively, aliases included."""
        low = name.lower()
        for opt in self.options.values():
            if opt.name.lower() == low or any(a.lower() == low for a in opt.aliases):
                return opt
        return None

    def bind(self, positional: list[Any], options: Mapping[str, Any]) -> NodeRecipe:
        """Bind already-converted values to parameters and build the recipe.

        ``positional`` values must already be converted to the parameter kinds (the language
        layer knows how to read its own literals); ``options`` are keyed by the name as
        written. Unknown options are ignored, as CNTK did. Raises ValueError with a message
        naming the function when the count fits no form.
        """
        if self.broken:
            raise ArgumentError(self.broken)
        form = self.form_for(len(positional))
        if form is None:
            raise ArgumentError(f"{self.name}: {len(positional)} positional arguments given, "
                                f"expected {self.describe_forms()}")
        bound = bind_positional(form, positional)
        for key, value in options.items():
            opt = self.option(key)
            if opt is not None:
                bound[opt.name] = value
        for opt in self.options.values():
            if opt.name not in bound and opt.default is not REQUIRED:
                bound[opt.name] = opt.default
        return self.make(self, bound, form)

    def describe_forms(self) -> str:
        """Human text listing the accepted signatures, e.g. ``(W, x, kernelShape)``."""
        texts = []
        for form in self.forms:
            names = []
            for p in form.params:
                n = p.name + ("..." if p.kind in ("inputs", "ints") else "")
                names.append(f"[{n}]" if p.default is not REQUIRED else n)
            texts.append(f"{self.name}({', '.join(names)})")
        return " or ".join(texts) or f"{self.name}()"


def bind_positional(form: Form, positional: list[Any]) -> dict[str, Any]:
    """Map positional values onto ``form``: variadics take what the fixed params leave."""
    params = form.params
    bound: dict[str, Any] = {}
    variadic = [i for i, p in enumerate(params) if p.kind in ("inputs", "ints")]
    if not variadic:
        for p, v in zip(params, positional):
            bound[p.name] = v
        for p in params[len(positional):]:
            if p.default is not REQUIRED:
                bound[p.name] = p.default
        return bound
    vi = variadic[0]
    after = len(params) - vi - 1
    head = positional[:vi]
    tail = positional[len(positional) - after:] if after else []
    middle = positional[vi: len(positional) - after]
    for p, v in zip(params[:vi], head):
        bound[p.name] = v
    bound[params[vi].name] = tuple(middle)
    for p, v in zip(params[vi + 1:], tail):
        bound[p.name] = v
    return bound


class ShapeContext:
    """What a shape rule sees: input shapes (numpy order), dynamic-axis flags and attributes.

    A rule returns the output sample shape, calls :meth:`fail` to report a mismatch, and may
    call :meth:`refine` to complete a learnable input's 0-sized dimensions (``Parameter(n, 0)``).
    ``inputs`` (objects with ``name`` and ``op``, the input nodes) give the names used in
    messages and tell which inputs are learnable; ``input_names``/``input_ops`` may be given
    instead.
    """

    __slots__ = ("op", "node_name", "attrs", "shapes", "dynamic", "refined", "_inputs",
                 "_names", "_ops", "declared")

    def __init__(
        self,
        op: str,
        node_name: str,
        attrs: Mapping[str, Any],
        shapes: list[Shape],
        dynamic: list[bool],
        input_names: list[str] | None = None,
        input_ops: list[str] | None = None,
        declared: Shape | None = None,
        inputs: Any = None,
    ) -> None:
        self.op = op
        self.node_name = node_name
        self.attrs = attrs
        self.shapes = shapes
        self.dynamic = dynamic
        self.refined: dict[int, Shape] = {}
        self._inputs = inputs
        self._names = input_names
        self._ops = input_ops
        self.declared = declared  # the node's own shape (leaves: Input/Parameter dims)

    @property
    def input_names(self) -> list[str]:
        if self._names is None:
            self._names = ([i.name for i in self._inputs] if self._inputs is not None
                           else [f"input{i}" for i in range(len(self.shapes))])
        return self._names

    @property
    def input_ops(self) -> list[str]:
        if self._ops is None:
            self._ops = ([i.op for i in self._inputs] if self._inputs is not None
                         else ["" for _ in self.shapes])
        return self._ops

    def attr(self, name: str) -> Any:
        return self.attrs[name]

    def learnable(self, index: int) -> bool:
        """Whether input ``index`` is a parameter (or of unknown op), so a rule may complete it."""
        op = self.input_ops[index]
        if not op:
            return True
        from netsurgeon.ops import OPS

        return op in OPS.op_set(Category.PARAMETER)

    def fail(self, message: str) -> NoReturn:
        described = ", ".join(
            f"{n} {fmt_shape(s)}" for n, s in zip(self.input_names, self.shapes)
        )
        raise ShapeError(f"{self.op}: {message} (inputs: {described})", node=self.node_name)

    def refine(self, index: int, shape: Shape, *, change_rank: bool = False) -> None:
        """Complete input ``index``'s unknown (0) dimensions; only learnable inputs may change.

        ``change_rank`` lets the unknown dimensions expand into several (CNTK's Times with
        ``inferInputRankToMap >= 0``: ``[out x 0]`` becomes ``[out x 7 x 7 x 32]``).
        """
        old = self.shapes[index]
        if change_rank and 0 in old and len(old) != len(shape):
            if not self.learnable(index):
                self.fail(f"input {index} has unknown dimensions but is not a parameter")
        elif len(old) != len(shape) or any(o not in (0, n) for o, n in zip(old, shape)):
            self.fail(f"cannot infer input {index} as {fmt_shape(shape)} from {fmt_shape(old)}")
        if not self.learnable(index):
            if tuple(old) != tuple(shape):
                self.fail(f"input {index} has unknown dimensions but is not a parameter")
        self.shapes[index] = tuple(shape)
        self.refined[index] = tuple(shape)


def fmt_shape(shape: Shape | None) -> str:
    """numpy-order shape text used in messages, e.g. ``(784, 256)``."""
    if shape is None:
        return "(unknown)"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


ShapeRule = Callable[[ShapeContext], Shape]


@dataclass(frozen=True, eq=False)
class OpSpec:
    """One node type.

    Args:
        name: the CNTK operation name as stored in model files (``Times``).
        arity: (min, max) number of inputs; max None means any number.
        infer_shape: output sample shape from a :class:`ShapeContext`.
        attrs: typed attributes with defaults (numpy order for shapes).
        functions: the language functions that create this op.
        input_names: names of the inputs, for messages and documentation.
        categories: the :class:`~netsurgeon.ops.Category` members the op belongs to; layers
            use the named op sets derived from them (:mod:`netsurgeon.ops.sets`).
        dynamic: ``inherit`` (output has the batch/time axis if any input has it), ``always``
            or ``none`` (criteria sum over the minibatch; parameters have none).
        delayed_inputs: indices of inputs read with a time delay (recurrence back-edges).
        has_math: False for ops that can be stored and edited but have no defined evaluation.
        aliases: other operation names that mean this op in a model file or in BrainScript's
            ``new ComputationNode [operation=...]`` (``ErrorPrediction``, ``Delay``). The
            registry resolves them to this op; a file reader that must write the old spelling
            back keeps it in the node's file fields.

    Later layers (PyTorch lowering, file codecs, BrainScript library) keep their per-op part
    in a :class:`~netsurgeon.ops.Layer` attached to the registry, not in the spec.
    """

    name: str
    arity: tuple[int, int | None]
    infer_shape: ShapeRule
    attrs: Mapping[str, AttrSpec] = field(default_factory=dict)
    functions: tuple[FunctionSpec, ...] = ()
    input_names: tuple[str, ...] = ()
    categories: frozenset[Category] = frozenset()
    dynamic: str = "inherit"
    delayed_inputs: frozenset[int] = frozenset()
    has_math: bool = True
    doc: str = ""
    aliases: tuple[str, ...] = ()

    def accepts_arity(self, count: int) -> bool:
        lo, hi = self.arity
        return count >= lo and (hi is None or count <= hi)

    def arity_text(self) -> str:
        lo, hi = self.arity
        if hi is None:
            return f"at least {lo}"
        return str(lo) if lo == hi else f"{lo} to {hi}"

    def default_attrs(self) -> dict[str, Any]:
        """The attributes a fresh node of this op gets (a new dict each call)."""
        return dict(self._defaults)

    @cached_property
    def _defaults(self) -> dict[str, Any]:
        return {k: a.default for k, a in self.attrs.items() if a.default is not REQUIRED}

    @cached_property
    def required_attrs(self) -> tuple[str, ...]:
        """Attributes without a default: every node must set them."""
        return tuple(k for k, a in self.attrs.items() if a.default is REQUIRED)

    def is_(self, category: Category) -> bool:
        return category in self.categories

    def attr_spec(self, name: str) -> AttrSpec:
        """The AttrSpec of attribute ``name``. Raises ArgumentError naming the known ones."""
        found = self.attrs.get(name)
        if found is None:
            from netsurgeon.errors import close_matches

            known = ", ".join(self.attrs) or "none"
            raise ArgumentError(f"{self.name} has no attribute '{name}' (its attributes: {known})",
                                hint=close_matches(name, self.attrs))
        return found

    def canonical_attrs(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults updated with ``given``, each value coerced to its kind.

        Raises:
            ArgumentError: an unknown attribute, or a value of the wrong kind.
        """
        out = dict(self._defaults)
        if not given:
            return out
        for key, value in given.items():
            spec = self.attr_spec(key)
            try:
                out[key] = spec.coerce(value)
            except ArgumentError as exc:
                raise ArgumentError(f"{self.name} attribute '{key}': {exc.message}") from None
        return out

    def input_name(self, index: int) -> str:
        if index < len(self.input_names):
            return self.input_names[index]
        return f"input{index}"
