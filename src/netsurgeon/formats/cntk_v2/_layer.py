"""The ``cntk_v2`` registry layer: each op's CNTK v2 ``PrimitiveOpType``, operand order and
attributes (cntk-v2-format.md §4).

An entry maps one registry op to one v2 op code: ``order`` gives, for each registry input,
the index of the v2 operand it comes from (CNTK's v2 ops store some operands in another order
than the v1 nodes the registry follows: ``CrossEntropyWithSoftmax(prediction, labels)``,
``Clip(x, min, max)``); ``read`` turns the function's v2 attributes into registry attributes
given the operands' numpy-order sample shapes, and ``write`` does the reverse (typed values
of :mod:`.values`, every key CNTK requires). Several registry ops may be written as one v2
op (``DiagTimes`` as ElementTimes); ``primary`` marks the op a code is read as.

Axes: a v2 static axis ``k`` counts CNTK order from 0 (numpy: from the end), a negative one
from the other end (``k + rank``); the registry's ``-k`` is CNTK's 1-based axis k, so a
v2 axis ``k >= 0`` is registry ``-(k + 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from netsurgeon.errors import FormatError
from netsurgeon.formats.cntk_v2.values import Axis, Float, Int, Shape, SizeT
from netsurgeon.ops import OPS, Category, Layer, OpRegistry, OpSpec, Unsupported

__all__ = ["V2Op", "V2Mapping", "CNTK_V2", "by_code", "install", "ALL_STATIC", "DYNAMIC",
           "registry_axis", "static_axis"]

Shapes = list[tuple[int, ...]]
Reader = Callable[[Mapping[str, Any], Shapes], dict[str, Any]]
#: (registry attributes, numpy-order input shapes in registry order, output sample shape)
Writer = Callable[[Mapping[str, Any], Shapes, tuple[int, ...]], dict[str, Any]]

DYNAMIC = 2147483647
ALL_STATIC = 2147483646
END_STATIC = 2147483644
INFERRED = 2 ** 64 - 1


@runtime_checkable
class V2Mapping(Protocol):
    """The cntk_v2 entry of an op."""

    code: int
    order: tuple[int, ...]
    primary: bool

    def read(self, attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]: ...

    def write(self, attrs: Mapping[str, Any], shapes: Shapes,
              output: tuple[int, ...]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class V2Op:
    """One op's v2 code, operand order (registry input i = v2 operand ``order[i]``; empty:
    the same order), attribute reader and writer (None: the op has no attributes)."""

    code: int
    order: tuple[int, ...] = ()
    reader: Reader | None = field(default=None, compare=False)
    primary: bool = True
    writer: Writer | None = field(default=None, compare=False)

    def read(self, attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
        return self.reader(attrs, shapes) if self.reader is not None else {}

    def write(self, attrs: Mapping[str, Any], shapes: Shapes,
              output: tuple[int, ...]) -> dict[str, Any]:
        return self.writer(attrs, shapes, output) if self.writer is not None else {}


def _derive(spec: OpSpec) -> Unsupported | None:
    """Internal ops and ops CNTK never had (not in its v1 node factory either) are not in v2
    files; every CNTK op needs an explicit decision."""
    from netsurgeon.formats.cntk._layer import CNTK_V1

    if Category.INTERNAL in spec.categories:
        return Unsupported(f"{spec.name} is an internal op of the runtime; it is not in v2 files")
    if isinstance(CNTK_V1.lookup(spec), Unsupported):
        return Unsupported(f"{spec.name} is not a CNTK op; CNTK v2 files cannot hold it")
    return None


CNTK_V2: Layer[V2Mapping] = Layer("cntk_v2", V2Mapping, doc="CNTK v2 op mapping",
                                  derive=_derive)


# ---- attribute helpers --------------------------------------------------------------------
def _static(axis: Any, rank: int, what: str) -> int:
    """The non-negative CNTK-order index of a v2 static axis of an operand of ``rank``."""
    k = int(axis.static_index)
    if k >= DYNAMIC - 4:
        raise FormatError(f"{what}: a {axis.name or 'special'} axis is not a static axis here")
    k = k + rank if k < 0 else k
    if not 0 <= k < max(rank, 1):
        raise FormatError(f"{what}: static axis {axis.static_index} is out of range for a "
                          f"rank-{rank} operand")
    return k


def registry_axis(axis: Any, rank: int, what: str) -> int:
    """The registry axis code (``-k``, CNTK axis k 1-based) of a v2 static axis."""
    return -(_static(axis, rank, what) + 1)


def _numpy(dims: Any) -> tuple[int, ...]:
    """A CNTK-order NDShape as a numpy-order tuple."""
    return tuple(int(d) for d in reversed(tuple(dims)))


def _bools(values: Any) -> tuple[bool, ...]:
    return tuple(bool(v) for v in reversed(list(values)))


def _rank(shapes: Shapes, index: int) -> int:
    return len(shapes[index]) if index < len(shapes) else 0


# ---- per-op readers -----------------------------------------------------------------------
def _times(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    out = {"output_rank": int(attrs.get("outputRank", 1))}
    if "inferInputRankToMap" in attrs:
        out["infer_input_rank_to_map"] = int(attrs["inferInputRankToMap"])
    return out


def _full_rank(values: tuple[int, ...], rank: int, fill: int) -> tuple[int, ...]:
    """numpy-order per-axis values completed to ``rank`` with ``fill`` for the missing
    (CNTK: trailing, the channel) axes."""
    return (fill,) * (rank - len(values)) + values if len(values) < rank else values


def _geometry(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in (("strides", "strides"), ("lowerPad", "lower_pad"),
                      ("upperPad", "upper_pad")):
        if key in attrs:
            out[name] = _numpy(attrs[key])
    if "autoPadding" in attrs:
        out["auto_padding"] = _bools(attrs["autoPadding"])
    return out


def _convolution(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    if int(attrs.get("groups", 1)) != 1:
        raise FormatError(f"grouped convolution (groups {int(attrs['groups'])}) is not "
                          "supported in CNTK v2 files yet")
    out = _geometry(attrs)
    kernel = _numpy(attrs.get("kernelShape", (0,)))
    if kernel and all(kernel):
        out["kernel_shape"] = kernel
    else:  # not inferred yet: the kernel covers every axis of x, W's trailing dims
        x_rank = _rank(shapes, 1)
        out["kernel_shape"] = tuple(shapes[0][-x_rank:]) if x_rank else (1,)
    if "sharing" in attrs:
        out["sharing"] = _bools(attrs["sharing"])
    if "dilation" in attrs:
        out["dilation"] = _numpy(attrs["dilation"])
    if "outputShape" in attrs:
        out["output_shape"] = _numpy(attrs["outputShape"]) or (0,)
    out["transpose"] = bool(attrs.get("transpose", False))
    out["max_temp_mem_size_in_samples"] = int(attrs.get("maxTempMemSizeInSamples", 0))
    out["map_count"] = _map_count(shapes[0] if shapes else (), out)
    return out


def _map_count(w: tuple[int, ...], attrs: Mapping[str, Any]) -> tuple[int, ...]:
    """W's elements beyond the kernel (v2 infers them; a v1 file must store them), or (0,)
    (inferred) where W's shape is not known yet or the convolution is locally connected."""
    kernel = math.prod(attrs["kernel_shape"])
    shared = all(attrs.get("sharing", (True,)))
    if not shared or not w or 0 in w or kernel <= 0 or math.prod(w) % kernel:
        return (0,)
    return (math.prod(w) // kernel,)


_POOL_KINDS = {0: "max", 1: "average"}


def _pooling(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    kind = int(attrs.get("poolingType", 0))
    if kind not in _POOL_KINDS:
        raise FormatError(f"pooling type {kind} is not 0 (max) or 1 (average)")
    rank = _rank(shapes, 0)
    out = _geometry(attrs)
    window = _numpy(attrs.get("poolingWindowShape", ()))
    if len(window) == 1 and window[0] == 2 ** 64 - 2 and rank:  # Unknown: global pooling
        window = (1,) + tuple(shapes[0][1:])
    # a window or strides of lower rank leave the missing (channel) axes alone (window 1)
    out["kernel_shape"] = _full_rank(window, rank, 1)
    out["strides"] = _full_rank(out.get("strides", (1,)), rank, 1)
    out["pool_kind"] = _POOL_KINDS[kind]
    out["ceil_out_dim"] = bool(attrs.get("ceilOutDim", False))
    out["pool_include_pad"] = bool(attrs.get("includePad", False))
    return out


def _batch_norm(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    return {
        "spatial": bool(attrs.get("spatial", False)),
        "normalization_time_constant": float(attrs.get("normalizationTimeConstant", 0.0)),
        "blend_time_constant": float(attrs.get("blendTimeConstant", 0.0)),
        "epsilon": float(attrs.get("epsilon", 1e-5)),
        "use_cntk_engine": not bool(attrs.get("useCuDNNEngine", False)),
        "disable_regularization": bool(attrs.get("disableRegularization", False)),
        "running_inv_std_dev": False,
    }


def _axes_of(attrs: Mapping[str, Any], shapes: Shapes, what: str) -> list[Any]:
    if "axisVec" in attrs:
        return list(attrs["axisVec"])
    if "axis" in attrs:
        return [attrs["axis"]]
    return []


def _slice(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    rank = _rank(shapes, 0)
    if "axisVec" in attrs:
        axes = list(attrs["axisVec"])
        begins = [int(v) for v in attrs["beginIndexVec"]]
        ends = [int(v) for v in attrs["endIndexVec"]]
        strides = [int(v) for v in attrs.get("sliceStridesVec", [1] * len(axes))]
    else:
        axes = [attrs["axis"]]
        begins, ends = [int(attrs["beginIndex"])], [int(attrs["endIndex"])]
        strides = [int(attrs.get("sliceStrides", 1))]
    if not (len(axes) == len(begins) == len(ends) == len(strides)):
        raise FormatError("Slice needs one begin, end and stride per axis")
    return {"axis": tuple(registry_axis(a, rank, "Slice") for a in axes),
            "begin": tuple(begins), "end": tuple(ends), "stride_multiplier": tuple(strides)}


def _reshape(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    dims = [0 if int(d) == INFERRED else int(d) for d in attrs.get("newShape", ())]
    out: dict[str, Any] = {"shape": tuple(reversed(dims))}
    rank = _rank(shapes, 0)
    begin, end = attrs.get("beginAxis"), attrs.get("endAxis")
    if begin is not None and _static(begin, rank + 1, "Reshape") != 0:
        out["begin_axis"] = -(_static(begin, rank + 1, "Reshape") + 1)
    if end is not None and int(end.static_index) != END_STATIC and \
            _static(end, rank + 1, "Reshape") != rank:
        out["end_axis"] = -(_static(end, rank + 1, "Reshape") + 1)
    return out


def _transpose(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    rank = _rank(shapes, 0)
    if "axisVec" in attrs:  # output axis i (CNTK order) reads input axis perm[i]
        perm = [_static(a, rank, "TransposeAxes") for a in attrs["axisVec"]]
        n = len(perm)
        if sorted(perm) != list(range(n)):
            raise FormatError(f"TransposeAxes permutation {perm} is not a permutation")
        return {"permutation": tuple(n - 1 - perm[n - 1 - j] for j in range(n))}
    return {"axes": (registry_axis(attrs["axis1"], rank, "TransposeAxes"),
                     registry_axis(attrs["axis2"], rank, "TransposeAxes"))}


def _splice(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    rank = max((len(s) for s in shapes), default=0)
    axis = attrs.get("axis")
    return {"axis": -1 if axis is None else registry_axis(axis, rank + 1, "Splice")}


def _reduce(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    rank = _rank(shapes, 0)
    axes = _axes_of(attrs, shapes, "ReduceElements")
    codes = tuple(0 if int(a.static_index) == ALL_STATIC else
                  registry_axis(a, rank, "ReduceElements") for a in axes) or (0,)
    return {"operation": str(attrs.get("reductionOpName", "Sum")), "axes": codes,
            "keep_dimensions": bool(attrs.get("reductionKeepDimensions", True))}


def _delay(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    return {"time_step": int(attrs.get("offset", 1))}


def _rng(*names: tuple[str, str]) -> Reader:
    def read(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
        out = {"rng_seed": int(attrs.get("rngSeed", 0)),
               "rng_offset": int(attrs.get("rngOffset", 0))}
        for key, name in names:
            if key in attrs:
                out[name] = attrs[key]
        return out

    return read


def _rnn_stack(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    return {"hidden_size": int(attrs["hiddenSize"]), "num_layers": int(attrs["numLayers"]),
            "bidirectional": bool(attrs["bidirectional"]),
            "recurrent_op": str(attrs["recurrentOp"])}


def _roi_pooling(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    return {"roi_output_shape": _numpy(attrs["roiOutputShape"]),
            "pool_kind": _POOL_KINDS.get(int(attrs.get("poolingType", 0)), "max"),
            "spatial_scale": float(attrs.get("spatialScale", 0.0625))}


def _edit_distance(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    return {"substitution_penalty": float(attrs.get("SubstitutionPenalty", 1.0)),
            "deletion_penalty": float(attrs.get("DeletionPenalty", 1.0)),
            "insertion_penalty": float(attrs.get("InsertionPenalty", 1.0)),
            "squash_inputs": bool(attrs.get("SquashInputs", False)),
            "tokens_to_ignore": tuple(int(t) for t in attrs.get("TokensToIgnore", ()))}


def _forward_backward(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    return {"blank_token_id": int(attrs.get("BlankTokenId", 2 ** 64 - 1)),
            "delay_constraint": int(attrs.get("DelayConstraint", -1))}


# ---- per-op writers (the readers' inverses) ------------------------------------------------
def static_axis(k: int) -> Axis:
    """v2 static axis ``k`` (CNTK order, 0-based) as CNTK writes it."""
    return Axis(k, f"staticAxisIdx={k}", True)


def _axis(code: int, what: str) -> Axis:
    """The v2 Axis of the registry axis ``code`` (``-k`` = CNTK axis k; 0 = all static)."""
    code = int(code)
    if code == 0:
        return static_axis(ALL_STATIC)
    if code > 0:
        raise FormatError(f"{what}: axis {code} is not a registry axis (-k = CNTK axis k)")
    return static_axis(-code - 1)


def _write_times(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                 ) -> dict[str, Any]:
    return {"outputRank": SizeT(attrs["output_rank"]),
            "inferInputRankToMap": Int(attrs["infer_input_rank_to_map"])}


def _write_transpose_times(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                           ) -> dict[str, Any]:
    return {"outputRank": SizeT(attrs["output_rank"])}


def _chw_only(attrs: Mapping[str, Any], what: str) -> None:
    if attrs.get("image_layout", "CHW") != "CHW":
        raise FormatError(f"{what} with image layout {attrs['image_layout']}: CNTK v2 has only "
                          "the CHW layout (CNTK's own converter refuses it too)")


def _geometry_attrs(geo: list[Any]) -> dict[str, Any]:
    """Per-axis vectors in CNTK order, full length (what CNTK's inference writes)."""
    return {"strides": Shape(g.stride for g in geo),
            "autoPadding": [bool(g.auto_pad) for g in geo],
            "lowerPad": Shape(g.lower for g in geo), "upperPad": Shape(g.upper for g in geo)}


def _write_convolution(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                       ) -> dict[str, Any]:
    from netsurgeon.ops.conv import conv_geometry

    _chw_only(attrs, "Convolution")
    geo = conv_geometry(shapes[1], attrs)
    given = tuple(attrs["output_shape"])
    return {**_geometry_attrs(geo), "sharing": [bool(g.sharing) for g in geo],
            "dilation": Shape(g.dilation for g in geo),
            "kernelShape": Shape(g.kernel for g in geo),
            "outputShape": Shape.from_numpy(given) if given and all(given) else Shape([0]),
            "transpose": bool(attrs["transpose"]),
            "maxTempMemSizeInSamples": SizeT(attrs["max_temp_mem_size_in_samples"])}


_POOL_CODES = {kind: code for code, kind in _POOL_KINDS.items()}


def _pool_code(attrs: Mapping[str, Any], what: str) -> SizeT:
    kind = attrs["pool_kind"]
    if kind not in _POOL_CODES:
        raise FormatError(f"{what}: pool kind {kind!r} is not max or average")
    return SizeT(_POOL_CODES[kind])


def _write_pooling(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                   ) -> dict[str, Any]:
    from netsurgeon.ops.conv import conv_geometry

    _chw_only(attrs, "Pooling")
    geo = conv_geometry(shapes[0], attrs, pooling=True)
    return {"poolingType": _pool_code(attrs, "Pooling"),
            "poolingWindowShape": Shape(g.kernel for g in geo), **_geometry_attrs(geo),
            "ceilOutDim": bool(attrs["ceil_out_dim"]),
            "includePad": bool(attrs["pool_include_pad"])}


def _write_batch_norm(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                      ) -> dict[str, Any]:
    if attrs["spatial"]:
        _chw_only(attrs, "spatial BatchNormalization")
    return {"spatial": bool(attrs["spatial"]),
            "normalizationTimeConstant": float(attrs["normalization_time_constant"]),
            "blendTimeConstant": float(attrs["blend_time_constant"]),
            "epsilon": float(attrs["epsilon"]),
            "useCuDNNEngine": not bool(attrs["use_cntk_engine"]),
            "disableRegularization": bool(attrs["disable_regularization"])}


def _write_slice(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                 ) -> dict[str, Any]:
    axes = [_axis(a, "Slice") for a in attrs["axis"]]
    n = len(axes)
    begins, ends, steps = (list(attrs[k])[:n] for k in ("begin", "end", "stride_multiplier"))
    if not n == len(begins) == len(ends) == len(steps):
        raise FormatError("Slice needs one begin, end and stride per axis")
    if n == 1:
        return {"axis": axes[0], "beginIndex": Int(begins[0]), "endIndex": Int(ends[0]),
                "sliceStrides": Int(steps[0])}
    return {"axisVec": axes, "beginIndexVec": [Int(b) for b in begins],
            "endIndexVec": [Int(e) for e in ends], "sliceStridesVec": [Int(s) for s in steps]}


def _write_reshape(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                   ) -> dict[str, Any]:
    return {"newShape": Shape.from_numpy(out)}  # the whole sample, as CNTK's converter


def _write_transpose(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                     ) -> dict[str, Any]:
    perm = [int(p) for p in attrs["permutation"]]
    if perm:  # numpy: output j reads input perm[j]; CNTK order reverses both
        n = len(perm)
        return {"axisVec": [static_axis(n - 1 - perm[n - 1 - i]) for i in range(n)]}
    a1, a2 = tuple(attrs["axes"])[:2]
    return {"axis1": _axis(a1, "TransposeDimensions"), "axis2": _axis(a2, "TransposeDimensions")}


def _write_splice(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                  ) -> dict[str, Any]:
    return {"axis": _axis(attrs["axis"], "RowStack")}


_REDUCTION_NAMES = {"Plus": "Sum"}


def _write_reduce(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                  ) -> dict[str, Any]:
    axes = [_axis(a, "ReduceElements") for a in attrs["axes"]] or [static_axis(ALL_STATIC)]
    operation = str(attrs["operation"])
    placed: dict[str, Any] = {"axis": axes[0]} if len(axes) == 1 else {"axisVec": axes}
    return {**placed, "reductionOpName": _REDUCTION_NAMES.get(operation, operation),
            "reductionKeepDimensions": bool(attrs["keep_dimensions"])}


def _write_sum_columns(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                       ) -> dict[str, Any]:
    """A column is the whole sample: CNTK's converter writes axis 0, which is that only for
    a rank-1 sample (and sums CNTK axis 0 alone otherwise); all static axes are exact."""
    axis = static_axis(0) if _rank(shapes, 0) <= 1 else static_axis(ALL_STATIC)
    return {"axis": axis, "reductionOpName": "Sum", "reductionKeepDimensions": True}


def _write_delay(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                 ) -> dict[str, Any]:
    return {"offset": SizeT(attrs["time_step"])}


def _write_rng(*names: tuple[str, str, Callable[[Any], Any]]) -> Writer:
    def write(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
              ) -> dict[str, Any]:
        values = {key: kind(attrs[name]) for key, name, kind in names}
        return {**values, "rngSeed": SizeT(attrs["rng_seed"]),
                "rngOffset": SizeT(attrs["rng_offset"])}

    return write


def _write_rnn_stack(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                     ) -> dict[str, Any]:
    return {"hiddenSize": SizeT(attrs["hidden_size"]), "numLayers": SizeT(attrs["num_layers"]),
            "bidirectional": bool(attrs["bidirectional"]),
            "recurrentOp": str(attrs["recurrent_op"])}


def _write_roi_pooling(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                       ) -> dict[str, Any]:
    return {"poolingType": _pool_code(attrs, "ROIPooling"),
            "roiOutputShape": Shape.from_numpy(tuple(attrs["roi_output_shape"])),
            "spatialScale": float(attrs["spatial_scale"])}


def _write_edit_distance(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                         ) -> dict[str, Any]:
    return {"SubstitutionPenalty": Float(attrs["substitution_penalty"]),
            "DeletionPenalty": Float(attrs["deletion_penalty"]),
            "InsertionPenalty": Float(attrs["insertion_penalty"]),
            "SquashInputs": bool(attrs["squash_inputs"]),
            "TokensToIgnore": [SizeT(t) for t in attrs["tokens_to_ignore"]]}


def _write_forward_backward(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                            ) -> dict[str, Any]:
    return {"BlankTokenId": SizeT(attrs["blank_token_id"]),
            "DelayConstraint": Int(attrs["delay_constraint"])}


# ---- ops with their own small attribute sets --------------------------------------------
_NOT_GIVEN = 1.7976931348623157e308  # Crop's offsets when not given (DBL_MAX)


def _crop(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    offset = [int(v) for v in attrs.get("offset", ())]
    if not offset:
        return {}
    if len(offset) != 2:
        raise FormatError(f"Crop offset must hold 2 values (x, y), not {len(offset)}")
    return {"x_offset": float(offset[0]), "y_offset": float(offset[1])}


def _write_crop(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                ) -> dict[str, Any]:
    x, y = float(attrs["x_offset"]), float(attrs["y_offset"])
    if x >= _NOT_GIVEN or y >= _NOT_GIVEN:
        return {}
    return {"offset": [SizeT(x), SizeT(y)]}


_PRECISIONS = {1: "float", 2: "double", 4: "float16"}
_PRECISION_CODES = {name: code for code, name in _PRECISIONS.items()}


def _cast(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    code = int(attrs["newDataType"])
    if code not in _PRECISIONS:
        raise FormatError(f"Cast to data type {code}: float (1), double (2) and float16 (4) "
                          "are supported")
    return {"precision": _PRECISIONS[code]}


def _write_cast(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                ) -> dict[str, Any]:
    return {"newDataType": Int(_PRECISION_CODES[str(attrs["precision"])])}


def _where(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    axes = list(attrs.get("newDynamicAxes", ()))
    return {"dynamic_axis_name": str(axes[0].name) if axes else ""}


def _write_where(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                 ) -> dict[str, Any]:
    name = str(attrs["dynamic_axis_name"])  # none: CNTK makes the new axis on load
    return {"newDynamicAxes": [Axis.dynamic(name), Axis.dynamic("defaultBatchAxis", False)]} \
        if name else {}


def _unpooling(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    if int(attrs.get("poolingType", 0)) != 0:
        raise FormatError("Unpooling supports max pooling (poolingType 0) only")
    return _pooling({**attrs, "poolingWindowShape": attrs.get("unpoolingWindowShape", ())},
                    shapes)


def _write_unpooling(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                     ) -> dict[str, Any]:
    written = _write_pooling(attrs, shapes, out)
    return {"poolingType": SizeT(0), "unpoolingWindowShape": written["poolingWindowShape"],
            **{k: written[k] for k in ("strides", "autoPadding", "lowerPad", "upperPad")}}


_LATTICE = (("SymListPath", "symbol_list_path", str), ("PhonePath", "phone_path", str),
            ("StateListPath", "state_list_path", str), ("TransProbPath", "trans_prob_path", str),
            ("LatticeConfigPath", "lattice_config_path", str),
            ("HSmoothingWeight", "fs_smoothing_weight", Float),
            ("FrameDropThresh", "frame_drop_threshold", Float),
            ("SeqGammarAMF", "am_factor", Float), ("SeqGammarLMF", "lm_factor", Float),
            ("SeqGammarBMMIFactor", "bmmi_factor", Float),
            ("SeqGammarWordPen", "word_penalty", Float),
            ("DoReferenceAlign", "do_reference_alignment", bool),
            ("SeqGammarUsesMBR", "uses_mbr", bool))


def _lattice(attrs: Mapping[str, Any], shapes: Shapes) -> dict[str, Any]:
    kinds = {str: str, Float: float, bool: bool}
    return {name: kinds[kind](attrs[key]) for key, name, kind in _LATTICE if key in attrs}


def _write_lattice(attrs: Mapping[str, Any], shapes: Shapes, out: tuple[int, ...]
                   ) -> dict[str, Any]:
    return {key: kind(attrs[name]) for key, name, kind in _LATTICE}


# ---- the table ----------------------------------------------------------------------------
_SIMPLE = {  # ops without attributes whose operands keep the registry's order
    "Negate": 0, "Sigmoid": 1, "Tanh": 2, "RectifiedLinear": 3, "Exp": 4, "Log": 5,
    "Sqrt": 6, "Floor": 7, "Abs": 8, "Reciprocal": 9, "Softmax": 10, "Hardmax": 11,
    "SumElements": 18, "Plus": 19, "Minus": 20, "ElementTimes": 21, "Equal": 22,
    "NotEqual": 23, "Less": 24, "LessEqual": 25, "Greater": 26, "GreaterEqual": 27,
    "PackedIndex": 28, "SquareError": 34, "If": 42, "ReconcileDynamicAxis": 50,
    "LogSoftmax": 51, "LogPlus": 52, "CosDistance": 53, "Sin": 54, "Cosine": 55, "Pass": 56,
    "LabelsToGraph": 63, "StopGradient": 64, "StableSigmoid": 75, "Sinh": 77, "Cosh": 78,
    "Asin": 81, "Acos": 82, "StraightThrough": 94, "Atanh": 85, "Asinh": 86, "Tan": 95,
    "Atan": 96, "ExponentialLinearUnit": 65, "Pow": 69,
}

for _name, _code in _SIMPLE.items():
    CNTK_V2.add(_name, V2Op(_code))
CNTK_V2.add("DiagTimes", V2Op(21, primary=False))
_WITH_ATTRIBUTES: dict[str, tuple[int, Reader, Writer]] = {
    "Times": (31, _times, _write_times),
    "TransposeTimes": (32, _times, _write_transpose_times),
    "Convolution": (33, _convolution, _write_convolution),
    "ConvolutionSequenceShape": (97, _convolution, _write_convolution),
    "Pooling": (17, _pooling, _write_pooling),
    "BatchNormalization": (40, _batch_norm, _write_batch_norm),
    "Slice": (14, _slice, _write_slice), "Reshape": (16, _reshape, _write_reshape),
    "TransposeDimensions": (12, _transpose, _write_transpose),
    "RowStack": (43, _splice, _write_splice), "ReduceElements": (39, _reduce, _write_reduce),
    "PastValue": (37, _delay, _write_delay), "FutureValue": (38, _delay, _write_delay),
    "Dropout": (15, _rng(("dropoutRate", "dropout_rate")),
                _write_rng(("dropoutRate", "dropout_rate", float))),
    "ROIPooling": (47, _roi_pooling, _write_roi_pooling),
    "EditDistanceError": (61, _edit_distance, _write_edit_distance),
    "ForwardBackward": (66, _forward_backward, _write_forward_backward),
}
for _name, (_code, _reader, _writer) in _WITH_ATTRIBUTES.items():
    CNTK_V2.add(_name, V2Op(_code, reader=_reader, writer=_writer))
CNTK_V2.add("SumColumnElements", V2Op(39, reader=_reduce, primary=False,
                                      writer=_write_sum_columns))
_sampling = _rng(("numSamples", "num_samples"), ("allowDuplicates", "allow_duplicates"))
_write_sampling = _write_rng(("numSamples", "num_samples", SizeT),
                             ("allowDuplicates", "allow_duplicates", bool))
CNTK_V2.add("RandomSample", V2Op(45, reader=_sampling, writer=_write_sampling))
CNTK_V2.add("RandomSampleInclusionFrequency", V2Op(46, reader=_sampling,
                                                   writer=_write_sampling))
CNTK_V2.add("Crop", V2Op(84, reader=_crop, writer=_write_crop))
CNTK_V2.add("Cast", V2Op(91, reader=_cast, writer=_write_cast))
CNTK_V2.add("Where", V2Op(13, reader=_where, writer=_write_where))
CNTK_V2.add("MaxUnpooling", V2Op(58, reader=_unpooling, writer=_write_unpooling))
CNTK_V2.add("LatticeSequenceWithSoftmax", V2Op(90, reader=_lattice, writer=_write_lattice))
CNTK_V2.add("CrossEntropyWithSoftmax", V2Op(35, order=(1, 0)))
CNTK_V2.add("ClassificationError", V2Op(36, order=(1, 0, 2)))
CNTK_V2.add("Logistic", V2Op(48, order=(1, 0, 2)))
CNTK_V2.add("LambdaRank", V2Op(59, order=(1, 0, 2)))
CNTK_V2.add("NDCG1Eval", V2Op(60, order=(1, 0, 2)))
CNTK_V2.add("GatherPacked", V2Op(29, order=(1, 0)))
CNTK_V2.add("ScatterPacked", V2Op(30, order=(2, 1, 0)))
CNTK_V2.add("Clip", V2Op(41, order=(1, 2, 0)))
CNTK_V2.add("OptimizedRNNStack", V2Op(49, order=(1, 0), reader=_rnn_stack,
                                      writer=_write_rnn_stack))
CNTK_V2.add("CosDistanceWithNegativeSamples", V2Op(67))

_NOT_V2 = "CNTK's v2 library has no primitive for it (cntk-v2-format.md §4.5: its v1 " \
          "converter refuses the node)"
CNTK_V2.unsupported(("LookupTable", "ClassBasedCrossEntropyWithSoftmax", "Trace", "RowRepeat",
                     "LegacyReshape", "KhatriRaoProduct", "CrossEntropy", "SequenceWithSoftmax",
                     "DummyCriterion", "MatrixL1Reg", "MatrixL2Reg", "Diagonal", "EpochAccumulator",
                     "NCEBasedCrossEntropyWithSoftmax", "QuantizedTimes", "EnvironmentInput",
                     "DynamicAxis", "PerDimMeanVarDeNormalization", "MaxPooling",
                     "AveragePooling", "GroupedConvolution"), _NOT_V2)
CNTK_V2.unsupported(("TimeReverse", "Shift", "GMMLogLikelihood"),
                    "CNTK's v2 library has no primitive for it (a v1-era node its BrainScript "
                    "could not construct either)")
CNTK_V2.unsupported(("InputValue", "SparseInputValue", "LearnableParameter", "Mean",
                     "InvStdDev"), "a leaf: a Variable in the file's inputs, not a function")
CNTK_V2.unsupported("PerDimMeanVarNormalization", "not a v2 primitive: CNTK's converter "
                    "expands it into Minus and ElementTimes, and so does the writer; that form "
                    "is read as those ops")


_BY_CODE: dict[int, tuple[str, V2Mapping]] = {}


def by_code(code: int, registry: OpRegistry = OPS) -> tuple[str, V2Mapping] | None:
    """The registry op (canonical name) and entry a v2 op code is read as, or None."""
    if not _BY_CODE:
        for spec in registry:
            entry = CNTK_V2.get(spec)
            if entry is not None and entry.primary:
                _BY_CODE[entry.code] = (spec.name, entry)
    return _BY_CODE.get(code)


def install(registry: OpRegistry = OPS) -> None:
    """Attach the layer to ``registry`` (once)."""
    if all(layer.name != CNTK_V2.name for layer in registry.layers()):
        registry.attach(CNTK_V2)
