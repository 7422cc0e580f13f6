"""Named op sets of the shared registry, derived from the op categories (never spelled by hand).

Layers test membership (``node.op in PARAMETERS``) instead of comparing op names or category
strings; a private registry answers the same questions with :meth:`OpRegistry.op_set`.
"""

from __future__ import annotations

from netsurgeon.ops import OPS
from netsurgeon.ops._category import Category

__all__ = [
    "LEAVES", "INPUTS", "SPARSE_INPUTS", "PARAMETERS", "FREEZABLE", "DELAYS", "PRECOMPUTED",
    "CRITERIA", "EVALUATIONS", "NORMALIZATIONS", "INTERNAL",
]

LEAVES = OPS.op_set(Category.LEAF)
INPUTS = OPS.op_set(Category.INPUT)
SPARSE_INPUTS = OPS.op_set(Category.SPARSE)
PARAMETERS = OPS.op_set(Category.PARAMETER)
FREEZABLE = OPS.op_set(Category.FREEZABLE)
DELAYS = OPS.op_set(Category.DELAY)
PRECOMPUTED = OPS.op_set(Category.PRECOMPUTE)
CRITERIA = OPS.op_set(Category.CRITERION)
EVALUATIONS = OPS.op_set(Category.EVALUATION)
NORMALIZATIONS = OPS.op_set(Category.NORMALIZATION)
INTERNAL = OPS.op_set(Category.INTERNAL)
