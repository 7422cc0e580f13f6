"""One payload codec per CNTK node type (cntk-model-format.md §7), in the ``cntk_v1`` layer.

Importing this package adds every explicit codec to :data:`CNTK_V1` and attaches the layer
to the shared registry (``OPS.attach``); the layer derives the empty payload for the other
ops of CNTK's v1 factory and marks the rest unsupported. Modules: ``_leaves`` (parameters,
inputs, precomputed statistics), ``_conv`` (convolution and pooling), ``_batchnorm``,
``_axes`` (slices, transposes, reductions, reshapes), ``_special`` (delays, RNG state, NCE,
Cast) and ``_declared`` (payloads that are a plain list of fields).
"""

from __future__ import annotations

from netsurgeon.formats.cntk._layer import CNTK_V1
from netsurgeon.formats.cntk.payloads import (  # noqa: F401  (each module adds its codecs)
    _axes,
    _batchnorm,
    _conv,
    _declared,
    _leaves,
    _special,
)
from netsurgeon.ops import OPS

__all__ = ["CNTK_V1"]

OPS.attach(CNTK_V1)
