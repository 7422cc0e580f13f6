"""Criteria over whole label sequences or class-factored outputs (ndl-mel.md §B.9.4):
EditDistanceError and ClassBasedCrossEntropyWithSoftmax, both shaped (1,) as CNTK's legacy
criteria and blind to the padding of the minibatch.

EditDistanceError follows CNTK 2.7's numbers (checked with the oracle,
tests/runtime/test_op_reference_sequence_criteria.py): the edit count between the arg-max
label sequences (input 0 the hypothesis, input 1 the reference) summed over the sequences,
times the real frames over the reference tokens. CNTK 2.7's library cannot load a
ClassBasedCrossEntropyWithSoftmax node (a "deprecated operation" of the v1 engine), so that
kernel follows CNTK's definition: −log P(class) − log P(word | class), the word softmax over
the class's range of the weight matrix only.
"""

from __future__ import annotations

from math import prod

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.lowerings import lowering


@lowering("EditDistanceError", uses_mask=True)
def _edit_distance(em, node, args):
    a, b = args
    if not (a.dynamic and b.dynamic):
        raise EvaluationError("EditDistanceError needs two inputs that carry the minibatch "
                              "axis (label sequences)", node=node.name)
    at = node.attrs
    ignore = tuple(int(t) for t in at["tokens_to_ignore"])
    return (f"K.edit_distance_error({a}, {b}, {em.lengths}, {em.batch}, {em.steps}, "
            f"{float(at['substitution_penalty'])!r}, {float(at['deletion_penalty'])!r}, "
            f"{float(at['insertion_penalty'])!r}, {bool(at['squash_inputs'])}, {ignore!r})")


@lowering("ClassBasedCrossEntropyWithSoftmax", uses_mask=True)
def _class_based_ce(em, node, args):
    labels, h, w, cls = args
    if not (labels.dynamic and h.dynamic and cls.dynamic):
        raise EvaluationError("ClassBasedCrossEntropyWithSoftmax needs labels, hidden "
                              "values and class log-posteriors that carry the minibatch axis",
                              node=node.name)
    if w.dynamic:
        raise EvaluationError("the weight matrix of ClassBasedCrossEntropyWithSoftmax must be "
                              "a parameter, not a per-frame value", node=node.name)
    if prod(labels.shape) != 4:
        raise EvaluationError("labels must hold 4 rows (word id, class id, class start, "
                              "class end)", node=node.name)
    hidden = prod(h.shape)
    if len(w.shape) < 2 or prod(w.shape[1:]) != hidden:
        raise EvaluationError(f"the weight matrix {tuple(w.shape)} must be (vocabulary, "
                              f"{hidden}) in numpy order (CNTK [{hidden} x vocabulary])",
                              node=node.name)
    return f"K.class_based_ce_sum({labels}, {h}, {w}, {cls}, {em.mask})"
