"""Leaves: inputs (function arguments), parameters and precomputed statistics (globals)."""

from __future__ import annotations

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.lowerings import lowering


@lowering("InputValue", "SparseInputValue", accepts_sparse=True)
def _input(em, node, args):
    # codegen binds inputs to forward() arguments before any lowering runs
    raise EvaluationError("an input node is bound by the code generator, not lowered",
                          node=node.name)


@lowering("LearnableParameter")
def _parameter(em, node, args):
    return em.builder.param(node)


@lowering("Mean", "InvStdDev")
def _precomputed(em, node, args):
    """Precomputed statistics are constants at run time (computed by the trainer's pre-pass)."""
    if node.value is None and not em.config.get("uncomputed"):  # else a module buffer
        raise EvaluationError(
            f"{node.op} has not been computed; train the network (the pre-pass computes it) "
            "or load a model that holds it", node=node.name)
    return em.builder.param(node)
