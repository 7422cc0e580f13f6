"""One payload codec per CNTK node type (cntk-model-format.md §7), attached to the registry.

Every codec reads and writes the same description, gated on the model version. Importing this
module hangs each codec on its op with ``OPS.extend("cntk_v1", op, codec)``; the reader and
writer only ever ask the op for it (:func:`codec_for`). :data:`FILE_NAMES` is CNTK's v1 node
factory: every operation name a v1 file may contain (canonical names and read aliases such as
``ErrorPrediction``); a name outside it is an unknown node type, as in CNTK.

Attribute conventions: fields map onto the op's registry attributes where it declares them
(numpy-order shapes, negative numpy axes, ``pool_kind`` names); anything else is kept as
``cntk_<field>`` in CNTK's own order so a round trip reproduces the bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from netsurgeon.errors import RegistryError
from netsurgeon.formats.cntk._binary import BinaryReader, BinaryWriter, CntkFormatError
from netsurgeon.formats.cntk._context import Parts, ReadContext, WriteContext
from netsurgeon.formats.cntk._fields import (
    Codec,
    F,
    FieldCodec,
    attr_to_raw,
    raw_to_attrs,
    read_kind,
    write_field,
)
from netsurgeon.formats.cntk._matrix import read_matrix, write_matrix
from netsurgeon.ops import OPS

if TYPE_CHECKING:
    from netsurgeon.graph import Node
    from netsurgeon.ops import OpSpec

__all__ = ["CODECS", "FILE_NAMES", "codec_for", "resolve_op", "LEGACY_NAME_ATTRS", "attach"]

#: canonical CNTK op name -> codec (every op the v1 loader can create)
CODECS: dict[str, Codec] = {}
#: name as it may appear in a file -> canonical CNTK op name
FILE_NAMES: dict[str, str] = {}
#: attributes that hold the op name as stored in the file, when it is a read alias
LEGACY_NAME_ATTRS = ("legacy_name", "cntk_op_name")


def _codec(names: tuple[str, ...] | str, codec: Codec, aliases: tuple[str, ...] = ()) -> Codec:
    for name in (names,) if isinstance(names, str) else names:
        CODECS[name] = codec
        FILE_NAMES[name] = name
        for alias in aliases:
            FILE_NAMES[alias] = name
    return codec


def _prod(dims) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def _get(node: Node, name: str, default: Any = None) -> Any:
    """Attribute ``name``, else its ``cntk_`` fallback, else ``default``."""
    a = node.attrs
    if a.get(name) is not None:
        return a[name]
    if a.get("cntk_" + name) is not None:
        return a["cntk_" + name]
    return default


def _cntk_dims(node: Node) -> list[int]:
    shape = node.shape
    if shape is None and node.value is not None:
        shape = tuple(node.value.shape)
    if shape is None:
        raise CntkFormatError(f"node '{node.name}' has no shape; validate the network first",
                              node=node.name)
    return [int(d) for d in reversed(shape)]


# =============================================================================================
# Leaves
# =============================================================================================
class LearnableParameterCodec(Codec):
    """v>=3: f32 multiplier, shape, matrix. v<3: bool needsGradient, u64 rows, u64 cols, [shape], matrix."""

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        if ctx.version >= 3:
            parts.learning_rate_multiplier = r.f32("learningRateMultiplier")
            dims = r.shape("sample shape")
        else:
            parts.learning_rate_multiplier = 1.0 if r.bool("needsGradient") else 0.0
            rows = r.u64("rows")
            cols = r.u64("cols")
            if rows != 0:
                dims = [rows, cols]
                legacy = None
            else:
                dims, legacy = r.legacy_shape("sample shape")
                if cols > 1:
                    dims = dims + [cols]
            parts.attrs["cntk_v2_header"] = [rows, cols, legacy]
            parts.attrs[_attr_or_cntk(spec, "legacy_shape")] = rows == 0
        at = r.pos
        m = read_matrix(r, ctx.dtype, "parameter matrix")
        want_rows = dims[0] if dims else 1
        want_cols = _prod(dims[1:])
        if (m.rows, m.cols) != (want_rows, want_cols):
            raise r.error(f"parameter matrix is {m.rows} x {m.cols} but its shape {dims} needs "
                          f"{want_rows} x {want_cols}", at)
        parts.shape = tuple(reversed(dims))
        parts.value = m.data.reshape(parts.shape)
        if m.name != "unnamed":
            parts.attrs["cntk_matrix_name"] = m.name
        if m.sparse_format:
            parts.attrs["cntk_sparse_format"] = m.sparse_format
        return parts

    def check(self, node: Node, ctx: WriteContext) -> None:
        if node.value is None:
            raise CntkFormatError(f"parameter '{node.name}' has no value; initialise it (validate "
                                  "the network) before saving", node=node.name)

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        value = ctx.value_overrides.get(node, node.value)
        value = np.asarray(value)
        dims = [int(d) for d in reversed(value.shape)]
        if ctx.version >= 3:
            w.f32(node.learning_rate_multiplier)
            w.shape(dims)
        else:
            w.bool(node.learning_rate_multiplier > 0)
            header = node.attrs.get("cntk_v2_header")
            rows, cols = (dims[0] if dims else 1), _prod(dims[1:])
            if header and header[0] == 0 and dims:
                w.u64(0)
                w.u64(header[1])
                base = dims[:-1] if header[1] > 1 else dims
                _write_legacy_shape(w, base, bool(header[2]))
            else:
                w.u64(rows)
                w.u64(cols)
        write_matrix(w, value, dims[0] if dims else 1, _prod(dims[1:]), ctx.dtype_of(node),
                     node.attrs.get("cntk_matrix_name", "unnamed"),
                     node.attrs.get("cntk_sparse_format"))


def _write_legacy_shape(w: BinaryWriter, dims: list[int], legacy: bool) -> None:
    """A legacy-accepting shape (§1.1): the old three-u64 W,H,C form when it was read so (or
    for a rank-3 shape whose first dim is 0, which only that form can carry), else a
    TensorShape, which must not have rank 0 or a first dimension of 0."""
    dims = [int(d) for d in dims]
    if legacy or (len(dims) == 3 and dims[0] == 0):
        if len(dims) != 3:
            raise CntkFormatError(f"shape {dims}: the legacy W,H,C form holds exactly 3 dims")
        c, width, height = dims
        if width >= 1 << 32:
            raise CntkFormatError(f"shape {dims}: width too large for the legacy form")
        w.u64(width)
        w.u64(height)
        w.u64(c)
        return
    if not dims or dims[0] == 0:
        raise CntkFormatError(f"shape {dims}: CNTK misreads a rank-0 shape or a first dimension "
                              "of 0 here (legacy W,H,C heuristic)")
    w.shape(dims)


class InputValueCodec(Codec):
    """u64 rows, u64 cols (placeholders), legacy-accepting shape; v>=8 axes; v>=10 multiplier."""

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        a = parts.attrs
        rows = r.u64("rows placeholder")
        cols = r.u64("cols placeholder")
        dims, legacy = r.legacy_shape("sample shape")
        a[_attr_or_cntk(spec, "rows_placeholder")] = rows
        a[_attr_or_cntk(spec, "cols_placeholder")] = cols
        a[_attr_or_cntk(spec, "legacy_shape")] = legacy
        if rows and rows != _prod(dims):
            a["cntk_stored_shape"] = list(dims)  # CNTK replaces the shape by [rows]
            dims = [rows]
        parts.shape = tuple(reversed(dims))
        if ctx.version >= 8:
            at = r.pos
            n = r.u32("dynamic axis count")
            if n > 1:
                raise r.error(f"dynamic axis count is {n}; CNTK stores 0 or 1", at)
            a[_attr_or_cntk(spec, "num_dynamic_axes")] = n
            if n == 1:
                a[_attr_or_cntk(spec, "dynamic_axis")] = r.wstr("dynamic axis name")
        parts.learning_rate_multiplier = r.f32("learningRateMultiplier") if ctx.version >= 10 else 0.0
        if parts.learning_rate_multiplier == 1.0:
            a["cntk_input_lr_is_one"] = True
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        a = node.attrs
        dims = list(a["cntk_stored_shape"]) if "cntk_stored_shape" in a else _cntk_dims(node)
        if not dims:
            dims = [1]  # a scalar input is stored as [1] (rank 0 is misread as the legacy form)
        w.u64(_get(node, "rows_placeholder", 0))
        w.u64(_get(node, "cols_placeholder", 0))
        _write_legacy_shape(w, dims, bool(_get(node, "legacy_shape", False)))
        if ctx.version >= 8:
            n = int(_get(node, "num_dynamic_axes", 1))
            w.u32(n)
            if n == 1:
                w.wstr(str(_get(node, "dynamic_axis", "") or ""))
        if ctx.version >= 10:
            # CNTK inputs carry multiplier 0; netsurgeon's default 1.0 means "not set"
            lr = node.learning_rate_multiplier
            w.f32(0.0 if lr == 1.0 and not a.get("cntk_input_lr_is_one") else lr)

    def check(self, node: Node, ctx: WriteContext) -> None:
        if "cntk_stored_shape" not in node.attrs and not _get(node, "legacy_shape", False):
            dims = _cntk_dims(node)
            if dims and dims[0] == 0:
                raise CntkFormatError(
                    f"input '{node.name}' has a first (CNTK) dimension of 0, which CNTK misreads "
                    "as the legacy W,H,C shape; give it its real dimension", node=node.name)


class PrecomputeCodec(Codec):
    """Mean / InvStdDev: bool hasComputed, then the matrix of statistics.

    Statistics not computed yet are an all-zero matrix in the file and ``value=None`` here
    (the matrix size is kept in ``cntk_matrix_dims`` for the round trip).
    """

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        computed = r.bool("hasComputed")
        m = read_matrix(r, ctx.dtype, "statistics matrix")
        parts.attrs[_attr_or_cntk(spec, "has_computed")] = computed
        if not computed and not np.any(m.data):
            parts.attrs["cntk_matrix_dims"] = [m.rows, m.cols]
        else:
            parts.value = m.data.reshape((m.cols, m.rows) if m.cols != 1 else (m.rows,))
        if m.name != "unnamed":
            parts.attrs["cntk_matrix_name"] = m.name
        if m.sparse_format:
            parts.attrs["cntk_sparse_format"] = m.sparse_format
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        a = node.attrs
        dtype = ctx.dtype_of(node)
        w.bool(bool(_get(node, "has_computed", False)) and node.value is not None)
        if node.value is not None:
            value = np.asarray(node.value)
            rows = value.shape[-1] if value.ndim else 1
            cols = value.size // rows if rows else 0
        else:
            if a.get("cntk_matrix_dims"):
                rows, cols = (int(d) for d in a["cntk_matrix_dims"])
            else:  # not computed yet: zeros of the sample shape, as CNTK allocates them
                dims = _cntk_dims(node) if node.shape is not None else [1]
                rows, cols = (dims[0] if dims else 1), _prod(dims[1:])
            value = np.zeros(rows * cols, dtype)
        write_matrix(w, value, rows, cols, dtype, a.get("cntk_matrix_name", "unnamed"),
                     a.get("cntk_sparse_format"))


_codec("LearnableParameter", LearnableParameterCodec())
_codec(("InputValue", "SparseInputValue"), InputValueCodec())
_codec(("Mean", "InvStdDev"), PrecomputeCodec())


# =============================================================================================
# Linear algebra
# =============================================================================================
_TIMES_FIELDS = (
    F("outputRank", "u64", since=3, attr="output_rank", default=1),
    F("inferInputRankToMap", "i32", since=12, attr="infer_input_rank_to_map", default=-1),
)
_codec(("Times", "TransposeTimes"), FieldCodec(*_TIMES_FIELDS))
_codec("QuantizedTimes", FieldCodec(*_TIMES_FIELDS, F("bitShiftA", "u64", attr="bit_shift_a", default=1),
                                    F("bitShiftB", "u64", attr="bit_shift_b", default=1)))


# =============================================================================================
# Convolution family
# =============================================================================================
def _per_axis(value: bool):
    def default(node: Node) -> list[bool]:
        kernel = node.attrs.get("kernel_shape") or node.attrs.get("cntk_kernelShape") or (1,)
        rank = 1 if isinstance(kernel, int) else len(tuple(kernel))
        return [value] * rank
    return default


_CONV_BASE = (
    F("kernelShape", "shape", since=5, attr="kernel_shape"),
    F("mapCount", "shape", since=5, attr="map_count", default=[0]),
    F("strides", "shape", since=5, attr="strides", default=[1]),
    F("sharing", "bools", since=5, attr="sharing", default=_per_axis(True)),
    F("autoPadding", "bools", since=5, attr="auto_padding", default=_per_axis(True)),
    F("lowerPad", "shape", since=5, attr="lower_pad", default=[0]),
    F("upperPad", "shape", since=5, attr="upper_pad", default=[0]),
    F("poolKind", "i32", since=5, attr="pool_kind", conv="pool_kind", default=0),
    F("imageLayout", "i32", since=5, attr="image_layout", conv="image_layout", default=1),
    F("maxTempMemSizeInSamples", "u64", since=5, attr="max_temp_mem_size_in_samples", default=0),
    F("transpose", "bool", since=9, attr="transpose", default=False),
    F("outputShape", "shape", since=20, attr="output_shape", default=[0]),
    F("ceilOutDim", "bool", since=21, attr="ceil_out_dim", default=False),
    F("poolIncludePad", "bool", since=23, attr="pool_include_pad", default=False),
)


class ConvolutionBaseCodec(FieldCodec):
    """The convolution-base block, then the op's own tail fields.

    Empty shapes and lists from new networks are written as one entry per kernel axis where
    CNTK needs them (never an empty list).
    """

    def __init__(self, *tail: F) -> None:
        super().__init__(*_CONV_BASE, *tail)

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        raw = self.read_raw(r, ctx)
        for name in ("sharing", "autoPadding"):
            if name in raw and not raw[name]:
                # CNTK itself could not have read this back; keep it raw for the round trip
                parts.attrs["cntk_" + name] = []
                del raw[name]
        raw_to_attrs(self.fields, raw, spec, parts.attrs)
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        for f in self.fields:
            if not f.active(ctx.version):
                continue
            value = attr_to_raw(f, node)
            if f.kind == "bools" and not list(value) and f.fallback not in node.attrs:
                value = f.default(node)
            write_field(w, f, node, ctx, value)


def _cntk_attr(name: str, index: int, default: int):
    """Default of a legacy (v<5) 2-D convolution field, from the N-d attribute (CNTK order)."""
    def get(node: Node) -> int:
        value = node.attrs.get(name)
        if value is None:
            return default
        dims = [int(v) for v in reversed(tuple(value))] if isinstance(value, (list, tuple)) else [int(value)]
        return dims[index] if index < len(dims) else default
    return get


_LEGACY_CONV = (  # version < 5: the old 2-D convolution, derived from the N-d attributes
    F("kernelWidth", "u64", until=5, default=_cntk_attr("kernel_shape", 0, 1)),
    F("kernelHeight", "u64", until=5, default=_cntk_attr("kernel_shape", 1, 1)),
    F("horizontalSubsample", "u64", until=5, default=_cntk_attr("strides", 0, 1)),
    F("verticalSubsample", "u64", until=5, default=_cntk_attr("strides", 1, 1)),
    F("outputChannels", "u32", until=5, default=_cntk_attr("map_count", 0, 0)),
    F("legacyImageLayout", "u32", until=5,
      default=lambda node: 1 if str(node.attrs.get("image_layout", "CHW")) in ("CHW", "cudnn") else 0),
    F("zeroPadding", "bool", until=5,
      default=lambda node: bool((tuple(node.attrs.get("auto_padding") or (False,)))[-1])),
    F("legacyMaxTempMemSizeInSamples", "u64", until=5,
      default=lambda node: int(node.attrs.get("max_temp_mem_size_in_samples", 0) or 0)),
)
_codec("Convolution", ConvolutionBaseCodec(
    *_LEGACY_CONV,
    F("convolution2D", "bool", since=5, attr="convolution_2d", default=False),
    F("dilation", "shape", since=18, attr="dilation", default=[1]),
))
_codec(("Pooling", "MaxUnpooling", "ConvolutionSequenceShape"), ConvolutionBaseCodec())
_codec(("MaxPooling", "AveragePooling"), FieldCodec(
    F("windowWidth", "u32", attr="window_width"),
    F("imageLayout", "u32", attr="image_layout", conv="image_layout", default=0),
    F("windowHeight", "u64", attr="window_height"),
    F("horizontalSubsample", "u64", attr="horizontal_subsample"),
    F("verticalSubsample", "u64", attr="vertical_subsample"),
))
_codec("ROIPooling", FieldCodec(
    F("roiOutputShape", "shape", attr="roi_output_shape"),
    F("poolKind", "i32", since=26, attr="pool_kind", conv="pool_kind", default=1),
    F("spatialScale", "f64", since=26, attr="spatial_scale", default=1.0 / 16.0),
))


# =============================================================================================
# BatchNormalization
# =============================================================================================
_BN_HEAD = (
    F("spatial", "bool", attr="spatial", default=False),
    F("normalizationTimeConstant", "f64", attr="normalization_time_constant", default=0.0),
    F("blendTimeConstant", "f64", attr="blend_time_constant", default=0.0),
    F("imageLayout", "i32", attr="image_layout", conv="image_layout", default=1),
)
_BN_TAIL = (
    F("epsilon", "f64", attr="epsilon", default=1e-5),
    F("useCntkEngine", "bool", attr="use_cntk_engine", default=True),
)


def _attr_or_cntk(spec: OpSpec, name: str) -> str:
    return name if name in spec.attrs else "cntk_" + name


class BatchNormalizationCodec(Codec):
    """Model-version scheme (v>=6) and the older self-versioned one (v<6).

    Before v13 the 5th input holds the running *inverse standard deviation*: the node gets
    ``running_inv_std_dev=True`` and the values stay as stored (the runtime converts, as CNTK
    did on load: variance = 1/isd**2 + epsilon). Writing converts only when the target version
    stores the other quantity, so a same-version round trip keeps every byte.
    """

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        v = ctx.version
        raw: dict[str, Any] = {}
        if v >= 6:
            for f in _BN_HEAD:
                raw[f.name] = read_kind(r, f.kind, f.name, ctx)
            if v < 13:
                parts.attrs[_attr_or_cntk(spec, "minibatch_count")] = r.u64("minibatchCount")
            elif v != 19:
                parts.attrs[_attr_or_cntk(spec, "running_sample_count")] = r.u64("runningSampleCount")
            else:
                parts.attrs["cntk_run_count_is_zero"] = r.bool("runCountIsZero")
            for f in _BN_TAIL:
                raw[f.name] = read_kind(r, f.kind, f.name, ctx)
        else:
            written = r.i32("verWritten")
            readable = r.i32("verReadable")
            parts.attrs[_attr_or_cntk(spec, "legacy_version")] = (written, readable)
            parts.attrs[_attr_or_cntk(spec, "eval_mode")] = r.bool("evalMode")
            raw["spatial"] = r.bool("spatial")
            if written >= 0x00010004:
                raw["normalizationTimeConstant"] = r.f64("normalizationTimeConstant")
            else:
                parts.attrs["cntk_exp_avg_factor"] = r.f64("expAvgFactor")
            if written >= 0x00010002:
                raw["imageLayout"] = r.i32("imageLayout")
                parts.attrs[_attr_or_cntk(spec, "minibatch_count")] = r.u64("minibatchCount")
            if written >= 0x00010003:
                raw["epsilon"] = r.f64("epsilon")
                raw["useCntkEngine"] = r.bool("useCntkEngine")
        raw_to_attrs(_BN_HEAD + _BN_TAIL, raw, spec, parts.attrs)
        if v < 13:
            parts.attrs[_attr_or_cntk(spec, "running_inv_std_dev")] = True
        return parts

    def prepare(self, node: Node, ctx: WriteContext) -> None:
        v = ctx.version
        inputs = list(node.inputs)
        if v < 19 and len(inputs) == 6:
            count_node = inputs[5]
            if count_node is not None and count_node.value is not None and np.size(count_node.value) == 1:
                ctx.run_counts[node] = int(np.asarray(count_node.value).reshape(-1)[0])
            ctx.input_overrides[node] = inputs[:5]
        has_isd = bool(_get(node, "running_inv_std_dev", False))
        wants_isd = v < 13
        if has_isd == wants_isd or len(inputs) < 5 or inputs[4] is None or inputs[4].value is None:
            return
        param = inputs[4]
        eps = float(_get(node, "epsilon", 1e-5))
        stored = np.asarray(param.value, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if wants_isd:  # variance -> inverse std dev (inverse of CNTK's load conversion)
                converted = 1.0 / np.sqrt(np.maximum(stored - eps, 0.0))
            else:  # inverse std dev -> variance, as CNTK converts on load
                converted = 1.0 / (stored * stored) + eps
        ctx.value_overrides[param] = converted.astype(param.value.dtype)

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        v = ctx.version
        count = ctx.run_counts.get(node)
        if count is None:
            count = int(_get(node, "running_sample_count", 0) or 0)
        minibatches = int(_get(node, "minibatch_count", 0) or 0)
        if not count and minibatches:
            count = 16 * minibatches  # CNTK's own estimate when loading a pre-v13 file
        if not minibatches and count:
            minibatches = count // 16
        if v >= 6:
            for f in _BN_HEAD:
                write_field(w, f, node, ctx)
            if v < 13:
                w.u64(minibatches)
            elif v != 19:
                w.u64(count)
            else:
                w.bool(node.attrs.get("cntk_run_count_is_zero", not count))
            for f in _BN_TAIL:
                write_field(w, f, node, ctx)
        else:
            written, readable = tuple(_get(node, "legacy_version", None) or (0x00010004, 0x00010004))
            w.i32(written)
            w.i32(readable)
            w.bool(_get(node, "eval_mode", False))
            write_field(w, _BN_HEAD[0], node, ctx)
            if written >= 0x00010004:
                write_field(w, _BN_HEAD[1], node, ctx)
            else:
                w.f64(node.attrs.get("cntk_exp_avg_factor", 0.0))
            if written >= 0x00010002:
                write_field(w, _BN_HEAD[3], node, ctx)
                w.u64(minibatches)
            if written >= 0x00010003:
                for f in _BN_TAIL:
                    write_field(w, f, node, ctx)

    def check(self, node: Node, ctx: WriteContext) -> None:
        n = len(node.inputs)
        if n not in (5, 6):
            raise CntkFormatError(f"BatchNormalization '{node.name}' has {n} inputs; CNTK needs "
                                  "x, scale, bias, runMean, runVariance[, runCount]", node=node.name)


_codec("BatchNormalization", BatchNormalizationCodec())


# =============================================================================================
# Recurrence
# =============================================================================================
class DelayCodec(Codec):
    """i32 timeStep; v>=4 shape | v<=3 u64 rows, u64 cols; v>=2 elem initialStateValue.

    The stored sample shape becomes the node's declared shape (numpy order).
    """

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        parts.attrs[_attr_or_cntk(spec, "time_step")] = r.i32("timeStep")
        if ctx.version >= 4:
            dims = r.shape("sample shape")
        else:
            rows = r.u64("rows")
            cols = r.u64("cols")
            dims = [rows]
            parts.attrs[_attr_or_cntk(spec, "legacy_cols")] = cols
        parts.shape = tuple(reversed(dims))
        if ctx.version >= 2:
            parts.attrs[_attr_or_cntk(spec, "initial_state")] = r.elem(ctx.dtype, "initialStateValue")
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        w.i32(_get(node, "time_step", 1))
        dims = _cntk_dims(node)
        if ctx.version >= 4:
            w.shape(dims)
        else:
            w.u64(_prod(dims))
            w.u64(_get(node, "legacy_cols", 1))
        if ctx.version >= 2:
            w.elem(ctx.dtype_of(node), float(_get(node, "initial_state", 0.1)))


_codec(("PastValue", "FutureValue"), DelayCodec())
FILE_NAMES["Delay"] = "PastValue"


# =============================================================================================
# Slicing, stacking, transposing, reshaping, reducing
# =============================================================================================
def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _read_num_axes(r: BinaryReader, op: str, *, least: int, axis_bytes: int) -> int:
    """An i32 ``numAxes`` of at least ``least`` whose axes (``axis_bytes`` each) fit in the rest."""
    at = r.pos
    n = r.i32("numAxes")
    if n < least or n > r.remaining // axis_bytes:
        raise r.error(f"{op} numAxes is {n}", at)
    return n


class SliceCodec(Codec):
    """v>=22 i32 numAxes; per axis: i64 begin, i64 length, v>=3 i32 axis, v>=27 i32 stride.

    Attributes (one entry per sliced axis): ``begin``, ``end`` (= begin + stored length),
    ``axis`` (registry convention: -k is CNTK axis k), ``stride_multiplier``.
    """

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        v = ctx.version
        n = _read_num_axes(r, "Slice", least=1, axis_bytes=16) if v >= 22 else 1
        begins, ends, axes, strides = [], [], [], []
        for _ in range(n):
            begin = r.i64("beginIndex")
            length = r.i64("length")
            begins.append(begin)
            ends.append(begin + length)
            axes.append(-r.i32("axis") if v >= 3 else -1)
            strides.append(r.i32("strideMultiplier") if v >= 27 else 1)
        for key, values in (("begin", begins), ("end", ends), ("axis", axes),
                            ("stride_multiplier", strides)):
            parts.attrs[_attr_or_cntk(spec, key)] = tuple(values)
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        v = ctx.version
        begins = _as_list(_get(node, "begin", (0,)))
        ends = _as_list(_get(node, "end", None))
        axes = _as_list(_get(node, "axis", (-1,)))
        strides = _as_list(_get(node, "stride_multiplier", ())) or [1] * len(begins)
        n = len(begins)
        if not n or len(ends) != n or len(axes) != n or len(strides) != n:
            raise CntkFormatError(f"Slice '{node.name}': begin, end, axis and stride_multiplier "
                                  "need one value per sliced axis", node=node.name)
        if v >= 22:
            w.i32(n)
        elif n != 1:
            raise CntkFormatError(f"Slice '{node.name}' over {n} axes needs model version >= 22",
                                  node=node.name)
        for i in range(n):
            w.i64(begins[i])
            w.i64(int(ends[i]) - int(begins[i]))
            if v >= 3:
                w.i32(-int(axes[i]))
            if v >= 27:
                w.i32(strides[i])
            elif int(strides[i]) != 1:
                raise CntkFormatError(f"Slice '{node.name}' with a stride needs model version "
                                      ">= 27", node=node.name)


_codec("Slice", SliceCodec(), aliases=("RowSlice",))
_codec("RowStack", FieldCodec(F("spliceDim", "i32", since=3, attr="axis", conv="axis", default=1)))


class TransposeCodec(Codec):
    """v>=3: i32 axis1, i32 axis2 (1-based); v>=25 with both 0: u64 n, n x u64 permutation.

    Attributes: ``axes`` (two registry axes, -k = CNTK axis k) or ``permutation`` (numpy
    transpose axes).
    """

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        if ctx.version < 3:
            return parts
        a1, a2 = r.i32("axis1"), r.i32("axis2")
        if ctx.version >= 25 and a1 == 0 and a2 == 0:
            n = r.count("permutation length", 8)
            perm = [int(p) for p in r.array("<u8", n, "permutation")]
            if sorted(perm) != list(range(n)):
                raise r.error(f"{perm} is not a permutation of 0..{n - 1}", r.pos - 8 * n)
            np_perm = tuple(n - 1 - perm[n - 1 - j] for j in range(n))
            parts.attrs[_attr_or_cntk(spec, "permutation")] = np_perm
            return parts
        parts.attrs[_attr_or_cntk(spec, "axes")] = (-a1, -a2)
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        if ctx.version < 3:
            return
        np_perm = [int(p) for p in _as_list(_get(node, "permutation", ()))]
        if np_perm:
            if ctx.version < 25:
                raise CntkFormatError(f"TransposeDimensions '{node.name}' with a permutation "
                                      "needs model version >= 25", node=node.name)
            n = len(np_perm)
            w.i32(0)
            w.i32(0)
            w.u64(n)
            for i in range(n):
                w.u64(n - 1 - np_perm[n - 1 - i])
            return
        axes = (_as_list(_get(node, "axes", (-1, -2))) + [-1, -2])[:2]
        w.i32(-int(axes[0]))
        w.i32(-int(axes[1]))


_codec("TransposeDimensions", TransposeCodec(), aliases=("Transpose",))
_codec("Reshape", FieldCodec(
    F("beginAxis", "i32", attr="begin_axis", conv="axis", default=0),
    F("endAxis", "i32", attr="end_axis", conv="axis", default=0),
    F("replacementShape", "shape", attr="shape"),
))


class LegacyReshapeCodec(Codec):
    """u64 numTargetRows, then a legacy-accepting shape (the target image shape)."""

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        parts.attrs[_attr_or_cntk(spec, "num_rows")] = r.u64("numTargetRows")
        dims, legacy = r.legacy_shape("target image shape")
        parts.attrs[_attr_or_cntk(spec, "target_shape")] = tuple(reversed(dims))
        parts.attrs[_attr_or_cntk(spec, "legacy_shape")] = legacy
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        w.u64(_get(node, "num_rows", 0))
        dims = [int(d) for d in reversed(_as_list(_get(node, "target_shape", (0, 0, 0))))]
        _write_legacy_shape(w, dims, bool(_get(node, "legacy_shape", False)))


_codec("LegacyReshape", LegacyReshapeCodec())


class ReduceElementsCodec(Codec):
    """v>=27 i32 numAxes (else 1); numAxes x i32 axis; wstr operation; v>=24 bool keepDimensions."""

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        n = _read_num_axes(r, "ReduceElements", least=0, axis_bytes=4) if ctx.version >= 27 else 1
        axes = tuple(-r.i32("axis") for _ in range(n))
        parts.attrs[_attr_or_cntk(spec, "axes")] = axes
        parts.attrs[_attr_or_cntk(spec, "operation")] = r.wstr("reduction operation")
        if ctx.version >= 24:
            parts.attrs[_attr_or_cntk(spec, "keep_dimensions")] = r.bool("keepDimensions")
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        axes = _as_list(_get(node, "axes", (0,)))
        if ctx.version >= 27:
            w.i32(len(axes))
        elif len(axes) != 1:
            raise CntkFormatError(f"ReduceElements '{node.name}' over {len(axes)} axes needs "
                                  "model version >= 27", node=node.name)
        for ax in axes:
            w.i32(-int(ax))
        w.wstr(str(_get(node, "operation", "Sum")))
        if ctx.version >= 24:
            w.bool(_get(node, "keep_dimensions", True))


_codec("ReduceElements", ReduceElementsCodec())
_codec("RowRepeat", FieldCodec(F("numRepeat", "u64", attr="num_repeats", default=1)))
_codec("Where", FieldCodec(F("dynamicAxisName", "wstr", since=11, attr="dynamic_axis_name",
                             default="")))
_codec("Crop", FieldCodec(F("xOffset", "f64", attr="x_offset", default=1.7976931348623157e308),
                          F("yOffset", "f64", attr="y_offset", default=1.7976931348623157e308)))


# =============================================================================================
# Random numbers: Dropout, RandomSample
# =============================================================================================
class RngCodec(FieldCodec):
    """Leading fields, then the RNG state (v16: seed width 4 or 8 bytes; v>=17: u64, u64).

    For v16 the seed width is decided by where the next record starts (a precision tag or
    ENodeList must follow); 8 bytes (Linux builds) when both fit.
    """

    @staticmethod
    def _next_record_at(r: BinaryReader, at: int) -> bool:
        for text in ("float", "double", "half", "ENodeList"):
            data = text.encode("utf-16-le") + b"\0\0"
            if r.buf[at:at + len(data)] == data:
                return True
        return False

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = super().read(r, ctx, spec)
        if ctx.version < 16:
            return parts
        width = 8
        if ctx.version == 16 and not self._next_record_at(r, r.pos + 16) and \
                self._next_record_at(r, r.pos + 12):
            width = 4
        seed = r.u64("rngSeed") if width == 8 else r.u32("rngSeed")
        parts.attrs[_attr_or_cntk(spec, "rng_seed")] = seed
        parts.attrs[_attr_or_cntk(spec, "rng_offset")] = r.u64("rngOffset")
        if width == 4:
            parts.attrs["cntk_seed_width"] = 4
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        super().write(w, ctx, node, spec)
        if ctx.version < 16:
            return
        seed = int(_get(node, "rng_seed", 0))
        if ctx.version == 16 and node.attrs.get("cntk_seed_width") == 4:
            w.u32(seed)
        else:
            w.u64(seed)
        w.u64(int(_get(node, "rng_offset", 0)))


_codec("Dropout", RngCodec())
_codec(("RandomSample", "RandomSampleInclusionFrequency"), RngCodec(
    F("allowDuplicates", "bool", attr="allow_duplicates", default=False),
    F("numSamples", "u64", attr="num_samples", default=1),
))


# =============================================================================================
# Criteria and special nodes
# =============================================================================================
_NCE_MODES = ("softmax", "unnormalized", "none")


class NceCodec(Codec):
    """i32 evalMode (0 softmax, 1 unnormalized, 2 none); a value > 2 means an old file
    without the field (CNTK rewinds 4 bytes and uses none)."""

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        if r.remaining >= 4:
            mode = r.i32("evalMode")
            if 0 <= mode <= 2:
                key = _attr_or_cntk(spec, "eval_mode")
                parts.attrs[key] = _NCE_MODES[mode] if key == "eval_mode" else mode
                return parts
            r.pos -= 4
        parts.attrs["cntk_eval_mode_absent"] = True
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        if node.attrs.get("cntk_eval_mode_absent"):
            return
        mode = _get(node, "eval_mode", "none")
        if isinstance(mode, str):
            if mode.lower() not in _NCE_MODES:
                raise CntkFormatError(f"eval_mode {mode!r} of '{node.name}' must be one of "
                                      f"{', '.join(_NCE_MODES)}", node=node.name)
            mode = _NCE_MODES.index(mode.lower())
        w.i32(mode)


_codec("NCEBasedCrossEntropyWithSoftmax", NceCodec())
_codec("EditDistanceError", FieldCodec(
    F("substitutionPenalty", "f32", attr="substitution_penalty", default=1.0),
    F("deletionPenalty", "f32", attr="deletion_penalty", default=1.0),
    F("insertionPenalty", "f32", attr="insertion_penalty", default=1.0),
    F("squashInputs", "bool", attr="squash_inputs", default=False),
    F("tokensToIgnore", "u64s", attr="tokens_to_ignore", conv="tuple", default=None),
))
_codec("OptimizedRNNStack", FieldCodec(
    F("bidirectional", "u64", attr="bidirectional", conv="bool_int", default=0),
    F("numLayers", "u64", attr="num_layers", default=1),
    F("hiddenSize", "u64", attr="hidden_size"),
    F("recurrentOp", "wstr", attr="recurrent_op", default="lstm"),
    F("axis", "i32", since=14, attr="axis", conv="axis", default=-1),
), aliases=("RNN",))
_codec("EnvironmentInput", FieldCodec(F("propertyName", "wstr", attr="property_name",
                                        default="isTraining")))
_codec("Trace", FieldCodec(
    F("message", "wstr", attr="message", default=""),
    F("logFirst", "u64", attr="log_first", default=10),
    F("logFrequency", "u64", attr="log_frequency", default=10),
    F("logGradientToo", "bool", attr="log_gradient_too", default=False),
    F("isCategoryLabel", "bool", attr="is_category_label", default=False),
    F("labelMappingFile", "wstr", attr="label_mapping_file", default=""),
    F("isSparse", "bool", attr="is_sparse", default=False),
    F("transpose", "bool", attr="transpose", default=False),
    *(F(name, "nstr", attr=attr, default="") for name, attr in (
        ("prologue", "prologue"), ("epilogue", "epilogue"),
        ("sequenceSeparator", "sequence_separator"), ("sequencePrologue", "sequence_prologue"),
        ("sequenceEpilogue", "sequence_epilogue"), ("elementSeparator", "element_separator"),
        ("sampleSeparator", "sample_separator"), ("precisionFormat", "precision_format"))),
    F("onlyUpToRow", "u64", attr="only_up_to_row", default=0),
    F("onlyUpToT", "u64", attr="only_up_to_t", default=0),
))
_codec("LatticeSequenceWithSoftmax", FieldCodec(
    *(F(name, "wstr", attr=attr, default="") for name, attr in (
        ("symListPath", "symbol_list_path"), ("phonePath", "phone_path"),
        ("stateListPath", "state_list_path"), ("transProbPath", "trans_prob_path"),
        ("latticeConfigPath", "lattice_config_path"))),
    *(F(name, "f64", attr=attr, default=0.0) for name, attr in (
        ("frameDropThresh", "frame_drop_threshold"), ("fsSmoothingWeight", "fs_smoothing_weight"),
        ("amf", "am_factor"), ("lmf", "lm_factor"), ("wordPenalty", "word_penalty"),
        ("bMMIFactor", "bmmi_factor"))),
    F("usesMBR", "bool", attr="uses_mbr", default=False),
    F("doReferenceAlignment", "bool", attr="do_reference_alignment", default=False),
))
_codec("ForwardBackward", FieldCodec(
    F("delayConstraint", "i32", attr="delay_constraint", default=-1),
    F("blankTokenId", "u64", attr="blank_token_id", default=(1 << 64) - 1)))
_codec("Cast", Codec())  # the target type is in the two-type precision tag (reader/writer)

# ---- operations with an empty payload (§7.1, §7.3) ------------------------------------------
EMPTY = Codec()
for _name in (
    "Abs", "Acos", "Asin", "Cosh", "Cosine", "Sin", "Sinh", "Exp", "Log", "Floor", "Sqrt",
    "Reciprocal", "Negate", "Sigmoid", "StableSigmoid", "Tanh", "RectifiedLinear", "Pass",
    "LabelsToGraph", "StraightThrough", "Softmax", "LogSoftmax", "Hardmax", "Clip", "If", "Plus",
    "LogPlus", "Minus", "DiagTimes", "Equal", "NotEqual", "Less", "LessEqual", "Greater",
    "GreaterEqual", "CosDistance", "CosDistanceWithNegativeSamples", "KhatriRaoProduct",
    "SumElements", "SumColumnElements", "Diagonal", "CrossEntropy", "CrossEntropyWithSoftmax",
    "ClassBasedCrossEntropyWithSoftmax", "SquareError", "Logistic", "MatrixL1Reg",
    "MatrixL2Reg", "LambdaRank", "NDCG1Eval", "DummyCriterion", "SequenceWithSoftmax",
    "LookupTable", "PerDimMeanVarNormalization", "PerDimMeanVarDeNormalization", "PackedIndex",
    "GatherPacked", "ScatterPacked", "StopGradient", "EpochAccumulator", "DynamicAxis",
):
    _codec(_name, EMPTY)
_codec("ElementTimes", EMPTY, aliases=("ColumnElementTimes", "RowElementTimes", "Scale"))
_codec("ClassificationError", EMPTY, aliases=("ErrorPrediction",))
_codec("ReconcileDynamicAxis", EMPTY, aliases=("ReconcileMBLayout",))


# =============================================================================================
# Registry attachment and lookup
# =============================================================================================
#: canonical CNTK names whose registry op is missing (reported, not fatal at import)
MISSING_OPS: list[str] = []


def attach(registry=OPS) -> None:
    """Hang every codec on its registry op (``cntk_v1`` layer); idempotent."""
    MISSING_OPS.clear()
    for name, codec in CODECS.items():
        if not registry.has_op(name):
            MISSING_OPS.append(name)
            continue
        spec = registry.op(name)
        if spec.name != name and spec.name in CODECS:
            continue  # an alias of another op that has its own codec
        if "cntk_v1" not in spec.extensions:
            registry.extend("cntk_v1", spec.name, codec)


def resolve_op(file_name: str, registry=OPS) -> tuple[OpSpec, Codec]:
    """The registry op and codec for an operation name read from a file.

    Raises KeyError for a name CNTK's v1 loader does not know, RegistryError when the
    registry lacks the op.
    """
    canonical = FILE_NAMES.get(file_name)
    if canonical is None:
        raise KeyError(file_name)
    try:
        spec = registry.op(canonical)
    except RegistryError:
        spec = registry.op(file_name)
    codec = spec.extensions.get("cntk_v1") or CODECS[canonical]
    return spec, codec


def codec_for(spec: OpSpec) -> Codec | None:
    """The payload codec of a registry op, or None if CNTK v1 files cannot hold it."""
    codec = spec.extensions.get("cntk_v1")
    if codec is None:
        codec = CODECS.get(spec.name)
    return codec


def file_name_for(node: Node) -> str:
    """The operation name to store: the legacy spelling read from a file, else the op name."""
    for attr in LEGACY_NAME_ATTRS:
        value = node.attrs.get(attr)
        if value:
            return str(value)
    return node.op


attach()
