"""Per-op layers: the tables later layers hang on the registry, typed and checked for completeness.

A *layer* is one concern that needs something per op: the PyTorch lowering (``torch``), the
CNTK v1 payload codec (``cntk_v1``), the BrainScript library function (``bs``), and the ONNX
and CNTK v2 mappings to come. Each is a :class:`Layer` whose entries satisfy one
``typing.Protocol``; an op either has an entry, gets one derived by the layer's rule (an op
whose v1 payload is empty needs no codec of its own), or is explicitly :class:`Unsupported`
with the reason. :func:`completeness` lists every op a layer leaves undecided, so adding an op
is one registry entry plus one entry per layer that the report names.

NOTE: why explicit ``Unsupported``. A silent "no entry" is indistinguishable from a forgotten
one; forcing a reason makes "not in v1 files" or "no PyTorch kernel yet" a visible decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from netsurgeon.errors import RegistryError

if TYPE_CHECKING:
    from netsurgeon.ops._registry import OpRegistry
    from netsurgeon.ops._spec import OpSpec

__all__ = ["Layer", "Unsupported", "completeness"]

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A layer's explicit decision not to handle an op, with the reason users will read."""

    reason: str


class Layer(Generic[E]):
    """One per-op table: entries by canonical op name, a protocol they satisfy, a derivation rule.

    Args:
        name: the layer's key (``torch``, ``cntk_v1``, ``bs``).
        protocol: a ``runtime_checkable`` Protocol every entry satisfies.
        doc: what an entry is, for messages ("PyTorch lowering").
        derive: the entry of an op without an explicit one (or None to leave it undecided).
    """

    def __init__(self, name: str, protocol: type, *, doc: str,
                 derive: Callable[[OpSpec], E | Unsupported | None] | None = None) -> None:
        self.name = name
        self.protocol = protocol
        self.doc = doc
        self._derive = derive
        self._entries: dict[str, E | Unsupported] = {}

    def add(self, op_names: str | Iterable[str], entry: E | Unsupported) -> E | Unsupported:
        """Record ``entry`` for one or more ops (canonical names); once per op."""
        for name in (op_names,) if isinstance(op_names, str) else op_names:
            if name in self._entries:
                raise RegistryError(f"the {self.name} layer has two entries for op {name!r}")
            self._entries[name] = entry
        return entry

    def register(self, *op_names: str) -> Callable[[E], E]:
        """Decorator form of :meth:`add`."""

        def decorate(entry: E) -> E:
            self.add(op_names, entry)
            return entry

        return decorate

    def unsupported(self, op_names: str | Iterable[str], reason: str) -> None:
        """Mark ops this layer does not handle, saying why."""
        self.add(op_names, Unsupported(reason))

    def lookup(self, spec: OpSpec) -> E | Unsupported | None:
        """The op's entry: explicit, else derived, else None (undecided)."""
        found = self._entries.get(spec.name)
        if found is None and self._derive is not None:
            found = self._derive(spec)
        return found

    def get(self, spec: OpSpec) -> E | None:
        """The op's entry when the layer supports it, else None."""
        found = self.lookup(spec)
        return None if isinstance(found, Unsupported) else found

    def copy(self) -> Layer[E]:
        """A new layer with the same entries and rule (to extend for a private registry)."""
        twin: Layer[E] = Layer(self.name, self.protocol, doc=self.doc, derive=self._derive)
        twin._entries = dict(self._entries)
        return twin

    def names(self) -> Iterator[str]:
        """Op names with an explicit entry."""
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"<Layer {self.name}: {len(self._entries)} explicit entries>"


def completeness(registry: OpRegistry) -> list[str]:
    """Every gap in the registry and its attached layers, one readable line each (empty = complete).

    Checks per op: a callable shape rule, typed and documented attributes whose defaults fit
    their kind, and for every attached layer an entry satisfying its protocol or an explicit
    :class:`Unsupported` with a reason. Checks per layer: it names no op the registry lacks.
    """
    from netsurgeon.ops._spec import AttrSpec

    problems: list[str] = []
    for spec in registry:
        if not callable(spec.infer_shape):
            problems.append(f"{spec.name}: no shape rule")
        for key, attr in spec.attrs.items():
            if not isinstance(attr, AttrSpec) or not attr.doc:
                problems.append(f"{spec.name}: attribute '{key}' needs an AttrSpec with a doc")
            elif not attr.default_fits():
                problems.append(f"{spec.name}: default {attr.default!r} of '{key}' is not a "
                                f"{attr.kind}")
        for layer in registry.layers():
            entry = layer.lookup(spec)
            if entry is None:
                problems.append(f"{spec.name}: no {layer.name} entry ({layer.doc}); add one or "
                                f"mark it Unsupported with the reason")
            elif isinstance(entry, Unsupported):
                if not entry.reason.strip():
                    problems.append(f"{spec.name}: {layer.name} marks it unsupported without a "
                                    "reason")
            elif not isinstance(entry, layer.protocol):
                problems.append(f"{spec.name}: its {layer.name} entry {entry!r} is not a "
                                f"{layer.protocol.__name__}")
    for layer in registry.layers():
        unknown = sorted(n for n in layer.names() if registry.find_op(n) is None
                         or registry.find_op(n).name != n)  # type: ignore[union-attr]
        if unknown:
            problems.append(f"the {layer.name} layer names ops the registry does not have (or "
                            f"not by their canonical name): {', '.join(unknown)}")
    return problems
