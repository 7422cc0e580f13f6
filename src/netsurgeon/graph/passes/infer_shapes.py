"""InferShapes: every node's output shape and dynamic-axis flag, in evaluation order.

Recurrent loops are ordered by ignoring delayed inputs; a delay node whose input is not
inferred yet uses its declared shape (``PastValue(rows, x)``), with further sweeps for what is
left. A rule may complete a parameter's unknown (0) dimensions; the parameter's *value* is
left to :class:`~netsurgeon.graph.passes.InitializeParameters`. Values are never touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsurgeon.errors import ArgumentError, ShapeError, ValidationError
from netsurgeon.graph._traversal import topological_order
from netsurgeon.graph.passes._base import Pass, PassResult
from netsurgeon.ops import Category, ShapeContext, fmt_shape

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node
    from netsurgeon.ops import OpRegistry

__all__ = ["InferShapes"]

_DYNAMIC = {"always": True, "none": False}


class InferShapes(Pass):
    """Raises ValidationError (ShapeError) naming the node, the inputs and their shapes."""

    def __init__(self, registry: OpRegistry | None = None) -> None:
        self.registry = registry

    def call(self, net: Network) -> PassResult:
        registry = self.registry or net.registry
        order = topological_order(net, skip_delayed=True, registry=registry)
        run = _Run(registry)
        pending = order
        for _sweep in range(3):
            left = [n for n in pending if not run.infer(n)]
            if not left:
                break
            if len(left) == len(pending):
                names = ", ".join(n.name for n in left[:5])
                raise ValidationError(
                    f"cannot infer the shapes of {names}: a recurrent loop has no known "
                    "dimension; give PastValue/FutureValue its dimension", node=left[0].name)
            pending = left
        else:
            names = ", ".join(n.name for n in pending[:5])
            raise ValidationError(f"cannot infer the shapes of {names}", node=pending[0].name)
        if run.changed:
            net._version += 1
        return PassResult(net, run.changed)


class _Run:
    """One inference run: per-op facts, shapes inferred so far, whether anything changed."""

    def __init__(self, registry: OpRegistry) -> None:
        self.registry = registry
        # op -> (rule, delayed inputs, declares its shape, is a parameter, fixed dynamic flag)
        self.plans: dict[str, tuple] = {}
        self.inferred: dict[Node, tuple[int, ...]] = {}
        self.changed = False

    def plan(self, op: str) -> tuple:
        found = self.plans.get(op)
        if found is None:
            spec = self.registry.op(op)
            cats = spec.categories
            found = self.plans[op] = (
                spec.infer_shape, spec.delayed_inputs,
                Category.LEAF in cats or bool(spec.delayed_inputs), Category.PARAMETER in cats,
                _DYNAMIC.get(spec.dynamic))
        return found

    def infer(self, node: Node) -> bool:
        rule, delayed, declares, is_param, fixed_dynamic = self.plan(node._op)
        inferred = self.inferred
        shapes = []
        dynamic = []
        for i, inp in enumerate(node._inputs):
            shape = inferred.get(inp)
            if shape is None:
                if i in delayed and node._shape is not None and 0 not in node._shape:
                    shape = node._shape
                elif i in delayed and inp._shape is not None and 0 not in inp._shape:
                    shape = inp._shape
                else:
                    return False
            shapes.append(shape)
            dynamic.append(True if inp._dynamic is None else inp._dynamic)
        declared = node._shape if declares else None
        if is_param and node._value is not None:
            declared = tuple(node._value.shape)
        ctx = ShapeContext(node._op, node._name, node._attrs, shapes, dynamic,
                           declared=declared, inputs=node._inputs)
        try:
            out = tuple(map(int, rule(ctx)))
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError,
                ArgumentError) as exc:
            raise ShapeError(f"{node.op}: cannot infer the output shape: {exc}",
                             node=node.name) from exc
        if ctx.refined:
            for index, shape in ctx.refined.items():
                self.refine(node._inputs[index], shape)
        flag = any(dynamic) if fixed_dynamic is None else fixed_dynamic
        if node._shape != out or node._dynamic is not flag:
            node._shape = out
            node._dynamic = flag
            self.changed = True
        inferred[node] = out
        return True

    def refine(self, inp: Node, shape: tuple[int, ...]) -> None:
        """Give a learnable input its completed shape (InitializeParameters gives the value)."""
        if inp._shape == shape:
            return
        if self.plan(inp._op)[3] and inp._attrs.get("init") is None \
                and (inp._value is None or tuple(inp._value.shape) != shape):
            have = inp._value.shape if inp._value is not None else None
            raise ShapeError(f"parameter shape {fmt_shape(have)} cannot become {fmt_shape(shape)} "
                             "(it has no initialisation to redo)", node=inp.name)
        inp._shape = shape
        self.inferred[inp] = shape
        self.changed = True
