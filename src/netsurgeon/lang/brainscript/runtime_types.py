"""The C++ runtime types ``new T [...]`` can create (brainscript.md §3.8–§3.9, §5).

Each constructor reads its parameters by name through the scope chain of the record, as
CNTK's C++ constructors did, so library wrappers forward their parameters with ``[ ]``.
Constructors are evaluator work (generators, see :mod:`.evaluator`): they yield the thunks
they read, so a chain of 10,000 nested ``new`` objects needs no Python recursion.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network, Node
from netsurgeon.lang.brainscript.evaluator import MAX_STRING, flatten_work
from netsurgeon.lang.brainscript.nodes import TensorShapeValue
from netsurgeon.lang.brainscript.values import (
    DONE,
    Array,
    Function,
    Record,
    Thunk,
    fail,
    is_integral,
    join_path,
    type_name,
)

__all__ = ["RUNTIME_TYPES"]

_NO_DEFAULT = object()
#: the largest width or precision a Format spec may ask for
_MAX_FORMAT_WIDTH = 10_000


def _get(cfg: Record, name: str, default: Any = _NO_DEFAULT):
    """Work: the value of config parameter ``name`` (found through the scope chain)."""
    t = cfg.find(name)
    if t is None:
        if default is not _NO_DEFAULT:
            return default
        raise EvaluationError(f"required parameter '{name}' not found")
    if t.state == DONE:
        return t.value
    return (yield t)


def _computation_node(ev, cfg, path, loc):
    yield from ev.nodes.prefetch(cfg)
    return ev.nodes.from_config(cfg, path, loc)


def _computation_network(ev, cfg, path, loc):
    from netsurgeon.lang.brainscript.network import assemble

    return (yield assemble(ev, cfg, path, loc))


def _from_file(ev, cfg, path, loc):
    from netsurgeon.lang.brainscript.network import load_network

    name = yield from _get(cfg, "pathName")
    if not isinstance(name, str):
        raise EvaluationError("BS.Network.Load needs a path string")
    precision = yield from _get(cfg, "precision", "float")
    if precision not in ("float", "double"):
        raise EvaluationError("BS.Network.Load: precision must be 'float' or 'double', not "
                              f"{precision!r}")
    return load_network(name)


def _with_edits(ev, cfg, path, loc):
    from netsurgeon.lang.brainscript.network import edit_network

    model = yield from _get(cfg, "inputModel")
    if not isinstance(model, Network):
        raise EvaluationError(f"BS.Network.Edit needs a network, not a {type_name(model)}")
    fns = yield flatten_work((yield from _get(cfg, "editFunctions")))
    for f in fns:
        if not isinstance(f, Function) or len(f.params) != 1:
            raise EvaluationError("BS.Network.Edit: every edit function must take one node")
    extra = yield flatten_work((yield from _get(cfg, "additionalRoots", Array(0, []))))
    roots = [n for n in extra if isinstance(n, Node)]
    return edit_network(ev, model, fns, roots, path)


def _clone_lambda(ev, cfg, path, loc):
    from netsurgeon.lang.brainscript.clone import CloneFunction
    from netsurgeon.lang.brainscript.network import bs_name

    inputs = yield flatten_work((yield from _get(cfg, "inputNodes")))
    for i in inputs:
        if not isinstance(i, Node):
            raise EvaluationError(f"CloneFunction: inputNodes must be nodes, not a {type_name(i)}")
    out_value = yield from _get(cfg, "outputNodes")
    if isinstance(out_value, Node):
        outputs: Any = out_value
    elif isinstance(out_value, Record):
        outputs = {}
        for k in sorted(out_value.members):
            t = out_value.members[k]
            v = t.value if t.state == DONE else (yield t)
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
    mode = yield from _get(cfg, "parameters", "learnable")
    cf = CloneFunction(inputs, outputs, str(mode), expand=ev.nodes.inputs_of)

    def native(ev2, args, named, qpath, location):
        values = []
        for t in args:
            values.append(t.value if t.state == DONE else (yield t))
        for k, v in enumerate(values):
            if not isinstance(v, Node):
                raise fail(f"argument {k + 1} of the cloned function must be a node, not a "
                           f"{type_name(v)}", location)
        result = cf.call_detached(values, str(qpath))
        if isinstance(result, Node):
            return result
        return Record({k: Thunk.of(v, join_path(qpath, k)) for k, v in result.items()})

    return Function([f"input_{k}" for k in range(len(inputs))], {}, native=native,
                    name="CloneFunction")


def _tensor_shape(ev, cfg, path, loc):
    dims = yield flatten_work((yield from _get(cfg, "dims")))
    return TensorShapeValue(ev.nodes.dims(dims))


def _vector(kind):
    def make(ev, cfg, path, loc):
        items = yield flatten_work((yield from _get(cfg, "items")))
        if kind == "bool":
            return Array(0, [Thunk.of(bool(v)) for v in items])
        for v in items:
            if not isinstance(v, float):
                raise EvaluationError(f"the items of an IntVector must be numbers, not a "
                                      f"{type_name(v)}")
        return Array(0, [Thunk.of(float(v)) for v in items])

    return make


def _format_double(value: float) -> str:
    if is_integral(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _format(value: Any):
    """Work: the text of a value (nested arrays and records, iteratively, at most
    :data:`MAX_STRING` characters)."""
    out: list[str] = []
    size = 0
    todo: list[Any] = [("v", value)]
    while todo:
        kind, item = todo.pop()
        if kind == "t":
            item = item.value if item.state == DONE else (yield item)
            kind = "v"
        if kind == "s":
            text = item
        elif isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, float):
            text = _format_double(item)
        elif isinstance(item, str):
            text = item
        elif isinstance(item, Array):
            parts: list[Any] = [("s", "(")]
            for k, t in enumerate(item.items):
                if k:
                    parts.append(("s", " : "))
                parts.append(("t", t))
                if len(parts) > MAX_STRING:
                    break
            parts.append(("s", ")"))
            todo.extend(reversed(parts))
            continue
        elif isinstance(item, Record):
            parts = [("s", "[ ")]
            for k, (name, t) in enumerate(sorted(item.members.items())):
                parts += [("s", (" ; " if k else "") + f"{name} = "), ("t", t)]
            parts.append(("s", " ]"))
            todo.extend(reversed(parts))
            continue
        elif isinstance(item, Node):
            text = item.name
        else:
            text = repr(item)
        size += len(text)
        if size > MAX_STRING:
            raise EvaluationError(f"the text of the value is longer than {MAX_STRING:,} "
                                  "characters")
        out.append(text)
    return "".join(out)


def _int(value: Any, what: str) -> int:
    if not is_integral(value):
        raise EvaluationError(f"{what} must be an integer, not {type_name(value)} {value!r}")
    return int(value)


def _check_spec(how: str) -> None:
    for number in re.findall(r"\d+", how):
        if len(number) > 5 or int(number) > _MAX_FORMAT_WIDTH:
            raise EvaluationError(f"Format: width or precision {number} is larger than "
                                  f"{_MAX_FORMAT_WIDTH}")


def _string_function(ev, cfg, path, loc):
    what = yield from _get(cfg, "what")
    arg = yield from _get(cfg, "arg")
    if what == "Format":
        how = str((yield from _get(cfg, "how", "")))
        _check_spec(how)
        if isinstance(arg, float) and not isinstance(arg, bool):
            integral = is_integral(arg)
            try:
                return ("%" + how + ("d" if integral else "f")) % (int(arg) if integral else arg)
            except (TypeError, ValueError, OverflowError, KeyError):
                return _format_double(arg)
        if isinstance(arg, str):
            try:
                return ("%" + how + "s") % arg if how else arg
            except (TypeError, ValueError, OverflowError, KeyError):
                return arg
        return (yield _format(arg))
    if what == "Chr":
        code = _int(arg, "Chr's argument")
        if not 0 <= code <= sys.maxunicode:
            raise EvaluationError(f"Chr: {code} is not a character code (0..{sys.maxunicode})")
        return chr(code)
    if what == "Replace":
        s, old = str(arg), str((yield from _get(cfg, "replacewhat")))
        new = str((yield from _get(cfg, "withwhat")))
        grow = (s.count(old) if old else len(s) + 1) * (len(new) - len(old))
        if len(s) + grow > MAX_STRING:
            raise EvaluationError(f"Replace: the result would be longer than {MAX_STRING:,} "
                                  "characters")
        return s.replace(old, new)
    if what == "Substr":
        s = str(arg)
        pos = _int((yield from _get(cfg, "pos")), "Substr's pos")
        n = _int((yield from _get(cfg, "chars")), "Substr's chars")
        if pos < 0:
            pos += len(s)
        pos = max(pos, 0)
        if n < 0:  # a negative count leaves that many characters at the end
            n = max(len(s) + n - pos, 0)
        return s[pos:pos + n]
    raise EvaluationError(f"unknown string function '{what}'")


def _numeric_function(ev, cfg, path, loc):
    what = yield from _get(cfg, "what")
    arg = yield from _get(cfg, "arg")
    if what == "Length":
        if isinstance(arg, str):
            return float(len(arg))
        if isinstance(arg, Array):
            if arg.first != 0:
                raise EvaluationError("Length: the array is expected to begin with index 0")
            return float(len(arg.items))
        raise EvaluationError(f"Length needs a string or an array, not a {type_name(arg)}")
    if what == "Floor":
        if isinstance(arg, bool) or not isinstance(arg, float):
            raise EvaluationError(f"Floor needs a number, not a {type_name(arg)}")
        return float(math.floor(arg)) if math.isfinite(arg) else arg
    if what in ("Mod", "IntDiv"):
        b = yield from _get(cfg, "arg2")
        for v in (arg, b):
            if not is_integral(v):
                raise EvaluationError(f"{what} needs integer arguments")
        a, b = int(arg), int(b)
        if b == 0:
            raise EvaluationError(f"{what}: division by zero")
        q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)  # C truncation
        return float(q) if what == "IntDiv" else float(a - q * b)
    raise EvaluationError(f"unknown numeric function '{what}'")


def _compare_function(ev, cfg, path, loc):
    what = yield from _get(cfg, "what")
    if what == "IsSameObject":
        a = yield from _get(cfg, "a")
        return a is (yield from _get(cfg, "b"))
    arg = yield from _get(cfg, "arg")
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
    value = yield from _get(cfg, "what")
    print((yield _format(value)), file=sys.stderr)
    return value


def _fail(ev, cfg, path, loc):
    what = yield from _get(cfg, "what")
    raise fail(what if isinstance(what, str) else (yield _format(what)), loc)


#: name -> (record-like, constructor(ev, cfg, path, location) -> value or work)
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
