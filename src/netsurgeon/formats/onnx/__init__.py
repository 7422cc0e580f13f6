"""ONNX files: export of a network (``save``, ``to_model``) and the registry's ``onnx`` layer.

Importing this package attaches the layer (one export entry, or an explicit ``Unsupported``
with the reason, per op) and imports no onnx: the ``onnx`` package is loaded when a model is
built. See docs/onnx.md for what is exported and how names, shapes and sequences map.
"""

from __future__ import annotations

from netsurgeon.formats.onnx._layer import ONNX, Export, OnnxExport, install
from netsurgeon.formats.onnx.export import DEFAULT_OPSET, MIN_OPSET, save, select_outputs, to_model
from netsurgeon.ops import OPS

__all__ = ["ONNX", "OnnxExport", "Export", "DEFAULT_OPSET", "MIN_OPSET", "save", "to_model",
           "select_outputs"]

install(OPS)
