"""Creating nodes from BrainScript (brainscript.md §4.2–§4.6).

Nodes made while a program runs are *detached* :class:`~netsurgeon.graph.Node` objects (no
network owns them yet; :mod:`.network` adopts them when a ``ComputationNetwork`` is
assembled). ``new ComputationNode [operation = X; …]`` is the registry's ``node`` function of
X: it reads the config names the CNTK node class read, found through the scope chain, and
returns the attributes, a leaf's shape and a parameter's ``init`` rule. A parameter whose shape
is complete is initialised at once; one with inferred dimensions when the network is prepared.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import ArgumentError, EvaluationError, NetsurgeonError, close_matches
from netsurgeon.graph import Node, detached, group_name
from netsurgeon.graph.passes import initialize_node
from netsurgeon.lang.brainscript.shapes import infer_local
from netsurgeon.lang.brainscript.values import (
    DONE,
    Array,
    LazyPath,
    PathLike,
    Record,
    Thunk,
    fail,
    index_path,
    is_integral,
    join_path,
    type_name,
)
from netsurgeon.ops import OPS, NodeRecipe
from netsurgeon.ops.cntk_random import next_bs_seed
from netsurgeon.ops.init import RANDOM_KINDS
from netsurgeon.ops.sets import INPUTS, LEAVES, PARAMETERS

if TYPE_CHECKING:
    from netsurgeon.lang.brainscript.evaluator import Evaluator

__all__ = ["NodeFactory", "TensorShapeValue", "node_member", "MAX_NAME_BYTES", "MAX_DIM"]

#: node names of one program, in all (CNTK names nodes by expression paths, which grow with
#: the nesting: ``z.PlusArgs[0].PlusArgs[0]…``); more is an error, not gigabytes of names
MAX_NAME_BYTES = 64 * 2 ** 20
#: the largest dimension a TensorShape may have
MAX_DIM = 2 ** 31 - 1

#: init kinds that draw no random numbers, so take no seed from the counter (bs-library.md §4)
_LEAF_DYNAMIC = {"always": True, "none": False}


class TensorShapeValue:
    """``new TensorShape [dims=…]``: CNTK-order dimensions (0 = inferred)."""

    __slots__ = ("dims",)

    def __init__(self, dims: tuple[int, ...]) -> None:
        self.dims = dims

    def __repr__(self) -> str:
        return f"TensorShape{list(self.dims)}"


class NodeFactory:
    """Makes the nodes of one BrainScript evaluation (and holds its parameter seed counter)."""

    def __init__(self, ev: Evaluator, seed: int = 1) -> None:
        self.ev = ev
        self.seed = seed
        self.deferred: dict[Node, tuple[Thunk, Any]] = {}
        self._unnamed = 0
        self.name_bytes = 0
        #: the scalar constants of infix operators (they share their operator's name)
        self.infix_constants: weakref.WeakSet[Node] = weakref.WeakSet()

    # ---- helpers ---------------------------------------------------------------------------
    def count_name(self, length: int, location=None) -> None:
        """Count ``length`` bytes of node names against :data:`MAX_NAME_BYTES`."""
        self.name_bytes += length
        if self.name_bytes > MAX_NAME_BYTES:
            location = self.ev.user_location(location)
            raise fail(f"the node names of this program exceed {MAX_NAME_BYTES // 2 ** 20} MiB "
                       f"(a name here is {length:,} characters long: CNTK names a node after "
                       "its expression path, which grows with the nesting)", location,
                       hint="give deeply nested sub-expressions names of their own")

    def _node_name(self, path: PathLike, op: str, location=None) -> str:
        if path:
            if path.__class__ is LazyPath and path.text is None:
                self.count_name(len(path), location)
            return str(path)
        self._unnamed += 1
        return f"_{op}{self._unnamed}"

    @staticmethod
    def resolve_op(name: str, location=None) -> str:
        """The canonical op an ``operation = '…'`` name means: an op or op alias of the
        registry, else the op of a ``node``/``bs`` function of that spelling (``Parameter``)."""
        spec = OPS.find_op(name)
        if spec is not None:
            return spec.name
        fn = OPS.find_function(name, "node") or OPS.find_function(name, "bs")
        if fn is not None:
            return OPS.op(fn.op).name
        raise fail(f"unknown operation '{name}'", location,
                   hint=close_matches(name, [o.name for o in OPS]))

    def as_node(self, v: Any, path: str, location=None, *, infix: bool = False,
                shape: tuple[int, ...] = (1,)) -> Node:
        if isinstance(v, Node):
            return v
        if isinstance(v, bool):
            return self.constant(1.0 if v else 0.0, path, infix=infix, shape=shape)
        if isinstance(v, float):
            return self.constant(v, path, infix=infix, shape=shape)
        raise fail(f"expected a node or a number, got a {type_name(v)}", location)

    def constant(self, value: float, path: PathLike, *, infix: bool = False,
                 shape: tuple[int, ...] = (1,)) -> Node:
        """A scalar turned into a node: a [1] parameter (``shape``) with learning-rate
        multiplier 0. ``infix``: the constant of an infix operator, named like the operator
        node (bs-library.md §1.2), which assembly renames ``_`` + name even at the top level."""
        name = self._node_name(path, "Constant")
        recipe = self._bind("LearnableParameter", [], {
            "shape": list(shape), "learningRateMultiplier": 0, "initValue": value}, None, name)
        node = self._parameter(recipe, name, None, set())
        if infix:
            self.infix_constants.add(node)
        return node

    def _bind(self, op: str, inputs: list[Node], config: dict[str, Any], location,
              name: str) -> NodeRecipe:
        fn = OPS.find_function(op, "node")
        if fn is None:
            return NodeRecipe(op=op, inputs=list(inputs))
        try:
            return fn.bind(list(inputs), config)
        except ArgumentError as exc:  # a node made by the library: the user's call
            raise fail(exc.message, self.ev.user_location(location), node=name or None) from None

    def _detached(self, name: str, op: str, inputs, location, **fields: Any) -> Node:
        location = self.ev.user_location(location)  # a node made by the library: the user's call
        try:
            return detached(name, op, inputs, location=location, **fields)
        except NetsurgeonError as exc:
            raise fail(exc.message, location, node=name, hint=exc.hint) from None

    def make(self, op: str, inputs: list[Node], *, name: PathLike, location=None,
             config: dict[str, Any] | None = None, tags=()) -> Node:
        """A computation node of ``op`` with ``inputs``; ``config`` as CNTK config names."""
        op = self.resolve_op(op, location)
        spec = OPS.op(op)
        name = self._node_name(name, op, location)
        if not spec.accepts_arity(len(inputs)):
            raise fail(f"{op} expects {spec.arity_text()} inputs, {len(inputs)} given", location,
                       node=name)
        attrs = self._bind(op, inputs, config, location, name).attrs if config else {}
        if op == "CosDistanceWithNegativeSamples" and len(inputs) == 4:
            # shape inference cannot see input 3's value: record it (docs/ops.md)
            count = inputs[3].value if inputs[3].op in PARAMETERS else None
            if count is not None and count.size == 1 and float(count.flat[0]).is_integer():
                attrs = {**attrs, "num_negative_samples": int(count.flat[0])}
        return self._detached(name, op, inputs, location, attrs=attrs, tags=tags)

    # ---- new ComputationNode -----------------------------------------------------------------
    def _cfg(self, cfg: Record, name: str, default: Any = None, *, required: bool = False):
        t = cfg.find(name)
        if t is None:
            if required:
                raise EvaluationError(f"required parameter '{name}' not found")
            return default
        return t.get(self.ev)

    def _plain(self, value: Any) -> Any:
        """A BrainScript value as a plain Python value for a registry converter (a node given
        as a config value, as ``dynamicAxis``, is read by its name)."""
        if isinstance(value, TensorShapeValue):
            return list(value.dims)
        if isinstance(value, Array):
            from netsurgeon.lang.brainscript.evaluator import flatten

            return [self._plain(v) for v in flatten(self.ev, value)]
        if is_integral(value) and abs(value) < 2 ** 53:
            return int(value)
        if isinstance(value, Node):
            return value.name
        return value

    def dims(self, value: Any) -> tuple[int, ...]:
        """A TensorShape's dimensions from a number or a (nested) array of them."""
        from netsurgeon.lang.brainscript.evaluator import flatten

        if isinstance(value, TensorShapeValue):
            return value.dims
        dims = []
        for v in flatten(self.ev, value):
            if isinstance(v, TensorShapeValue):
                dims.extend(v.dims)
            elif is_integral(v) and 0 <= v <= MAX_DIM:
                dims.append(int(v))
            elif is_integral(v) and v > MAX_DIM:
                raise EvaluationError(f"a dimension must be at most {MAX_DIM:,}, not {v:.0f}")
            else:
                raise EvaluationError(f"a dimension must be a non-negative integer, not "
                                      f"{type_name(v)} {v!r}")
        return tuple(dims)

    def inputs_from(self, value: Any, path: PathLike) -> list[Node]:
        """The nodes of an ``inputs`` value: a node, a number, or nested arrays of them.

        A number that is item k of the list becomes the ``[1 x 1]`` Constant that CNTK's
        ``_AsNodes`` makes, named ``inputs.arr[k].res`` (bs-library.md §1.3); one deeper in
        nested arrays is named by its element's path."""
        from netsurgeon.lang.brainscript.evaluator import flatten

        if value is None:
            return []
        if not isinstance(value, Array):
            return [self.as_node(v, f"{path}.arr[0].res", shape=(1, 1))
                    for v in flatten(self.ev, value)]
        out = []
        stack: list[tuple[Any, PathLike, int]] = [(value.items, path, 0)]
        while stack:
            items, p, i = stack.pop()
            if i >= len(items):
                continue
            stack.append((items, p, i + 1))
            t = items[i]
            v = t.get(self.ev)
            if isinstance(v, Array):
                stack.append((v.items, t.path, 0))
            elif len(stack) == 1 and isinstance(v, (bool, float)):  # an item of the list
                out.append(self.as_node(v, f"{path}.arr[{len(out)}].res", shape=(1, 1)))
            else:
                out.append(self.as_node(v, t.path or index_path(p, i)))
        return out

    def prefetch(self, cfg: Record):
        """Work: force what :meth:`from_config` will read (operation, tag, options, and the
        inputs with their nested array elements, unless attached late), so that a chain of
        10,000 nodes built through library functions is evaluated on the work stack."""
        t = cfg.find("operation")
        if t is None:
            return
        name = t.value if t.state == DONE else (yield t)
        try:
            op = self.resolve_op(str(name))
        except NetsurgeonError:
            return  # from_config reports it
        todo = [cfg.find("tag")]
        fn = OPS.find_function(op, "node")
        for opt in fn.options.values() if fn is not None else ():
            todo.append(next((x for x in map(cfg.find, (opt.name, *opt.aliases))
                              if x is not None), None))
        if op not in LEAVES and not OPS.op(op).delayed_inputs:
            todo.append(cfg.find("inputs"))
        values = []
        for x in todo:
            if x is not None:
                values.append(x.value if x.state == DONE else (yield x))
        while values:
            v = values.pop()
            if isinstance(v, Array):
                for x in v.items:
                    values.append(x.value if x.state == DONE else (yield x))

    def from_config(self, cfg: Record, path: str, location=None) -> Node:
        """``new ComputationNode [operation = …; inputs = …; <config>]`` at ``path``."""
        op = self.resolve_op(str(self._cfg(cfg, "operation", required=True)), location)
        spec = OPS.op(op)
        tags = set()
        tag = self._cfg(cfg, "tag", "")
        if tag:
            try:
                tags.add(group_name(str(tag)))
            except NetsurgeonError as exc:
                raise fail(exc.message, location) from None
        name = self._node_name(path, op, location)
        config = self._options(cfg, op)
        if op in LEAVES:
            recipe = self._bind(op, [], config, location, name)
            if op in PARAMETERS:
                return self._parameter(recipe, name, location, tags)
            if recipe.shape is None and op in INPUTS:
                raise fail("required parameter 'shape' not found", location, node=name)
            return self._detached(name, op, (), location, attrs=recipe.attrs, shape=recipe.shape,
                                  dynamic=_LEAF_DYNAMIC.get(spec.dynamic), tags=tags)
        if spec.delayed_inputs:
            # late attachment (§3.2): the inputs are read when the network is assembled
            recipe = self._bind(op, [], config, location, name)
            shape = recipe.shape if recipe.shape and 0 not in recipe.shape else None
            node = self._detached(name, op, (), location, attrs=recipe.attrs, shape=shape,
                                  tags=tags)
            t = cfg.find("inputs")
            if t is None:
                raise fail("required parameter 'inputs' not found", location)
            self.deferred[node] = (t, path)
            return node
        inputs = self.inputs_from(self._cfg(cfg, "inputs", None), "inputs")
        return self.make(op, inputs, name=name, location=location, config=config, tags=tags)

    def _options(self, cfg: Record, op: str) -> dict[str, Any]:
        """The config values the op's ``node`` function reads, found through the scope chain."""
        fn = OPS.find_function(op, "node")
        out: dict[str, Any] = {}
        if fn is None:
            return out
        for opt in fn.options.values():
            for key in (opt.name, *opt.aliases):
                t = cfg.find(key)
                if t is not None:
                    out[opt.name] = self._plain(t.get(self.ev))
                    break
        return out

    def attach_deferred(self, node: Node) -> None:
        """Read a delay node's stored ``inputs`` now (assembly or cloning needs them)."""
        entry = self.deferred.pop(node, None)
        if entry is None:
            return
        thunk, path = entry
        inputs = self.inputs_from(thunk.get(self.ev), join_path(path, "inputs"))
        spec = OPS.op(node.op)
        if not spec.accepts_arity(len(inputs)):
            raise EvaluationError(f"{node.op} expects {spec.arity_text()} inputs, "
                                  f"{len(inputs)} given", node=node.name)
        node.set_inputs(inputs)

    def inputs_of(self, node: Node):
        if node in self.deferred:
            self.attach_deferred(node)
        return node.inputs

    def _parameter(self, recipe: NodeRecipe, name: str, location, tags: set[str]) -> Node:
        """A LearnableParameter with its ``init`` rule (seeded from the counter when random),
        initialised now when its shape is complete."""
        if recipe.shape is None:
            raise fail("required parameter 'shape' not found", location, node=name)
        init = dict(recipe.init or {})
        if init.get("kind") in RANDOM_KINDS and int(init.get("seed", -1)) < 0:
            # CNTK's process-wide BrainScript counter, at construction (§9.2); ``self.seed``
            # (the evaluation's first seed) is an offset on it
            init["seed"] = next_bs_seed() + self.seed - 1
        lrm = recipe.learning_rate_multiplier
        node = self._detached(name, "LearnableParameter", (), location, attrs={"init": init},
                              shape=recipe.shape, dynamic=False, tags=tags,
                              learning_rate_multiplier=1.0 if lrm is None else lrm)
        try:
            initialize_node(node)
        except (MemoryError, ValueError, OverflowError) as exc:
            raise fail(f"cannot allocate the values of a {'x'.join(map(str, recipe.shape))} "
                       f"parameter ({math.prod(recipe.shape):,} elements): {exc}", location,
                       node=name) from None
        return node


def node_member(ev: Evaluator, node: Node, name: str, location) -> Any:
    """A node used as a record (§4.6): name, operation, dim, inputs, <Operation>Args."""
    if name == "name":
        return node.name
    if name == "operation":
        return node.op
    if name in ("dim", "_dims"):
        if node.shape is None or 0 in node.shape:
            infer_local(_ancestors_first(ev, node), strict=False)
        if node.shape is None or 0 in node.shape:
            raise fail(f"the dimension of '{node.name}' is not known yet", location, node=node.name)
        if name == "_dims":  # netsurgeon's library only: the dims in CNTK order, for delays
            return Array(0, [Thunk.of(float(d)) for d in reversed(node.shape)])
        return float(math.prod(node.shape))
    if name in ("_timeStep", "_initialState") and "time_step" in node.attrs:
        # netsurgeon's library only: a delay's settings, to rebuild it with other dimensions
        return float(node.attrs["time_step" if name == "_timeStep" else "initial_state"])
    if name == "inputs" or (name.endswith("Args") and name[:-4] == node.op):
        ins = ev.nodes.inputs_of(node)
        return Array(0, [Thunk.of(i) for i in ins])
    raise fail(f"a node has no member '{name}'", location,
               hint=f"nodes have name, operation, dim, inputs and {node.op}Args")


def _ancestors_first(ev: Evaluator, root: Node) -> list[Node]:
    order: list[Node] = []
    seen = {root}
    stack = [(root, iter(list(ev.nodes.inputs_of(root))))]
    while stack:
        n, it = stack[-1]
        for i in it:
            if i is not None and i not in seen and (i.shape is None or 0 in i.shape):
                seen.add(i)
                stack.append((i, iter(list(ev.nodes.inputs_of(i)))))
                break
        else:
            stack.pop()
            order.append(n)
    return order
