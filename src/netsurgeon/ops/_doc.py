"""Renders docs/ops.md from the registry, so the op reference cannot drift from the code.

Run ``python -m netsurgeon.ops._doc > docs/ops.md`` after changing an op; a test checks the
file is current.
"""

from __future__ import annotations

from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._spec import REQUIRED, FunctionSpec, OpSpec

__all__ = ["render_markdown"]

HEADER = """\
# Node types (ops) and the functions that create them

Generated from the registry (`python -m netsurgeon.ops._doc > docs/ops.md`); do not edit by hand.

## Conventions

* **Op names** are CNTK's operation names as v1 model files store them (`Times`,
  `LearnableParameter`). `OPS.op(name)` also accepts each op's *aliases*, the legacy file and
  BrainScript spellings (`ErrorPrediction` -> `ClassificationError`, `Delay` -> `PastValue`,
  `RowSlice` -> `Slice`, `Transpose` -> `TransposeDimensions`, `Scale`/`ColumnElementTimes`/
  `RowElementTimes` -> `ElementTimes`, `ReconcileMBLayout` -> `ReconcileDynamicAxis`,
  `RNN` -> `OptimizedRNNStack`). Nodes always carry the canonical name; a file reader that read
  an alias keeps that spelling in the node's file fields, so that a writer can reproduce the
  file byte for byte.
* **Attribute names** are snake_case forms of CNTK's field names (`output_rank`,
  `infer_input_rank_to_map`, `max_temp_mem_size_in_samples`, `normalization_time_constant`).
  Every field of an op's meaning a v1 payload stores has an attribute, including ones
  netsurgeon does not evaluate (RNG state, Trace formatting). Attributes not in files (e.g.
  `dropout_rate`) say so. A node in a network always holds every attribute of its op, in
  canonical form (`AttrSpec.coerce`): no layer carries defaults of its own.
* **Shapes and per-axis lists are numpy order**: the reverse of CNTK's order. A CNTK kernel
  `[3 x 3 x 16]` is `kernel_shape=(16, 3, 3)`; CNTK `autoPadding={true, true, false}` is
  `auto_padding=(False, True, True)`. A per-axis list of length 1 applies to every axis.
* **Axis numbers are CNTK axis numbers negated**: CNTK's 1-based axis *k* is numpy axis `-k`
  of the sample shape (CNTK's first axis = numpy's last = `-1`). CNTK's special codes are
  negated too, so the conversion is always `-x` both ways: ReduceElements `axes` 0 = all
  static axes, 1 = all axes, 2 = sequence axis, 3 = batch axis; OptimizedRNNStack `axis` 1 =
  the dynamic axis (CNTK -1). See `netsurgeon.ops._convert` (`np_shape`, `np_axis`,
  `np_bools`, `layout_name`, `pool_kind_name`) and `reshaping.np_permutation` /
  `reshaping.reshape_span` / `reshaping.slice_range`.
* **Enums** that files store as integers are strings: `image_layout` `CHW` (file 1, also
  written `cudnn`) or `HWC` (file 0, `legacy`); `pool_kind` `none`/`max`/`average` (0/1/2);
  NCE `eval_mode` `softmax`/`unnormalized`/`none` (0/1/2). The tables are in
  `netsurgeon.ops._convert.IMAGE_LAYOUT_CODES`, `POOL_KIND_CODES` and
  `criteria.NCE_EVAL_MODES`.
* **Leaves** keep their sample shape in `Node.shape` (numpy order), parameters their value in
  `Node.value`, the learning-rate multiplier in `Node.learning_rate_multiplier`; InputValue's
  file multiplier is the node's multiplier too. PastValue/FutureValue keep the declared sample
  shape (file `sampleShape`, NDL `rows`) in `Node.shape` before validation.
* **Categories** are the `Category` enum (`leaf`, `input`, `sparse`, `parameter`,
  `freezable`, `dynamic_axis`, `elementwise`, `unary`, `binary`, `ternary`, `comparison`,
  `columnwise`, `identity`, `no_gradient`, `random`, `linear`, `reshaping`, `reduction`,
  `criterion`, `evaluation`, `normalization`, `precompute`, `delay`, `recurrent`,
  `convolution`, `pooling`, `debug`, `internal`); layers use the named op sets of
  `netsurgeon.ops.sets` derived from them. `internal` ops (TimesPlus, ConvolutionPlus) are made
  by the FuseLinear pass for code generation only.
* **dynamic**: `inherit` (the output has the batch/sequence axis if an input has it),
  `always`, or `none` (criteria, parameters, precomputed statistics).
* **has_math = no**: the op can be read, edited, validated and written, but netsurgeon
  defines no evaluation for it.

* **File fields** (`Node.file_fields`, keys `<layer>.<field>` such as `cntk_v1.matrix_name`)
  hold what a file stores that is not an op attribute (matrix names, legacy header words, the
  spelling of an alias, placeholders), so a round trip is byte-identical. They belong to the
  format layer that wrote them; other layers ignore them.
* **Layers**: per-op parts of later layers (PyTorch lowering, CNTK v1 codec, BrainScript
  library) are `Layer` tables attached to the registry; `completeness(OPS)` lists every op a
  layer leaves undecided (docs/ir.md).

## Choices made where CNTK's behaviour was unclear

* **RowStack** broadcasts size-1 non-spliced axes (the CIFAR ResNet pads channels by stacking
  a `[1 x 1 x C]` zero block); other differing axes are an error naming both sizes.
* **Convolution** with a kernel of lower rank than its input reduces over the missing
  (channel) axes: kernel = stride = input size there, no padding, as CNTK's
  `InferReductionDims` did. Pooling leaves missing axes alone (kernel 1). Per-axis lists of
  length 1 apply to every axis; a list shorter than the rank repeats its last entry.
  `map_count=(0,)` is inferred from W's size. A transposed convolution (`transpose`)
  describes the forward convolution from its output to its input (CNTK's convention): the
  kernel's last extent is the output channel count, `map_count` the input's channels (0: taken
  from the input), and without `output_shape` each axis is `(in/maps - 1)*stride + 1`
  auto-padded, `(in/maps - 1)*stride + (k-1)*dilation + 1 - lower - upper` otherwise (the
  inverse of the forward rule); a kernel without the channel axis takes it from W.
* **TransposeDimensions** `permutation` is stored as numpy `transpose` axes, assuming CNTK's
  list gives, per output axis, the input axis it takes (`reshaping.np_permutation`).
* **Crop** offsets default to DBL_MAX, meaning "not given". NDL `Crop(a, b, p, q)` reads p
  and q as offsets when both are numbers, else as the two equivalence-node inputs.
* **ReduceElements** over all axes (code 1) yields a `(1,)`-per-axis sample; the op's
  dynamic mode stays `inherit` (validation cannot drop the batch axis per attribute).
* **CosDistanceWithNegativeSamples** cannot see input 3's value during shape inference:
  builders record it in `num_negative_samples`; without it the output shape is `(0,)`.
* **BatchNormalization** statistics of a spatial node hold one value per channel (numpy axis
  0 under CHW, the last axis under HWC); non-spatial ones one per input element. Parameters
  with unknown dims (`(0:1)` in BrainScript) are completed to that count.
* Criteria and metrics output `(1,)` without a dynamic axis; `SumColumnElements` keeps it.

## Languages and functions

`OPS.function(name, language)` finds a function by any spelling, case-insensitively.

* `ndl`: the NDL functions of ndl-mel.md §B.9. Positional values must already be converted
  to each parameter's kind (`input` = a node, `int`/`float`/`bool`, `shape` = a scalar or a
  CNTK-order list, `text`, `any`); options are matched case-insensitively and unknown options
  are ignored. `fn.bind(positional, options)` returns a `NodeRecipe`. Reserved-but-broken names
  (`Atan`, `Tan`, `ROIPooling`) raise ArgumentError("Attempted to instantiate undefined
  operation X"); `Asinh` and `Atanh`, which CNTK refused the same way, are defined.
  NDL `BatchNormalization` with 5 inputs returns `recipe.extra["auto_inputs"] = {5: {...}}`:
  the builder creates `<name>.run_sample_count` (a `[1]` LearnableParameter, multiplier 0,
  value 0) and attaches it as input 5, as current CNTK does. NDL `Cast` and `InputValue` put the
  element type in `recipe.extra["precision"]`.
* `bs`: BrainScript library functions whose positional signature matches the NDL one (the
  element-wise ops, Times, criteria, the leaves). The rest of the BrainScript library is meant
  to be written on top of `node`.
* `node`: BrainScript's primitive `new ComputationNode [operation=X; inputs=...; ...]`: one
  function per op, spelled like the op or its aliases. Bind it with the node inputs as
  positionals and the config record's members as options, named as CNTK's node class reads them
  (listed per op below, e.g. Convolution `kernelShape`, `mapCount`, `strideShape`,
  `dimSharing`, `dimPadding`, `dimPadLower`, `dimPadUpper`, `dimDilation`, `transpose`,
  `dimOutputShape`, `imageLayout`, `maxTempMemSizeInSamples`). Values arrive in CNTK
  conventions (dimension lists in CNTK order, 1-based axes) and are converted to attributes;
  options not given leave the attribute at its default. Leaves get `recipe.shape`,
  `recipe.learning_rate_multiplier` and `recipe.init` (BrainScript init rules: `init=''` with a
  numeric `initValue` is a constant fill, with `initFromFilePath` a file, else `uniform`).

"""


def _fmt_default(value: object) -> str:
    if value is REQUIRED:
        return "required"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def _fn_text(fn: FunctionSpec) -> str:
    if fn.broken:
        return f"`{fn.name}` (reserved, fails)"
    text = f"`{fn.describe_forms()}`"
    if fn.aliases:
        text += " aliases " + ", ".join(f"`{a}`" for a in fn.aliases)
    opts = [o.name for o in fn.options.values()]
    if opts:
        text += "; options " + ", ".join(opts)
    return text


def _op_section(op: OpSpec) -> list[str]:
    lines = [f"### {op.name}", ""]
    if op.doc:
        lines += [op.doc, ""]
    inputs = ", ".join(op.input_names) if op.input_names else "none"
    lines.append(f"* inputs ({op.arity_text()}): {inputs}"
                 + (f"; delayed: {sorted(op.delayed_inputs)}" if op.delayed_inputs else ""))
    lines.append(f"* categories: {', '.join(sorted(map(str, op.categories))) or '-'}; dynamic: "
                 f"{op.dynamic}; has_math: {'yes' if op.has_math else 'no'}")
    if op.aliases:
        lines.append("* op aliases: " + ", ".join(f"`{a}`" for a in op.aliases))
    for lang, label in (("ndl", "NDL"), ("bs", "BrainScript")):
        fns = [f for f in op.functions if lang in f.languages]
        if fns:
            lines.append(f"* {label}: " + "; ".join(_fn_text(f) for f in fns))
    node = [f for f in op.functions if "node" in f.languages]
    if node and node[0].options:
        lines.append("* `new ComputationNode` config: "
                     + ", ".join(o.name for o in node[0].options.values()))
    if op.attrs:
        lines += ["", "| attribute (file order) | type | default | meaning |",
                  "|---|---|---|---|"]
        for name, a in op.attrs.items():
            doc = a.doc.replace("|", "\\|")
            lines.append(f"| `{name}` | {a.kind} | `{_fmt_default(a.default)}` | {doc} |")
    lines.append("")
    return lines


def render_markdown(registry: OpRegistry) -> str:
    """The whole docs/ops.md text."""
    from netsurgeon.ops import FAMILIES

    lines = [HEADER, "## Summary", "", "| op | inputs | attributes | NDL functions (aliases) |",
             "|---|---|---|---|"]
    ops = list(registry)
    for op in ops:
        ndl = [f for f in op.functions if "ndl" in f.languages]
        fn_text = ", ".join(
            f.name + (f" ({', '.join(f.aliases)})" if f.aliases else "")
            + (" (reserved, fails)" if f.broken else "") for f in ndl) or "-"
        attrs = ", ".join(op.attrs) or "-"
        link = f"[{op.name}](#{op.name.lower()})"
        lines.append(f"| {link} | {op.arity_text()} | {attrs} | {fn_text} |")
    broken = [f for f in registry.functions("ndl") if f.broken]
    lines += ["", "Reserved NDL names that fail when used: "
              + ", ".join(f"`{f.name}`" for f in broken) + ".", ""]
    by_family: dict[str, list[OpSpec]] = {}
    names = {op.name: op for op in ops}
    seen: set[str] = set()
    probe = OpRegistry()
    for family in FAMILIES:
        before = set(probe._ops)
        family.register(probe)
        para = (family.__doc__ or family.__name__).strip().split("\n\n")[0]
        title = " ".join(para.split()).rstrip(".")
        by_family[title] = [names[n] for n in probe._ops if n not in before and n in names]
    for title, members in by_family.items():
        lines += [f"## {title}", ""]
        for op in members:
            if op.name not in seen:
                seen.add(op.name)
                lines += _op_section(op)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    from netsurgeon.ops import OPS

    print(render_markdown(OPS), end="")
