"""BrainScript evaluator (brainscript.md §3–§4): lazy values, scopes, calls, operators, paths.

Every evaluation carries the expression path that names the nodes it creates (§4.1); paths
are :class:`~.values.LazyPath` objects, made into text only to name a node.

Evaluation runs on an explicit work stack (:mod:`.stack`): :meth:`Evaluator.eval` returns a
value at once, or a generator (*work*) that yields sub-work and thunks to force. Nesting
costs heap, not Python stack, and time and memory grow linearly with the nesting.
Limits, each a one-line EvaluationError: :data:`MAX_DEPTH` pending steps ("nesting too
deep", e.g. an endless recursion), :data:`MAX_STEPS` steps in all (a program that does not
finish), :data:`MAX_NAME_BYTES` of node names. A thunk needed while it is being computed is
a circular definition.
"""

from __future__ import annotations

import math
from types import GeneratorType
from typing import Any

from netsurgeon.errors import EvaluationError, NetsurgeonError, SourceLocation, close_matches
from netsurgeon.graph import Network, Node
from netsurgeon.lang.brainscript.parser import Expr
from netsurgeon.lang.brainscript.stack import Budget, Work
from netsurgeon.lang.brainscript.values import (
    DONE,
    PENDING,
    RUNNING,
    Array,
    Function,
    LazyItems,
    PathLike,
    Record,
    Thunk,
    fail,
    index_path,
    is_integral,
    join_path,
    type_name,
)

__all__ = ["Evaluator", "flatten", "flatten_work", "as_int", "MAX_DEPTH", "MAX_STEPS",
           "MAX_STRING"]

#: pending evaluation steps at once (a 10,000-deep recursion through a library call takes
#: about 100,000); more is reported as "nesting too deep"
MAX_DEPTH = 100_000
#: evaluation steps in all before a program is stopped (CLI: ``netsurgeon bs --max-steps``)
MAX_STEPS = 20_000_000
#: longest string a program may build (``+``, Replace, Format)
MAX_STRING = 16 * 2 ** 20
#: nested returns to the work loop from Python code (a runtime type reading its config)
_MAX_REENTRY = 100
#: pending steps searched for the user's expression that a library-made node belongs to
_LOOKBACK = 256

_GEN = GeneratorType
_WORK = frozenset((GeneratorType, Thunk))  # what eval() may return instead of a value
_LITERALS = frozenset(("d", "s", "b"))

# operator -> the Name in "<Name>Args[i]" (§4.1)
_OP_NAMES = {
    "*": "Times", "/": "Div", ".*": "ElementTimes", "**": "Pow", "%": "Mod", "+": "Plus",
    "-": "Minus", "<": "LT", "==": "Equal", ">": "GT", ">=": "GT", "!=": "NotEqual",
    "<=": "LE", "&&": "And", "||": "Or", ">>": "Before", "<<": "Shift", "with": "With",
}
_ARG_NAMES = {op: (f"{n}Args[0]", f"{n}Args[1]") for op, n in _OP_NAMES.items()}
_COMPARE_NODE = {"<": "Less", "==": "Equal", ">": "Greater", ">=": "GreaterEqual",
                 "!=": "NotEqual", "<=": "LessEqual"}


def _is_user(location: SourceLocation) -> bool:
    """Whether ``location`` is in the user's text (not the library's or the builder's)."""
    file = location.file or ""
    return not file.endswith("cntk.core.bs") and file != "<builder>"


def _suggest(name: str, names) -> str | None:
    """Close matches of a misspelt ``name`` (none for a name too long to be a typo, whose
    comparison would take seconds)."""
    return close_matches(name, set(names)) if len(name) <= 200 else None


def _await(t: Thunk) -> Work:
    """Work: the value of ``t``."""
    return (yield t)


def as_int(value: Any, what: str, location: SourceLocation | None = None) -> int:
    """A Double with an integral value as ``int``; EvaluationError naming ``what`` otherwise."""
    if not is_integral(value):
        raise fail(f"{what} must be an integer, not {type_name(value)} {value!r}", location)
    return int(value)


def flatten_work(value: Any) -> Work:
    """Work flattening nested arrays into a Python list (forcing the elements on the way)."""
    out: list[Any] = []
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Array):
            items = v.items
            for k in range(len(items) - 1, -1, -1):
                t = items[k]
                stack.append(t.value if t.state == DONE else (yield t))
        elif isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        else:
            out.append(v)
    return out


def flatten(ev: Evaluator, value: Any) -> list[Any]:
    """Flatten nested arrays into a Python list, as shape/list consumers do."""
    return ev.drive(flatten_work(value))


def _add_strings(a: str, b: str, location) -> str:
    if len(a) + len(b) > MAX_STRING:
        raise fail(f"a string of {len(a) + len(b):,} characters is longer than the "
                   f"{MAX_STRING:,} allowed", location)
    return a + b


def _arith(op: str, a: float, b: float) -> float:
    """CNTK's Double arithmetic; undefined results are NaN, never a Python exception."""
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b if b != 0 else (math.copysign(math.inf, a) if a else math.nan)
        if op == "%":
            return math.fmod(a, b) if b != 0 else math.nan
        if a == 0 and b < 0:
            return math.inf  # C's pow(0, negative)
        return math.pow(a, b)
    except OverflowError:  # only pow: the sign of the infinite result, as C's pow has it
        odd = b.is_integer() and b % 2 == 1
        return -math.inf if a < 0 and odd else math.inf
    except (ValueError, ZeroDivisionError):
        return math.nan


class Evaluator:
    """Evaluates parse trees; holds the node factory, the runtime-type registry and the
    limits (``max_depth``, ``max_steps``) of one program."""

    def __init__(self, *, seed: int = 1, include_dirs=None, max_depth: int = MAX_DEPTH,
                 max_steps: int | None = MAX_STEPS) -> None:
        from netsurgeon.lang.brainscript.nodes import NodeFactory
        from netsurgeon.lang.brainscript.runtime_types import RUNTIME_TYPES

        self.running: list[Thunk] = []
        self.nodes = NodeFactory(self, seed=seed)
        self.types = RUNTIME_TYPES
        self.include_dirs = list(include_dirs or [])
        self.budget = Budget(max_depth, max_steps, self._too_deep, self._too_long)
        self._reentry = 0
        self._stack: list[Work] = []  # the pending work of the innermost loop

    # ---- errors -----------------------------------------------------------------------
    def circular_error(self, thunk: Thunk) -> EvaluationError:
        chain = []
        for t in reversed(self.running):
            chain.append(str(t.path or t.name or "?"))
            if t is thunk:
                break
        chain.reverse()
        if len(chain) > 8:
            chain = chain[:4] + [f"... {len(chain) - 8} more ..."] + chain[-4:]
        name = str(thunk.path or thunk.name or "?")
        chain.append(name)
        return fail("circular reference: '" + name + "' is needed to compute itself ("
                    + " -> ".join(chain) + ")", thunk.location,
                    hint="break the cycle, or put a PastValue/FutureValue in it")

    @staticmethod
    def _where(stack: list[Work], limit: int | None = None) -> SourceLocation | None:
        """The innermost expression being evaluated (among the last ``limit`` pending steps),
        preferring the user's text to the library's."""
        found = None
        for gen in reversed(stack if limit is None else stack[-limit:]):
            frame = gen.gi_frame
            e = frame.f_locals.get("e") if frame is not None else None
            if isinstance(e, Expr):
                if _is_user(e.location):
                    return e.location
                found = found or e.location
        return found

    def user_location(self, location: SourceLocation | None) -> SourceLocation | None:
        """``location`` if it is in the user's text; else the user's expression being
        evaluated (what a node made by library code, or an error there, belongs to)."""
        if location is not None and _is_user(location):
            return location
        found = self._where(self._stack, _LOOKBACK) if self._stack else None
        return found if found is not None and (location is None or _is_user(found)) \
            else location

    def _too_deep(self, stack: list[Work]) -> EvaluationError:
        return fail(f"BrainScript nesting too deep (more than {self.budget.max_depth:,} pending "
                    "evaluation steps); is there an endless recursion in a function definition?",
                    self._where(stack))

    def _too_long(self, stack: list[Work]) -> EvaluationError:
        return fail(f"evaluation stopped after {self.budget.max_steps:,} steps; the program may "
                    "not terminate (an exponential recursion?)", self._where(stack),
                    hint="raise the limit with 'netsurgeon bs --max-steps N'")

    def charge(self, steps: int, location: SourceLocation | None = None) -> None:
        """Count ``steps`` units of work that are not evaluation steps (array elements)."""
        b = self.budget
        b.steps += steps
        if b.max_steps is not None and b.steps > b.max_steps:
            raise fail(f"evaluation stopped after {b.max_steps:,} steps; the program may not "
                       "terminate", location,
                       hint="raise the limit with 'netsurgeon bs --max-steps N'")

    # ---- the work loop -------------------------------------------------------------------
    def _loop(self, root: Work) -> Any:
        """Run ``root`` to its result. Work yields generators (run next, their result sent
        back) and thunks (forced here: the thunk's state and the chain of running thunks
        are kept by this loop, so a forced thunk costs no generator of its own)."""
        budget = self.budget
        running = self.running
        stack: list[Work] = [root]
        outer, self._stack = self._stack, stack
        owners: list[Thunk | None] = [None]  # the thunk each pending generator computes
        budget.depth += 1
        send: Any = None
        error: BaseException | None = None
        try:
            while True:
                gen = stack[-1]
                try:
                    if error is None:
                        item = gen.send(send)
                    else:
                        exc, error = error, None
                        item = gen.throw(exc)
                except StopIteration as stop:
                    stack.pop()
                    budget.depth -= 1
                    send = stop.value
                    t = owners.pop()
                    if t is not None:
                        running.pop()
                        t.value, t.state, t.expr, t.scope, t.fn = send, DONE, None, None, None
                    if not stack:
                        return send
                    continue
                except BaseException as exc:
                    if isinstance(exc, NetsurgeonError) and exc.location is None:
                        exc.with_location(self._where(stack))  # e.g. from Python helpers
                    stack.pop()
                    budget.depth -= 1
                    t = owners.pop()
                    if t is not None:
                        running.pop()
                        t.state = PENDING
                    if not stack:
                        raise
                    error = exc
                    continue
                owner = None
                if item.__class__ is Thunk:
                    if item.state == DONE:
                        send = item.value
                        continue
                    if item.state == RUNNING:
                        error = self.circular_error(item)
                        continue
                    owner = item
                    item.state = RUNNING
                    running.append(item)
                    try:
                        work = item.fn() if item.fn is not None else \
                            self.eval(item.expr, item.scope, item.path)
                    except Exception as exc:
                        if isinstance(exc, NetsurgeonError) and exc.location is None:
                            exc.with_location(self._where(stack))
                        running.pop()
                        item.state = PENDING
                        error = exc
                        continue
                    if work.__class__ is Thunk:  # the value is another thunk's (a = b)
                        work = _await(work)
                    elif work.__class__ is not _GEN:
                        running.pop()
                        item.value, item.state = work, DONE
                        item.expr = item.scope = item.fn = None
                        send = work
                        continue
                    item = work
                elif item.__class__ is not _GEN:
                    error = TypeError(f"evaluator work yielded {item!r}")
                    continue
                if budget.depth >= budget.max_depth:
                    item.close()
                    if owner is not None:
                        running.pop()
                        owner.state = PENDING
                    error = self._too_deep(stack)
                    continue
                budget.steps += 1
                if budget.max_steps is not None and budget.steps > budget.max_steps:
                    item.close()
                    if owner is not None:
                        running.pop()
                        owner.state = PENDING
                    error = self._too_long(stack)
                    continue
                stack.append(item)
                owners.append(owner)
                budget.depth += 1
                send = None
        finally:
            self._stack = outer
            # only after an interruption outside the work (e.g. KeyboardInterrupt)
            while stack:
                stack.pop().close()
                budget.depth -= 1
                if owners.pop() is not None:
                    running.pop()

    def drive(self, work: Any) -> Any:
        """Run ``work`` (a value is returned as it is) to its result, from Python code."""
        if work.__class__ not in _WORK:
            return work
        if work.__class__ is Thunk:
            if work.state == DONE:
                return work.value
            work = _await(work)
        if self._reentry >= _MAX_REENTRY:
            work.close()
            raise fail(f"BrainScript nesting too deep (more than {_MAX_REENTRY} nested runtime "
                       "objects, e.g. networks inside networks)")
        self._reentry += 1
        try:
            return self._loop(work)
        except RecursionError:
            raise fail("BrainScript nesting too deep for the Python stack") from None
        finally:
            self._reentry -= 1

    def run(self, fn):
        """Run ``fn()`` and, if it returns work, that work."""
        return self.drive(fn())

    def force(self, thunk: Thunk) -> Any:
        """The value of ``thunk``, computed now if needed."""
        return self.drive(thunk)

    def evaluate(self, e: Expr, scope: Record, path: PathLike) -> Any:
        """The value of ``e`` in ``scope`` (from Python code)."""
        return self.drive(self.eval(e, scope, path))

    # ---- the evaluator -----------------------------------------------------------------
    def eval(self, e: Expr, scope: Record, path: PathLike) -> Any:
        """The value of ``e``, or the work computing it."""
        op = e.op
        if op in _LITERALS:
            return e.value
        if op == "id":
            t = scope.find(e.id)
            if t is None:
                raise fail(f"unknown identifier '{e.id}'", e.location,
                           hint=_suggest(e.id, scope.visible_names()))
            return t.value if t.state == DONE else t
        if op == "[]":
            rec = Record(parent=scope, location=e.location)
            for name, m in e.named.items():
                rec.members[name] = Thunk(m, rec, join_path(path, name), name=name)
            return rec
        if op == ":":
            return Array(0, [Thunk(a, scope, index_path(path, i)) for i, a in enumerate(e.args)])
        if op == "=>":
            plist = e.args[0]
            defaults = {n: Thunk(d, scope, join_path(path, n), name=n)
                        for n, d in plist.named.items()}
            return Function([a.id for a in plist.args], defaults, scope=scope, body_expr=e.args[1],
                            name=path or "lambda")
        if op == "(" or op == "{":
            return self._call_expr(e, scope, path)
        if op == ".":
            return self._member_expr(e, scope, path)
        if op == "[":
            return self._index_expr(e, scope, path)
        if op == "if":
            return self._if(e, scope, path)
        if op == "array":
            return self._array(e, scope, path)
        if op == "new":
            return self._new(e, scope, path)
        if op in ("+(", "-(", "!("):
            return self._unary(e, scope, path)
        if op == "with":
            raise fail("'with' is not implemented (CNTK never implemented it either)", e.location)
        return self._binary(e, scope, path)

    def _new(self, e: Expr, scope: Record, path: PathLike) -> Work:
        entry = self.types.get(e.id)
        if entry is None:
            raise fail(f"unknown runtime type '{e.id}'", e.location,
                       hint=close_matches(e.id, self.types))
        record_like, ctor = entry
        cfg = self.eval(e.args[0], scope, "" if record_like else path)
        if cfg.__class__ in _WORK:
            cfg = yield cfg
        if not isinstance(cfg, Record):
            raise fail(f"'new {e.id}' needs a record, not a {type_name(cfg)}", e.location)
        try:
            v = ctor(self, cfg, path, e.location)
            if v.__class__ in _WORK:
                v = yield v
        except EvaluationError:
            raise
        except NetsurgeonError as exc:
            if e.location.file == "<builder>":
                raise  # the injected program line says nothing to the user
            raise exc.with_location(e.location) from None
        return v

    # ---- calls ---------------------------------------------------------------------------
    def _call_expr(self, e: Expr, scope: Record, path: PathLike) -> Work:
        fn = self.eval(e.args[0], scope, path)
        if fn.__class__ in _WORK:
            fn = yield fn
        if not isinstance(fn, Function):
            raise fail(f"cannot call a {type_name(fn)}: it is not a function", e.location)
        alist = e.args[1]
        if len(alist.args) != len(fn.params):
            raise fail(f"function expects {len(fn.params)} positional parameters, "
                       f"{len(alist.args)} were provided", e.location,
                       hint="parameters: ("
                       + ", ".join(fn.params + [k + "=…" for k in fn.defaults]) + ")")
        args = [Thunk(a, scope, join_path(path, p), name=p) for a, p in zip(alist.args, fn.params)]
        named = {}
        for n, a in alist.named.items():
            if n not in fn.defaults:
                raise fail(f"function does not have an optional argument '{n}'", a.location,
                           hint=close_matches(n, fn.defaults) or (
                               f"optional arguments: {', '.join(fn.defaults) or 'none'}"))
            named[n] = Thunk(a, scope, join_path(path, n), name=n)
        v = self.apply(fn, args, named, path, e.location)
        if v.__class__ in _WORK:
            v = yield v
        return v

    def apply(self, fn: Function, args: list[Thunk], named: dict[str, Thunk], path: PathLike,
              location: SourceLocation | None = None) -> Any:
        """Call ``fn`` with argument thunks: the value, or the work computing it."""
        if fn.native is not None:
            return self._native(fn, args, named, path, location)
        inner = Record(parent=fn.scope, location=location)
        for p, t in zip(fn.params, args):
            inner.members[p] = t
        for n, d in fn.defaults.items():
            inner.members[n] = named.get(n, d)
        return self.eval(fn.body_expr, inner, path)

    def _native(self, fn: Function, args, named, path, location) -> Work:
        try:
            v = fn.native(self, args, named, path, location)
            if v.__class__ in _WORK:
                v = yield v
        except EvaluationError:
            raise
        except NetsurgeonError as exc:
            if location is None:
                raise
            raise exc.with_location(location) from None
        return v

    def call(self, fn: Any, values: list[Any], path: PathLike, location=None) -> Any:
        """Call a function with evaluated positional arguments: the value, or the work."""
        if not isinstance(fn, Function):
            raise fail(f"expected a function, got a {type_name(fn)}", location)
        if len(values) != len(fn.params):
            raise fail(f"function expects {len(fn.params)} positional parameters, "
                       f"{len(values)} were provided", location)
        return self.apply(fn, [Thunk.of(v, join_path(path, p)) for v, p in zip(values, fn.params)],
                          {}, path, location)

    def call_value(self, fn: Any, values: list[Any], path: PathLike, location=None) -> Any:
        """:meth:`call`, run to its value (from Python code)."""
        return self.drive(self.call(fn, values, path, location))

    # ---- member access and indexing ------------------------------------------------------------
    def member(self, value: Any, name: str, location: SourceLocation | None) -> Any:
        """``value.name``: the value, or the work computing it."""
        if isinstance(value, Record):
            t = value.find(name)
            if t is None:
                raise fail(f"unknown member '{name}'", location,
                           hint=_suggest(name, value.members) or
                           f"the record has: {', '.join(sorted(value.members)) or 'no members'}")
            return t.value if t.state == DONE else t
        if isinstance(value, Node):
            from netsurgeon.lang.brainscript.nodes import node_member

            return node_member(self, value, name, location)
        if isinstance(value, Network):
            from netsurgeon.lang.brainscript.network import network_member

            return network_member(value, name, location)
        raise fail(f"cannot read member '{name}' of a {type_name(value)}", location)

    def _member_expr(self, e: Expr, scope: Record, path: PathLike) -> Work:
        v = self.eval(e.args[0], scope, path)
        if v.__class__ in _WORK:
            v = yield v
        v = self.member(v, e.id, e.location)
        if v.__class__ in _WORK:
            v = yield v
        return v

    def index(self, arr: Any, idx: Any, location: SourceLocation | None) -> Thunk:
        """The thunk of ``arr[idx]``."""
        if not isinstance(arr, Array):
            raise fail(f"cannot index a {type_name(arr)}; only arrays can be indexed", location)
        i = as_int(idx, "an array index", location)
        k = i - arr.first
        if k < 0 or k >= len(arr.items):
            raise fail(f"index {i} out of bounds [{arr.first}..{arr.first + len(arr.items) - 1}]",
                       location)
        return arr.items[k]

    def _index_expr(self, e: Expr, scope: Record, path: PathLike) -> Work:
        arr = self.eval(e.args[0], scope, join_path(path, "_vector"))
        if arr.__class__ in _WORK:
            arr = yield arr
        idx = self.eval(e.args[1], scope, join_path(path, "_index"))
        if idx.__class__ in _WORK:
            idx = yield idx
        t = self.index(arr, idx, e.location)
        return t.value if t.state == DONE else (yield t)

    # ---- if / array --------------------------------------------------------------------------
    def _if(self, e: Expr, scope: Record, path: PathLike) -> Work:
        cond = self.eval(e.args[0], scope, join_path(path, "if"))
        if cond.__class__ in _WORK:
            cond = yield cond
        if isinstance(cond, bool):
            v = self.eval(e.args[1] if cond else e.args[2], scope, path)
            if v.__class__ in _WORK:
                v = yield v
            return v
        if isinstance(cond, Node):
            t = self.eval(e.args[1], scope, join_path(path, "then"))
            if t.__class__ in _WORK:
                t = yield t
            f = self.eval(e.args[2], scope, join_path(path, "else"))
            if f.__class__ in _WORK:
                f = yield f
            ins = []
            for v, p in ((t, "then"), (f, "else")):
                if isinstance(v, bool):
                    raise fail("a branch of a node-valued 'if' must be a node or a number, "
                               "not a Bool", e.location)
                ins.append(self.nodes.as_node(v, join_path(path, p), e.location))
            return self.nodes.make("If", [cond] + ins, name=path, location=e.location)
        raise fail(f"the condition of 'if' must be a Bool, not a {type_name(cond)}",
                   e.args[0].location)

    def _array(self, e: Expr, scope: Record, path: PathLike) -> Work:
        first = self.eval(e.args[0], scope, join_path(path, "array_first"))
        if first.__class__ in _WORK:
            first = yield first
        last = self.eval(e.args[1], scope, join_path(path, "array_last"))
        if last.__class__ in _WORK:
            last = yield last
        first = as_int(first, "the first index of array[a..b]", e.location)
        last = as_int(last, "the last index of array[a..b]", e.location)
        fn = self.eval(e.args[2], scope, path)
        if fn.__class__ in _WORK:
            fn = yield fn
        if not isinstance(fn, Function) or len(fn.params) != 1:
            raise fail("the initializer of array[a..b](f) must be a function of one parameter",
                       e.args[2].location)
        loc = e.location

        def element(k: int) -> Thunk:  # made when first read (a long range costs nothing)
            self.charge(1, loc)
            i = first + k
            p = index_path(path, i) if path else ""
            return Thunk(None, None, p, fn=lambda: self.call(fn, [float(i)], p, loc))

        return Array(first, LazyItems(element, max(last - first + 1, 0)))

    # ---- operators ---------------------------------------------------------------------------
    def _unary(self, e: Expr, scope: Record, path: PathLike) -> Work:
        op = e.op[0]
        sub = join_path(path, "_negate") if op == "-" else (
            path if op == "+" else join_path(path, "_not"))
        v = self.eval(e.args[0], scope, sub)
        if v.__class__ in _WORK:
            v = yield v
        if op == "-":
            if isinstance(v, float):
                return -v
            if isinstance(v, Node):
                return self.nodes.make("Negate", [v], name=path, location=e.location)
        elif op == "+":
            if isinstance(v, (float, Node)) and not isinstance(v, bool):
                return v
        else:
            if isinstance(v, bool):
                return not v
            if isinstance(v, Node):
                one = self.nodes.constant(1.0, path, infix=True)  # named Q, as §1.2
                return self.nodes.make("Minus", [one, v], name=path, location=e.location)
        raise fail(f"unary '{op}' cannot be applied to a {type_name(v)}", e.location)

    def _binary(self, e: Expr, scope: Record, path: PathLike) -> Work:
        op = e.op
        names = _ARG_NAMES.get(op)
        if names is None:
            raise fail(f"unknown operator '{op}'", e.location)
        lp, rp = join_path(path, names[0]), join_path(path, names[1])
        a = self.eval(e.args[0], scope, lp)
        if a.__class__ in _WORK:
            a = yield a
        b = self.eval(e.args[1], scope, rp)
        if b.__class__ in _WORK:
            b = yield b
        loc = e.location
        if isinstance(a, Node) or isinstance(b, Node):
            return self.node_op(op, a, b, lp, rp, path, loc)
        ta, tb = type_name(a), type_name(b)
        if ta == tb == "Double" and op in ("+", "-", "*", "/", "%", "**"):
            return _arith(op, a, b)
        if ta == tb and ta in ("Double", "String", "Bool") and op in _COMPARE_NODE:
            return {"<": a < b, "==": a == b, ">": a > b, ">=": a >= b, "!=": a != b,
                    "<=": a <= b}[op]
        if ta == tb == "String" and op == "+":
            return _add_strings(a, b, loc)
        if ta == tb == "Bool" and op in ("&&", "||"):
            return (a and b) if op == "&&" else (a or b)
        if op == ">>" and isinstance(a, Function) and isinstance(b, Function):
            return self.compose(a, b, loc)
        if op == "<<" and isinstance(a, Array) and ta == "array" and tb == "Double":
            n = as_int(b, "the shift count of '<<'", loc)
            if a.first != 0:
                raise fail("'<<' needs an array that begins with index 0", loc)
            if n < 0:
                raise fail(f"the shift count of '<<' must not be negative, not {n}", loc)
            return Array(0, a.items[n:])
        if op == ".*" and ta == tb == "Double":
            raise fail("'.*' cannot be applied to numbers; use '*'", loc)
        raise fail(f"operator '{op}' cannot be applied to a {ta} and a {tb}", loc)

    def compose(self, f: Function, g: Function, loc) -> Function:
        """``f >> g``: a function applying ``f``, then ``g`` to its result."""
        def native(ev, args, named, path, location):
            inner = ev.apply(f, args, named, path, location)
            if inner.__class__ in _WORK:
                inner = yield inner
            v = ev.call(g, [inner], path, location)
            if v.__class__ in _WORK:
                v = yield v
            return v

        return Function(list(f.params), dict(f.defaults), native=native, name="composition")

    def node_op(self, op: str, a: Any, b: Any, lp: PathLike, rp: PathLike, path: PathLike,
                loc) -> Node:
        """An infix operator with a node operand. A number operand becomes a [1] constant
        named like the operator expression itself (bs-library.md §1.2): the operator node is
        ``path`` and so is the constant, which assembly then renames ``_path``."""
        nf = self.nodes

        def node(v: Any) -> Node:
            return nf.as_node(v, path, loc, infix=True)

        if op == "&&":
            if a is False or b is False:
                return a
            if isinstance(a, float) or isinstance(b, float):
                raise fail("'&&' cannot mix a node with a number", loc)
            return nf.make("ElementTimes", [node(a), node(b)],
                           name=path, location=loc)
        if op == "||":
            if a is True or b is True:
                return a
            raise fail("'||' on nodes is not supported", loc)
        for v in (a, b):
            if isinstance(v, bool):
                raise fail(f"operator '{op}' is not applicable to type Bool", loc)
            if not isinstance(v, (float, Node)):
                raise fail(f"operator '{op}' cannot be applied to a {type_name(v)} and a node", loc)
        if op == "+":
            return nf.make("Plus", [node(a), node(b)], name=path,
                           location=loc)
        if op == "-":
            return nf.make("Minus", [node(a), node(b)], name=path,
                           location=loc)
        if op == "*":
            if isinstance(a, Node) and isinstance(b, Node):
                return nf.make("Times", [a, b], name=path, location=loc)
            return nf.make("ElementTimes", [node(a), node(b)],
                           name=path, location=loc)
        if op == ".*":
            return nf.make("ElementTimes", [node(a), node(b)],
                           name=path, location=loc)
        if op == "/":
            if isinstance(a, float):
                if a != 1.0:
                    raise fail("a number divided by a node must have numerator 1 (1/x)", loc)
                return nf.make("Reciprocal", [b], name=path, location=loc)
            if isinstance(b, float):
                inv = 1.0 / b if b != 0 else math.copysign(math.inf, b)
                return nf.make("ElementTimes", [a, nf.constant(inv, path, infix=True)],
                               name=path, location=loc)
            raise fail("a node cannot be divided by a node; use ElementDivide", loc)
        if op in _COMPARE_NODE:
            return nf.make(_COMPARE_NODE[op], [node(a), node(b)],
                           name=path, location=loc)
        raise fail(f"operator '{op}' is not implemented for nodes", loc)
