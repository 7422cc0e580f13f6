"""Compile a network into a callable, with errors mapped back to node names.

What is compiled is a copy of the network sharing its values, rewritten by the
``FuseLinear`` pass (:func:`fused_copy`); the user's network never sees the internal ops.
The generated source is compiled under a unique file name registered in ``linecache`` (only
that name), so tracebacks show the generated lines. A :class:`CompiledNetwork` remembers the
*original* network's edit counter and refuses to run once that network has changed.
"""

from __future__ import annotations

import linecache
import uuid
import weakref
from math import prod
from typing import Any

import numpy as np
import torch

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network, Node
from netsurgeon.graph._bulk import collector_paused
from netsurgeon.graph.passes import FuseLinear, SpliceTransposed
from netsurgeon.ops import Category
from netsurgeon.runtime.batch import Minibatch, SparseRows, extent
from netsurgeon.runtime.codegen import TorchSource, generate

__all__ = ["CompiledNetwork", "compile_source", "compile_network", "feed", "fused_copy",
           "map_error"]


def compile_source(source: TorchSource, label: str = "network"):
    """Compile ``source`` and return its ``forward`` function and the file names used.

    Each piece (``source.pieces``: the functions of a long network) is compiled on its own
    under its own file name, registered in ``linecache``; the names map to the line offset of
    their piece in ``source.text``. The entries are dropped with the function.
    """
    base = f"<netsurgeon-{label}-{uuid.uuid4().hex[:8]}"
    lines = source.text.splitlines(True)
    starts = list(source.pieces) + [len(lines) + 1]
    scope = dict(source.globals)
    offsets: dict[str, int] = {}
    for k in range(len(starts) - 1):
        filename = base + (f"-{k}>" if len(starts) > 2 else ">")
        part = lines[starts[k] - 1:starts[k + 1] - 1]
        text = "".join(part)
        linecache.cache[filename] = (len(text), None, part, filename)
        offsets[filename] = starts[k] - 1
        exec(compile(text, filename, "exec"), scope)
    forward = scope[source.name]
    weakref.finalize(forward, _forget, list(offsets))
    return forward, offsets


def _forget(filenames: list[str]) -> None:
    for name in filenames:
        linecache.cache.pop(name, None)


class CompiledNetwork:
    """A network compiled for given outputs; call it with a :class:`Minibatch` or tensors.

    ``network`` is the user's network (whose version is checked and whose nodes errors
    name), ``source`` the code generated from its fused copy.
    """

    def __init__(self, net: Network, source: TorchSource, training: bool = False) -> None:
        self.network = net
        self.source = source
        self.version = net.version
        self.training = training
        self.forward, self.files = compile_source(source, net.name)
        self.dtype = source.globals.get("__dtype__", torch.float32)
        self._input_shapes = [(name, tuple(net.node(name).shape or ()))
                              for name in source.inputs]

    @property
    def text(self) -> str:
        return self.source.text

    def check_version(self) -> None:
        if self.network.version != self.version:
            raise EvaluationError(
                f"network '{self.network.name}' was edited after it was compiled "
                f"(version {self.version} -> {self.network.version}); compile it again")

    def feed(self, batch: Minibatch) -> list[Any]:
        """forward() arguments for a minibatch."""
        return feed(batch, self._input_shapes, self.source.sparse, self.dtype)

    def __call__(self, batch: Minibatch) -> dict[str, torch.Tensor]:
        return self.run(self.feed(batch))

    def run(self, args: list[Any]) -> dict[str, torch.Tensor]:
        if self.network.version != self.version:
            self.check_version()
        try:
            values = self.forward(*args)
        except EvaluationError:
            raise
        except Exception as exc:
            raise self.map_error(exc) from exc
        return dict(zip(self.source.outputs, values))

    def map_error(self, exc: BaseException) -> EvaluationError:
        """An EvaluationError naming the node whose generated line raised ``exc``."""
        return map_error(exc, self.network, self.source, self.files)


def feed(batch: Minibatch, input_shapes: list[tuple[str, tuple[int, ...]]],
         sparse: frozenset[str], dtype: torch.dtype) -> list[Any]:
    """The generated function's arguments for a minibatch: one tensor per input (frames,
    *sample), CSR for the ``sparse`` inputs, then mask, lengths, B and T."""
    lengths = batch.lengths
    b, t, full = extent(lengths)
    args: list[Any] = []
    for name, shape in input_shapes:
        data = batch.streams.get(name)
        if data is None:
            raise EvaluationError(f"no data for input '{name}'; give an array for it, or map "
                                  f"a reader stream to it (eval --map {name}=STREAM)", node=name)
        if isinstance(data, SparseRows):
            if name in sparse:
                args.append(data.to_torch(dtype))
                continue
            data = data.to_dense().reshape((b, t) + shape)
        arr = data if isinstance(data, np.ndarray) else np.asarray(data)
        if arr.shape[2:] != shape or arr.shape[:2] != (b, t):
            if arr.shape[:2] != (b, t) or prod(arr.shape[2:]) != prod(shape):
                raise EvaluationError(
                    f"input '{name}' has shape {arr.shape}, expected (batch={b}, time={t}) "
                    f"+ {shape}", node=name)
        if arr.dtype != np.float32 or not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr, dtype=np.float32)
        elif not arr.flags.writeable:  # a memory-mapped .npy: torch wants its own copy
            arr = arr.copy()
        tensor = torch.from_numpy(arr)
        if dtype != torch.float32:
            tensor = tensor.to(dtype)
        args.append(tensor.reshape((b * t,) + shape))
    mask = None if full else batch.frame_mask()
    args.append(None if mask is None else torch.from_numpy(mask).to(dtype))
    args.append(torch.from_numpy(np.asarray(lengths, np.int64)))
    args += [b, t]
    return args


def map_error(exc: BaseException, network: Network, source: TorchSource,
              files: dict[str, int]) -> EvaluationError:
    """An EvaluationError naming the node whose generated line raised ``exc`` (``files``:
    what :func:`compile_source` returned)."""
    tb = exc.__traceback__
    node = None
    while tb is not None:
        offset = files.get(tb.tb_frame.f_code.co_filename)
        if offset is not None:
            node = source.line_to_node.get(offset + tb.tb_lineno, node)
        tb = tb.tb_next
    if node is None:
        return EvaluationError(f"evaluation failed: {type(exc).__name__}: {exc}")
    n = network.get(node)
    where = f" ({n.op}, defined at {n.location})" if n is not None and n.location else \
        (f" ({n.op})" if n is not None else "")
    return EvaluationError(f"evaluation failed at node '{node}'{where}: "
                           f"{type(exc).__name__}: {exc}", node=node)


def default_outputs(net: Network) -> list[Node]:
    """Output, criterion and evaluation nodes; failing those, the nodes nobody uses."""
    found: dict[Node, None] = {}
    for g in ("output", "criterion", "evaluation"):
        for n in net.group(g):
            found.setdefault(n, None)
    if not found:
        from netsurgeon.graph import roots

        for n in roots(net):
            found.setdefault(n, None)
    return list(found)


def network_dtype(net: Network) -> torch.dtype:
    """float64 when the parameters are float64, else float32."""
    params = net.registry.op_set(Category.PARAMETER)
    for n in net.nodes:
        if n.op in params and n.value is not None:
            return torch.float64 if np.asarray(n.value).dtype == np.float64 else torch.float32
    return torch.float32


def fused_copy(net: Network, outputs: list[Node], *, training: bool = False,
               sparse_inputs: frozenset[str] = frozenset()) -> tuple[Network, list[Node]]:
    """The network the runtime compiles: a copy of ``net`` sharing its values, with
    ``Plus(Times(W, x), b)`` / ``Plus(Convolution(W, x), b)`` fused (``FuseLinear``; the
    outputs keep their own values) and transposed splices untransposed (``SpliceTransposed``).
    Returns the copy and the outputs' nodes in it; ``net`` itself (unchanged) when it has
    nothing to fuse."""
    if not _may_fuse(net):
        return net, list(outputs)
    work = net.copy(share_values=True)
    keep = [o.name for o in outputs]
    SpliceTransposed(keep=keep)(work)
    FuseLinear(keep=keep, sparse_inputs=sparse_inputs, training=training)(work)
    return work, [work.node(o.name) for o in outputs]


_FUSABLE = frozenset(("Times", "Convolution"))  # what FuseLinear folds into a following Plus


def _may_fuse(net: Network) -> bool:
    """Whether some Plus has a Times/Convolution input (FuseLinear's only patterns). When none
    has, the pass would change nothing and code is generated from ``net`` itself: no copy
    (which is most of the compile time of a long chain)."""
    return any((n.op == "Plus" and any(i is not None and i.op in _FUSABLE for i in n.inputs))
               or (n.op == "TransposeDimensions" and n.inputs and n.inputs[0] is not None
                   and n.inputs[0].op == "RowStack") for n in net.nodes)


def compile_network(net: Network, outputs: list[Node | str] | None = None, *,
                    training: bool = False, sparse_inputs=frozenset(),
                    tensors: dict[str, Any] | None = None,
                    config: dict[str, Any] | None = None) -> CompiledNetwork:
    """Validate ``net`` if needed, generate code for ``outputs`` from its fused copy and
    compile it.

    Args:
        net: the network; it is not changed (beyond validation of missing shapes).
        outputs: nodes or names to return (default: :func:`default_outputs`).
        training: training behaviour (dropout, batch-norm statistics, autograd-visible
            weights).
        sparse_inputs: input names that will be fed as sparse tensors.
        tensors: parameter tensors to use, by node name (a trainer's shared tensors).
        config: run options (``dtype``, ``dropout_rate``).
    """
    if any(n.shape is None or n.dynamic is None for n in net.nodes):
        net.validate()
    outs = [net.node(o) for o in outputs] if outputs else default_outputs(net)
    cfg = dict(config or {})
    cfg.setdefault("dtype", network_dtype(net))
    sparse = frozenset(sparse_inputs)
    with collector_paused():
        work, work_outs = fused_copy(net, outs, training=training, sparse_inputs=sparse)
        source = generate(work, work_outs, training=training, sparse_inputs=sparse,
                          tensors=tensors, config=cfg)
        source.globals["__dtype__"] = cfg["dtype"]
        return CompiledNetwork(net, source, training)


