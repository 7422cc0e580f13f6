"""Op categories: the named groups an op belongs to (a closed set, so a typo fails at import).

Layers never test category strings; they use the named op sets of :mod:`netsurgeon.ops.sets`
(``node.op in PARAMETERS``), which the registry derives from these categories.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["Category"]


class Category(str, Enum):
    """What kind of node an op makes. An op has one or more."""

    LEAF = "leaf"  # no inputs: data, weights, environment
    INPUT = "input"  # fed by a reader (InputValue, SparseInputValue)
    SPARSE = "sparse"  # an input fed as a sparse matrix
    PARAMETER = "parameter"  # holds a tensor of weights
    FREEZABLE = "freezable"  # CloneFunction 'constant' freezes it (parameters, batch norm)
    DYNAMIC_AXIS = "dynamic_axis"  # names or reconciles a dynamic axis
    ELEMENTWISE = "elementwise"
    UNARY = "unary"
    BINARY = "binary"
    TERNARY = "ternary"
    COMPARISON = "comparison"
    COLUMNWISE = "columnwise"  # Softmax family: per column of the sample
    IDENTITY = "identity"  # passes its input through (Pass, StopGradient, Trace)
    NO_GRADIENT = "no_gradient"
    RANDOM = "random"
    LINEAR = "linear"
    RESHAPING = "reshaping"
    REDUCTION = "reduction"
    CRITERION = "criterion"  # a training criterion (sums over the minibatch)
    EVALUATION = "evaluation"  # an evaluation metric
    NORMALIZATION = "normalization"
    PRECOMPUTE = "precompute"  # statistics computed in one pass over data (Mean, InvStdDev)
    DELAY = "delay"  # reads its input with a time delay (PastValue, FutureValue)
    RECURRENT = "recurrent"
    CONVOLUTION = "convolution"
    POOLING = "pooling"
    DEBUG = "debug"
    INTERNAL = "internal"  # made by a compiler pass only, never by a language or a file

    def __str__(self) -> str:
        return self.value
