"""The ``torch.nn.Module`` that runs generated method code; it imports torch only.

:func:`netsurgeon.runtime.module.to_torch` subclasses it, and
:func:`netsurgeon.runtime.standalone.write_module` copies this class's source verbatim into
the files it writes, so a standalone module runs the same wrapper without netsurgeon. Hence
the rule of this file: nothing but ``torch`` (and the standard library) may be used here.

The module holds one tensor per parameter *storage* under a sanitised attribute name
(``p_L1_W``): trainable ones as ``nn.Parameter``, frozen ones (learning-rate multiplier 0)
as parameters with ``requires_grad=False``, batch-normalization running statistics and
precomputed Mean/InvStdDev as buffers, and the code's own constants as non-persistent
buffers (so ``.to(device)`` moves them). ``state_dict()`` is keyed by the *node names*
(``L1.W``; one key per node, so two nodes sharing a storage give two keys for one tensor) and
``load_state_dict`` reads the same keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import torch

__all__ = ["NetworkModule"]


class NetworkModule(torch.nn.Module):
    """A network as a torch module (see the file's docstring for how tensors are held).

    Args:
        spec: what the wrapper needs, a plain literal: ``inputs`` [(node, arg, sample shape)],
            ``outputs`` [(node, has frame axis)], ``sequences`` (inputs carry a time axis),
            ``state`` [(attribute, [node names], shape, dtype, kind)] with kind ``parameter``,
            ``frozen`` or ``buffer``, ``column_major`` (attributes of weight matrices the code
            multiplies as ``x @ W``: held column-major, whose matrix products and gradients
            are faster on the CPU; optional), ``train_error`` (why there is no training code,
            or None).
        eval_fn: generated method code for evaluation mode.
        train_fn: generated method code for training mode (None when unavailable).
        tensors: attribute -> initial value (None: uninitialised, to be loaded).
        constants: attribute -> constant tensor the generated code reads.
    """

    def __init__(self, spec: Mapping[str, Any], eval_fn: Callable[..., Any],
                 train_fn: Callable[..., Any] | None,
                 tensors: Mapping[str, torch.Tensor] | None = None,
                 constants: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self._spec = spec
        self._eval_fn = eval_fn
        self._train_fn = train_fn
        self._inputs = [(node, tuple(shape)) for node, _, shape in spec["inputs"]]
        self._outputs = [(node, bool(dynamic)) for node, dynamic in spec["outputs"]]
        self._sequences = bool(spec["sequences"])
        self._state_nodes: dict[str, tuple[str, ...]] = {}
        column = frozenset(spec.get("column_major", ()))
        for attr, nodes, shape, dtype, kind in spec["state"]:
            value = tensors[attr] if tensors is not None else \
                torch.empty(tuple(shape), dtype=getattr(torch, dtype))
            if attr in column and value.dim() == 2:  # the same values, nn.Linear's layout
                value = value.t().contiguous().t()
            if kind == "buffer":
                self.register_buffer(attr, value)
            else:
                self.register_parameter(
                    attr, torch.nn.Parameter(value, requires_grad=kind == "parameter"))
            self._state_nodes[attr] = tuple(nodes)
        for attr, value in (constants or {}).items():
            self.register_buffer(attr, value, persistent=False)

    @property
    def input_names(self) -> list[str]:
        """Input node names, in the order of ``forward``'s positional arguments."""
        return [node for node, _ in self._inputs]

    @property
    def output_names(self) -> list[str]:
        """Output node names, in the order of the returned dict."""
        return [node for node, _ in self._outputs]

    @property
    def node_attributes(self) -> dict[str, str]:
        """Node name -> attribute holding its tensor (the names ``named_parameters()``,
        ``torch.export``'s state dict and optimizers see)."""
        return {node: attr for attr, nodes in self._state_nodes.items() for node in nodes}

    def _fail(self, message: str, node: str | None = None) -> NoReturn:
        raise ValueError(f"node '{node}': {message}" if node else message)

    def _call(self, fn: Callable[..., Any], args: list[Any]) -> Any:
        return fn(self, *args)

    def _run(self, inputs: tuple[Any, ...], lengths: Any) -> dict[str, torch.Tensor]:
        """Inputs (batch, *sample), or (batch, time, *sample) with sequences -> outputs."""
        if self.training:
            fn = self._train_fn
            if fn is None:
                self._fail(self._spec["train_error"] or "no training code")
        else:
            fn = self._eval_fn
        first = inputs[0] if inputs else None
        if first is None:
            self._fail("no input given")
        batch = first.shape[0]
        steps = first.shape[1] if self._sequences and first.dim() > 1 else 1
        args: list[Any] = []
        for (node, shape), x in zip(self._inputs, inputs):
            if x is None:
                self._fail("this input is needed by the outputs; pass it", node)
            if not torch.jit.is_tracing():  # a trace records shapes as constants anyway
                self._check(node, x, shape, batch, steps)
            args.append(x.reshape((batch * steps,) + shape))
        mask = None
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.int64, device=first.device)
        else:
            positions = torch.arange(steps, device=lengths.device)
            mask = (positions < lengths.reshape(-1, 1)).reshape(-1).to(first.dtype)
        values = self._call(fn, args + [mask, lengths, batch, steps])
        out: dict[str, torch.Tensor] = {}
        for (node, dynamic), value in zip(self._outputs, values):
            if dynamic and self._sequences:
                value = value.reshape((batch, steps) + tuple(value.shape[1:]))
                if mask is not None:  # padding never leaks into results
                    value = value * mask.reshape((batch, steps) + (1,) * (value.dim() - 2))
            out[node] = value
        return out

    def _check(self, node: str, x: torch.Tensor, shape: tuple[int, ...], batch: int,
               steps: int) -> None:
        size = 1
        for d in shape:
            size *= d
        seq = self._sequences
        if x.dim() < (2 if seq else 1) or x.shape[0] != batch or (seq and x.shape[1] != steps) \
                or x.numel() != batch * steps * size:
            want = "(batch, time, *" if seq else "(batch, *"
            self._fail(f"input has shape {tuple(x.shape)}, expected {want}{shape}) with "
                       f"batch {batch}" + (f", time {steps}" if seq else ""), node)

    # ---- state dict keyed by node names -----------------------------------------------------
    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str,
                            keep_vars: bool) -> None:
        for attr, nodes in self._state_nodes.items():
            value = getattr(self, attr)
            value = value if keep_vars else value.detach()
            for node in nodes:
                destination[prefix + node] = value

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str,
                              local_metadata: Any, strict: bool, missing_keys: list[str],
                              unexpected_keys: list[str], error_msgs: list[str]) -> None:
        known = set()
        for attr, nodes in self._state_nodes.items():
            target = getattr(self, attr)
            keys = [prefix + node for node in nodes]
            known.update(keys)
            found = [k for k in keys if k in state_dict]
            if not found:
                missing_keys.extend(keys)
            for key in found:
                value = state_dict[key]
                if not isinstance(value, torch.Tensor) or value.shape != target.shape:
                    shape = tuple(value.shape) if hasattr(value, "shape") else type(value)
                    error_msgs.append(f"size mismatch for {key}: copying {shape} into "
                                      f"{tuple(target.shape)}")
                    continue
                with torch.no_grad():
                    target.copy_(value)
        if strict:
            unexpected_keys.extend(k for k in state_dict
                                   if k.startswith(prefix) and k not in known)
