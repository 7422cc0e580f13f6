"""Creating nodes from BrainScript (brainscript.md §4.2–§4.6).

Nodes made while a program runs are *detached* :class:`~netsurgeon.graph.Node` objects whose
``_inputs`` are set directly (no network owns them yet; :mod:`.network` adopts them when a
``ComputationNetwork`` is assembled). Op attributes come from the registry's ``node``
functions (BrainScript's ``new ComputationNode``); leaves and parameter initialisation are
read here because BrainScript's rules differ from NDL's (``init=''`` defaults, glorot...).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from netsurgeon.errors import EvaluationError, NetsurgeonError, ShapeError, close_matches
from netsurgeon.graph import Node
from netsurgeon.graph._network import group_name
from netsurgeon.lang.brainscript.values import (
    Array,
    Record,
    Thunk,
    fail,
    index_path,
    join_path,
    type_name,
)
from netsurgeon.ops import OPS, ShapeContext

if TYPE_CHECKING:
    from netsurgeon.lang.brainscript.evaluator import Evaluator

__all__ = ["NodeFactory", "TensorShapeValue", "node_member", "infer_local", "bs_initialize"]

# legacy operation names BrainScript accepts (§4.3) when the registry lacks them as aliases
_ALIASES = {"ErrorPrediction": "ClassificationError", "Delay": "PastValue", "RowSlice": "Slice",
            "Scale": "ElementTimes", "Parameter": "LearnableParameter", "Input": "InputValue",
            "SparseInput": "SparseInputValue", "CrossEntropyWithSoftMax": "CrossEntropyWithSoftmax"}

_PLACEHOLDER_INIT = {"kind": "fixedValue", "value": 0.0, "scale": 1.0, "seed": -1, "path": "",
                     "literal": "", "kernel": (0, 0)}


class TensorShapeValue:
    """``new TensorShape [dims=…]``: CNTK-order dimensions (0 = inferred)."""

    __slots__ = ("dims",)

    def __init__(self, dims: tuple[int, ...]) -> None:
        self.dims = dims

    def __repr__(self) -> str:
        return f"TensorShape{list(self.dims)}"


def _prod(dims) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def bs_initialize(shape: tuple[int, ...], spec: dict[str, Any], dtype: str = "float32") -> np.ndarray:
    """A parameter value as BrainScript's ``init=`` says (§4.3); numpy-order ``shape``.

    Random schemes use numpy's PCG64 with the parameter's seed (CNTK's own random numbers are
    not reproduced). Fan-in/out follow CNTK: ``initOutputRank`` leading CNTK dims are outputs,
    ``initFilterRank`` leading dims are the receptive field (counted on both sides).
    """
    kind = spec["kind"]
    scale = float(spec.get("scale", 1.0))
    if kind == "fixed":
        return np.full(shape, float(spec["value"]), dtype=dtype)
    if kind == "zero":
        return np.zeros(shape, dtype=dtype)
    if kind in ("fromFile", "fromLiteral", "bilinear"):
        from netsurgeon.ops.init import initialize

        init = dict(_PLACEHOLDER_INIT, kind=kind, path=spec.get("path", ""),
                    literal=spec.get("literal", ""))
        return initialize(shape, init, dtype=dtype)
    cntk = tuple(reversed(shape))
    out_rank = int(spec.get("outputRank", 1))
    filt = int(spec.get("filterRank", 0))
    if out_rank < 0:
        out_dims = cntk[len(cntk) + out_rank:] if cntk else ()
        in_dims = cntk[:len(cntk) + out_rank]
    else:
        out_dims, in_dims = cntk[:out_rank], cntk[out_rank:]
    receptive = _prod(cntk[:filt]) if filt else 1
    fan_out = max(_prod(out_dims) * (receptive if out_rank < 0 else 1), 1)
    fan_in = max(_prod(in_dims), 1)
    rng = np.random.Generator(np.random.PCG64(int(spec.get("seed", 1))))
    if kind == "uniform":
        return rng.uniform(-0.05 * scale, 0.05 * scale, size=shape).astype(dtype)
    if kind == "uniform1":
        return rng.uniform(-scale, scale, size=shape).astype(dtype)
    if kind == "gaussian":
        return rng.normal(0, 0.2 * scale / math.sqrt(fan_in), size=shape).astype(dtype)
    if kind == "normal":
        return rng.normal(0, scale, size=shape).astype(dtype)
    if kind == "TruncNormal":
        v = rng.normal(0, scale, size=shape)
        return np.clip(v, -2 * scale, 2 * scale).astype(dtype)
    limits = {
        "xavier": math.sqrt(3.0 / fan_in),
        "glorotUniform": math.sqrt(6.0 / (fan_in + fan_out)),
        "heUniform": math.sqrt(6.0 / fan_in),
    }
    if kind in limits:
        r = scale * limits[kind]
        return rng.uniform(-r, r, size=shape).astype(dtype)
    stds = {"glorotNormal": math.sqrt(2.0 / (fan_in + fan_out)), "heNormal": math.sqrt(2.0 / fan_in)}
    if kind in stds:
        return rng.normal(0, scale * stds[kind], size=shape).astype(dtype)
    raise EvaluationError(f"unknown init '{kind}'", hint="use uniform, gaussian, xavier, glorotUniform, "
                          "glorotNormal, heUniform, heNormal, normal, TruncNormal, zero, fixedValue, "
                          "fromLiteral or bilinear")


def _link(node: Node, inputs) -> None:
    """Set a *detached* node's inputs (no network keeps users for it yet)."""
    node._inputs = tuple(inputs)


def infer_local(nodes, *, strict: bool = True) -> None:
    """Infer the shapes of ``nodes`` (inputs before users) whose inputs' shapes are known.

    Used on detached nodes and clones, so that a bad parameter substitution is reported at
    once, naming the node and the shapes. Delayed inputs use the node's declared shape.
    """
    specs: dict[str, Any] = {}
    for node in nodes:
        spec = specs.get(node.op)
        if spec is None:
            spec = specs[node.op] = OPS.op(node.op) if OPS.has_op(node.op) else False
        if spec is False or "leaf" in spec.categories:
            continue
        shapes, dyn = [], []
        ok = True
        for i, inp in enumerate(node.inputs):
            s = inp.shape if inp is not None else None
            if (s is None or 0 in s) and i in spec.delayed_inputs and node.shape is not None:
                s = node.shape
            if s is None or inp is None:
                ok = False
                break
            shapes.append(tuple(s))
            dyn.append(bool(inp.dynamic) if inp.dynamic is not None else True)
        if not ok:
            continue
        if node.op == "Times":
            shapes[0] = _expand_times_input(node, shapes[0], shapes[1])
        ctx = ShapeContext(node.op, node.name, node.attrs, shapes, dyn,
                           input_names=[i.name for i in node.inputs],
                           input_ops=[i.op for i in node.inputs],
                           declared=node.shape if spec.delayed_inputs else None)
        try:
            out = tuple(int(d) for d in spec.infer_shape(ctx))
        except ShapeError:
            if strict:
                raise
            continue
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
            continue
        for index, shape in ctx.refined.items():
            inp = node.inputs[index]
            if inp.op == "LearnableParameter" and inp.value is not None and tuple(inp.value.shape) != shape:
                raise ShapeError(
                    f"parameter '{inp.name}' has shape {tuple(inp.value.shape)} but '{node.name}' "
                    f"({node.op}) needs {shape} for it (input shapes: "
                    + ", ".join(f"{n.name} {n.shape}" for n in node.inputs) + ")", node=node.name)
        node.shape = out
        node.dynamic = {"always": True, "none": False}.get(spec.dynamic, any(dyn))


def _expand_times_input(node: Node, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """CNTK's ``inferInputRankToMap``: a parameter ``W = [O..., Inferred]`` used in
    ``Times(W, x, inferInputRankToMap=k)`` with k >= 0 gets as input dims all of x's dims but
    the last k (CNTK order). The registry's Times rule only completes equal-rank 0 dims, so
    the language layer expands the parameter's shape first (numpy order: x.shape[k:])."""
    k = int(node.attrs.get("infer_input_rank_to_map", -1))
    w = node.inputs[0]
    if k < 0 or w is None or w.op != "LearnableParameter" or w.value is not None:
        return a
    out_rank = int(node.attrs.get("output_rank", 1))
    k_part = a[: len(a) - out_rank]
    if len(k_part) != 1 or k_part[0] != 0 or k > len(b):
        return a
    new = tuple(b[k:]) + tuple(a[len(a) - out_rank:])
    if 0 in new:
        return a
    w.shape = new
    return new


class NodeFactory:
    """Makes the nodes of one BrainScript evaluation (and holds its parameter seed counter)."""

    def __init__(self, ev: Evaluator, seed: int = 1) -> None:
        self.ev = ev
        self.seed = seed
        self.pending_init: dict[Node, dict[str, Any]] = {}
        self.deferred: dict[Node, tuple[Thunk, Any]] = {}
        self._unnamed = 0

    # ---- helpers ---------------------------------------------------------------------------
    def _name(self, path: str, op: str) -> str:
        if path:
            return path
        self._unnamed += 1
        return f"_{op}{self._unnamed}"

    @staticmethod
    def resolve_op(name: str, location=None) -> str:
        if OPS.has_op(name):
            return OPS.op(name).name
        fn = OPS.find_function(name, "node") or OPS.find_function(name, "bs")
        if fn is not None:
            return fn.op
        alias = _ALIASES.get(name)
        if alias is not None and OPS.has_op(alias):
            return OPS.op(alias).name
        raise fail(f"unknown operation '{name}'" + (f" (alias of '{alias}', which the registry does "
                   "not have yet)" if alias else ""), location,
                   hint=close_matches(name, [o.name for o in OPS]))

    def as_node(self, v: Any, path: str, location=None) -> Node:
        if isinstance(v, Node):
            return v
        if isinstance(v, bool):
            return self.constant(1.0 if v else 0.0, path)
        if isinstance(v, float):
            return self.constant(v, path)
        raise fail(f"expected a node or a number, got a {type_name(v)}", location)

    def constant(self, value: float, path: str, shape: tuple[int, ...] = (1,)) -> Node:
        node = Node(self._name(path, "Constant"), "LearnableParameter", shape=shape,
                    value=np.full(shape, value, dtype=np.float32), learning_rate_multiplier=0.0)
        node.dynamic = False
        return node

    def make(self, op: str, inputs: list[Node], *, name: str, location=None,
             config: dict[str, Any] | None = None, tags=()) -> Node:
        """A computation node of ``op`` with ``inputs``; ``config`` as CNTK config names."""
        op = self.resolve_op(op, location)
        spec = OPS.op(op)
        if not spec.accepts_arity(len(inputs)):
            raise fail(f"{op} expects {spec.arity_text()} inputs, {len(inputs)} given", location,
                       node=name or None)
        attrs = spec.default_attrs()
        fn = OPS.find_function(op, "node")
        if fn is not None and config:
            try:
                recipe = fn.bind(list(inputs), config)
            except ValueError as exc:
                raise fail(str(exc), location, node=name or None) from None
            attrs.update(recipe.attrs)
        node = Node(self._name(name, op), op, attrs=attrs, tags=set(tags), location=location)
        _link(node, inputs)
        return node

    # ---- new ComputationNode -----------------------------------------------------------------
    def _cfg(self, cfg: Record, name: str, default: Any = None, *, required: bool = False):
        t = cfg.find(name)
        if t is None:
            if required:
                raise EvaluationError(f"required parameter '{name}' not found")
            return default
        return t.get(self.ev)

    def _plain(self, value: Any) -> Any:
        """A BrainScript value as a plain Python value for a registry converter."""
        if isinstance(value, TensorShapeValue):
            return list(value.dims)
        if isinstance(value, Array):
            from netsurgeon.lang.brainscript.evaluator import flatten

            return [self._plain(v) for v in flatten(self.ev, value)]
        if isinstance(value, float) and value == math.floor(value) and abs(value) < 2 ** 53:
            return int(value)
        return value

    def _dims(self, value: Any) -> tuple[int, ...]:
        from netsurgeon.lang.brainscript.evaluator import flatten

        if isinstance(value, TensorShapeValue):
            return value.dims
        dims = []
        for v in flatten(self.ev, value):
            if isinstance(v, TensorShapeValue):
                dims.extend(v.dims)
            elif isinstance(v, float) and v == math.floor(v) and v >= 0:
                dims.append(int(v))
            else:
                raise EvaluationError(f"a dimension must be a non-negative integer, not {v!r}")
        return tuple(dims)

    def inputs_from(self, value: Any, path: str) -> list[Node]:
        from netsurgeon.lang.brainscript.evaluator import flatten

        if isinstance(value, Array):
            out = []
            for i, t in enumerate(value.items):
                v = t.get(self.ev)
                if isinstance(v, Array):
                    out.extend(self.inputs_from(v, t.path))
                else:
                    out.append(self.as_node(v, t.path or index_path(path, i)))
            return out
        if value is None:
            return []
        return [self.as_node(v, path) for v in flatten(self.ev, value)]

    def from_config(self, cfg: Record, path: str, location=None) -> Node:
        op_name = self._cfg(cfg, "operation", required=True)
        op = self.resolve_op(str(op_name), location)
        spec = OPS.op(op)
        tag = self._cfg(cfg, "tag", "")
        tags = set()
        if tag:
            try:
                tags.add(group_name(str(tag)))
            except NetsurgeonError as exc:
                raise fail(exc.message, location) from None
        name = self._name(path, op)
        if op == "LearnableParameter":
            node = self._parameter(cfg, name, location)
        elif spec.is_("input"):
            shape = self._dims(self._cfg(cfg, "shape", required=True))
            axis = self._cfg(cfg, "dynamicAxis", "")
            node = Node(name, op, attrs={**spec.default_attrs(),
                                          **({"dynamic_axis": axis.name if isinstance(axis, Node) else str(axis or "")}
                                             if "dynamic_axis" in spec.attrs else {})},
                        shape=tuple(reversed(shape)), location=location)
            node.dynamic = True
        else:
            config = self._options(cfg, op)
            if spec.delayed_inputs:
                node = Node(name, op, attrs=spec.default_attrs(), location=location)
                # late attachment (§3.2): the inputs are read when the network is assembled
                attrs = self._bind_attrs(op, config, location, name)
                node.attrs.update(attrs)
                shp = config.get("shape")
                if shp is not None:
                    dims = self._dims(shp) if not isinstance(shp, list) else tuple(shp)
                    node.shape = tuple(reversed(dims)) if dims and 0 not in dims else None
                t = cfg.find("inputs")
                if t is None:
                    raise fail("required parameter 'inputs' not found", location)
                self.deferred[node] = (t, path)
            else:
                inputs = self.inputs_from(self._cfg(cfg, "inputs", None), "inputs")
                node = self.make(op, inputs, name=name, location=location, config=config)
        node.tags |= tags
        return node

    def _bind_attrs(self, op: str, config: dict[str, Any], location, name: str) -> dict[str, Any]:
        fn = OPS.find_function(op, "node")
        if fn is None or not config:
            return {}
        try:
            return fn.bind([], config).attrs
        except ValueError as exc:
            raise fail(str(exc), location, node=name) from None

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
        if OPS.op(op).delayed_inputs:
            t = cfg.find("shape")
            if t is not None:
                out.setdefault("shape", self._plain(t.get(self.ev)))
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
            raise EvaluationError(f"{node.op} expects {spec.arity_text()} inputs, {len(inputs)} given",
                                  node=node.name)
        _link(node, inputs)

    def inputs_of(self, node: Node):
        if node in self.deferred:
            self.attach_deferred(node)
        return node.inputs

    def _parameter(self, cfg: Record, name: str, location) -> Node:
        shp = self._cfg(cfg, "shape", None)
        if shp is None:
            shp = self._cfg(cfg, "dims", required=True)
        dims = self._dims(shp)
        lr = float(self._cfg(cfg, "learningRateMultiplier", 1.0))
        init = str(self._cfg(cfg, "init", "") or "")
        init_value = self._cfg(cfg, "initValue", "")
        from_file = str(self._cfg(cfg, "initFromFilePath", "") or "")
        spec: dict[str, Any] = {
            "scale": float(self._cfg(cfg, "initValueScale", 1.0)),
            "outputRank": int(self._cfg(cfg, "initOutputRank", 1.0)),
            "filterRank": int(self._cfg(cfg, "initFilterRank", 0.0)),
        }
        if init == "":
            if isinstance(init_value, float):
                spec.update(kind="fixed", value=init_value)
            elif from_file:
                spec.update(kind="fromFile", path=from_file)
            else:
                init = "uniform"
        if init == "fixedValue":
            spec.update(kind="fixed", value=float(self._cfg(cfg, "value", 0.0)))
        elif init == "fromLiteral":
            spec.update(kind="fromLiteral", literal=str(self._cfg(cfg, "initFromLiteral", "")))
        elif init == "fromFile":
            spec.update(kind="fromFile", path=from_file)
        elif init:
            spec["kind"] = init
        if spec["kind"] not in ("fixed", "zero", "fromFile", "fromLiteral"):
            seed = int(self._cfg(cfg, "randomSeed", -1.0))
            if seed < 0:
                seed = self.seed
                self.seed += 1
            spec["seed"] = seed
        shape = tuple(reversed(dims))
        node = Node(name, "LearnableParameter", shape=shape, learning_rate_multiplier=lr,
                    location=location)
        node.dynamic = False
        if spec["kind"] in ("fromFile", "fromLiteral") and 0 in shape:
            node.value = bs_initialize(shape, spec)  # the file decides the shape
            node.shape = tuple(node.value.shape)
        elif 0 in shape or not shape:
            node.attrs["init"] = dict(_PLACEHOLDER_INIT)
            self.pending_init[node] = spec
        else:
            try:
                node.value = bs_initialize(shape, spec)
            except NetsurgeonError as exc:
                raise exc.with_location(location) if location else exc
        return node

    def finish_parameters(self, nodes) -> None:
        """Initialise parameters whose shapes were inferred during validation."""
        for node in nodes:
            spec = self.pending_init.pop(node, None)
            if spec is not None and node.shape is not None and 0 not in node.shape:
                node.value = bs_initialize(node.shape, spec, node.dtype)
                node.attrs.pop("init", None)


def node_member(ev: Evaluator, node: Node, name: str, location) -> Any:
    """A node used as a record (§4.6): name, operation, dim, inputs, <Operation>Args."""
    if name == "name":
        return node.name
    if name == "operation":
        return node.op
    if name == "dim":
        if node.shape is None or 0 in node.shape:
            order = _ancestors_first(ev, node)
            infer_local(order, strict=False)
        if node.shape is None or 0 in node.shape:
            raise fail(f"the dimension of '{node.name}' is not known yet", location, node=node.name)
        return float(_prod(node.shape))
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
