"""Ranking criteria (CNTK's LambdaRank and NDCG1Eval): inputs gain, score (prediction) and
query id, one value each per frame; a query group is a run of equal query ids among the real
frames of the minibatch, in frame order (CNTK groups consecutive samples). Both output (1,)."""

from __future__ import annotations

from math import prod

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.lowerings import lowering


def _check(node, args) -> None:
    if not all(a.dynamic for a in args):
        raise EvaluationError(f"{node.op} needs gain, score and query id per frame (inputs that "
                              f"carry the minibatch axis)", node=node.name)
    for name, a in zip(("gain", "score", "query id"), args):
        if prod(a.shape) != 1:
            raise EvaluationError(f"{node.op}: the {name} must be one value per frame, not "
                                  f"{a.shape}", node=node.name)


@lowering("LambdaRank", uses_mask=True)
def _lambda_rank(em, node, args):
    _check(node, args)
    return f"K.lambda_rank({args[0]}, {args[1]}, {args[2]}, {em.mask})"


@lowering("NDCG1Eval", uses_mask=True)
def _ndcg1(em, node, args):
    _check(node, args)
    return f"K.ndcg_at_1({args[0]}, {args[1]}, {args[2]}, {em.mask})"
