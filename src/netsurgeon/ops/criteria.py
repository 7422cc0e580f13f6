"""Training criteria and evaluation metrics (ndl-mel.md §B.9.4).

All of them output a single value ``(1,)`` summed over the minibatch, without a dynamic axis.
"""

from __future__ import annotations

from math import prod

from netsurgeon.ops._build import NDL, define, simple_function
from netsurgeon.ops._category import Category as C
from netsurgeon.ops._convert import NodeOption
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._spec import AttrSpec, Param, Shape, ShapeContext, fmt_shape

__all__ = ["register", "NCE_EVAL_MODES"]

#: file integer of each NCEBasedCrossEntropyWithSoftmax evaluation mode
NCE_EVAL_MODES: dict[str, int] = {"softmax": 0, "unnormalized": 1, "none": 2}


def _same_size(i: int, j: int):
    """Rule: inputs i and j hold the same number of elements (0 dims = unknown); (1,)."""

    def rule(ctx: ShapeContext) -> Shape:
        a, b = ctx.shapes[i], ctx.shapes[j]
        if 0 not in a and 0 not in b and prod(a) != prod(b):
            ctx.fail(f"{ctx.input_names[i]} {fmt_shape(a)} and {ctx.input_names[j]} "
                     f"{fmt_shape(b)} must have the same size")
        return (1,)

    rule.__name__ = f"criterion_same_size_{i}_{j}"
    return rule


def _classification_error(ctx: ShapeContext) -> Shape:
    _same_size(0, 1)(ctx)
    if len(ctx.shapes) == 3 and prod(ctx.shapes[2]) not in (0, 1):
        ctx.fail(f"the top-N input must hold one value, not {fmt_shape(ctx.shapes[2])}")
    return (1,)


def _logistic(ctx: ShapeContext) -> Shape:
    _same_size(0, 1)(ctx)
    return (1,)


def _class_based(ctx: ShapeContext) -> Shape:
    labels = ctx.shapes[0]
    if prod(labels) not in (0, 4):
        ctx.fail(f"labels must hold 4 rows (word id, class id, class start, class end), not "
                 f"{fmt_shape(labels)}")
    return (1,)


def _any_scalar(ctx: ShapeContext) -> Shape:
    return (1,)


def register(ops: OpRegistry) -> None:
    """Register criteria and evaluation ops."""
    crit = {C.CRITERION}
    ev = {C.EVALUATION}
    lz = ("labels", "z")
    define(ops, "CrossEntropyWithSoftmax", (2, 2), _same_size(0, 1), inputs=lz,
           categories=crit, dynamic="none",
           functions=(simple_function("CrossEntropyWithSoftmax", "CrossEntropyWithSoftmax",
                                      *lz, aliases=("CEWithSM",)),),
           doc="-Σ labels · log softmax(z).")
    define(ops, "CrossEntropy", (2, 2), _same_size(0, 1), inputs=("labels", "p"),
           categories=crit, dynamic="none",
           functions=(simple_function("CrossEntropy", "CrossEntropy", "labels", "p"),),
           doc="-Σ labels · log p.")
    define(ops, "SquareError", (2, 2), _same_size(0, 1), inputs=("a", "b"),
           categories=crit, dynamic="none",
           functions=(simple_function("SquareError", "SquareError", "a", "b",
                                      aliases=("SE",)),),
           doc="Σ (a-b)² (no ½ factor).")
    define(ops, "Logistic", (2, 3), _logistic, inputs=("labels", "p", "weights"),
           categories=crit, dynamic="none",
           functions=(simple_function("Logistic", "Logistic", "labels", "p", "weights",
                                      optional=1),),
           doc="-Σ w·[y·log p + (1-y)·log(1-p)].")
    define(ops, "ClassificationError", (2, 3), _classification_error,
           inputs=("labels", "z", "top_n"), aliases=("ErrorPrediction",),
           categories=ev, dynamic="none",
           functions=(simple_function("ClassificationError", "ClassificationError", "labels",
                                      "z", "top_n", optional=1,
                                      aliases=("ErrorPrediction",)),),
           doc="Number of samples whose label is not z's arg-max (or not in z's top N, N "
               "being the value of the optional 1-element third input).")
    define(ops, "ClassBasedCrossEntropyWithSoftmax", (4, 4), _class_based,
           inputs=("labels", "h", "W", "class_logits"), categories=crit, dynamic="none",
           functions=(simple_function("ClassBasedCrossEntropyWithSoftmax",
                                      "ClassBasedCrossEntropyWithSoftmax", "labels", "h", "W",
                                      "class_logits", aliases=("CBCEWithSM",), languages=NDL),),
           doc="Class-factored softmax cross entropy.")
    define(ops, "SequenceWithSoftmax", (3, 3), _same_size(0, 1),
           inputs=("labels", "z", "log_likelihood"), categories=crit, dynamic="none",
           functions=(simple_function("SequenceWithSoftmax", "SequenceWithSoftmax", "labels",
                                      "z", "log_likelihood", aliases=("SEWithSM",),
                                      languages=NDL),),
           has_math=False, doc="Sequence-discriminative (MMI/sMBR) criterion; needs lattices.")
    lattice_attrs = {
        "symbol_list_path": AttrSpec("str", "", "symbol list file"),
        "phone_path": AttrSpec("str", "", "phone file"),
        "state_list_path": AttrSpec("str", "", "state list file"),
        "trans_prob_path": AttrSpec("str", "", "transition probability file"),
        "lattice_config_path": AttrSpec("str", "LatticeNode.config", "lattice config file"),
        "frame_drop_threshold": AttrSpec("float", 1e-10, "frameDropThresh"),
        "fs_smoothing_weight": AttrSpec("float", 0.95, "hSmoothingWeight"),
        "am_factor": AttrSpec("float", 14.0, "seqGammarAMF"),
        "lm_factor": AttrSpec("float", 14.0, "seqGammarLMF"),
        "word_penalty": AttrSpec("float", 0.0, "seqGammarWordPen"),
        "bmmi_factor": AttrSpec("float", 0.0, "seqGammarBMMIFactor"),
        "uses_mbr": AttrSpec("bool", False, "seqGammarUsesMBR"),
        "do_reference_alignment": AttrSpec("bool", False, "doReferenceAlign"),
    }
    lattice_names = (
        ("symListPath", "symbol_list_path", "str"), ("phonePath", "phone_path", "str"),
        ("stateListPath", "state_list_path", "str"), ("transProbPath", "trans_prob_path", "str"),
        ("latticeConfigPath", "lattice_config_path", "str"),
        ("frameDropThresh", "frame_drop_threshold", "float"),
        ("hSmoothingWeight", "fs_smoothing_weight", "float"),
        ("seqGammarAMF", "am_factor", "float"), ("seqGammarLMF", "lm_factor", "float"),
        ("seqGammarWordPen", "word_penalty", "float"),
        ("seqGammarBMMIFactor", "bmmi_factor", "float"),
        ("seqGammarUsesMBR", "uses_mbr", "bool"),
        ("doReferenceAlign", "do_reference_alignment", "bool"),
    )
    lattice_kinds = {"str": "text", "float": "float", "bool": "bool"}
    define(ops, "LatticeSequenceWithSoftmax", (4, 4), _same_size(0, 1),
           inputs=("labels", "z", "log_likelihood", "lattice"), attrs=lattice_attrs,
           categories=crit, dynamic="none",
           node_options=tuple(NodeOption(n, a, k) for n, a, k in lattice_names),
           functions=(simple_function(
               "LatticeSequenceWithSoftmax", "LatticeSequenceWithSoftmax", "labels", "z",
               "log_likelihood", "lattice", languages=NDL,
               options={n: Param(a, lattice_kinds[k], lattice_attrs[a].default, aliases=(n,))
                        for n, a, k in lattice_names}),),
           has_math=False, doc="Lattice-based sequence criterion.")
    define(ops, "DummyCriterion", (3, 3), _any_scalar,
           inputs=("objective", "derivatives", "prediction"), categories=crit, dynamic="none",
           functions=(simple_function("DummyCriterion", "DummyCriterion", "objective",
                                      "derivatives", "prediction", languages=NDL),),
           doc="Value = objective input; the gradient to prediction is the derivatives input.")
    define(ops, "ForwardBackward", (2, 2), _any_scalar, inputs=("graph", "z"),
           attrs={"delay_constraint": AttrSpec("int", -1, "CTC delay constraint (-1 = none)"),
                  "blank_token_id": AttrSpec("int", 18446744073709551615,
                                             "id of the blank token (u64; SIZE_MAX = unset)")},
           categories=crit, dynamic="none",
           node_options=(NodeOption("blankTokenId", "blank_token_id", "int"),
                         NodeOption("delayConstraint", "delay_constraint", "int")),
           functions=(simple_function("ForwardBackward", "ForwardBackward", "graph", "z",
                                      languages=NDL,
                                      options={"blankTokenId": Param("blank_token_id", "int",
                                                                     18446744073709551615,
                                                                     aliases=("blankTokenId",)),
                                               "delayConstraint": Param(
                                                   "delay_constraint", "int", -1,
                                                   aliases=("delayConstraint",))}),),
           has_math=False, doc="CTC-style criterion.")
    ed_opts = (("subPen", "substitution_penalty", "float"), ("delPen", "deletion_penalty", "float"),
               ("insPen", "insertion_penalty", "float"), ("squashInputs", "squash_inputs", "bool"),
               ("tokensToIgnore", "tokens_to_ignore", "ints"))
    define(ops, "EditDistanceError", (2, 2), _any_scalar, inputs=("a", "b"),
           attrs={"substitution_penalty": AttrSpec("float", 1.0, "cost of a substitution"),
                  "deletion_penalty": AttrSpec("float", 1.0, "cost of a deletion"),
                  "insertion_penalty": AttrSpec("float", 1.0, "cost of an insertion"),
                  "squash_inputs": AttrSpec("bool", False, "merge repeated tokens first"),
                  "tokens_to_ignore": AttrSpec("ints", (), "token ids skipped (a file cannot "
                                               "hold an empty list: writers must handle ())")},
           categories=ev, dynamic="none",
           node_options=tuple(NodeOption(n, a, k) for n, a, k in ed_opts),
           functions=(simple_function(
               "EditDistanceError", "EditDistanceError", "a", "b", languages=NDL,
               options={n: Param(a, {"float": "float", "bool": "bool", "ints": "any"}[k],
                                 {"float": 1.0, "bool": False, "ints": ()}[k], aliases=(n,))
                        for n, a, k in ed_opts}),),
           doc="Edit distance between the two label sequences.")
    define(ops, "MatrixL1Reg", (1, 1), _any_scalar, inputs=("x",), categories=crit,
           dynamic="none",
           functions=(simple_function("MatrixL1Reg", "MatrixL1Reg", "x", aliases=("L1Reg",),
                                      languages=NDL),),
           doc="Σ|x|.")
    define(ops, "MatrixL2Reg", (1, 1), _any_scalar, inputs=("x",), categories=crit,
           dynamic="none",
           functions=(simple_function("MatrixL2Reg", "MatrixL2Reg", "x", aliases=("L2Reg",),
                                      languages=NDL),),
           doc="√Σx² (Frobenius norm).")
    define(ops, "LambdaRank", (3, 3), _any_scalar, inputs=("gain", "z", "query_id"),
           categories=crit, dynamic="none",
           doc="LambdaRank ranking criterion: groups = runs of equal query ids; value "
               "100·N·mean(1 − DCG/IDCG), gradient CNTK's lambdas.")
    define(ops, "NDCG1Eval", (3, 3), _any_scalar, inputs=("gain", "z", "query_id"),
           categories=ev, dynamic="none",
           doc="NDCG@1 metric: 100·N·mean over query groups of gain(top score) / gain(first).")
    define(ops, "NCEBasedCrossEntropyWithSoftmax", (4, 4), _any_scalar,
           inputs=("labels", "h", "W", "bias"),
           attrs={"eval_mode": AttrSpec("str", "none", "softmax, unnormalized or none (file "
                                        "i32 0/1/2; see NCE_EVAL_MODES)")},
           categories=crit, dynamic="none",
           node_options=(NodeOption("evalMode", "eval_mode", lambda v: str(v).lower()),),
           has_math=False, doc="Noise-contrastive estimation criterion.")
