"""The C++ runtime types ``new T [...]`` can create (brainscript.md §3.8–§3.9, §5).

Each constructor reads its parameters by name through the scope chain of the record, as
CNTK's C++ constructors did, so library wrappers forward their parameters with ``[ ]``.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network, Node
from netsurgeon.lang.brainscript.nodes import TensorShapeValue
from netsurgeon.lang.brainscript.values import (
    Array,
    Function,
    Record,
    Thunk,
    fail,
    join_path,
    type_name,
)

if TYPE_CHECKING:
    from netsurgeon.lang.brainscript.evaluator import Evaluator

__all__ = ["RUNTIME_TYPES"]


def _get(ev: Evaluator, cfg: Record, name: str, *default: Any) -> Any:
    t = cfg.find(name)
    if t is None:
        if default:
            return default[0]
        raise EvaluationError(f"required parameter '{name}' not found")
    return t.get(ev)


def _computation_node(ev, cfg, path, loc):
    return ev.nodes.from_config(cfg, path, loc)


def _computation_network(ev, cfg, path, loc):
    from netsurgeon.lang.brainscript.network import assemble

    return assemble(ev, cfg, path, loc)


def _from_file(ev, cfg, path, loc):
    from netsurgeon.lang.brainscript.network import load_network

    name = _get(ev, cfg, "pathName")
    if not isinstance(name, str):
        raise EvaluationError("BS.Network.Load needs a path string")
    precision = _get(ev, cfg, "precision", "float")
    if precision not in ("float", "double"):
        raise EvaluationError("BS.Network.Load: precision must be 'float' or 'double', not "
                              f"{precision!r}")
    return load_network(name)


def _with_edits(ev, cfg, path, loc):
    from netsurgeon.lang.brainscript.evaluator import flatten
    from netsurgeon.lang.brainscript.network import edit_network

    model = _get(ev, cfg, "inputModel")
    if not isinstance(model, Network):
        raise EvaluationError(f"BS.Network.Edit needs a network, not a {type_name(model)}")
    fns = flatten(ev, _get(ev, cfg, "editFunctions"))
    for f in fns:
        if not isinstance(f, Function) or len(f.params) != 1:
            raise EvaluationError("BS.Network.Edit: every edit function must take one node")
    extra = flatten(ev, _get(ev, cfg, "additionalRoots", Array(0, [])))
    roots = [n for n in extra if isinstance(n, Node)]
    return edit_network(ev, model, fns, roots, path)


def _clone_lambda(ev, cfg, path, loc):
    from netsurgeon.lang.brainscript.clone import CloneFunction
    from netsurgeon.lang.brainscript.evaluator import flatten
    from netsurgeon.lang.brainscript.network import bs_name

    inputs = flatten(ev, _get(ev, cfg, "inputNodes"))
    for i in inputs:
        if not isinstance(i, Node):
            raise EvaluationError(f"CloneFunction: inputNodes must be nodes, not a {type_name(i)}")
    out_value = _get(ev, cfg, "outputNodes")
    if isinstance(out_value, Node):
        outputs: Any = out_value
    elif isinstance(out_value, Record):
        outputs = {}
        for k in sorted(out_value.members):
            v = out_value.members[k].get(ev)
            if not isinstance(v, Node):
                raise EvaluationError(f"CloneFunction: output '{k}' is a {type_name(v)}, "
                                      "not a node")
            outputs[k] = v
    elif isinstance(out_value, Network):
        outputs = {bs_name(n.name): n for n in out_value.sorted_nodes()
                   if "$" not in n.name and "[" not in n.name}
    else:
        raise EvaluationError(f"CloneFunction: outputNodes must be a node or a record of nodes, "
                              f"not a {type_name(out_value)}")
    mode = _get(ev, cfg, "parameters", "learnable")
    cf = CloneFunction(inputs, outputs, str(mode), expand=ev.nodes.inputs_of)

    def native(ev2, args, named, qpath, location):
        values = [t.get(ev2) for t in args]
        for k, v in enumerate(values):
            if not isinstance(v, Node):
                raise fail(f"argument {k + 1} of the cloned function must be a node, not a "
                           f"{type_name(v)}", location)
        result = cf.call_detached(values, qpath)
        if isinstance(result, Node):
            return result
        return Record({k: Thunk.of(v, join_path(qpath, k)) for k, v in result.items()})

    return Function([f"input_{k}" for k in range(len(inputs))], {}, native=native,
                    name="CloneFunction")


def _tensor_shape(ev, cfg, path, loc):
    return TensorShapeValue(ev.nodes.dims(_get(ev, cfg, "dims")))


def _vector(kind):
    def make(ev, cfg, path, loc):
        from netsurgeon.lang.brainscript.evaluator import flatten

        items = flatten(ev, _get(ev, cfg, "items"))
        if kind == "bool":
            return Array(0, [Thunk.of(bool(v)) for v in items])
        return Array(0, [Thunk.of(float(v)) for v in items])

    return make


def _format(value: Any, ev) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value == math.floor(value) and abs(value) < 1e15 else repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Array):
        return "(" + " : ".join(_format(t.get(ev), ev) for t in value.items) + ")"
    if isinstance(value, Record):
        members = sorted(value.members.items())
        return "[ " + " ; ".join(f"{k} = {_format(t.get(ev), ev)}" for k, t in members) + " ]"
    if isinstance(value, Node):
        return value.name
    return repr(value)


def _string_function(ev, cfg, path, loc):
    what = _get(ev, cfg, "what")
    arg = _get(ev, cfg, "arg")
    if what == "Format":
        how = str(_get(ev, cfg, "how", ""))
        if isinstance(arg, float):
            conv = "d" if arg == math.floor(arg) else "f"
            try:
                return ("%" + how + conv) % (int(arg) if conv == "d" else arg)
            except (TypeError, ValueError):
                return _format(arg, ev)
        if isinstance(arg, str):
            return ("%" + how + "s") % arg if how else arg
        return _format(arg, ev)
    if what == "Chr":
        return chr(int(arg))
    if what == "Replace":
        return str(arg).replace(str(_get(ev, cfg, "replacewhat")), str(_get(ev, cfg, "withwhat")))
    if what == "Substr":
        s = str(arg)
        pos = int(_get(ev, cfg, "pos"))
        n = int(_get(ev, cfg, "chars"))
        if pos < 0:
            pos += len(s)
        if n < 0:  # a negative count leaves that many characters at the end
            n = max(len(s) + n - pos, 0)
        return s[pos:pos + n]
    raise EvaluationError(f"unknown string function '{what}'")


def _numeric_function(ev, cfg, path, loc):
    what = _get(ev, cfg, "what")
    arg = _get(ev, cfg, "arg")
    if what == "Length":
        if isinstance(arg, str):
            return float(len(arg))
        if isinstance(arg, Array):
            if arg.first != 0:
                raise EvaluationError("Length: the array is expected to begin with index 0")
            return float(len(arg.items))
        raise EvaluationError(f"Length needs a string or an array, not a {type_name(arg)}")
    if what == "Floor":
        return float(math.floor(arg))
    if what in ("Mod", "IntDiv"):
        b = _get(ev, cfg, "arg2")
        for v in (arg, b):
            if not isinstance(v, float) or v != math.floor(v):
                raise EvaluationError(f"{what} needs integer arguments")
        a, b = int(arg), int(b)
        if b == 0:
            raise EvaluationError(f"{what}: division by zero")
        q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)  # C truncation
        return float(q) if what == "IntDiv" else float(a - q * b)
    raise EvaluationError(f"unknown numeric function '{what}'")


def _compare_function(ev, cfg, path, loc):
    what = _get(ev, cfg, "what")
    if what == "IsSameObject":
        return _get(ev, cfg, "a") is _get(ev, cfg, "b")
    arg = _get(ev, cfg, "arg")
    if what == "IsArray":
        return isinstance(arg, Array)
    if what == "IsDouble":
        return isinstance(arg, float) and not isinstance(arg, bool)
    if what == "IsBool":
        return isinstance(arg, bool)
    if what == "IsRecord":
        return isinstance(arg, Record)
    raise EvaluationError(f"unknown compare function '{what}'")


def _print(ev, cfg, path, loc):
    value = _get(ev, cfg, "what")
    print(_format(value, ev), file=sys.stderr)
    return value


def _fail(ev, cfg, path, loc):
    raise fail(str(_get(ev, cfg, "what")), loc)


#: name -> (record-like, constructor(ev, cfg, path, location))
RUNTIME_TYPES = {
    "ComputationNode": (True, _computation_node),
    "ComputationNetwork": (True, _computation_network),
    "ComputationNetworkFromFile": (True, _from_file),
    "ComputationNetworkWithEdits": (True, _with_edits),
    "CloneFunctionConfigLambda": (False, _clone_lambda),
    "TensorShape": (False, _tensor_shape),
    "IntVector": (False, _vector("int")),
    "SizeVector": (False, _vector("int")),
    "BoolVector": (False, _vector("bool")),
    "StringFunction": (False, _string_function),
    "NumericFunction": (False, _numeric_function),
    "CompareFunction": (False, _compare_function),
    "PrintAction": (False, _print),
    "FailAction": (False, _fail),
}
