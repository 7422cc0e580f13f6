"""Ops that fit no other family: tracing, sampling, accumulation, the Gaussian-mixture
likelihood."""

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


def _gmm(ctx: ShapeContext) -> Shape:
    prior, mean, logstd, x = (prod(s) if 0 not in s else 0 for s in ctx.shapes)
    if mean and logstd and mean != logstd:
        ctx.fail(f"means ({mean} elements) and log standard deviations ({logstd}) must have "
                 "the same size")
    if prior and x and mean and mean != prior * x:
        ctx.fail(f"means need {prior} components x {x} feature dimensions = {prior * x} "
                 f"elements, not {mean}")
    return (1,)


def register(ops: OpRegistry) -> None:
    """Register the remaining ops."""
    define(ops, "GMMLogLikelihood", (4, 4), _gmm,
           inputs=("unnormalized_prior", "means", "log_stddevs", "x"),
           categories={C.REDUCTION},
           doc="Per frame, log p(x) under a diagonal Gaussian mixture of K components over "
               "D-dimensional x: log Σ_k softmax(prior)_k N(x; μ_k, diag(exp(2 log σ_k))). "
               "The prior has K elements; means and log σ have K·D each, component k's at "
               "CNTK column k (numpy row k of a (K, D) view); any input may vary per frame. "
               "CNTK's BrainScript compiled the node out, so only the formula of its "
               "GMMLogLikelihoodNode (including the −D/2·log 2π term) is followed, not its "
               "numbers.")
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
