"""Payloads that are a plain list of fields (§7.1, §7.2): linear algebra, criteria, special
nodes. Each field maps onto the registry attribute named beside it."""

from __future__ import annotations

from netsurgeon.formats.cntk._codec import EMPTY
from netsurgeon.formats.cntk._fields import F, FieldCodec
from netsurgeon.formats.cntk._layer import CNTK_V1

_TIMES = (
    F("outputRank", "u64", since=3, attr="output_rank"),
    F("inferInputRankToMap", "i32", since=12, attr="infer_input_rank_to_map"),
)
CNTK_V1.add(("Times", "TransposeTimes"), FieldCodec(*_TIMES))
CNTK_V1.add("QuantizedTimes", FieldCodec(*_TIMES, F("bitShiftA", "u64", attr="bit_shift_a"),
                                         F("bitShiftB", "u64", attr="bit_shift_b")))
# CNTK takes the negative-sample count as an input; the attribute is not stored in v1 files
CNTK_V1.add("CosDistanceWithNegativeSamples", EMPTY)
CNTK_V1.add("Where", FieldCodec(F("dynamicAxisName", "wstr", since=11, attr="dynamic_axis_name")))
CNTK_V1.add("Crop", FieldCodec(F("xOffset", "f64", attr="x_offset"),
                               F("yOffset", "f64", attr="y_offset")))
CNTK_V1.add("EditDistanceError", FieldCodec(
    F("substitutionPenalty", "f32", attr="substitution_penalty"),
    F("deletionPenalty", "f32", attr="deletion_penalty"),
    F("insertionPenalty", "f32", attr="insertion_penalty"),
    F("squashInputs", "bool", attr="squash_inputs"),
    F("tokensToIgnore", "u64s", attr="tokens_to_ignore"),
))
CNTK_V1.add("OptimizedRNNStack", FieldCodec(
    F("bidirectional", "u64", attr="bidirectional", conv="bool_int"),
    F("numLayers", "u64", attr="num_layers"),
    F("hiddenSize", "u64", attr="hidden_size"),
    F("recurrentOp", "wstr", attr="recurrent_op"),
    F("axis", "i32", since=14, attr="axis", conv="axis"),
))
CNTK_V1.add("EnvironmentInput", FieldCodec(F("propertyName", "wstr", attr="property_name")))
CNTK_V1.add("Trace", FieldCodec(
    F("message", "wstr", attr="message"),
    F("logFirst", "u64", attr="log_first"),
    F("logFrequency", "u64", attr="log_frequency"),
    F("logGradientToo", "bool", attr="log_gradient_too"),
    F("isCategoryLabel", "bool", attr="is_category_label"),
    F("labelMappingFile", "wstr", attr="label_mapping_file"),
    F("isSparse", "bool", attr="is_sparse"),
    F("transpose", "bool", attr="transpose"),
    *(F(name, "nstr", attr=attr) for name, attr in (
        ("prologue", "prologue"), ("epilogue", "epilogue"),
        ("sequenceSeparator", "sequence_separator"), ("sequencePrologue", "sequence_prologue"),
        ("sequenceEpilogue", "sequence_epilogue"), ("elementSeparator", "element_separator"),
        ("sampleSeparator", "sample_separator"), ("precisionFormat", "precision_format"))),
    F("onlyUpToRow", "u64", attr="only_up_to_row"),
    F("onlyUpToT", "u64", attr="only_up_to_t"),
))
CNTK_V1.add("LatticeSequenceWithSoftmax", FieldCodec(
    *(F(name, "wstr", attr=attr) for name, attr in (
        ("symListPath", "symbol_list_path"), ("phonePath", "phone_path"),
        ("stateListPath", "state_list_path"), ("transProbPath", "trans_prob_path"),
        ("latticeConfigPath", "lattice_config_path"))),
    *(F(name, "f64", attr=attr) for name, attr in (
        ("frameDropThresh", "frame_drop_threshold"), ("fsSmoothingWeight", "fs_smoothing_weight"),
        ("amf", "am_factor"), ("lmf", "lm_factor"), ("wordPenalty", "word_penalty"),
        ("bMMIFactor", "bmmi_factor"))),
    F("usesMBR", "bool", attr="uses_mbr"),
    F("doReferenceAlignment", "bool", attr="do_reference_alignment"),
))
CNTK_V1.add("ForwardBackward", FieldCodec(
    F("delayConstraint", "i32", attr="delay_constraint"),
    F("blankTokenId", "u64", attr="blank_token_id")))
