"""BrainScript parser (brainscript.md §2) and CNTK's parse-tree dump (§7).

A precedence-climbing parser that builds CNTK's ``Expression`` tree: ``op``, positional
``args``, sorted ``named`` args, ``id`` and the literal payload. Parentheses leave no node,
``(a:b):c`` flattens, ``f(x)=e`` becomes ``f = (x) => e`` and ``x[i:a..b]=e`` becomes
``x = array[a..b](i => e)``. The parse methods are generators run on an explicit work stack
(:mod:`.stack`), so nesting depth costs heap, not Python stack: 10,000 nested parentheses
parse; nesting beyond :data:`MAX_NESTING` levels is a clean ParseError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from netsurgeon.errors import SourceLocation
from netsurgeon.lang.brainscript.diagnostics import one_line_errors
from netsurgeon.lang.brainscript.lexer import Token, syntax_error, tokenize
from netsurgeon.lang.brainscript.stack import Budget, Work, drive

__all__ = ["Expr", "parse", "parse_tokens", "dump_tree", "MAX_NESTING"]

#: pending parse steps (about two per level of nesting) before the parser gives up
MAX_NESTING = 200_000

_INFIX = {
    ".": 99, "[": 99, "(": 99, "{": 99,
    "*": 10, "/": 10, ".*": 10, "**": 10, "%": 10,
    "+": 9, "-": 9, "with": 9,
    "==": 8, "!=": 8, "<": 8, "<=": 8, ">": 8, ">=": 8,
    "&&": 7, "||": 6, ">>": 5, "<<": 5, ":": 4, "=>": 0,
}


@dataclass(eq=False, slots=True, repr=False)
class Expr:
    """One parse-tree node (CNTK ``Expression``)."""

    def __repr__(self) -> str:  # not recursive: trees may be 10,000 levels deep
        return f"<Expr {self.op} {self.id or self.value or ''} at {self.location}>"

    op: str
    location: SourceLocation
    args: list[Expr] = field(default_factory=list)
    named: dict[str, Expr] = field(default_factory=dict)
    id: str = ""
    value: object = None  # payload of d / s / b


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.pos = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.pos]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.pos + k, len(self.toks) - 1)]

    def next(self) -> Token:
        t = self.toks[self.pos]
        if t.kind != "eof":
            self.pos += 1
        return t

    def is_(self, text: str) -> bool:
        t = self.tok
        return t.kind in ("op", "kw") and t.text == text

    def expect(self, text: str, what: str | None = None) -> Token:
        if not self.is_(text):
            self.fail(f"expected '{text}'" + (f" {what}" if what else ""))
        return self.next()

    def fail(self, message: str, tok: Token | None = None) -> None:
        t = tok or self.tok
        # the builder's closing tokens stand at the end of the user's file (host.py)
        at_end = t.kind == "eof" or t.location == self.toks[-1].location
        found = "end of file" if at_end else f"'{t.text}'"
        raise syntax_error(f"{message}, found {found}", t.location)

    def ident(self, what: str) -> Token:
        if self.tok.kind != "id":
            self.fail(f"expected an identifier ({what})")
        return self.next()

    # ---- records ---------------------------------------------------------------------
    def members(self, record: Expr, closer: str | None) -> Work:
        while self.tok.kind == "id":
            name_tok = self.next()
            name = name_tok.text
            array_def = None
            if self.is_("["):
                self.next()
                var = self.ident("array index variable")
                self.expect(":", "in an array definition x[i:a..b]")
                first = yield self.expr(0)
                self.expect("..", "in an array definition x[i:a..b]")
                last = yield self.expr(0)
                self.expect("]")
                array_def = (var, first, last)
            params = None
            if self.is_("(") or self.is_("{"):
                params = yield self.arg_list(defining=True)
            self.expect("=", f"after member name '{name}'")
            body = yield self.expr(0)
            if params is not None:
                body = Expr("=>", name_tok.location, [params, body])
            if array_def is not None:
                var, first, last = array_def
                plist = Expr("()", var.location, [Expr("id", var.location, id=var.text)])
                fn = Expr("=>", var.location, [plist, body])
                body = Expr("array", name_tok.location, [first, last, fn])
            if name in record.named:
                raise syntax_error(f"duplicate member definition '{name}'", name_tok.location)
            record.named[name] = body
            if self.is_(";"):
                self.next()
        if closer is None:
            if self.tok.kind != "eof":
                self.fail("expected a member definition 'name = expression'")
        elif not self.is_(closer):
            self.fail(f"expected a member definition or '{closer}'")
        return record

    # ---- argument / parameter lists ------------------------------------------------------
    def arg_list(self, defining: bool) -> Work:
        opener = self.next()
        closer = ")" if opener.text == "(" else "}"
        node = Expr("()", opener.location)
        if not self.is_(closer):
            while True:
                if self.tok.kind == "id" and self.peek().kind == "op" and self.peek().text == "=":
                    name = self.next()
                    self.next()
                    if name.text in node.named:
                        raise syntax_error(f"duplicate named argument '{name.text}'", name.location)
                    node.named[name.text] = yield self.expr(0)
                else:
                    start = self.tok
                    e = yield self.expr(0)
                    if defining and e.op != "id":
                        raise syntax_error("a parameter in a definition must be an identifier",
                                           start.location)
                    node.args.append(e)
                if self.is_(","):
                    self.next()
                    continue
                break
        self.expect(closer, "to close the argument list")
        return node

    # ---- expressions ---------------------------------------------------------------------
    def operand(self) -> Work:
        t = self.tok
        loc = t.location
        if t.kind == "num":
            self.next()
            return Expr("d", loc, value=t.value)
        if t.kind == "str":
            self.next()
            return Expr("s", loc, value=t.value)
        if t.kind == "id":
            self.next()
            return Expr("id", loc, id=t.text)
        if t.kind == "kw":
            if t.text in ("true", "false"):
                self.next()
                return Expr("b", loc, value=t.text == "true")
            if t.text == "new":
                self.next()
                cls = self.ident("class name after 'new'")
                return Expr("new", loc, [(yield self.operand())], id=cls.text)
            if t.text == "if":
                self.next()
                cond = yield self.expr(0)
                self.expect("then", "in 'if ... then ... else ...'")
                then = yield self.expr(0)
                self.expect("else", "in 'if ... then ... else ...'")
                other = yield self.expr(0)
                return Expr("if", loc, [cond, then, other])
            if t.text == "array":
                self.next()
                self.expect("[", "after 'array'")
                first = yield self.expr(0)
                self.expect("..", "in array[a..b]")
                last = yield self.expr(0)
                self.expect("]", "in array[a..b]")
                self.expect("(", "after array[a..b]")
                fn = yield self.expr(0)
                self.expect(")", "after the array initializer")
                return Expr("array", loc, [first, last, fn])
        if t.kind == "op":
            if t.text in ("-", "+", "!"):
                self.next()
                return Expr(t.text + "(", loc, [(yield self.expr(90))])
            if t.text == "(":
                self.next()
                inner = yield self.expr(0)
                self.expect(")", "to close '('")
                return inner
            if t.text in ("[", "{"):
                self.next()
                closer = "]" if t.text == "[" else "}"
                rec = yield self.members(Expr("[]", loc), closer)
                self.next()
                return rec
            if t.text == "[|":
                self.next()
                node = Expr(":", loc)
                if not self.is_("|]"):
                    node.args.append((yield self.expr(0)))
                    while self.is_(";"):
                        self.next()
                        node.args.append((yield self.expr(0)))
                self.expect("|]", "to close '[|'")
                return node
        self.fail("expected an expression")
        raise AssertionError  # unreachable

    def expr(self, required: int) -> Work:
        left = yield self.operand()
        while True:
            t = self.tok
            if t.kind not in ("op", "kw", "str") or t.text not in _INFIX:
                if not (t.kind == "str" and t.value in _INFIX):
                    break
            op = t.text if t.kind != "str" else t.value
            prec = _INFIX[op]
            if prec < required:
                break
            if op == "(" or op == "{":
                args = yield self.arg_list(defining=False)
                left = Expr(op, t.location, [left, args])
                continue
            self.next()
            if op == ".":
                name = self.ident("member name after '.'")
                left = Expr(".", t.location, [left], id=name.text)
            elif op == "[":
                index = yield self.expr(0)
                self.expect("]", "to close the index")
                left = Expr("[", t.location, [left, index])
            elif op == "=>":
                if left.op != "id":
                    raise syntax_error("the left side of '=>' must be a single identifier "
                                       "(write (x => f(x)) inside arrays)", left.location)
                plist = Expr("()", left.location, [left])
                left = Expr("=>", t.location, [plist, (yield self.expr(0))])
            elif op == ":":
                right = yield self.expr(5)
                if left.op == ":":
                    left.args.append(right)
                else:
                    left = Expr(":", t.location, [left, right])
            else:
                left = Expr(op, t.location, [left, (yield self.expr(prec + 1))])
        return left


def parse_tokens(tokens: list[Token]) -> Expr:
    """The top-level record of a token list."""
    p = _Parser(tokens)
    loc = tokens[0].location if tokens else SourceLocation("<string>", 1, 1)

    def too_deep(stack) -> Exception:
        return syntax_error(f"nesting deeper than {MAX_NESTING // 2:,} levels", p.tok.location,
                            hint="split the expression into named members")

    with one_line_errors():
        return drive(p.members(Expr("[]", loc), None), Budget(MAX_NESTING, None, too_deep))


def parse(text: str, name: str = "<string>", include_dirs: list[Path] | None = None) -> Expr:
    """Parse a BrainScript program (a record without brackets)."""
    with one_line_errors():
        return parse_tokens(tokenize(text, name, include_dirs))


def _label(e: Expr) -> str:
    if e.op == "s":
        return f"'{e.value}'"
    if e.op == "d":
        return f"{e.value:.0f}"
    if e.op == "b":
        return "1" if e.value else "0"
    if e.op == "id":
        return e.id
    if e.op in ("new", "array", "."):
        return f"{e.op} {e.id}"
    return e.op


def dump_tree(root: Expr) -> str:
    """CNTK's ``Expression::DumpToStream`` output (iterative, any depth)."""
    out: list[str] = []
    # work items: ("node", expr, indent) or ("text", str)
    stack: list[tuple] = [("node", root, 0)]
    while stack:
        item = stack.pop()
        if item[0] == "text":
            out.append(item[1])
            continue
        _, e, k = item
        out.append(" " * max(k, 1) + _label(e))
        todo: list[tuple] = []
        if e.args:
            todo.append(("text", "\n"))
            todo += [("node", a, k + 1) for a in e.args]
        if e.named:
            todo.append(("text", "\n"))
            for name in sorted(e.named):
                todo.append(("text", " " * (k + 1) + name + " =\n"))
                todo.append(("node", e.named[name], k + 2))
        todo.append(("text", "\n"))
        stack.extend(reversed(todo))
    return "".join(out)
