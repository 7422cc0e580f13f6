"""The ``cntk_v1`` registry layer: which codec stores each op, and the op names files use.

An op has an explicit codec (``payloads/``), or gets one derived: the shared empty payload
for an op of CNTK's v1 node factory without attributes (cntk-model-format.md §7.3), and
``Unsupported`` for internal ops and for ops outside the factory. The file spellings (CNTK's
v1 factory names) are the canonical names and registry aliases of every op the layer stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsurgeon.formats.cntk._codec import EMPTY, OP_NAME, PayloadCodec
from netsurgeon.ops import OPS, Category, Layer, OpRegistry, Unsupported

if TYPE_CHECKING:
    from netsurgeon.graph import Node
    from netsurgeon.ops import OpSpec

__all__ = ["CNTK_V1", "EMPTY_PAYLOAD_OPS", "file_names", "resolve_op", "codec_for",
           "file_name_for"]

#: ops of CNTK's v1 node factory whose payload is empty (cntk-model-format.md §7.3)
EMPTY_PAYLOAD_OPS = frozenset({
    "Abs", "Acos", "Asin", "Cosh", "Cosine", "Sin", "Sinh", "Exp", "Log", "Floor", "Sqrt",
    "Reciprocal", "Negate", "Sigmoid", "StableSigmoid", "Tanh", "RectifiedLinear", "Pass",
    "LabelsToGraph", "StraightThrough", "Softmax", "LogSoftmax", "Hardmax", "Clip", "If", "Plus",
    "LogPlus", "Minus", "ElementTimes", "DiagTimes", "Equal", "NotEqual", "Less", "LessEqual",
    "Greater", "GreaterEqual", "CosDistance", "CosDistanceWithNegativeSamples",
    "KhatriRaoProduct", "SumElements", "SumColumnElements", "Diagonal", "CrossEntropy",
    "CrossEntropyWithSoftmax", "ClassBasedCrossEntropyWithSoftmax", "ClassificationError",
    "SquareError", "Logistic", "MatrixL1Reg", "MatrixL2Reg", "LambdaRank", "NDCG1Eval",
    "DummyCriterion", "SequenceWithSoftmax", "LookupTable", "PerDimMeanVarNormalization",
    "PerDimMeanVarDeNormalization", "ReconcileDynamicAxis", "PackedIndex", "GatherPacked",
    "ScatterPacked", "StopGradient", "EpochAccumulator", "DynamicAxis",
})


def _derive(spec: OpSpec) -> PayloadCodec | Unsupported | None:
    if Category.INTERNAL in spec.categories:
        return Unsupported(f"{spec.name} is an internal op that compiler passes make; it is not "
                           "in v1 files")
    if spec.name in EMPTY_PAYLOAD_OPS:
        # with attributes the op needs an explicit codec saying where they go
        return None if spec.attrs else EMPTY
    return Unsupported(f"{spec.name} is not in CNTK's v1 node factory (cntk-model-format.md "
                       "§7); it is not in v1 files")


#: the layer; the codecs are added by ``payloads`` and it is attached to OPS on import
CNTK_V1: Layer[PayloadCodec] = Layer("cntk_v1", PayloadCodec, doc="CNTK v1 payload codec",
                                     derive=_derive)

_FILE_NAMES: dict[int, tuple[OpRegistry, dict[str, str]]] = {}


def file_names(registry: OpRegistry = OPS) -> dict[str, str]:
    """Every operation name a v1 file may contain -> the canonical op name (exact spelling:
    CNTK's factory compares case-sensitively). Computed once per registry."""
    found = _FILE_NAMES.get(id(registry))
    if found is None or found[0] is not registry:
        names: dict[str, str] = {}
        for spec in registry:
            if CNTK_V1.get(spec) is not None:
                for spelling in (spec.name, *spec.aliases):
                    names[spelling] = spec.name
        found = _FILE_NAMES[id(registry)] = (registry, names)
    return found[1]


def resolve_op(file_name: str, registry: OpRegistry = OPS) -> tuple[OpSpec, PayloadCodec]:
    """The registry op and codec for an operation name read from a file.

    Raises KeyError for a name CNTK's v1 loader does not know.
    """
    spec = registry.op(file_names(registry)[file_name])
    codec = CNTK_V1.get(spec)
    assert codec is not None  # file_names holds supported ops only
    return spec, codec


def codec_for(spec: OpSpec) -> PayloadCodec | Unsupported | None:
    """The op's codec, its explicit ``Unsupported`` decision, or None when undecided."""
    return CNTK_V1.lookup(spec)


def file_name_for(node: Node) -> str:
    """The operation name to store: the read alias the file used, else the op name."""
    return str(node.file_fields.get(OP_NAME) or node.op)
