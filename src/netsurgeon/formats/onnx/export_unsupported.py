"""Ops the runtime evaluates in no form ONNX could take, with the reason (explicit decisions, so
``completeness`` sees them). Ops without math and internal ops are refused by the layer's rule.
"""

from __future__ import annotations

from netsurgeon.formats.onnx._layer import ONNX

_PACKED = ("dynamic-axis reshaping (Where/PackedIndex/GatherPacked/ScatterPacked) makes a "
           "new sequence axis, which the ONNX export does not model")
ONNX.unsupported("DynamicAxis", "a named dynamic axis is a declaration, not a value")
ONNX.unsupported(("Where", "PackedIndex", "GatherPacked", "ScatterPacked"), _PACKED)
ONNX.unsupported("ClassBasedCrossEntropyWithSoftmax",
                 "class-factored softmax is not implemented (not in the runtime either)")
ONNX.unsupported("EditDistanceError",
                 "edit distance over label sequences is not implemented (not in the runtime "
                 "either)")
ONNX.unsupported("MaxUnpooling", "max unpooling is not implemented (not in the runtime either)")
ONNX.unsupported("ROIPooling",
                 "region-of-interest pooling is not implemented (not in the runtime either)")
ONNX.unsupported("OptimizedRNNStack",
                 "export of the cuDNN RNN stack (flat cuDNN weights) to ONNX LSTM/GRU/RNN is "
                 "not implemented")
ONNX.unsupported(("LambdaRank", "NDCG1Eval"),
                 "query-grouped ranking criteria (sorting within runs of equal query ids) have "
                 "no ONNX form")
ONNX.unsupported(("TimeReverse", "Shift", "GMMLogLikelihood"),
                 "export of the CNTK v1 sequence/mixture ops (TimeReverse, Shift, "
                 "GMMLogLikelihood) to ONNX is not implemented")
