"""BrainScript programs several test modules use."""

from __future__ import annotations

from pathlib import Path

#: the CloneFunction seed's KL-adaptation example, adapted to MC.dnn (format ``path=``)
KLD = """
    network = BS.Network.Load ("{path}")
    adaptNet = BS.Network.CloneFunction (network.features, [ z = network.z ],
                                         parameters="learnable")
    refNet   = BS.Network.CloneFunction (network.features, [ z = network.z ],
                                         parameters="constant")
    features = Input (2)
    labels = Input (3)
    z    = adaptNet (features).z
    zRef = refNet   (features).z
    refWeight = 0.9
    kldLabels = labels * (1-refWeight) + Softmax (zRef) * refWeight
    ce = CrossEntropyWithSoftmax (kldLabels, z)
    errs = ErrorPrediction (labels, z)
    criterionNodes = (ce)
    evaluationNodes = (errs)
"""

#: CNTK's SLU tutorial network, which rebuilds slu.forward.nobn.cmf node for node
SLU = Path(__file__).resolve().parents[3] / "examples" / "slu_lstm.bs"
