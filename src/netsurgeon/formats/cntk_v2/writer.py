"""Networks as CNTK v2 model files (what ``cntk.load_model`` reads), following the writer
checklist of cntk-v2-format.md §7.

The file is flat, like the ones CNTK's v1 converter writes: every node is one primitive
function (Blocks read from a v2 file are written as their inner functions, which keep their
``<block>.<inner>`` names), the leaves are the file's ``inputs`` and the root is a Combine of
the criterion, evaluation and output nodes (then any other node nobody uses); each of its
functions records its netsurgeon groups in ``customAttributes`` (``netsurgeon.groups``),
which CNTK keeps as user data and the reader restores. Per node:

* InputValue / SparseInputValue → an Input variable; its dynamic axes are CNTK's default
  sequence and batch axes (``dynamic_axis`` ""), a named sequence axis and the batch axis,
  or the batch axis alone (``__noSequenceAxis``, as CNTK's converter does);
* LearnableParameter → a Parameter (learning-rate multiplier ≠ 0) or a Constant; Mean and
  InvStdDev → Constants holding their computed statistics;
* every other op through its ``cntk_v2`` registry entry (code, operand order, attributes),
  plus what v2 wants beside the registry's form: PastValue/FutureValue get their initial
  state as a rank-0 Constant operand, BatchNormalization its 6th operand (the running
  count), Times of a rank-0 operand becomes ElementTimes (as CNTK converts it), a
  Convolution's W is stored as kernel ++ maps (CNTK order; legacy ``[out, k]`` weights are
  reinterpreted without moving elements), running inverse standard deviations (v1 files
  < 13) are stored as CNTK's variances, and PerDimMeanVarNormalization is Minus and
  ElementTimes, a reduction dropping its axes ReduceElements (keeping them) and Reshape.

Functions are in dependency order; an operand computed later (a recurrent loop through a
delay node) is a forward-reference Placeholder with the uid ``<F>_Output_0``. Uids are the
ones the network was read with (``net.metadata["cntk_v2"]["uids"]``) where still unique,
otherwise CNTK-style ``<Op><n>``. Nothing is written unless every node converts, and the
bytes are read back before the file replaces the target.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from netsurgeon.errors import FormatError
from netsurgeon.formats.cntk_v2 import _layer
from netsurgeon.formats.cntk_v2.reader import GROUPS_KEY, SCORED_GROUPS
from netsurgeon.formats.cntk_v2.values import Axis, Model, Shape, SizeT, Tensor
from netsurgeon.graph import Network, Node, closure, roots, topological_order
from netsurgeon.ops import Category, Unsupported
from netsurgeon.ops.leaves import NO_SEQUENCE_AXIS

__all__ = ["write", "to_model"]

INPUT, PARAMETER, CONSTANT, PLACEHOLDER = 0, 2, 3, 4
COMBINE = 44
MINUS, ELEMENT_TIMES, RESHAPE = 20, 21, 16
COMPOSITE_VERSION, FUNCTION_VERSION, VARIABLE_VERSION = 3, 24, 1
_DATA_TYPES = {"float32": 1, "float64": 2, "float16": 4}
_BATCH_AXIS = Axis.dynamic("defaultBatchAxis", ordered=False)
_DEFAULT_SEQUENCE = Axis.dynamic("defaultDynamicAxis", ordered=True)
_DELAYS = ("PastValue", "FutureValue")


def write(net: Network, path: str | os.PathLike[str], *, verify: bool = True) -> None:
    """Write ``net`` to ``path`` as a CNTK v2 file, atomically; with ``verify`` the bytes are
    read back as a network before they replace the target."""
    from netsurgeon.formats._atomic import atomic_write
    from netsurgeon.formats.cntk_v2 import wire

    parts = wire.encode_parts(to_model(net))
    with atomic_write(path) as out:
        out.writelines(parts)
        out.flush()
        if verify:
            import mmap

            from netsurgeon.formats.cntk_v2.reader import read_bytes_model

            # parse the bytes just written, mapped rather than copied (as the v1 writer); the
            # mapping is released with the check network's views
            written = mmap.mmap(out.fileno(), 0, access=mmap.ACCESS_READ)
            read_bytes_model(memoryview(written), f"{path} (as written)", net.name)


def to_model(net: Network) -> Model:
    """The v2 Dictionary of ``net`` (FormatError naming the node that cannot be written)."""
    _layer.install()
    if any(n.shape is None or n.dynamic is None for n in net.nodes):
        net.validate()
    return _Writer(net).model()


class _Writer:
    """One network's leaves and functions as v2 records."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.registry = net.registry
        meta = net.metadata.get("cntk_v2") or {}
        self.known_uids: Mapping[str, str] = meta.get("uids") or {}
        self.name = str(meta.get("name") or "")
        self.variables: list[dict[str, Any]] = []
        self.functions: list[dict[str, Any]] = []
        self.refs: dict[Node, str] = {}  # node -> the uid its value is referred to by
        self.uids: set[str] = set()
        self.node_uids: dict[Node, str] = {}
        self.reserved = set(self.known_uids.values())  # fresh uids avoid the known ones
        self.counter = itertools.count(1)
        self.precompute = self.registry.op_set(Category.PRECOMPUTE)
        self.leaf_ops = self.registry.op_set(Category.LEAF)
        self.axes: dict[Node, list[Axis]] = {}
        self.forward: dict[Node, str] = {}  # producer -> its forward-reference placeholder
        self.roles: dict[Node, list[str]] = {}  # root -> its groups (customAttributes)

    # ---- the whole file -----------------------------------------------------------------
    def model(self) -> Model:
        outputs = self._outputs()
        order = self._order(outputs)
        self._dynamic_axes(order)
        for node in order:
            if self._is_leaf(node):
                self._leaf(node)
            else:
                self._function(node)
        combine = self._uid("Combine", None)
        self.functions.append(self._record(combine, None, COMBINE,
                                           [self._ref(n) for n in outputs], {}))
        top: dict[str, Any] = {"version": SizeT(COMPOSITE_VERSION), "type": "CompositeFunction",
                               "uid": self._uid("CompositeFunction", None)}
        if self.name:
            top["name"] = self.name
        top.update(root=combine, inputs=self.variables, primitive_functions=self.functions)
        return Model(top)

    def _outputs(self) -> list[Node]:
        """Criterion, evaluation and output nodes, then the other nodes nobody uses."""
        chosen = [n for g in ("criterion", "evaluation", "output") for n in self.net.group(g)]
        chosen += [n for n in roots(self.net) if n.op not in self.leaf_ops]
        unique = list(dict.fromkeys(chosen))
        members = {g: set(self.net.group(g)) for g in SCORED_GROUPS}
        self.roles = {n: [g for g in SCORED_GROUPS if n in members[g]] for n in unique}
        if not unique:
            raise FormatError(f"network '{self.net.name}' has no output, criterion or "
                              "evaluation node to save")
        return unique

    def _is_leaf(self, node: Node) -> bool:
        return node.op in self.leaf_ops or node.op in self.precompute

    def _order(self, outputs: list[Node]) -> list[Node]:
        """The nodes the outputs need (precomputed statistics as leaves), inputs first; a
        delay node's operand may come after it."""
        needed = set(closure(outputs, lambda n: () if self._is_leaf(n) else n.inputs))
        for node in needed:
            if not self._is_leaf(node) and None in node.inputs:
                raise FormatError(f"input {node.inputs.index(None)} of '{node.name}' "
                                  f"({node.op}) is not connected", node=node.name)
        ordered = topological_order(self.net, [n for n in self.net.nodes if n in needed])
        return [n for n in ordered if n in needed]

    def _dynamic_axes(self, order: list[Node]) -> None:
        """Each dynamic node's axes: those of the inputs it depends on. A loop's delay node
        comes before its operand, so it gets them in a later pass; passes stop when one adds
        nothing (each pass that continues assigns at least one node)."""
        for node in order:
            if node.op in ("InputValue", "SparseInputValue"):
                self.axes[node] = _input_axes(str(node.attrs["dynamic_axis"]))
        changed = True
        while changed:
            changed = False
            for node in order:
                if node in self.axes or not node.dynamic:
                    continue
                found = next((self.axes[x] for x in node.inputs if x in self.axes), None)
                if found is not None:
                    self.axes[node] = found
                    changed = True

    # ---- uids and records -----------------------------------------------------------------
    def _uid(self, prefix: str, node: Node | None) -> str:
        """The uid of ``node`` (the one it was read with while still free), or a fresh
        ``<prefix><n>``; a node keeps the uid it was given first."""
        if node is not None and node in self.node_uids:
            return self.node_uids[node]
        known = self.known_uids.get(node.name) if node is not None else None
        if known and known not in self.uids and "_Output_" not in known:
            uid = known
        else:
            uid = f"{prefix}{next(self.counter)}"
            while uid in self.uids or uid in self.reserved:
                uid = f"{prefix}{next(self.counter)}"
        self.uids.add(uid)
        if node is not None:
            self.node_uids[node] = uid
        return uid

    def _ref(self, node: Node) -> str:
        """The uid ``node``'s value is referred to by (a forward reference if not written
        yet)."""
        ref = self.refs.get(node)
        if ref is not None:
            return ref
        uid = self.forward.get(node)
        if uid is None:
            uid = self.forward[node] = f"{self._uid(node.op, node)}_Output_0"
            self._variable(uid, node.name, PLACEHOLDER, node.dtype, tuple(node.shape or ()),
                           axes=self.axes.get(node) if node.dynamic else [])
        return uid

    @staticmethod
    def _record(uid: str, name: str | None, op: int, inputs: list[str],
                attributes: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {"version": SizeT(FUNCTION_VERSION), "type": "PrimitiveFunction",
                                  "uid": uid}
        if name:
            record["name"] = name
        record.update(op=SizeT(op), inputs=inputs, attributes=attributes)
        return record

    def _variable(self, uid: str, name: str, kind: int, dtype: str,
                  shape: tuple[int, ...], *, axes: list[Axis] | None = None,
                  sparse: bool = False, value: np.ndarray | None = None) -> dict[str, Any]:
        code = _DATA_TYPES.get(dtype)
        if code is None:
            raise FormatError(f"'{name}' has element type {dtype}; CNTK v2 files hold float32, "
                              "float64 and float16", node=name)
        record: dict[str, Any] = {
            "version": SizeT(VARIABLE_VERSION), "type": "Variable", "uid": uid,
            "kind": SizeT(kind), "data_type": SizeT(code), "dynamic_axis": axes or [],
            "is_sparse": sparse, "needs_gradient": kind == PARAMETER,
            "shape": Shape.from_numpy(shape)}
        if name:
            record["name"] = name
        if value is not None:
            record["value"] = Tensor.of(np.asarray(value, dtype=dtype).reshape(shape))
        self.variables.append(record)
        return record

    def _constant(self, name: str, value: np.ndarray, dtype: str) -> str:
        """A fresh Constant leaf (an initial state, a running count, converted statistics)."""
        uid = self._uid("Constant", None)
        self._variable(uid, name, CONSTANT, dtype, tuple(value.shape), value=value)
        return uid

    # ---- leaves ---------------------------------------------------------------------------
    def _leaf(self, node: Node) -> None:
        op, shape = node.op, tuple(node.shape or ())
        if op in ("InputValue", "SparseInputValue"):
            uid = self._uid("Input", node)
            self._variable(uid, node.name, INPUT, node.dtype, shape, axes=self.axes[node],
                           sparse=op == "SparseInputValue")
        elif op == "LearnableParameter" or op in self.precompute:
            if node.value is None:
                raise FormatError(f"'{node.name}' ({op}) has no value to save", node=node.name)
            if op in self.precompute and not node.attrs["has_computed"]:
                raise FormatError(f"the statistics of '{node.name}' ({op}) were never computed; "
                                  "CNTK v2 stores them as a constant", node=node.name,
                                  hint="run `netsurgeon train` (or its precompute pass) first")
            kind = PARAMETER if op == "LearnableParameter" and \
                node.learning_rate_multiplier != 0 else CONSTANT
            uid = self._uid("Parameter" if kind == PARAMETER else "Constant", node)
            self._variable(uid, node.name, kind, node.dtype, self._stored_shape(node, shape),
                           value=node.value)
        else:
            raise FormatError(f"'{node.name}' is a {op} leaf; CNTK v2 files hold inputs, "
                              "parameters and constants only", node=node.name)
        self.refs[node] = uid

    def _stored_shape(self, node: Node, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A convolution weight's shape as v2 wants it: kernel ++ maps (CNTK order)."""
        users = self.net.users(node)
        wanted = {_kernel_weight_shape(u) for u in users
                  if u.op in ("Convolution", "ConvolutionSequenceShape") and u.inputs[0] is node}
        wanted.discard(None)
        if not wanted:
            return shape
        if len(wanted) > 1 or any(u.op not in ("Convolution", "ConvolutionSequenceShape")
                                  for u in users):
            if wanted == {shape}:
                return shape
            raise FormatError(f"'{node.name}' is a convolution weight of shape {list(shape)} "
                              "also used elsewhere; CNTK v2 needs it as kernel × maps",
                              node=node.name)
        (target,) = wanted
        if int(np.prod(target)) != int(np.prod(shape)):
            raise FormatError(f"the convolution weight '{node.name}' {list(shape)} does not hold "
                              f"the kernel × maps {list(target)}", node=node.name)
        return target

    # ---- functions ------------------------------------------------------------------------
    def _function(self, node: Node) -> None:
        spec = self.registry.op(node.op)
        if node.op == "PerDimMeanVarNormalization":
            self._normalization(node)
            return
        if node.op == "ClassificationError" and len(node.inputs) == 3:
            top = node.inputs[2]
            if top.op != "LearnableParameter" or top.learning_rate_multiplier != 0 or \
                    top.value is None or np.size(top.value) != 1:
                raise FormatError(f"'{node.name}' (ClassificationError): CNTK v2 takes topN as "
                                  f"a scalar constant, not '{top.name}' ({top.op})",
                                  node=node.name)
        entry = _layer.CNTK_V2.lookup(spec)
        if isinstance(entry, Unsupported):
            raise FormatError(f"'{node.name}' ({node.op}) cannot be written to a CNTK v2 file: "
                              f"{entry.reason}", node=node.name)
        inputs = list(node.inputs)
        operands = [self._ref(x) for x in inputs]
        code = entry.code
        if node.op == "Times" and any(not x.shape for x in inputs):
            code = ELEMENT_TIMES  # CNTK's converter does the same: rank 0 is a scalar factor
        order = entry.order[:len(operands)] if entry.order else tuple(range(len(operands)))
        v2 = [""] * len(operands)
        for i, j in enumerate(order):
            v2[j] = operands[i]
        shapes = [tuple(x.shape or ()) for x in inputs]
        try:
            attributes = entry.write(node.attrs, shapes, tuple(node.shape or ()))
        except FormatError as exc:
            raise FormatError(f"'{node.name}' ({node.op}): {exc.message}", node=node.name) \
                from None
        if code == ELEMENT_TIMES:
            attributes = {}
        v2 += self._extra_operands(node)
        if node.op == "BatchNormalization" and node.attrs["running_inv_std_dev"]:
            v2[4] = self._variances(node)
        if node in self.roles:
            attributes = {**attributes, "customAttributes": {GROUPS_KEY: self.roles[node]}}
        if attributes.get("reductionKeepDimensions") is False:
            self._reduce_then_reshape(node, code, v2, attributes)
            return
        uid = self._uid(node.op, node)
        self.functions.append(self._record(uid, node.name, code, v2, attributes))
        self.refs[node] = f"{uid}_Output_0"

    def _reduce_then_reshape(self, node: Node, code: int, operands: list[str],
                             attributes: dict[str, Any]) -> None:
        """A reduction that drops its axes, as the Python API writes it: CNTK 2.7's primitive
        keeps them (it fails to compute with reductionKeepDimensions false), then Reshape."""
        kept = self._uid("ReduceElements", None)
        self.functions.append(self._record(kept, node.name + ".kept", code, operands,
                                           {**attributes, "reductionKeepDimensions": True}))
        uid = self._uid("Reshape", node)
        self.functions.append(self._record(
            uid, node.name, RESHAPE, [f"{kept}_Output_0"],
            {"newShape": Shape.from_numpy(tuple(node.shape or ()))}))
        self.refs[node] = f"{uid}_Output_0"

    def _extra_operands(self, node: Node) -> list[str]:
        """The operands v2 has and the registry's node may leave out."""
        if node.op in _DELAYS and len(node.inputs) == 1:
            state = np.array(node.attrs["initial_state"], dtype=node.dtype)
            return [self._constant("", state, node.dtype)]
        if node.op == "BatchNormalization" and len(node.inputs) == 5:
            count = np.array([node.attrs["running_sample_count"]], dtype=node.dtype)
            return [self._constant(node.name + ".run_sample_count", count, node.dtype)]
        return []

    def _variances(self, node: Node) -> str:
        """Running inverse standard deviations as the variances CNTK converts them to on
        load (1/isd² + ε: CNTK then normalizes with 1/√(var + ε), as the runtime does)."""
        isd = node.inputs[4]
        if isd.value is None:
            raise FormatError(f"'{isd.name}' has no value", node=isd.name)
        values = np.asarray(isd.value, dtype=np.float64)
        var = (1.0 / np.square(values) + float(node.attrs["epsilon"])).astype(isd.dtype)
        return self._constant(isd.name, var.reshape(tuple(isd.shape or var.shape)), isd.dtype)

    def _normalization(self, node: Node) -> None:
        """(x − mean) ⊙ invStdDev as the two primitives CNTK's converter writes."""
        x, mean, inv = (self._ref(i) for i in node.inputs)
        minus = self._uid("Minus", None)
        self.functions.append(self._record(minus, node.name + ".centered", MINUS, [x, mean], {}))
        uid = self._uid("ElementTimes", node)
        self.functions.append(self._record(uid, node.name, ELEMENT_TIMES,
                                           [f"{minus}_Output_0", inv], {}))
        self.refs[node] = f"{uid}_Output_0"


def _input_axes(name: str) -> list[Axis]:
    """The dynamic axes of an input whose ``dynamic_axis`` is ``name``."""
    if name == NO_SEQUENCE_AXIS:
        return [_BATCH_AXIS]
    if name in ("", "*"):
        return [_DEFAULT_SEQUENCE, _BATCH_AXIS]
    return [Axis.dynamic(name, ordered=True), _BATCH_AXIS]


def _kernel_weight_shape(conv: Node) -> tuple[int, ...] | None:
    """numpy shape of the weight a v2 Convolution wants: reversed(kernel ++ maps)."""
    from netsurgeon.ops.conv import conv_geometry

    w, x = conv.inputs[0], conv.inputs[1]
    if w is None or x is None or w.shape is None or x.shape is None:
        return None
    geo = conv_geometry(tuple(x.shape), conv.attrs)
    if not all(g.sharing for g in geo):
        return tuple(w.shape)  # locally connected: stored as the runtime has it
    kernel = tuple(g.kernel for g in geo)
    total = int(np.prod(w.shape)) // max(int(np.prod(kernel)), 1)
    maps = tuple(reversed(tuple(conv.attrs["map_count"])))  # as the shape rule splits W
    return tuple(reversed(kernel + (maps if int(np.prod(maps)) == total else (total,))))
