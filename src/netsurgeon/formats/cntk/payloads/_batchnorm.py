"""BatchNormalization: the model-version scheme (v >= 6) and the older self-versioned one."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from netsurgeon.formats.cntk._binary import BinaryReader, BinaryWriter, CntkFormatError
from netsurgeon.formats.cntk._codec import Codec, key
from netsurgeon.formats.cntk._context import Parts, ReadContext, WriteContext
from netsurgeon.formats.cntk._fields import (
    F,
    canonical_types,
    raw_to_parts,
    read_fields,
    write_field,
)
from netsurgeon.formats.cntk._layer import CNTK_V1
from netsurgeon.graph import detached
from netsurgeon.ops.normalization import RUN_COUNT_SUFFIX

if TYPE_CHECKING:
    from netsurgeon.graph import Node
    from netsurgeon.ops import OpSpec

__all__ = ["BatchNormalizationCodec"]

_HEAD = (
    F("spatial", "bool", attr="spatial"),
    F("normalizationTimeConstant", "f64", attr="normalization_time_constant"),
    F("blendTimeConstant", "f64", attr="blend_time_constant"),
    F("imageLayout", "i32", attr="image_layout", conv="image_layout"),
)
_TAIL = (
    F("epsilon", "f64", attr="epsilon"),
    F("useCntkEngine", "bool", attr="use_cntk_engine"),
)
_SPATIAL, _TIME_CONSTANT, _BLEND, _LAYOUT = _HEAD
#: the fields of a v >= 6 record (not v19) in one struct: _HEAD, the count, _TAIL
_PLAIN = struct.Struct("<BddiQdB")
#: imageLayout values -> the attribute (the ``image_layout`` converter's table)
_LAYOUTS = {0: "HWC", 1: "CHW"}
#: the attributes _read_plain makes -> the exact type of their values
_PLAIN_MAKES = {"spatial": bool, "normalization_time_constant": float,
                "blend_time_constant": float, "image_layout": str, "epsilon": float,
                "use_cntk_engine": bool, "running_inv_std_dev": bool,
                "running_sample_count": int}
#: (verWritten, verReadable) the writer uses for files v < 6 that did not come with their own
_LEGACY_VERSION = (0x00010004, 0x00010004)


class BatchNormalizationCodec(Codec):
    """Model-version scheme (v>=6) and the older self-versioned one (v<6).

    Before v13 the 5th input holds the running *inverse standard deviation*: the node gets
    ``running_inv_std_dev=True`` and the values stay as stored (the runtime converts, as CNTK
    did on load: variance = 1/isd**2 + epsilon). Writing converts only when the target version
    stores the other quantity, so a same-version round trip keeps every byte.

    File fields: ``minibatch_count`` (v < 13, instead of the sample count), v19's
    ``run_count_is_zero``, and of v < 6 files ``legacy_version`` (verWritten, verReadable)
    when not the default, ``eval_mode`` when set and the old ``exp_avg_factor``.
    """

    own_fields = ("minibatch_count", "run_count_is_zero", "legacy_version", "eval_mode",
                  "exp_avg_factor")
    _MINIBATCHES, _COUNT_IS_ZERO, _VERSION, _EVAL_MODE, _EXP_AVG = (key(n) for n in own_fields)

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        if ctx.version >= 6 and ctx.version != 19:
            parts = self._read_plain(r, ctx.version)
            if parts is not None:
                parts.canonical = canonical_types(BatchNormalizationCodec, 0, spec, dict,
                                                  _PLAIN_MAKES)
                return parts
        parts = Parts()
        ff = parts.file_fields
        v = ctx.version
        raw: dict[str, Any] = {}
        if v >= 6:
            raw.update(read_fields(r, _HEAD, ctx))
            if v < 13:
                ff[self._MINIBATCHES] = r.u64("minibatchCount")
            elif v != 19:
                parts.attrs["running_sample_count"] = r.u64("runningSampleCount")
            else:
                ff[self._COUNT_IS_ZERO] = r.bool("runCountIsZero")
            raw.update(read_fields(r, _TAIL, ctx))
        else:
            written = r.i32("verWritten")
            readable = r.i32("verReadable")
            if (written, readable) != _LEGACY_VERSION:
                ff[self._VERSION] = (written, readable)
            if r.bool("evalMode"):
                ff[self._EVAL_MODE] = True
            raw["spatial"] = r.bool("spatial")
            if written >= 0x00010004:
                raw["normalizationTimeConstant"] = r.f64("normalizationTimeConstant")
            else:
                ff[self._EXP_AVG] = r.f64("expAvgFactor")
            if written >= 0x00010002:
                raw["imageLayout"] = r.i32("imageLayout")
                ff[self._MINIBATCHES] = r.u64("minibatchCount")
            if written >= 0x00010003:
                raw["epsilon"] = r.f64("epsilon")
                raw["useCntkEngine"] = r.bool("useCntkEngine")
        raw_to_parts(r, _HEAD + _TAIL, raw, parts)
        if v < 13:
            parts.attrs["running_inv_std_dev"] = True
        return parts

    def _read_plain(self, r: BinaryReader, v: int) -> Parts | None:
        """The model-version scheme (v >= 6, not 19) in one read when every field is valid
        (bools 0 or 1, a known layout); else None (nothing consumed) and :meth:`read` reads
        it field by field, naming the defect."""
        pos = r.pos
        if pos + _PLAIN.size > r.size:
            return None
        spatial, time_constant, blend, layout, count, epsilon, engine = \
            _PLAIN.unpack_from(r.buf, pos)
        if spatial > 1 or engine > 1 or layout not in _LAYOUTS:
            return None
        r.pos = pos + _PLAIN.size
        attrs = {"spatial": spatial == 1, "normalization_time_constant": time_constant,
                 "blend_time_constant": blend, "image_layout": _LAYOUTS[layout],
                 "epsilon": epsilon, "use_cntk_engine": engine == 1}
        parts = Parts(attrs)
        if v < 13:
            parts.file_fields[self._MINIBATCHES] = count
            attrs["running_inv_std_dev"] = True
        else:
            attrs["running_sample_count"] = count
        return parts

    def prepare(self, node: Node, ctx: WriteContext) -> None:
        v = ctx.version
        inputs = list(node.inputs)
        if v < 19 and len(inputs) == 6:
            count_node = inputs[5]
            if (count_node is not None and count_node.value is not None
                    and np.size(count_node.value) == 1):
                ctx.run_counts[node] = int(np.asarray(count_node.value).reshape(-1)[0])
            ctx.input_overrides[node] = inputs[:5]
        elif v >= 19 and len(inputs) == 5:
            # from v19 CNTK reads the run count from a 6th input and no longer makes one
            ctx.run_counts[node] = 0
            ctx.input_overrides[node] = [*inputs, self._count_node(node, ctx)]
        has_isd = node.attrs["running_inv_std_dev"]
        wants_isd = v < 13
        if has_isd == wants_isd or len(inputs) < 5 or inputs[4] is None or inputs[4].value is None:
            return
        param = inputs[4]
        eps = float(node.attrs["epsilon"])
        stored = np.asarray(param.value, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if wants_isd:  # variance -> inverse std dev (inverse of CNTK's load conversion)
                converted = 1.0 / np.sqrt(np.maximum(stored - eps, 0.0))
            else:  # inverse std dev -> variance, as CNTK converts on load
                converted = 1.0 / (stored * stored) + eps
        ctx.value_overrides[param] = converted.astype(param.value.dtype)

    def _counts(self, node: Node, ctx: WriteContext) -> tuple[int, int]:
        """(running sample count, minibatch count), each estimated from the other if unknown.

        A count held by a 6th input (``ctx.run_counts``) is CNTK's tied count and wins, even
        when 0: CNTK's node takes its count from that input once it has one.
        """
        tied = ctx.run_counts.get(node)
        count = tied if tied is not None else node.attrs["running_sample_count"]
        minibatches = int(node.file_fields.get(self._MINIBATCHES, 0))
        if tied is None and not count and minibatches:
            count = 16 * minibatches  # CNTK's own estimate when loading a pre-v13 file
        if not minibatches and count:
            minibatches = count // 16
        return count, minibatches

    def _count_node(self, node: Node, ctx: WriteContext) -> Node:
        """The run-count parameter CNTK adds when it loads a pre-v19 file, to store with it.

        As CNTK's loader makes it: ``<node>.run_sample_count``, shape (1,), multiplier 0,
        value 0 (CNTK 2.7 loading cifar10.ResNet.cmf, v10, reports 0 for it; the 16 x
        minibatchCount estimate of the node's own field is then replaced by that 0), so the
        file behaves in CNTK as the pre-v19 one did, in training too.
        """
        count = np.zeros(1, dtype=ctx.dtype_of(node))
        extra = detached(ctx.fresh_name(node.name + RUN_COUNT_SUFFIX), "LearnableParameter",
                         value=count, shape=(1,), dynamic=False, learning_rate_multiplier=0.0,
                         dtype=str(count.dtype))
        ctx.extra_nodes.append(extra)
        return extra

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        v = ctx.version
        ff = node.file_fields
        count, minibatches = self._counts(node, ctx)
        if v >= 6:
            for f in _HEAD:
                write_field(w, f, node, ctx)
            if v < 13:
                w.u64(minibatches)
            elif v != 19:
                w.u64(count)
            else:
                w.bool(ff.get(self._COUNT_IS_ZERO, not count))
            for f in _TAIL:
                write_field(w, f, node, ctx)
            return
        written, readable = ff.get(self._VERSION, _LEGACY_VERSION)
        w.i32(written)
        w.i32(readable)
        w.bool(ff.get(self._EVAL_MODE, False))
        write_field(w, _SPATIAL, node, ctx)
        if written >= 0x00010004:
            write_field(w, _TIME_CONSTANT, node, ctx)
        else:
            w.f64(ff.get(self._EXP_AVG, 0.0))
        if written >= 0x00010002:
            write_field(w, _LAYOUT, node, ctx)
            w.u64(minibatches)
        if written >= 0x00010003:
            for f in _TAIL:
                write_field(w, f, node, ctx)

    def check(self, node: Node, ctx: WriteContext) -> None:
        n = len(node.inputs)
        if n not in (5, 6):
            raise CntkFormatError(f"BatchNormalization '{node.name}' has {n} inputs; CNTK needs "
                                  "x, scale, bias, runMean, runVariance[, runCount]",
                                  node=node.name)


CNTK_V1.add("BatchNormalization", BatchNormalizationCodec())
