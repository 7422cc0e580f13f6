"""NDL evaluation: the three passes that turn parsed symbols into network nodes (§B.7, §B.8).

* **initial**: every function call gets its computation node, with its full dotted name,
  its scalar arguments read and its options applied; inputs stay unconnected. Macro calls
  bind their formal parameters and evaluate their bodies under ``base.key``.
* **resolve**: inputs are looked up (forward references, references to model nodes by
  full name) and attached in argument order; ``tag`` options add nodes to groups.
* **final**: learnable parameters get their values (automatic seeds 1, 2, 3, ... in this
  order, plus the seed offset).

Traversal uses an explicit stack, so macro nesting never deepens the Python stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import (
    ArgumentError,
    GraphError,
    NetsurgeonError,
    ParseError,
    SourceLocation,
    close_matches,
)
from netsurgeon.graph.passes import initialize_node
from netsurgeon.lang.config import split_array, to_bool, to_float, to_int
from netsurgeon.lang.ndl._macros import NameCounter
from netsurgeon.lang.ndl._symbols import (
    NdlArray,
    NdlCall,
    NdlConst,
    NdlMacroCall,
    NdlOption,
    NdlParam,
    NdlRef,
    Scope,
    join_name,
)
from netsurgeon.ops import Category
from netsurgeon.ops.cntk_random import next_ndl_seed
from netsurgeon.ops.init import RANDOM_KINDS

if TYPE_CHECKING:
    from netsurgeon.graph import Network, Node
    from netsurgeon.ops import Form, OpRegistry, Param

__all__ = ["Evaluator", "SPECIAL_LISTS"]

#: special node lists, in the order CNTK reads them (§B.8)
SPECIAL_LISTS = (
    ("FeatureNodes", "feature"),
    ("LabelNodes", "label"),
    ("CriterionNodes", "criterion"),
    ("EvalNodes", "evaluation"),
    ("OutputNodes", "output"),
    ("CriteriaNodes", "criterion"),
)
_DTYPES = {"": "float32", "float": "float32", "double": "float64", "float16": "float16"}
_DEREF_LIMIT = 100_000


class _Slot:
    """Stands for a node input in ``FunctionSpec.bind``; remembers the argument index."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<input argument {self.index}>"


def slot_params(form: Form, count: int) -> list[Param]:
    """The parameter each of ``count`` positional arguments binds to (as ``bind_positional``)."""
    params = list(form.params)
    variadic = [i for i, p in enumerate(params) if p.kind in ("inputs", "ints")]
    if not variadic:
        return params[:count]
    vi = variadic[0]
    after = len(params) - vi - 1
    middle = count - vi - after
    if middle < 0:
        return params[:count]
    return params[:vi] + [params[vi]] * middle + params[vi + 1:]


class Evaluator:
    """Runs the passes for statements of one script against one network."""

    def __init__(self, network: Network, registry: OpRegistry, counter: NameCounter, *,
                 seed_offset: int = 0, base_dir: Path | None = None) -> None:
        self.network = network
        self.registry = registry
        self.counter = counter
        self.seed_offset = seed_offset
        self.base_dir = base_dir
        self._forms: dict[tuple[int, int], tuple[Any, list[Any]]] = {}
        #: (function, converted arguments and options) -> its recipe: a function's recipe
        #: depends on nothing else, and the chains of one function that big scripts repeat
        #: bind it once
        self._recipes: dict[tuple[Any, ...], Any] = {}
        #: (function, argument count) -> what :meth:`build_now` needs of a call of it whose
        #: arguments are all inputs
        self._quick: dict[tuple[int, int], tuple[Any, ...]] = {}
        self.params = registry.op_set(Category.PARAMETER)
        self.inputs = registry.op_set(Category.INPUT)
        #: connect a node when it is created if every input is an earlier call's node (what
        #: the resolve pass would give it): for whole scripts, where nothing runs between the
        #: passes; in-line NDL leaves it off, so MEL sees nodes connected only when resolved
        self.link_early = False
        #: calls built by :meth:`build_now` whose ``tag=`` options the resolve pass applies
        self.pending_tags: list[NdlCall] = []

    # ---- traversal -------------------------------------------------------------------------------
    def run(self, stmt: Any, pass_name: str) -> None:
        """One pass over one top-level statement (and everything nested in it)."""
        stack: list[tuple[Any, str, SourceLocation | None]] = [(stmt, "", None)]
        while stack:
            sym, base, anchor = stack.pop()
            children: list[tuple[Any, str, SourceLocation | None]] = []
            if isinstance(sym, NdlCall):
                if pass_name == "initial":
                    self.create(sym, base, anchor)
                elif pass_name == "resolve":
                    self.connect(sym)
                else:
                    self.initialize(sym)
                children = [(n, base, anchor) for n in sym.nested]
            elif isinstance(sym, NdlMacroCall):
                if sym.body is None:
                    continue
                if pass_name == "initial" and not sym.bound:
                    self.bind(sym)
                inner = join_name(base, sym.name)
                inner_anchor = anchor
                if sym.macro.standard and inner_anchor is None:
                    inner_anchor = sym.location
                children = [(n, base, anchor) for n in sym.nested]
                children += [(s, inner, inner_anchor) for s in sym.body.statements]
                if pass_name == "resolve":
                    self.apply_macro_tags(sym)
            stack.extend(reversed(children))

    # ---- macro binding ---------------------------------------------------------------------------
    def bind(self, call: NdlMacroCall) -> None:
        macro = call.macro
        body = call.body
        assert body is not None
        params = body.params
        positional = [a for a in call.args if not isinstance(a, NdlOption)]
        if len(positional) < len(params):
            raise ParseError(
                f"Parameter mismatch, {len(positional)} parameters provided, {len(params)} "
                f"expected in call to {macro.name}", location=call.location,
                hint=f"the macro is {macro.signature()}")
        for i, param in enumerate(params):
            arg = call.args[i]
            if isinstance(arg, NdlOption):
                raise ParseError(
                    f"parameter {i} is an optional parameter, but should be a required parameter "
                    f"in call to {macro.name}", location=arg.location,
                    hint=f"put options after the {len(params)} positional arguments of "
                         f"{macro.signature()}")
            param.bound = arg
        extra = [a for a in call.args[len(params):] if not isinstance(a, NdlOption)]
        for arg in extra:
            name = getattr(arg, "name", "")
            if body.get(name) is None:
                raise ParseError(
                    f"Parameter mismatch, {len(positional)} parameters provided, {len(params)} "
                    f"expected in call to {macro.name}",
                    location=getattr(arg, "location", call.location),
                    hint=f"the macro is {macro.signature()}")
            body.table[name.lower()] = arg
        for opt in call.args:
            if isinstance(opt, NdlOption):
                body.table[opt.name.lower()] = opt
        call.bound = True

    # ---- dereferencing ---------------------------------------------------------------------------
    def deref(self, sym: Any, *, network: bool) -> Any:
        """Follow formal parameters and references to a concrete symbol, or (with
        ``network``) to a graph node named by an unresolved reference."""
        for _ in range(_DEREF_LIMIT):
            if isinstance(sym, NdlParam):
                if sym.bound is None:
                    return sym
                sym = sym.bound
                continue
            if isinstance(sym, NdlRef):
                found = sym.scope.find(sym.name)
                if found is sym:
                    found = sym.scope.find(sym.name, skip=sym)
                if found is None or found is sym:
                    if network:
                        node = self.network.get(sym.name)
                        if node is not None:
                            return node
                    return sym
                sym = found
                continue
            return sym
        raise ParseError(f"'{getattr(sym, 'name', sym)}' refers to itself",
                         location=getattr(sym, "location", None))

    def input_node(self, sym: Any, what: str = "input") -> Node:
        """The computation node an argument stands for (node inputs, special lists)."""
        from netsurgeon.graph import Node

        start = sym
        for _ in range(_DEREF_LIMIT):
            d = self.deref(sym, network=True)
            if isinstance(d, Node):
                return d
            if isinstance(d, NdlCall):
                if d.comp is None:
                    raise ParseError(
                        f"'{d.name}' has no node: a call written as a macro argument is not "
                        "evaluated", location=d.location, hint="assign the call to a name first")
                if d.comp.network is not self.network:
                    raise ParseError(f"node '{d.comp.name}' was removed from the network",
                                     location=getattr(start, "location", None))
                return d.comp
            if isinstance(d, NdlMacroCall):
                ret = d.return_symbol()
                if ret is None:
                    raise ParseError(f"macro instance '{d.name}' has no statement to return",
                                     location=d.location)
                sym = ret
                continue
            if isinstance(d, NdlConst):
                raise ParseError(
                    f"the number {d.text} cannot be a node {what}", location=d.location,
                    hint=f"wrap it in a node: Constant({d.text})")
            if isinstance(d, NdlRef):
                raise ParseError(f"Parameter name could not be resolved '{d.name}'",
                                 location=d.location,
                                 hint=close_matches(d.name, self.network.names()))
            if isinstance(d, NdlParam):
                raise ParseError(f"formal parameter '{d.name}' is not bound", location=d.location)
            what_kind = "an array" if isinstance(d, NdlArray) else "an option"
            raise ParseError(
                f"'{getattr(d, 'name', d)}' is {what_kind} and cannot be a node {what}",
                location=getattr(d, "location", None))
        raise ParseError("reference chain too long", location=getattr(start, "location", None))

    def scalar_text(self, sym: Any, what: str, *, text: bool = False) -> str:
        """The text of a scalar argument (a number, or a symbol that ends in one)."""
        d = self.deref(sym, network=False)
        if isinstance(d, NdlConst):
            return d.text
        if text and isinstance(d, (NdlRef, NdlParam)):
            return d.name
        if isinstance(d, (NdlRef, NdlParam)):
            raise ParseError(f"undefined Variable, '{d.name}' found, must be declared before "
                             "first use", location=getattr(sym, "location", None) or d.location,
                             hint=f"{what} must be a number or a name assigned a number")
        raise ParseError(
            f"Scalar expected, '{getattr(d, 'name', d)}' must be a constant or variable that "
            f"resolves to a constant", location=getattr(sym, "location", None),
            hint=f"{what} is a number, not a node")

    # ---- conversions -----------------------------------------------------------------------------
    def convert(self, sym: Any, param: Param, fn_name: str) -> Any:
        kind = param.kind
        what = f"{fn_name} argument '{param.name}'"
        loc = getattr(sym, "location", None)
        if kind == "text":
            return self.scalar_text(sym, what, text=True)
        if kind == "shape":
            d = self.deref(sym, network=False)
            if isinstance(d, NdlArray):
                return tuple(to_int(self.scalar_text(e, what), what, getattr(e, "location", loc))
                             for e in d.elements)
            return to_int(self.scalar_text(sym, what), what, loc)
        if kind == "any":
            d = self.deref(sym, network=False)
            if isinstance(d, NdlArray):
                return tuple(self.scalar_text(e, what, text=True) for e in d.elements)
            return self.scalar_text(sym, what, text=True)
        return self.convert_text(self.scalar_text(sym, what), kind, what, loc)

    @staticmethod
    def convert_text(text: str, kind: str, what: str, loc: SourceLocation | None) -> Any:
        if kind == "int":
            return to_int(text, what, loc)
        if kind == "ints":
            value = to_int(text, what, loc)
            if value < 0:
                raise ParseError(f"{what} must not be negative: {text}", location=loc)
            return value
        if kind == "float":
            return to_float(text, what, loc)
        if kind == "bool":
            return to_bool(text, what, loc)
        return text

    def option_value(self, opt: NdlOption, param: Param, fn_name: str) -> Any:
        """An option's value, converted; a name assigned a number may stand for the number."""
        kind = param.kind
        what = f"option {opt.name} of {fn_name}"
        text = opt.value
        if kind in ("text", "any", "input", "inputs"):
            return text
        if kind in ("shape", "ints") and text[:1] in "({[":
            return tuple(to_int(self._option_scalar(opt, e), what, opt.location)
                         for e in split_array(text))
        try:
            return self.convert_text(text, "int" if kind == "shape" else kind, what, opt.location)
        except ParseError:
            resolved = self._option_scalar(opt, text)
            if resolved == text:
                raise
            return self.convert_text(resolved, "int" if kind == "shape" else kind, what,
                                     opt.location)

    def _option_scalar(self, opt: NdlOption, text: str) -> str:
        found = opt.scope.find(text)
        if found is None:
            return text
        d = self.deref(found, network=False)
        return d.text if isinstance(d, NdlConst) else text

    # ---- initial pass ----------------------------------------------------------------------------
    def create(self, call: NdlCall, base: str, anchor: SourceLocation | None) -> None:
        if call.comp is not None:
            return
        fn = call.fn
        loc = call.location
        name = f"{base}.{call.name}" if base else call.name  # join_name
        if fn.broken:
            raise ParseError(f"{fn.broken}: '{fn.name}' is reserved but CNTK never implemented it",
                             location=loc, node=name)
        positional, cached = self._call_form(call, fn)
        if cached[0] is None:
            raise ParseError(
                f"{fn.name}: {len(positional)} positional arguments given, expected "
                f"{fn.describe_forms()}", location=loc, node=name)
        plan = self._call_plan(call, fn, positional, cached, loc, name)
        self._make(call, plan, name, positional, loc, anchor)

    def _call_form(self, call: NdlCall, fn: Any) -> tuple[Any, tuple[Any, list[Any], Any]]:
        """The call's positional arguments and its (cached) :meth:`_form`."""
        positional = args = call.args
        for a in args:
            if type(a) is NdlOption:
                positional = call.positional
                break
        cached = self._forms.get((id(fn), len(positional)))
        if cached is None:
            cached = self._form(fn, len(positional))
        return positional, cached

    def _call_plan(self, call: NdlCall, fn: Any, positional: Any, cached: tuple,
                   loc: SourceLocation | None, name: str) -> Any:
        """The build plan of a call whose form was found: one recipe shared by every call
        that passes only inputs, else bound to this call's arguments and options."""
        _form, params, inputs_only = cached
        if inputs_only is not None and positional is call.args:
            plan = self._recipes.get(inputs_only)
            if plan is None:
                plan = self._recipes[inputs_only] = self._plan(
                    fn, [_Slot(i) for i in range(len(params))], {}, loc, name)
            return plan
        return self._bound_plan(call, fn, positional, params, loc, name)

    def _form(self, fn: Any, count: int) -> tuple[Any, list[Any], tuple[int, ...] | None]:
        """(form, parameter per positional argument, recipe key if every argument is an
        input) of ``fn`` called with ``count`` positional arguments; cached."""
        form = fn.form_for(count)
        params = slot_params(form, count) if form is not None else []
        # the recipe key of a call whose arguments are all inputs (and no options)
        inputs_only = (id(fn), *range(len(params))) if form is not None and all(
            p.is_input for p in params) else None
        cached = self._forms[(id(fn), count)] = (form, params, inputs_only)
        return cached

    # ---- the three passes at once ----------------------------------------------------------------
    def build_now(self, call: NdlCall, finalize: bool) -> int:
        """What the three passes do to a top-level call, done as soon as it is parsed (whole
        scripts, where nothing runs between the passes; the caller keeps the statement order).

        Returns 2: created, connected and (``finalize``) initialised; 1: created and connected
        (a learnable parameter waits for the final pass, which gives automatic seeds in
        order); 0: nothing done, because the call could fail or needs what is not built yet
        (a forward reference, a name still unresolved): the passes then do it all and report
        any error where they would. Its ``tag=`` options wait in :attr:`pending_tags` for the
        resolve pass.
        """
        fn = call.fn
        args = call.args
        quick = self._quick.get((id(fn), len(args)))
        if quick is not None:
            # a function seen before with as many arguments, all inputs: its prepared plan
            for a in args:
                if type(a) is NdlOption:
                    break
            else:
                op, template, attrs, shape, lrm, dtype, finish = quick
                inputs = _built_inputs(template, args)
                if inputs is None:
                    return 0
                try:
                    node = self.network.add(
                        call.name, op, inputs, attrs=attrs, shape=shape,
                        learning_rate_multiplier=lrm, dtype=dtype, location=call.location)
                except GraphError:
                    return 0
                call.comp = node
                call.input_map = []
                if finalize and finish:
                    call.initialized = True
                    return 2
                return 1
        if fn.broken:
            return 0
        positional, cached = self._call_form(call, fn)
        if cached[0] is None:
            return 0
        name = call.name
        loc = call.location
        try:
            plan = self._call_plan(call, fn, positional, cached, loc, name)
        except NetsurgeonError:
            return 0
        recipe, input_template, attrs, dtype, lrm = plan
        if recipe.extra and recipe.extra.get("auto_inputs"):
            return 0
        tag = recipe.tag
        if tag and not _is_tag(tag):
            return 0
        if cached[2] is not None and positional is args and not tag:  # a recipe of inputs only
            self._quick[(id(fn), len(args))] = (
                recipe.op, input_template, attrs, recipe.shape, lrm, dtype,
                recipe.op not in self.params)
        inputs = _built_inputs(input_template, positional)
        if inputs is None:
            return 0  # an input not built (yet): the resolve pass looks it up
        try:
            node = self.network.add(
                name, recipe.op, inputs, attrs=attrs, shape=recipe.shape,
                learning_rate_multiplier=lrm, dtype=dtype, location=loc)
        except GraphError:
            return 0  # a duplicate name (or an input of that name to reuse): the passes decide
        if tag:
            self.apply_tag(node, tag, loc)
        call.comp = node
        call.input_map = []
        if positional is not args:
            for opt in args:
                if type(opt) is NdlOption and opt.name.lower() == "tag":
                    self.pending_tags.append(call)
                    break
        if finalize and node.op not in self.params:
            call.initialized = True
            return 2
        return 1

    def apply_pending_tags(self) -> None:
        """The ``tag=`` options of calls :meth:`build_now` built (the start of the resolve
        pass, in statement order)."""
        for call in self.pending_tags:
            for opt in call.args:
                if type(opt) is NdlOption and opt.name.lower() == "tag":
                    self.apply_tag(call.comp, opt.value, opt.location)
        self.pending_tags.clear()

    def _bound_plan(self, call: NdlCall, fn: Any, positional: list[Any], params: list[Any],
                    loc: SourceLocation | None, name: str) -> Any:
        """The plan of a call with scalar arguments or options: converted, then looked up."""
        values: list[Any] = []
        signature: list[Any] = [id(fn)]
        for i, (arg, param) in enumerate(zip(positional, params)):
            if param.is_input:
                values.append(_Slot(i))
                signature.append(i)
            else:
                value = self.convert(arg, param, fn.name)
                values.append(value)
                signature.append((type(value), value))
        options: dict[str, Any] = {}
        for opt in call.args:
            if type(opt) is not NdlOption or opt.name.lower() == "tag":
                continue
            param = fn.option(opt.name)
            if param is None:
                _check_unknown_option(fn, opt, name)
                continue  # CNTK ignored options a function does not know
            value = options[opt.name] = self.option_value(opt, param, fn.name)
            signature.append((opt.name, type(value), value))
        try:
            key = tuple(signature)
            plan = self._recipes.get(key)
        except TypeError:  # an unhashable value: bind it every time
            key, plan = None, None
        if plan is None:
            plan = self._plan(fn, values, options, loc, name)
            if key is not None:
                self._recipes[key] = plan
        return plan

    def _make(self, call: NdlCall, plan: Any, name: str, positional: list[Any],
              loc: SourceLocation | None, anchor: SourceLocation | None) -> None:
        """Create the call's node from its plan (see :meth:`_plan`)."""
        recipe, input_template, attrs, dtype, lrm = plan
        if recipe.op in self.inputs:
            existing = self.network.get(name)
            if existing is not None and existing.op == recipe.op:
                call.comp = existing  # CNTK reuses an existing input of that name
                call.input_map = []
                return
        input_map = list(input_template)
        auto = recipe.extra.get("auto_inputs") if recipe.extra else None
        inputs: list[Any] = [None] * len(recipe.inputs) if recipe.inputs else []
        if self.link_early and inputs and not auto:
            early = self._early_inputs(positional, input_map)
            if early is not None:
                inputs, input_map = early, []  # connected: nothing left for the resolve pass
        try:
            node = self.network.add(
                name, recipe.op, inputs, attrs=attrs, shape=recipe.shape,
                learning_rate_multiplier=lrm, dtype=dtype, location=anchor or loc,
            )
        except GraphError as exc:
            raise self._add_error(exc, name, recipe.op, loc) from None
        if auto:
            for index, spec in sorted(auto.items()):
                input_map[index] = self._auto_input(name, spec, anchor or loc)
        call.input_map = input_map
        if recipe.tag:
            self.apply_tag(node, recipe.tag, loc)
        call.comp = node

    def _early_inputs(self, positional: list[Any], input_map: list[Any]) -> list[Any] | None:
        """The node inputs when every argument feeding one is a call whose node exists (what
        :meth:`connect` would find), else None."""
        return _built_inputs(input_map, positional, self.network)

    @staticmethod
    def _plan(fn: Any, values: list[Any], options: dict[str, Any], loc: SourceLocation | None,
              name: str) -> tuple[Any, list[Any], dict[str, Any] | None, str, float]:
        """What ``fn`` called with ``values`` and ``options`` creates: its recipe, the input
        map (argument index per node input, None for inputs to fill later), the attributes,
        element type and learning-rate multiplier (shared by every call with equal values;
        nothing here is changed in place)."""
        try:
            recipe = fn.bind(values, options)
        except ArgumentError as exc:
            text = exc.message if exc.message.startswith(fn.name) else f"{fn.name}: {exc.message}"
            raise ParseError(text, location=loc, node=name, hint=exc.hint) from None
        except NetsurgeonError as exc:
            if loc:
                exc.with_location(loc)
            raise
        input_map: list[Any] = [v.index if isinstance(v, _Slot) else None for v in recipe.inputs]
        auto = recipe.extra.get("auto_inputs") if recipe.extra else None
        if auto:
            input_map.extend([None] * (max(auto) + 1 - len(input_map)))
        attrs = dict(recipe.attrs)
        if recipe.init is not None:
            attrs["init"] = dict(recipe.init)
        precision = str(recipe.extra.get("precision") or "") if recipe.extra else ""
        lrm = 1.0 if recipe.learning_rate_multiplier is None else recipe.learning_rate_multiplier
        return recipe, input_map, attrs or None, _DTYPES.get(precision, "float32"), lrm

    def _auto_input(self, owner: str, spec: dict, loc: SourceLocation | None) -> Node:
        """A node a function asks for besides its arguments (BatchNormalization's
        ``<name>.run_sample_count``: the recipe's ``extra["auto_inputs"]`` gives its name
        suffix, op, shape, multiplier and init), created and initialised at once."""
        name = owner + str(spec["suffix"])
        op = spec["op"]
        init = spec.get("init")
        try:
            node = self.network.add(
                name, op, attrs={"init": dict(init)} if init else None, shape=tuple(spec["shape"]),
                learning_rate_multiplier=float(spec["learning_rate_multiplier"]), location=loc)
        except GraphError as exc:
            raise self._add_error(exc, name, op, loc) from None
        initialize_node(node)
        return node

    def _add_error(self, exc: GraphError, name: str, op: str,
                   loc: SourceLocation | None) -> NetsurgeonError:
        """CNTK's error for a duplicate name; else the graph's (an attribute of the wrong
        kind), located where the call was written."""
        existing = self.network.get(name)
        if existing is not None:
            return ParseError(f"Duplicated name for {op} operation '{name}': a node named "
                              f"'{existing.name}' already exists", location=loc, node=name)
        return exc.with_location(loc) if loc else exc

    # ---- resolve pass ----------------------------------------------------------------------------
    def connect(self, call: NdlCall) -> None:
        node = call.comp
        net = self.network
        if node is None or node.network is not net:
            return
        if call.input_map:
            positional = call.positional
            inputs = []
            for idx in call.input_map:
                if isinstance(idx, int):
                    arg = positional[idx]
                    comp = arg.comp if type(arg) is NdlCall else None
                    # an earlier call's node (the common case), else the general lookup
                    idx = comp if comp is not None and comp.network is net else \
                        self.input_node(arg)
                inputs.append(idx)
            net.set_inputs(node, inputs)
        for opt in call.args:
            if type(opt) is NdlOption and opt.name.lower() == "tag":
                self.apply_tag(node, opt.value, opt.location)

    def apply_macro_tags(self, call: NdlMacroCall) -> None:
        tags = [a for a in call.args if isinstance(a, NdlOption) and a.name.lower() == "tag"]
        if not tags:
            return
        node = self.input_node(call)
        for opt in tags:
            self.apply_tag(node, opt.value, opt.location)

    def apply_tag(self, node: Node, value: str, loc: SourceLocation | None) -> None:
        from netsurgeon.graph import group_name

        if value.lower() == "multiseq":
            return  # defunct in CNTK, ignored
        try:
            group = group_name(value)
        except GraphError as exc:
            raise ParseError(exc.message, location=loc, node=node.name) from exc
        self.network.add_to_group(group, node)
        if group not in node.tags:
            self.network.update(node, tags=node.tags | {group})

    def special_lists(self, scope: Scope, *, require_features: bool,
                      location: SourceLocation | None = None) -> None:
        """Read FeatureNodes, LabelNodes, ... (§B.8) into the network's groups."""
        for name, group in SPECIAL_LISTS:
            sym = scope.get(name)
            if sym is None:
                continue
            d = self.deref(sym, network=False)
            if isinstance(d, NdlArray):
                elements = d.elements
            elif isinstance(d, (NdlCall, NdlMacroCall)):
                elements = [d]
            else:
                raise ParseError(f"Invalid network node definition for '{name}', nonexistant or "
                                 "wrong type", location=getattr(sym, "location", location),
                                 hint=f"write {name}=(node1, node2)")
            for el in elements:
                try:
                    node = self.input_node(el, f"in {name}")
                except ParseError as exc:
                    raise ParseError(
                        f"Invalid node '{getattr(el, 'name', el)}' as a(n) {group} node, "
                        f"nonexistant or wrong type", location=getattr(el, "location", location),
                        hint=exc.message) from exc
                self.network.add_to_group(group, node)
        if require_features and not self.network.group("feature"):
            raise ParseError("Invalid network node definition for 'featureNodes', nonexistant or "
                             "wrong type: the network has no feature node", location=location,
                             hint='tag an input with tag="feature" or list it in '
                                  "FeatureNodes=(...)")

    # ---- final pass ------------------------------------------------------------------------------
    def initialize(self, call: NdlCall) -> None:
        """Give a random init its automatic seed (in this pass's order), resolve a fromFile
        path, and create the value now if the shape is complete (else ``prepare`` does, once
        validation inferred the 0 dimensions)."""
        node = call.comp
        if call.initialized or node is None or node.network is not self.network:
            return
        call.initialized = True
        if node.op not in self.params or node.value is not None:
            return
        init = node.attrs["init"]
        if not isinstance(init, dict):
            return
        init = dict(init)
        if init.get("kind") in RANDOM_KINDS and int(init.get("seed", -1)) < 0:
            # CNTK's process-wide NDL counter (cntk-config-driver.md §9.2); the script's own
            # counter still advances (its repr is part of the session state)
            self.counter.next_seed()
            init["seed"] = next_ndl_seed() + self.seed_offset
        if init.get("kind") == "fromFile":
            init["path"] = self._find_file(str(init.get("path", "")).strip('"'))
        self.network.set_attrs(node, init=init)
        try:
            initialize_node(node)
        except NetsurgeonError as exc:
            if call.location:
                exc.with_location(call.location)  # where the node has none
            raise

    def _find_file(self, path: str) -> str:
        p = Path(path)
        if p.is_absolute() or p.exists() or self.base_dir is None:
            return path
        candidate = self.base_dir / p
        return str(candidate) if candidate.exists() else path


def _is_tag(value: str) -> bool:
    """Whether :meth:`Evaluator.apply_tag` accepts ``value``."""
    from netsurgeon.graph import group_name

    if value.lower() == "multiseq":
        return True
    try:
        group_name(value)
    except GraphError:
        return False
    return True


def _check_unknown_option(fn, opt: NdlOption, node: str | None) -> None:
    """An option the function does not know is ignored, as CNTK did, unless it is close to
    one it knows (``initt=``, ``outputRnk=``): a misspelling is an error saying which."""
    import difflib

    spellings = [(a, o.name) for o in fn.options.values() for a in (o.name, *o.aliases)]
    lowered = {a.lower(): (a, name) for a, name in [*spellings, ("tag", "tag")]}
    close = difflib.get_close_matches(opt.name.lower(), list(lowered), n=3, cutoff=0.8)
    if close:
        best: dict[str, str] = {}  # one spelling per parameter, the closest (outputRank)
        for c in close:
            best.setdefault(lowered[c][1], lowered[c][0])
        names = ", ".join(best.values())
        raise ParseError(f"{fn.name} has no parameter '{opt.name}'", location=opt.location,
                         node=node, hint=f"did you mean: {names}?")


def _built_inputs(template: Any, args: Any, network: Any = None) -> list[Any] | None:
    """The nodes of a recipe's input ``template`` (argument indices, None for an absent
    input) from ``args``; None if one of them is not built yet (or, given ``network``, not
    a node of it)."""
    inputs: list[Any] = []
    for idx in template:
        if idx is None:
            inputs.append(None)
            continue
        arg = args[idx]
        comp = arg.comp if type(arg) is NdlCall else None
        if comp is None or (network is not None and comp.network is not network):
            return None
        inputs.append(comp)
    return inputs
