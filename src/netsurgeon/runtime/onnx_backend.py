"""An ``onnx.backend`` for netsurgeon: import with :mod:`netsurgeon.formats.onnx`, run on torch.

``NetsurgeonBackend.prepare(model)`` turns an ``onnx.ModelProto`` into a Network (the ONNX
importer) and returns a representation whose ``run(inputs)`` evaluates it with the runtime,
so the ONNX package's own test cases (``onnx.backend.test``) check the importer and the
lowerings together (``bench/onnx_backend_report.py`` runs them all and counts per op).
Inputs are given in the graph's input order (or by name); outputs come back in the graph's
output order. Only the CPU device is supported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from onnx.backend.base import Backend, BackendRep

from netsurgeon.graph import Network

__all__ = ["NetsurgeonBackend", "NetsurgeonRep", "prepare", "run_model"]

LENGTHS = "lengths"


class NetsurgeonRep(BackendRep):
    """A prepared (imported) model: ``run`` feeds its inputs and returns its outputs."""

    def __init__(self, network: Network, onnx_inputs: Sequence[str]) -> None:
        self.network = network
        self.onnx_inputs = list(onnx_inputs)
        self.inputs = [n.name for n in network.group("feature")]
        self.outputs = [n.name for n in network.group("output")]
        # a sequence model's int64 ``lengths`` graph input is the per-sequence lengths
        # argument of the evaluation, not a network input (docs/onnx-import.md)
        self.lengths_index = (self.onnx_inputs.index(LENGTHS)
                              if LENGTHS in self.onnx_inputs and LENGTHS not in self.inputs
                              else None)

    def run(self, inputs: Any, **kwargs: Any) -> list[np.ndarray]:
        """Evaluate on ``inputs`` (a list in graph-input order, one array, or a name map)."""
        from netsurgeon.runtime.evaluate import evaluate

        if isinstance(inputs, Mapping):
            given = dict(inputs)
        else:
            arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            given = dict(zip(self.onnx_inputs, arrays))
        lengths = given.pop(LENGTHS, None) if self.lengths_index is not None else None
        data = [name for name in self.onnx_inputs if name != LENGTHS or lengths is None]
        by_onnx = dict(zip(data, self.inputs))
        feeds = {by_onnx.get(k, k): np.asarray(v) for k, v in given.items()}
        result = evaluate(self.network, feeds, self.outputs,
                          lengths=None if lengths is None else np.asarray(lengths).tolist())
        return [result[name] for name in self.outputs]


class NetsurgeonBackend(Backend):
    """The ONNX backend interface over netsurgeon's importer and torch runtime."""

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> NetsurgeonRep:
        from netsurgeon.formats.onnx.importer import read_model

        super().prepare(model, device, **kwargs)
        name = model.graph.name or "model"
        network = read_model(model, name)
        initializers = {t.name for t in model.graph.initializer}
        onnx_inputs = [i.name for i in model.graph.input if i.name not in initializers]
        return NetsurgeonRep(network, onnx_inputs)

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> list[np.ndarray]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper() == "CPU"


prepare = NetsurgeonBackend.prepare
run_model = NetsurgeonBackend.run_model
