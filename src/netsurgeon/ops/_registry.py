"""The node-type registry: one table of :class:`OpSpec` that every layer reads.

Op names are looked up exactly, then case-insensitively, then through the op's aliases (legacy
file spellings such as ``ErrorPrediction``); function names (NDL/BrainScript spellings and
aliases) case-insensitively, as CNTK did. A spelling may name different functions in
different languages (NDL ``Convolution`` and BrainScript's ``new ComputationNode`` primitive
``Convolution`` read different arguments); within one language it is unique.

Languages: ``ndl`` (NDL functions, ndl-mel.md §B.9), ``bs`` (BrainScript library functions
whose signature this registry describes) and ``node`` (BrainScript's primitive
``new ComputationNode [operation=X; inputs=...; <config>]``: one function per op and op alias,
whose options are the config names the CNTK node class reads). Later layers attach their per-op
table as a :class:`~netsurgeon.ops.Layer` (:meth:`OpRegistry.attach`), so that adding a node
type stays one entry plus one entry per layer, and :func:`~netsurgeon.ops.completeness` names
what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator, KeysView
from typing import Any

from netsurgeon.errors import RegistryError, close_matches
from netsurgeon.ops._category import Category
from netsurgeon.ops._layers import Layer, Unsupported
from netsurgeon.ops._spec import FunctionSpec, OpSpec

__all__ = ["OpRegistry"]


class OpRegistry:
    """An ordered table of ops and the functions that create them."""

    def __init__(self) -> None:
        self._ops: dict[str, OpSpec] = {}
        self._ops_ci: dict[str, OpSpec] = {}
        self._op_aliases: dict[str, OpSpec] = {}  # lower-case alias -> op
        self._functions: dict[str, list[FunctionSpec]] = {}  # lower-case spelling -> functions
        self._function_order: list[FunctionSpec] = []
        self._layers: dict[str, Layer] = {}
        self._sets: dict[Category, frozenset[str]] = {}

    # ---- registration -------------------------------------------------------------------
    def register(self, op: OpSpec) -> OpSpec:
        """Add an op and its functions. Raises RegistryError on a duplicate op or spelling."""
        for spelling in (op.name, *op.aliases):
            if spelling.lower() in self._ops_ci or spelling.lower() in self._op_aliases:
                raise RegistryError(f"op {spelling!r} registered twice")
        if self._sets:
            raise RegistryError(f"op {op.name!r} registered after the op sets were computed")
        self._ops[op.name] = op
        self._ops_ci[op.name.lower()] = op
        for alias in op.aliases:
            self._op_aliases[alias.lower()] = op
        for fn in op.functions:
            self.add_function(fn)
        return op

    def add_function(self, fn: FunctionSpec) -> None:
        """Add a language function (usually through its op's ``functions``)."""
        for spelling in fn.spellings:
            key = spelling.lower()
            for other in self._functions.get(key, ()):
                if other.languages & fn.languages:
                    # CNTK: the first match in table order wins; a second spelling is a bug here.
                    raise RegistryError(
                        f"function name {spelling!r} registered twice for "
                        f"{sorted(other.languages & fn.languages)}")
        for spelling in fn.spellings:
            self._functions.setdefault(spelling.lower(), []).append(fn)
        self._function_order.append(fn)

    def attach(self, layer: Layer) -> Layer:
        """Attach a per-op layer (once per name; attaching the same object again is a no-op).

        Raises:
            RegistryError: another layer of that name is attached, or the layer names ops
                this registry does not have (by their canonical name).
        """
        current = self._layers.get(layer.name)
        if current is layer:
            return layer
        if current is not None:
            raise RegistryError(f"a different {layer.name!r} layer is already attached")
        unknown = sorted(n for n in layer.names() if n not in self._ops)
        if unknown:
            raise RegistryError(f"the {layer.name} layer names ops that do not exist (or not by "
                                f"their canonical name): {', '.join(unknown)}")
        self._layers[layer.name] = layer
        return layer

    def layers(self) -> list[Layer]:
        """The attached layers, in attachment order."""
        return list(self._layers.values())

    def layer(self, name: str) -> Layer:
        """The attached layer ``name``. Raises RegistryError if it is not attached."""
        found = self._layers.get(name)
        if found is None:
            raise RegistryError(f"no {name!r} layer is attached to this registry (import the "
                                "module that provides it)")
        return found

    def entry(self, layer: str, op: OpSpec | str) -> Any:
        """The op's entry in a layer when supported, else None."""
        found = self._layers.get(layer)
        if found is None:
            return None
        return found.get(op if isinstance(op, OpSpec) else self.op(op))

    def unsupported_reason(self, layer: str, op: OpSpec | str) -> str | None:
        """Why a layer does not handle the op (None when it does or has not decided)."""
        found = self._layers.get(layer)
        entry = found.lookup(op if isinstance(op, OpSpec) else self.op(op)) if found else None
        return entry.reason if isinstance(entry, Unsupported) else None

    def op_set(self, category: Category) -> frozenset[str]:
        """Canonical names of the ops in ``category`` (computed once)."""
        found = self._sets.get(category)
        if found is None:
            found = self._sets[category] = frozenset(
                op.name for op in self._ops.values() if category in op.categories)
        return found

    # ---- lookup -------------------------------------------------------------------------
    def op(self, name: str) -> OpSpec:
        """The op called ``name`` (exact, then case-insensitive). Raises RegistryError."""
        found = (self._ops.get(name) or self._ops_ci.get(name.lower())
                 or self._op_aliases.get(name.lower()))
        if found is None:
            raise RegistryError(
                f"unknown operation '{name}'", hint=close_matches(name, self._ops)
            )
        return found

    def find_op(self, name: str) -> OpSpec | None:
        """Like :meth:`op` but returns None when the name is unknown."""
        return (self._ops.get(name) or self._ops_ci.get(name.lower())
                or self._op_aliases.get(name.lower()))

    def has_op(self, name: str) -> bool:
        low = name.lower()
        return name in self._ops or low in self._ops_ci or low in self._op_aliases

    def canonical_op_name(self, name: str) -> str:
        """The canonical op name for ``name`` or one of its aliases (``Delay`` -> ``PastValue``)."""
        return self.op(name).name

    def function(self, name: str, language: str | None = None) -> FunctionSpec:
        """The function spelled ``name`` (case-insensitive). Raises RegistryError."""
        fn = self.find_function(name, language)
        if fn is None:
            pool = [s for f in self._function_order for s in f.spellings
                    if language is None or language in f.languages]
            raise RegistryError(f"unknown function '{name}'", hint=close_matches(name, pool))
        return fn

    def find_function(self, name: str, language: str | None = None) -> FunctionSpec | None:
        """Like :meth:`function` but returns None when the name is unknown."""
        for fn in self._functions.get(name.lower(), ()):
            if language is None or language in fn.languages:
                return fn
        return None

    def function_spellings(self) -> KeysView[str]:
        """Every function's lower-case spellings, a live view (``in`` is one hash lookup: what
        a parser asks per statement before :meth:`find_function`)."""
        return self._functions.keys()

    def is_reserved(self, name: str, language: str = "ndl") -> bool:
        """True if ``name`` is a built-in function name (NDL forbids it as a key)."""
        return self.find_function(name, language) is not None

    def __iter__(self) -> Iterator[OpSpec]:
        return iter(self._ops.values())

    def __len__(self) -> int:
        return len(self._ops)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.has_op(name)

    def functions(self, language: str | None = None) -> list[FunctionSpec]:
        """All functions in registration order (of one language if given)."""
        return [f for f in self._function_order if language is None or language in f.languages]
