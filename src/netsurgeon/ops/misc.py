"""Ops a v1 file can hold that fit no other family: tracing, sampling, accumulation."""

from __future__ import annotations

from math import prod

from netsurgeon.ops._build import define
from netsurgeon.ops._category import Category as C
from netsurgeon.ops._convert import NodeOption
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._shapes import same_as_input
from netsurgeon.ops._spec import AttrSpec, Shape, ShapeContext

__all__ = ["register", "TRACE_ATTRS"]

TRACE_ATTRS = {
    "message": AttrSpec("str", "", "text printed with each trace"),
    "log_first": AttrSpec("int", 10, "log the first N minibatches"),
    "log_frequency": AttrSpec("int", 10, "then every N-th minibatch"),
    "log_gradient_too": AttrSpec("bool", False, "also log gradients"),
    "is_category_label": AttrSpec("bool", False, "formatting: values are category labels"),
    "label_mapping_file": AttrSpec("str", "", "formatting: label names file"),
    "is_sparse": AttrSpec("bool", False, "formatting: sparse output"),
    "transpose": AttrSpec("bool", True, "formatting: transpose"),
    "prologue": AttrSpec("str", "", "formatting string (file nstr)"),
    "epilogue": AttrSpec("str", "", "formatting string (file nstr)"),
    "sequence_separator": AttrSpec("str", "", "formatting string (file nstr)"),
    "sequence_prologue": AttrSpec("str", "", "formatting string (file nstr)"),
    "sequence_epilogue": AttrSpec("str", "", "formatting string (file nstr)"),
    "element_separator": AttrSpec("str", "", "formatting string (file nstr)"),
    "sample_separator": AttrSpec("str", "", "formatting string (file nstr)"),
    "precision_format": AttrSpec("str", "", "formatting string (file nstr)"),
    "only_up_to_row": AttrSpec("int", 100000000, "print at most this many rows"),
    "only_up_to_t": AttrSpec("int", 100000000, "print at most this many time steps"),
}

RNG_ATTRS = {
    "rng_seed": AttrSpec("int", 0, "RNG seed (file v >= 16)"),
    "rng_offset": AttrSpec("int", 0, "RNG offset (file v >= 16)"),
}


def _sample(ctx: ShapeContext) -> Shape:
    return (prod(ctx.shapes[0]),)


def register(ops: OpRegistry) -> None:
    """Register the remaining ops."""
    define(ops, "Trace", (1, 1), same_as_input(0), inputs=("x",), attrs=TRACE_ATTRS,
           categories={C.IDENTITY, C.DEBUG},
           node_options=(NodeOption("say", "message", "str"),
                         NodeOption("logFirst", "log_first", "int"),
                         NodeOption("logFrequency", "log_frequency", "int"),
                         NodeOption("logGradientToo", "log_gradient_too", "bool"),
                         NodeOption("onlyUpToRow", "only_up_to_row", "int"),
                         NodeOption("onlyUpToT", "only_up_to_t", "int"),
                         NodeOption("format", "_format", lambda v: v)),
           node_finish=lambda r, b: r.attrs.pop("_format", None),
           doc="Identity that logs values while training.")
    sample_attrs = {
        "allow_duplicates": AttrSpec("bool", False, "sample with replacement"),
        "num_samples": AttrSpec("int", 1, "samples drawn per minibatch"),
        **RNG_ATTRS,
    }
    sample_opts = (NodeOption("allowDuplicates", "allow_duplicates", "bool"),
                   NodeOption("sizeOfSampledSet", "num_samples", "int",
                              aliases=("numSamples",)),
                   NodeOption("rngSeed", "rng_seed", "int"),
                   NodeOption("rngOffset", "rng_offset", "int"))
    define(ops, "RandomSample", (1, 1), _sample, inputs=("weights",), attrs=sample_attrs,
           categories={C.RANDOM}, dynamic="always", node_options=sample_opts, has_math=False,
           doc="Draws classes according to weights; each sample becomes a one-hot column.")
    define(ops, "RandomSampleInclusionFrequency", (1, 1), same_as_input(0), inputs=("weights",),
           attrs=sample_attrs, categories={C.RANDOM}, node_options=sample_opts, has_math=False,
           doc="Expected inclusion frequency of each class under RandomSample.")
    define(ops, "EpochAccumulator", (1, 1), same_as_input(0), inputs=("x",),
           categories={C.REDUCTION}, dynamic="none", has_math=False,
           doc="Sum of the input over the epoch.")
