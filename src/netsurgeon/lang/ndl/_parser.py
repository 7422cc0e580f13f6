"""The NDL statement parser (ndl-mel.md §B.2, §B.4–§B.6).

Records come from the config tokenizer (``;`` as the extra separator). Each is an assignment
``key = value``, a macro definition ``Name(params)`` followed by its body record, or (in
one-line macro bodies and MEL in-line NDL) a nameless call.

Three modes reproduce CNTK's numbering of generated names exactly:

* ``normal``: top-level text. Calls, macro calls, numbers and arrays each use up one
  ``unnamedN`` number when created; a macro call copies the macro body at once.
* ``define``: a macro body at definition time: numbered the same way, but macro calls are
  not expanded.
* ``copy``: a macro instance re-running the body templates: statement-level nodes are
  copies (no new numbers, nameless ones keep their definition-time name), while every
  number, call and array inside an argument list is new and numbered.

Nesting is bounded (``MAX_DEPTH`` brackets inside one statement, ``MAX_DEPTH`` macro levels)
so no input can exhaust the Python stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import GraphError, ParseError, SourceLocation, close_matches
from netsurgeon.lang.config import (
    OPEN_BRACES,
    Record,
    SourceText,
    Tokenizer,
    find_braces,
    first_of,
    split_array_records,
    strtod,
    unquote,
)
from netsurgeon.lang.ndl._macros import MacroDef, MacroTable, NameCounter, StmtTemplate
from netsurgeon.lang.ndl._symbols import (
    NdlArray,
    NdlCall,
    NdlConst,
    NdlMacroCall,
    NdlOption,
    NdlParam,
    NdlRef,
    Scope,
    Sym,
)

if TYPE_CHECKING:
    from netsurgeon.ops import FunctionSpec, OpRegistry

__all__ = ["Parser", "MAX_DEPTH"]

MAX_DEPTH = 60

#: the common statement ``name = Function(arg, arg, option=value)`` on one line, with plain
#: arguments (no brackets, quotes, repeats, ``:`` or variables, and none of the characters
#: that become a list's own separator right after its ``(``): parsed in one step
_SIMPLE_CALL = re.compile(
    r"[ \t,\r\n;]*([A-Za-z_]\w*)[ \t]*=[ \t]*([A-Za-z_]\w*)[ \t]*"
    r"\((?![)`~!@$%^&*_\-+|:;,?.])([^()\[\]{}\"'\r\n;:*#$`]*)\)[ \t]*(?=[,\r\n;]|\Z)")


class Parser:
    """Parses NDL blocks into a :class:`Scope`, expanding macro calls into instance scopes."""

    def __init__(self, macros: MacroTable, counter: NameCounter, registry: OpRegistry, *,
                 strict: bool = True, standard: bool = False) -> None:
        self.macros = macros
        self.counter = counter
        self.registry = registry
        self.strict = strict  # False: a macro whose body fails is kept, marked broken
        self.standard = standard  # definitions are standard-library macros
        self._functions: dict[str, FunctionSpec | None] = {}  # function name -> NDL function
        #: building while parsing (see :meth:`simple_calls`): an object with ``done`` (the
        #: script's statements through each pass), ``build`` (``Evaluator.build_now``) and
        #: ``undo()`` (back to nothing built); None: parse only
        self.early: Any = None

    # ---- blocks and statements -----------------------------------------------------------------
    def parse_block(self, src: SourceText, start: int, end: int, scope: Scope, *, mode: str,
                    allow_definitions: bool, templates: list[StmtTemplate] | None = None,
                    depth: int = 0) -> None:
        """Parse the statements of ``src.text[start:end]`` into ``scope``."""
        tok = Tokenizer(src, ";", start, end, block=True)
        # top-level statements of a block without its own brackets may take the one-step path
        simple = (mode == "normal" and templates is None and tok.seps == tok.base_seps
                  and tok._limit() == end)
        while True:
            if simple:
                self.simple_calls(src, tok, scope, end)
            rec = tok.next_record()
            if rec is None:
                return
            template = StmtTemplate(rec, src) if templates is not None else None
            self.statement(src, rec, tok, scope, mode=mode, allow_definitions=allow_definitions,
                           template=template, depth=depth)
            if template is not None:
                templates.append(template)

    def simple_calls(self, src: SourceText, tok: Tokenizer, scope: Scope, end: int) -> None:
        """Parse the statements from ``tok.pos`` on in one step each while they are plain
        ``name = Function(args)`` (see ``_SIMPLE_CALL``) that cannot fail here; stop, having
        consumed nothing more, at the first that is not.

        The result is exactly what :meth:`statement` makes of them: the same symbols, names,
        ``unnamedN`` numbers and locations; anything unusual (a macro, a reserved or taken
        name, an unknown function, an empty option name, a custom separator) takes the
        general path, which also reports the errors. With :attr:`early` set (whole scripts),
        each call is also built at once while every statement before it was
        (:meth:`~netsurgeon.lang.ndl._evaluate.Evaluator.build_now`).
        """
        scan = _SIMPLE_CALL.scanner(src.text, tok.pos, end).match
        table = scope.table
        get = table.get
        find_function = self.registry.find_function
        # every function's lower-case spellings (a name not among them is not reserved)
        spellings = self.registry.function_spellings()
        functions = self._functions
        callable_here: dict[str, FunctionSpec] = {}  # names checked callable in this scope
        deferred = src.map.deferred
        counter = self.counter
        statements = scope.statements
        early = self.early
        building = finalizing = False  # every statement so far built / also initialised
        if early is not None:
            done = early.done
            build = early.build
            built, finalized = done["initial"], done["final"]
            building = built == done["resolve"] == len(statements)
            finalizing = building and finalized == built
            quick = early.quick
            add = early.network.add
            one_input: dict[str, tuple] = {}  # function name -> build_now's plan
        pos = tok.pos
        try:
            while True:
                m = scan()
                if m is None:
                    return
                key, fname, body = m.group(1, 2, 3)
                low = key.lower()
                old = get(low)
                if old is not None and type(old) is not NdlRef and type(old) is not NdlParam:
                    return
                if low in spellings and find_function(key, "ndl") is not None:
                    return  # a reserved name
                fn = callable_here.get(fname)
                if fn is None:
                    # scope.find of a name without dots; the scope gains only names that are
                    # no function and references, so the answer holds for this whole run
                    local = get(fname.lower())
                    if (local is not None and type(local) is not NdlRef) or \
                            self.macros.get(fname) is not None:
                        return
                    fn = functions.get(fname)
                    if fn is None:
                        fn = functions[fname] = find_function(fname, "ndl")
                        if fn is None:
                            return
                    callable_here[fname] = fn
                if body.isidentifier() and (body[0] not in "iInN"
                                            or body[:3].lower() not in ("inf", "nan")):
                    # one plain name (the common case)
                    found = get(body.lower())
                    if found is None:
                        found = table[body.lower()] = NdlRef(body, scope, deferred(m.start(3)))
                    counter.next()
                    args = [found]
                    if building and type(found) is NdlCall and found.comp is not None:
                        # built at once from the plan of a one-input call of fn, if known
                        # (Evaluator.build_now's step for it)
                        plan = one_input.get(fname)
                        if plan is None:
                            plan = quick.get((id(fn), 1))
                            if plan is not None and plan[1] == [0]:
                                one_input[fname] = plan
                            else:
                                plan = None
                        if plan is not None:
                            op, _template, attrs, shape, lrm, dtype, finish = plan
                            loc = deferred(m.start(1))
                            try:
                                node = add(key, op, [found.comp], attrs=attrs, shape=shape,
                                           learning_rate_multiplier=lrm, dtype=dtype,
                                           location=loc)
                            except GraphError:
                                return  # the general path (and the passes) decide
                            sym = NdlCall(key, fn, scope, loc, args)
                            sym.comp = node
                            table[low] = sym
                            statements.append(sym)
                            pos = m.end()
                            built += 1
                            if finalizing and finish:
                                sym.initialized = True
                                finalized += 1
                            else:
                                finalizing = False
                            continue
                else:
                    args = self._simple_args(body, m.start(3), scope, deferred)
                    if args is None:
                        return
                # what statement() -> assignment() -> call() -> parse_args() make of it
                sym = NdlCall(key, fn, scope, deferred(m.start(1)), args)
                table[low] = sym  # bind_key: the name was checked free above
                statements.append(sym)
                pos = m.end()
                if building:
                    step = build(sym, finalizing)
                    if step:
                        built += 1
                        if step == 2:
                            finalized += 1
                        else:
                            finalizing = False
                    else:
                        building = finalizing = False
        finally:
            tok.pos = pos
            if early is not None and built != done["initial"]:
                done["initial"] = done["resolve"] = built
                done["final"] = finalized

    def _simple_args(self, body: str, at: int, scope: Scope,
                     deferred: Callable[[int], SourceLocation]) -> list[Sym] | None:
        """The symbols of a plain argument list ``body`` (at offset ``at``) and the call's
        ``unnamedN`` number, or None (nothing changed) if the general path must read it."""
        # the arguments: (offset, text, number, '=' at), checked before anything changes
        pieces: list[tuple[int, str, float | None, int]] = []
        for piece in body.split(",") if "," in body else (body,):
            arg = piece.strip(" \t")
            if arg:
                first = arg[0]
                # a name is not a number (strtod's words: inf, infinity, nan)
                number = (None if (first.isalpha() or first == "_")
                          and arg[:3].lower() not in ("inf", "nan") else strtod(arg))
                eq = arg.find("=") if number is None else -1
                if eq == 0 or (eq > 0 and not arg[:eq].strip()):
                    return None
                pieces.append((at + piece.index(first), arg, number, eq))
            at += len(piece) + 1
        counter = self.counter
        counter.next()
        table = scope.table
        out: list[Sym] = []
        for start, arg, number, eq in pieces:
            if number is not None:
                out.append(NdlConst(f"unnamed{counter.next()}", arg, number, deferred(start)))
            elif eq > 0:
                out.append(NdlOption(arg[:eq].strip(), unquote(arg[eq + 1:].strip()),
                                     scope, deferred(start)))
            else:
                found = table.get(arg.lower()) if "." not in arg else scope.find(arg)
                if found is None:
                    found = NdlRef(arg, scope, deferred(start))
                    table[arg.lower()] = found
                out.append(found)
        return out

    def statement(self, src: SourceText, rec: Record, tok: Tokenizer | None, scope: Scope, *,
                  mode: str, allow_definitions: bool, template: StmtTemplate | None,
                  depth: int) -> None:
        text = rec.text
        i = first_of(text, "=" + OPEN_BRACES)
        if i < 0:
            raise ParseError(f"Invalid statement, does not contain an '=' sign: '{text}'",
                             location=rec.location,
                             hint="write name = value or name = Function(...)")
        if text[i] == "=":
            self.assignment(src, rec, i, scope, mode=mode, template=template, depth=depth)
            return
        if allow_definitions:
            if mode == "copy":
                return  # nested definitions were made once, when the macro was defined
            if template is not None:
                template.kind = "define"
            self.define_macro(src, rec, i, tok)
            return
        # a nameless call (one-line macro bodies, MEL in-line NDL)
        name = text[:i].strip()
        if not name:
            raise ParseError(f"Invalid statement: '{text}'", location=rec.location,
                             hint="write name = value or name = Function(...)")
        target = template.target if (template is not None and mode == "copy") else None
        node_name = template.name if (template is not None and mode == "copy") else None
        sym = self.call(src, scope, name, rec.start + i, rec.end, rec.location, node_name=node_name,
                        consume=mode != "copy", target=target, mode=mode, depth=depth)
        scope.statements.append(sym)
        if template is not None and mode != "copy":
            template.kind = "nameless"
            template.name = sym.name
            template.target = sym.fn if isinstance(sym, NdlCall) else sym.macro

    def assignment(self, src: SourceText, rec: Record, eq: int, scope: Scope, *, mode: str,
                   template: StmtTemplate | None, depth: int) -> None:
        text = rec.text
        key = text[:eq].strip()
        if not key:
            raise ParseError(f"missing name before '=' in '{text}'", location=rec.location)
        if self.registry.is_reserved(key, "ndl"):
            raise ParseError(
                f"variable {key} is invalid, it is reserved because it is also the name of a "
                "function", location=rec.location, hint="choose another name")
        full = src.text
        vstart = rec.start + eq + 1
        while vstart < rec.end and full[vstart] in " \t":
            vstart += 1
        if vstart >= rec.end:
            raise ParseError(f"'{key} =' has no value", location=rec.location,
                             hint="CNTK silently ignored the rest of the block here")
        vend = rec.end
        quoted = False
        if full[vstart] in OPEN_BRACES:
            close = find_braces(full, vstart, rec.end, src.location)
            rest = full[close + 1:rec.end].strip()
            if rest:
                raise ParseError(f"unexpected text '{rest}' after the value of '{key}'",
                                 location=src.location(close + 1))
            if full[vstart] == '"':
                quoted = True
                vstart, vend = vstart + 1, close
            else:
                vend = close + 1
        value = full[vstart:vend].strip() if not quoted else full[vstart:vend]
        loc = rec.location
        paren = value.find("(")
        if paren > 0:
            ob = first_of(value, OPEN_BRACES)
            fname = value[:ob].strip()
            target = template.target if (template is not None and mode == "copy") else None
            sym = self.call(src, scope, fname, vstart + ob, vend, loc, node_name=key,
                            consume=mode != "copy", target=target, mode=mode, depth=depth)
            self.bind_key(scope, key, sym, loc)
            scope.statements.append(sym)
            if template is not None and mode != "copy":
                template.target = sym.fn if isinstance(sym, NdlCall) else sym.macro
            return
        vrec = Record(value, vstart, vstart + len(value), quoted=quoted, locate=src.location)
        if not quoted and value and value[0] in OPEN_BRACES:
            if mode != "copy":
                self.counter.next()
            created: list[Sym] = []
            elements = self.parse_args(src, scope, vstart, vend, mode=mode, depth=depth + 1,
                                       nested=created)
            # calls written inside a list are evaluated as statements of their own (CNTK never
            # evaluated them, so the list then failed)
            scope.statements.extend(created)
            sym: Any = NdlArray(key, elements, loc)
            self.bind_key(scope, key, sym, loc)
            return
        number = strtod(value)
        if number is not None:
            if mode != "copy":
                self.counter.next()
            self.bind_key(scope, key, NdlConst(key, value, number, loc), loc)
            return
        if "=" in value:
            raise ParseError(f"'{key} = {value}': an option cannot be assigned to a name",
                             location=loc)
        found = scope.find(value)
        if found is None:
            ref = NdlRef(value, scope, vrec.location)
            scope.table.setdefault(value.lower(), ref)
            self.bind_key(scope, key, ref, loc)
            return
        # the alias rule (§B.4): the existing node is registered under the key and renamed
        if (isinstance(found, (NdlConst, NdlCall, NdlMacroCall, NdlArray))
                and found.name.lower() != key.lower()):
            if self.early is not None and type(found) is NdlCall and found.comp is not None:
                self.early.undo()  # built under its old name: leave everything to the passes
            self.bind_key(scope, key, found, loc)
            found.name = key
        else:
            self.bind_key(scope, key, found, loc)

    @staticmethod
    def bind_key(scope: Scope, key: str, sym: Any, location: SourceLocation | None) -> None:
        low = key.lower()
        old = scope.table.get(low)
        if old is not None and old is not sym and not isinstance(old, (NdlRef, NdlParam)):
            raise ParseError(
                f"Symbol '{key}' currently assigned to '{old.name}' reassigning to a different "
                "value not allowed", location=location,
                hint=f"first assigned at {old.location}" if getattr(old, "location", None)
                else None)
        scope.table[low] = sym

    # ---- calls and arguments ---------------------------------------------------------------------
    def callee(self, scope: Scope, name: str,
               location: SourceLocation | None) -> MacroDef | FunctionSpec:
        """What ``name(...)`` calls: a macro, else a built-in function (§B.4 CheckName)."""
        local = scope.find(name)
        if local is not None and not isinstance(local, NdlRef):
            raise ParseError(f"'{name}' is a symbol of this script, not a function or macro",
                             location=location, hint="use another name for the symbol")
        macro = self.macros.get(name)
        if macro is not None:
            if macro.broken:
                raise ParseError(f"macro '{macro.name}' cannot be used: {macro.broken}",
                                 location=location)
            return macro
        fn = self.registry.find_function(name, "ndl")
        if fn is not None:
            return fn
        pool = self.macros.names() + [s for f in self.registry.functions()
                                      if "ndl" in f.languages for s in f.spellings]
        raise ParseError(f"Undefined function or macro '{name}'", location=location,
                         hint=close_matches(name, pool))

    def call(self, src: SourceText, scope: Scope, name: str, args_start: int, args_end: int,
             location: SourceLocation | None, *, node_name: str | None, consume: bool,
             target: Any, mode: str, depth: int, nested: list | None = None) -> Sym:
        if depth > MAX_DEPTH:
            raise ParseError(f"calls nested more than {MAX_DEPTH} deep", location=location,
                             hint="assign inner calls to names first")
        if not name:
            raise ParseError("a call needs a function or macro name before '('", location=location)
        if target is None:
            target = self.callee(scope, name, location)
        elif isinstance(target, MacroDef) and target.standard:
            # standard macros use the current definition of other macros, so a user's
            # replacement of BFF also changes RBFF, SBFF, ... (macros are otherwise bound
            # when defined, as in CNTK)
            current = self.macros.get(target.name)
            if current is not None and current is not target:
                if current.broken:
                    raise ParseError(f"macro '{current.name}' cannot be used: {current.broken}",
                                     location=location)
                target = current
        if node_name is None:
            node_name = f"unnamed{self.counter.next()}"
        elif consume:
            self.counter.next()
        if isinstance(target, MacroDef):
            msym = NdlMacroCall(node_name, target, scope, location)
            if mode != "define":
                msym.body = self.instantiate(target, msym, depth)
            msym.args = self.parse_args(src, scope, args_start, args_end, mode=mode,
                                        depth=depth + 1, nested=msym.nested)
            if nested is not None:
                nested.append(msym)
            return msym
        csym = NdlCall(node_name, target, scope, location)
        if nested is not None:
            nested.append(csym)
        csym.args = self.parse_args(src, scope, args_start, args_end, mode=mode, depth=depth + 1,
                                    nested=csym.nested)
        return csym

    def parse_args(self, src: SourceText, scope: Scope, start: int, end: int, *, mode: str,
                   depth: int, nested: list | None) -> list[Sym]:
        """The argument list (or array) at ``src.text[start:end]``, which starts with a bracket."""
        out: list[Sym] = []
        for rec in split_array_records(src, start, end):
            out.append(self.argument(src, scope, rec, mode=mode, depth=depth, nested=nested))
        return out

    def argument(self, src: SourceText, scope: Scope, rec: Record, *, mode: str, depth: int,
                 nested: list | None) -> Sym:
        t = rec.text
        paren = t.find("(")
        if paren > 0:
            ob = first_of(t, OPEN_BRACES)
            return self.call(src, scope, t[:ob].strip(), rec.start + ob, rec.end, rec.location,
                             node_name=None, consume=True, target=None, mode=mode, depth=depth,
                             nested=nested)
        if t and t[0] in OPEN_BRACES and not rec.quoted:
            if depth > MAX_DEPTH:
                raise ParseError(f"arrays nested more than {MAX_DEPTH} deep", location=rec.location)
            name = f"unnamed{self.counter.next()}"
            elements = self.parse_args(src, scope, rec.start, rec.end, mode=mode, depth=depth + 1,
                                       nested=nested)
            return NdlArray(name, elements, rec.location)
        number = strtod(t)
        if number is not None:
            return NdlConst(f"unnamed{self.counter.next()}", t, number, rec.location)
        eq = t.find("=")
        if eq >= 0:
            oname = t[:eq].strip()
            if not oname:
                raise ParseError(f"option without a name: '{t}'", location=rec.location)
            return NdlOption(oname, unquote(t[eq + 1:].strip()), scope, rec.location)
        found = scope.find(t)
        if found is not None:
            return found
        ref = NdlRef(t, scope, rec.location)
        scope.table[t.lower()] = ref
        return ref

    # ---- macros --------------------------------------------------------------------------------
    def define_macro(self, src: SourceText, rec: Record, ob: int, tok: Tokenizer | None) -> None:
        text = rec.text
        name = text[:ob].strip()
        loc = rec.location
        if not name:
            raise ParseError(f"Invalid statement: '{text}'", location=loc,
                             hint="a macro definition is Name(params) followed by its body")
        if text[ob] != "(":
            raise ParseError(f"a macro definition needs '(' after its name: '{text}'", location=loc)
        if self.registry.is_reserved(name, "ndl"):
            raise ParseError(f"function '{name}' already defined: it is a built-in function",
                             location=loc, hint="choose another macro name")
        old = self.macros.get(name)
        if old is not None and not old.standard and not self.standard:
            raise ParseError(f"function '{name}' already defined", location=loc,
                             hint=f"first defined at {old.location}" if old.location else None)
        params: list[str] = []
        for prec in split_array_records(src, rec.start + ob, rec.end):
            p = prec.text
            if not p or any(c in p for c in "=()[]{}\"") or prec.quoted:
                raise ParseError(f"invalid parameter '{p}' in the definition of macro '{name}'",
                                 location=prec.location)
            if self.registry.is_reserved(p, "ndl"):
                raise ParseError(f"parameter '{p}' of macro '{name}' is the name of a function",
                                 location=prec.location, hint="rename the parameter")
            if p.lower() in (q.lower() for q in params):
                raise ParseError(f"parameter '{p}' appears twice in macro '{name}'",
                                 location=prec.location)
            params.append(p)
        body = tok.next_record() if tok is not None else None
        if body is None:
            raise ParseError(f"Body of Macro missing: '{name}({', '.join(params)})'", location=loc,
                             hint="follow the definition with [ ... ], { ... } or = expression")
        full = src.text
        one_line = False
        if body.text.startswith("="):
            one_line = True
            bstart = body.start + 1
            while bstart < body.end and full[bstart] in " \t":
                bstart += 1
            bend = body.end
            if bstart >= bend:
                raise ParseError(f"Body of Macro missing: '{name}'", location=body.location)
        elif body.braced and body.text[0] in "[{":
            bstart, bend = body.start, body.end
        else:
            raise ParseError(f"macro '{name}' needs a body: [ ... ], {{ ... }} or = expression, "
                             f"found '{body.text}'", location=body.location)
        macro = MacroDef(name, params, loc, one_line=one_line, standard=self.standard)
        scope = Scope()
        for p in params:
            param = NdlParam(p, loc)
            scope.table[p.lower()] = param
            scope.params.append(param)
        try:
            self.parse_block(src, bstart, bend, scope, mode="define",
                             allow_definitions=not one_line, templates=macro.body)
        except ParseError as exc:
            if self.strict:
                raise
            macro.broken = exc.message
        self.macros.define(macro)

    def instantiate(self, macro: MacroDef, call: NdlMacroCall, depth: int) -> Scope:
        """A private copy of ``macro``'s body for ``call`` (statement templates re-run)."""
        if depth > MAX_DEPTH:
            raise ParseError(f"macros nested more than {MAX_DEPTH} deep (in '{macro.name}')",
                             location=call.location)
        body = Scope(call.scope, call)
        for p in macro.params:
            param = NdlParam(p, macro.location)
            body.table[p.lower()] = param
            body.params.append(param)
        for t in macro.body:
            if t.kind == "define":
                continue
            self.statement(t.src, t.rec, None, body, mode="copy",
                           allow_definitions=t.kind == "define", template=t, depth=depth + 1)
        return body
