"""CNTK v2 model files (``Function.save``) as netsurgeon networks.

The file's Dictionary (decoded by :mod:`.wire`) holds the leaves (``inputs``: Input,
Parameter, Constant and Placeholder variables) and every primitive function in dependency
order (cntk-v2-format.md §3). Each function becomes one registry op through the ``cntk_v2``
layer (:mod:`._layer`: op code, operand order, attributes); output shapes are inferred
again, as CNTK does. What is not a node:

* ``Combine``: its outputs are its operands (the root Combine lists the model's outputs);
* ``NoOp``: an alias of its operand;
* ``Block``: its outputs are its inner graph's (the inner functions come before it in the
  file; its argument placeholders are bound to the outer variables of its arguments map);
* forward-reference placeholders (uid ``<F>_Output_<k>``): aliases of F's output, which is
  how recurrent loops are stored;
* a scalar Constant given as a PastValue/FutureValue initial state: the op's
  ``initial_state``.

Names: a node is named after its function's ``name`` (or uid when empty), a leaf after its
variable's. Inside a Block the names get the block's name as a prefix (``classify.W``,
``classify.<inner>``) and the node computing a single-output block's value takes the block's
own name, so MEL wildcards reach a layer as ``classify.*``. A name still clashing gets
``.<uid>`` appended. ``net.metadata["cntk_v2"]["uids"]`` maps node names to CNTK uids and
``["outputs"]`` every output uid CNTK knows (``Block222_Output_1``) to its node.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from netsurgeon._inputs import read_bytes
from netsurgeon.errors import FormatError, NetsurgeonError, SourceLocation
from netsurgeon.formats.cntk_v2 import _layer
from netsurgeon.formats.cntk_v2.values import Axis, Shape, Tensor
from netsurgeon.graph import Network, Node, reachable_up
from netsurgeon.ops import OPS, Category, ShapeContext
from netsurgeon.ops.leaves import NO_SEQUENCE_AXIS

__all__ = ["read", "read_bytes_model", "GROUPS_KEY", "SCORED_GROUPS"]

COMBINE, BLOCK, NOOP = 44, 57, 62
INPUT, OUTPUT, PARAMETER, CONSTANT, PLACEHOLDER = range(5)
_DTYPES = {1: "float32", 2: "float64", 4: "float16"}
_FIXED_DYNAMIC = {"always": True, "none": False}
_SEQUENCE_AXES = ("defaultDynamicAxis", "")
#: ``customAttributes`` key of a root function: the netsurgeon groups it is in (a Vector of
#: "criterion", "evaluation", "output"; empty: none), which v2 files have no place for
GROUPS_KEY = "netsurgeon.groups"
SCORED_GROUPS = ("criterion", "evaluation", "output")
#: Blocks of the Python/C++ API that are criteria (block_function_op_name, §4.4) -> group
_BLOCK_GROUPS = {name: "criterion" for name in (
    "CrossEntropyWithSoftmax", "CrossEntropy", "SquaredError", "BinaryCrossEntropy",
    "WeightedBinaryCrossEntropy", "Logistic", "LambdaRank", "CosDistanceWithNegativeSamples",
    "ForwardBackward", "LatticeSequenceWithSoftmax")} | {name: "evaluation" for name in (
    "ClassificationError", "EditDistanceError", "NDCG", "NDCG1Eval")}


def read(path: str | os.PathLike[str], name: str | None = None) -> Network:
    """Read the CNTK v2 model file at ``path``; any defect is a one-line FormatError."""
    p = Path(path)
    return read_bytes_model(read_bytes(p, "CNTK v2 model", FormatError), str(p),
                            name or p.stem)


def read_bytes_model(data: bytes | bytearray | memoryview, where: str = "<bytes>",
                     name: str = "model") -> Network:
    """Build the network of a v2 file held in ``data``."""
    from netsurgeon.formats.cntk_v2 import wire

    _layer.install()
    model = wire.decode(data, where=where)
    try:
        return _Builder(model.top, name).build()
    except NetsurgeonError as exc:
        raise FormatError(exc.message, location=SourceLocation(where), node=exc.node,
                          hint=exc.hint) from None


def _declared_groups(attrs: Mapping[str, Any]) -> list[str] | None:
    """The groups netsurgeon's writer recorded for a root (``customAttributes``), if any."""
    custom = attrs.get("customAttributes")
    groups = custom.get(GROUPS_KEY) if isinstance(custom, Mapping) else None
    if not isinstance(groups, list):
        return None
    return [g for g in groups if g in SCORED_GROUPS]


def _out_uid(uid: str, k: int) -> str:
    return f"{uid}_Output_{k}"


def _label(record: Mapping[str, Any]) -> str:
    return str(record.get("name") or record["uid"])


# The Python type (wire's reading of a DictionaryValue type) each known key of a record must
# hold, ``(list, T)`` a Vector of T (cntk-v2-format.md §3, types §2.2). CNTK refuses a wrong
# type ("Reading a DictionaryValue as the wrong type"); checking once up front makes a flipped
# value_type a FormatError naming the record instead of a crash deep in the builder.
_TOP_TYPES: dict[str, Any] = {"uid": str, "name": str, "root": str, "inputs": list,
                              "primitive_functions": list}
_FUNCTION_TYPES: dict[str, Any] = {
    "uid": str, "name": str, "op": int, "inputs": (list, str), "attributes": dict,
    "block_function_composite": dict, "block_function_op_name": str,
    "block_function_composite_arguments_map_keys": (list, str),
    "block_function_composite_arguments_map_values": (list, str),
}
_HEADER_TYPES: dict[str, Any] = {"uid": str, "name": str, "root": str}
_VARIABLE_TYPES: dict[str, Any] = {
    "uid": str, "name": str, "kind": int, "data_type": int, "is_sparse": bool,
    "needs_gradient": bool, "shape": Shape, "value": Tensor, "dynamic_axis": (list, Axis),
}


def _check(record: Mapping[str, Any], types: Mapping[str, Any], what: str) -> None:
    """Refuse a record whose known keys hold values of the wrong type."""
    for key, want in types.items():
        if key not in record:
            continue
        value = record[key]
        kind, item = want if isinstance(want, tuple) else (want, None)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise FormatError(f"{what}: '{key}' is {_type_text(type(value))}, not "
                              f"{_type_text(kind)}")
        if item is not None and not all(isinstance(x, item) for x in value):
            bad = next(x for x in value if not isinstance(x, item))
            raise FormatError(f"{what}: '{key}' holds {_type_text(type(bad))}, not "
                              f"{_type_text(item)}")


_TYPE_TEXT = {"int": "an integer", "str": "a String", "bool": "a Bool", "dict": "a Dictionary",
              "list": "a Vector", "float": "a Double", "NoneType": "None", "Int": "an Int",
              "Axis": "an Axis", "Shape": "an NDShape", "Tensor": "an NDArrayView"}


def _type_text(kind: type) -> str:
    return _TYPE_TEXT.get(kind.__name__) or f"a {kind.__name__}"


class _Builder:
    """One file's functions and leaves turned into nodes."""

    def __init__(self, top: Mapping[str, Any], name: str) -> None:
        if top.get("type") != "CompositeFunction":
            raise FormatError(f"the top Dictionary is a {top.get('type')!r}, not a "
                              "CompositeFunction")
        for key in ("root", "inputs", "primitive_functions"):
            if key not in top:
                raise FormatError(f"the CompositeFunction has no '{key}'")
        _check(top, _TOP_TYPES, "the CompositeFunction")
        self.top = top
        self.net = Network(name)
        self.leaves: dict[str, Mapping[str, Any]] = {}
        for v in top["inputs"]:
            uid = self._uid(v, "variable")
            if uid in self.leaves:
                raise FormatError(f"two variables have uid '{uid}' (input uids are not unique)")
            _check(v, _VARIABLE_TYPES, f"variable '{uid}'")
            self.leaves[uid] = v
        self.functions: dict[str, Mapping[str, Any]] = {}
        self.producer: dict[str, tuple[str, int]] = {}  # output uid -> (function uid, k)
        for f in top["primitive_functions"]:
            uid = self._uid(f, "function")
            if uid in self.functions:
                raise FormatError(f"two functions have uid '{uid}'")
            _check(f, _FUNCTION_TYPES, f"function '{uid}'")
            _check(f.get("block_function_composite") or {}, _HEADER_TYPES,
                   f"block '{uid}': its block_function_composite")
            self.functions[uid] = f
        self.binding: dict[str, str] = {}  # block argument placeholder -> outer uid
        self.owner: dict[str, str] = {}  # function or leaf uid -> innermost block uid
        self.nodes: dict[str, Node] = {}  # function uid / leaf uid -> node
        self.values: dict[str, Node] = {}  # output uid -> node (once built)
        self.deferred: list[tuple[Node, int, str]] = []
        self.uids: dict[str, str] = {}
        self.initial_states: set[str] = set()
        self.scored_blocks: dict[str, str] = {}  # criterion block's node name -> its group
        self.declared_groups: dict[str, list[str]] = {}  # what netsurgeon wrote (GROUPS_KEY)

    @staticmethod
    def _uid(record: Any, what: str) -> str:
        if not isinstance(record, Mapping) or not isinstance(record.get("uid"), str):
            raise FormatError(f"a {what} record has no uid")
        return record["uid"]

    # ---- structure ---------------------------------------------------------------------
    def build(self) -> Network:
        self._scan_blocks()
        for uid, f in self.functions.items():
            self._function(uid, f)
        for node, index, ref in self.deferred:
            target = self.values.get(self._resolve(ref))
            if target is None:
                raise FormatError(f"'{ref}' (input {index} of '{node.name}') is produced by no "
                                  "function", node=node.name)
            self.net.set_input(node, index, target)
        self._groups()
        self.net.validate()
        outputs = {uid: n.name for uid, n in self.values.items() if n.name in self.net}
        self.net.metadata["cntk_v2"] = {
            "uids": self.uids, "outputs": outputs,
            "name": str(self.top.get("name", "")), "root": str(self.top["root"]),
        }
        return self.net

    def _scan_blocks(self) -> None:
        """Bindings of every block's argument placeholders, output producers, and which
        block each inner function (and leaf used only inside one) belongs to."""
        for uid, f in self.functions.items():
            op = int(f.get("op", -1))
            if op == COMBINE:
                continue
            for k in range(self._output_count(uid, f)):
                out = _out_uid(uid, k)
                leaf = self.leaves.get(out)
                if leaf is not None and leaf.get("kind") != PLACEHOLDER:
                    kind = int(leaf.get("kind", -1))
                    raise FormatError(f"variable '{out}' (kind {kind}) has the uid "
                                      f"of output {k} of function '{uid}'; only a placeholder "
                                      "may stand for an output")
                self.producer[out] = (uid, k)
            if op == BLOCK:
                keys = list(f.get("block_function_composite_arguments_map_keys", ()))
                values = list(f.get("block_function_composite_arguments_map_values", ()))
                if len(keys) != len(values):
                    raise FormatError(f"block '{uid}' has {len(keys)} argument placeholders "
                                      f"but {len(values)} bindings")
                self.binding.update(zip(keys, values))
        for uid, f in self.functions.items():
            if int(f.get("op", -1)) == BLOCK:
                self._claim(uid, self._block_root(uid, f))
        self._leaf_owners()

    def _output_count(self, uid: str, f: Mapping[str, Any]) -> int:
        if int(f.get("op", -1)) != BLOCK:
            return 1
        return len(self._inner_outputs(uid, f))

    def _block_root(self, uid: str, f: Mapping[str, Any]) -> str:
        header = f.get("block_function_composite")
        if not isinstance(header, Mapping) or "root" not in header:
            raise FormatError(f"block '{uid}' has no block_function_composite root")
        root = str(header["root"])
        if root not in self.functions:
            raise FormatError(f"block '{uid}': its inner root '{root}' is not a function")
        return root

    def _inner_outputs(self, uid: str, f: Mapping[str, Any]) -> list[str]:
        """The output uids (inside the block) its outputs are. A nested block as the root
        has as many outputs as the innermost root below it: followed down in a loop, so
        that blocks whose roots form a cycle are refused (not a RecursionError)."""
        root = self._block_root(uid, f)
        op = int(self.functions[root].get("op", -1))
        if op == COMBINE:
            return [str(i) for i in self.functions[root].get("inputs", ())]
        if op != BLOCK:
            return [_out_uid(root, 0)]
        last, seen = root, {uid}
        while int(self.functions[last].get("op", -1)) == BLOCK:
            if last in seen:
                raise FormatError(f"block '{uid}': the inner roots of blocks form a cycle "
                                  f"through '{last}'")
            seen.add(last)
            last = self._block_root(last, self.functions[last])
        innermost = self.functions[last]
        count = len(innermost.get("inputs", ())) \
            if int(innermost.get("op", -1)) == COMBINE else 1
        return [_out_uid(root, k) for k in range(count)]

    def _claim(self, block: str, root: str) -> None:
        """Mark the functions of ``block``'s inner graph. Nested blocks come earlier in the
        file and own their inner functions already; a walk reaches a nested block as the
        producer of its outputs, never its inside."""
        stack = [root]
        while stack:
            uid = stack.pop()
            if uid in self.owner:
                continue
            self.owner[uid] = block
            stack.extend(self.producer[ref][0] for ref in self._references(uid)
                         if ref not in self.binding and ref in self.producer)

    def _references(self, uid: str) -> list[str]:
        """The uids a function reads at its own level (a block: its arguments' bindings)."""
        f = self.functions[uid]
        if int(f.get("op", -1)) == BLOCK:
            return [str(r) for r in f.get("block_function_composite_arguments_map_values", ())]
        return [str(r) for r in f.get("inputs", ())]

    def _leaf_owners(self) -> None:
        """A leaf read only inside one block belongs to it (named with its prefix)."""
        levels: dict[str, set[str]] = {}
        for uid in self.functions:
            level = self.owner.get(uid, "")
            for ref in self._references(uid):
                if ref in self.leaves and ref not in self.binding:
                    levels.setdefault(ref, set()).add(level)
        for leaf, where in levels.items():
            if len(where) == 1 and "" not in where:
                self.owner[leaf] = where.pop()

    def _resolve(self, ref: str) -> str:
        """Follow block-argument bindings to the variable or output uid outside."""
        hops = 0
        while ref in self.binding:
            ref = self.binding[ref]
            hops += 1
            if hops > len(self.binding):
                raise FormatError(f"block argument bindings through '{ref}' form a cycle")
        return ref

    # ---- names -------------------------------------------------------------------------
    def _prefix(self, uid: str) -> str:
        parts, block, hops = [], self.owner.get(uid) or "", 0
        while block:
            parts.append(_label(self.functions[block]))
            block = self.owner.get(block) or ""
            hops += 1
            if hops > len(self.functions):
                raise FormatError(f"blocks nest in a cycle at '{uid}'")
        return "".join(p + "." for p in reversed(parts))

    def _name(self, uid: str, record: Mapping[str, Any]) -> str:
        name = self._prefix(uid) + _label(record)
        if self.net.get(name) is not None:
            name = f"{name}.{uid}"
        if self.net.get(name) is not None:
            raise FormatError(f"two records would both be named '{name}'")
        return name

    # ---- leaves ------------------------------------------------------------------------
    def _leaf(self, uid: str) -> Node:
        node = self.nodes.get(uid)
        if node is not None:
            return node
        v = self.leaves[uid]
        kind = int(v.get("kind", -1))
        shape = tuple(int(d) for d in reversed(tuple(v.get("shape", ()))))
        dtype = _DTYPES.get(int(v.get("data_type", 1)))
        if dtype is None:
            raise FormatError(f"variable '{uid}' has data type {int(v['data_type'])}; float, "
                              "double and float16 are supported")
        name = self._name(uid, v)
        if kind == INPUT:
            axes = list(v.get("dynamic_axis", ()))
            if not axes:
                raise FormatError(f"input '{_label(v)}' (uid {uid}) has no dynamic axis")
            sequence = [a for a in axes if a.ordered]
            if not sequence:  # the batch axis alone: CNTK v1 names that so
                axis = NO_SEQUENCE_AXIS
            else:
                axis = "" if sequence[0].name in _SEQUENCE_AXES else str(sequence[0].name)
            op = "SparseInputValue" if v.get("is_sparse") else "InputValue"
            node = self.net.add(name, op, shape=shape, attrs={"dynamic_axis": axis},
                                dtype=dtype, learning_rate_multiplier=0.0)
        elif kind in (PARAMETER, CONSTANT):
            tensor = v.get("value")
            if tensor is None:
                raise FormatError(f"{'parameter' if kind == PARAMETER else 'constant'} "
                                  f"'{_label(v)}' (uid {uid}) has no value")
            value = np.asarray(tensor.array)
            if tuple(value.shape) != shape:
                raise FormatError(f"the value of '{_label(v)}' (uid {uid}) is "
                                  f"{list(value.shape)}, its "
                                  f"variable {list(shape)} (numpy order)")
            learnable = kind == PARAMETER and bool(v.get("needs_gradient", True))
            node = self.net.add(name, "LearnableParameter", shape=shape, value=value,
                                dtype=dtype, learning_rate_multiplier=1.0 if learnable else 0.0)
        elif kind == PLACEHOLDER:
            raise FormatError(f"placeholder '{uid}' is bound to nothing (not a block argument "
                              "and no function produces it)")
        else:
            raise FormatError(f"variable '{uid}' has kind {kind}; 0 Input, 2 Parameter, "
                              "3 Constant and 4 Placeholder are valid in a file")
        self.nodes[uid] = node
        self.uids[node.name] = uid
        return node

    def _placeholder_shape(self, uid: str) -> tuple[tuple[int, ...], bool]:
        v = self.leaves[uid]
        return (tuple(int(d) for d in reversed(tuple(v.get("shape", ())))),
                bool(v.get("dynamic_axis")))

    # ---- operands -----------------------------------------------------------------------
    def _operand(self, ref: str, user: str) -> tuple[Node | None, tuple[int, ...], bool]:
        """(node or None for a forward reference, numpy sample shape, dynamic) of ``ref``,
        an operand of ``user`` (named in the errors)."""
        ref = self._resolve(ref)
        built = self.values.get(ref)
        if built is not None:
            return built, tuple(built.shape or ()), bool(built.dynamic)
        if ref in self.producer:
            if ref in self.leaves:  # a forward reference through a placeholder
                shape, dynamic = self._placeholder_shape(ref)
                return None, shape, dynamic
            raise FormatError(f"{user} reads '{ref}' before the function producing it")
        if ref in self.leaves:
            node = self._leaf(ref)
            return node, tuple(node.shape or ()), bool(node.dynamic)
        raise FormatError(f"{user} reads '{ref}': there is no input corresponding to that "
                          "uid")

    def _constant_number(self, ref: str) -> float | None:
        """The value of a one-element Constant leaf (an initial state), else None."""
        ref = self._resolve(ref)
        v = self.leaves.get(ref)
        if v is None or int(v.get("kind", -1)) != CONSTANT or v.get("value") is None:
            return None
        value = np.asarray(v["value"].array)
        return float(value.reshape(-1)[0]) if value.size == 1 else None

    # ---- functions ----------------------------------------------------------------------
    def _function(self, uid: str, f: Mapping[str, Any]) -> None:
        op = int(f.get("op", -1))
        refs = [str(r) for r in f.get("inputs", ())]
        if op == COMBINE:
            return
        if op == NOOP:
            node, _, _ = self._operand(refs[0], f"NoOp '{uid}'") if refs else (None, (), False)
            if node is None:
                raise FormatError(f"NoOp '{uid}' has no built operand")
            self.values[_out_uid(uid, 0)] = node
            return
        if op == BLOCK:
            self._block(uid, f)
            return
        found = _layer.by_code(op)
        if found is None:
            raise FormatError(f"function '{_label(f)}' (uid {uid}) has op code {op}, which "
                              "netsurgeon does not read (no registry op maps to it)")
        op_name, entry = found
        attrs = f.get("attributes") or {}
        if op_name in ("PastValue", "FutureValue") and len(refs) == 2:
            state = self._constant_number(refs[1])
            if state is not None:
                refs = refs[:1]
                self.initial_states.add(self._resolve(f["inputs"][1]))
        user = f"function '{_label(f)}' (uid {uid})"
        spec = self.net.registry.op(op_name)
        if not spec.accepts_arity(len(refs)):
            raise FormatError(f"{user}: {op_name} takes {spec.arity_text()} operands, the file "
                              f"gives {len(refs)}")
        operands = [self._operand(r, user) for r in refs]
        order = entry.order[:len(operands)] if entry.order else range(len(operands))
        if sorted(order) != list(range(len(operands))):
            raise FormatError(f"function '{_label(f)}' ({op_name}) has {len(operands)} "
                              "operands")
        operands = [operands[i] for i in order]
        refs = [refs[i] for i in order]
        shapes = [s for _, s, _ in operands]
        try:
            converted = entry.read(attrs, shapes)
        except KeyError as exc:
            raise FormatError(f"{user} ({op_name}): attribute {exc} is missing") from None
        except (TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
            # e.g. a Double where an integer belongs: int(inf) is an OverflowError
            raise FormatError(f"{user} ({op_name}): malformed attributes ({exc})") from None
        if op_name in ("PastValue", "FutureValue") and len(refs) == 1 and \
                len(f.get("inputs", ())) == 2:
            converted["initial_state"] = state
        if op_name == "CosDistanceWithNegativeSamples" and len(refs) == 4:
            count = self._constant_number(refs[3])  # the shape rule cannot see it
            if count is not None and count >= 0:
                converted["num_negative_samples"] = int(count)
        name = self._name(uid, f)
        node = self.net.add(name, op_name, [n for n, _, _ in operands], attrs=converted)
        groups = _declared_groups(attrs)
        if groups is not None:
            self.declared_groups[name] = groups
        for index, (built, _, _) in enumerate(operands):
            if built is None:
                self.deferred.append((node, index, refs[index]))
        self._infer(node, operands)
        self.nodes[uid] = node
        self.values[_out_uid(uid, 0)] = node
        self.uids[node.name] = uid

    def _infer(self, node: Node, operands: list[tuple[Node | None, tuple[int, ...], bool]]
               ) -> None:
        """The node's shape now, so later functions see their operands' ranks."""
        spec = self.net.registry.op(node.op)
        shapes = [s for _, s, _ in operands]
        flags = [d for _, _, d in operands]
        names = [n.name if n is not None else "(forward reference)" for n, _, _ in operands]
        ops = [n.op if n is not None else "PastValue" for n, _, _ in operands]
        ctx = ShapeContext(node.op, node.name, node.attrs, shapes, flags, input_names=names,
                           input_ops=ops)
        try:
            shape = tuple(int(d) for d in spec.infer_shape(ctx))
        except NetsurgeonError as exc:
            raise FormatError(f"as {node.op}: {exc.message}", node=node.name) from None
        fixed = _FIXED_DYNAMIC.get(spec.dynamic)
        self.net.update(node, shape=shape, dynamic=any(flags) if fixed is None else fixed)

    def _block(self, uid: str, f: Mapping[str, Any]) -> None:
        """A block's outputs are its inner graph's; a single-output block names the node that
        computes it."""
        inner = self._inner_outputs(uid, f)
        single = len(inner) == 1
        group = _BLOCK_GROUPS.get(str(f.get("block_function_op_name", "")))
        if group is not None and single:  # a criterion the Python API built as a Block
            self.scored_blocks[self._prefix(uid) + _label(f)] = group
        for k, ref in enumerate(inner):
            node, _, _ = self._operand(ref, f"block '{_label(f)}' (uid {uid})")
            if node is None:
                raise FormatError(f"block '{_label(f)}' output {k} is not computed before it")
            self.values[_out_uid(uid, k)] = node
            if single and node.op not in OPS.op_set(Category.LEAF):
                wanted = self._prefix(uid) + _label(f)
                if node.name != wanted and self.net.get(wanted) is None:
                    self.uids.pop(node.name, None)
                    self.net.rename(node, wanted)
                    self.uids[wanted] = self.uids.get(wanted, uid)

    # ---- groups -------------------------------------------------------------------------
    def _groups(self) -> None:
        root = str(self.top["root"])
        f = self.functions.get(root)
        if f is None:
            raise FormatError(f"the root '{root}' is not a function")
        if int(f.get("op", -1)) == COMBINE:
            outs = [self._resolve(str(r)) for r in f.get("inputs", ())]
        else:
            outs = [_out_uid(root, k) for k in range(self._output_count(root, f))]
        nodes = []
        for ref in outs:
            node = self.values.get(ref) or (self._leaf(ref) if ref in self.leaves else None)
            if node is None:
                raise FormatError(f"root output '{ref}' is not computed")
            nodes.append(node)
        for node in nodes:
            cats = self.net.registry.op(node.op).categories
            declared = self.declared_groups.get(node.name)
            for group in declared if declared is not None else [
                    self.scored_blocks.get(node.name) or (
                        "criterion" if Category.CRITERION in cats else
                        "evaluation" if Category.EVALUATION in cats else "output")]:
                if node.name not in {n.name for n in self.net.group(group)}:
                    self.net.add_to_group(group, node)
        self._inputs_as_features_or_labels()

    def _inputs_as_features_or_labels(self) -> None:
        """A label is an input only the criteria and evaluations read: one the outputs do
        not need (with no output group: one only scored nodes read)."""
        outputs = self.net.group("output")
        needed = set(reachable_up(self.net, outputs)) if outputs else None
        scored = {n.name for g in ("criterion", "evaluation") for n in self.net.group(g)}
        for node in self.net.nodes:
            if node.op in ("InputValue", "SparseInputValue"):
                users = self.net.users(node)
                if needed is not None:
                    label = bool(users) and node not in needed
                else:
                    label = bool(users) and all(u.name in scored for u in users)
                self.net.add_to_group("label" if label else "feature", node)
