"""How BrainScript text reaches the parser (brainscript.md §0) and the public build API.

``build_from_text`` evaluates the members of a BrainScriptNetworkBuilder block (what a
``.bs`` network file holds); ``build_from_config`` takes the block out of a ``.cntk`` config
file section, with CNTK's ``#`` comment rule, bracket capture and ``$var$`` substitution.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from netsurgeon.errors import ParseError, SourceLocation
from netsurgeon.graph import Network
from netsurgeon.lang.brainscript.lexer import Token, tokenize
from netsurgeon.lang.brainscript.parser import Expr, parse_tokens

__all__ = ["build_from_text", "build_from_file", "build_from_config", "extract_builder",
           "program_tokens", "evaluate_program"]

STDLIB = Path(__file__).parent / "stdlib" / "cntk.core.bs"


@lru_cache(maxsize=1)
def _stdlib_tokens() -> tuple[Token, ...]:
    return tuple(tokenize(STDLIB.read_text(encoding="utf-8"), str(STDLIB))[:-1])


def program_tokens(body: str, name: str, *, wrap: str = "record", include_dirs=None,
                   device_id: int = -1) -> list[Token]:
    """The tokens of CNTK's builder program (§0.2): library, deviceId, traceLevel, precision
    and ``network = new ComputationNetwork [ body ]`` (or ``network = body`` for ``(``…``)``)."""
    head = f"deviceId = {device_id}\ntraceLevel = 0\nprecision = 'float'\nnetwork = "
    if wrap == "record":
        head += "new ComputationNetwork [ "
    toks = list(_stdlib_tokens())
    toks += tokenize(head, "<builder>")[:-1]
    toks += tokenize(body, name, include_dirs)[:-1]
    tail = tokenize(" ]" if wrap == "record" else " ", "<builder>")
    return toks + tail


def evaluate_program(tokens: list[Token], *, seed: int = 1) -> Network:
    """Parse and evaluate a builder program; returns its ``network`` member."""
    from netsurgeon.graph import Network as _Net
    from netsurgeon.lang.brainscript.evaluator import Evaluator
    from netsurgeon.lang.brainscript.values import Record, fail

    tree: Expr = parse_tokens(tokens)
    ev = Evaluator(seed=seed)

    def run():
        top = ev.eval(tree, Record(), "")
        t = top.members["network"]
        t.path = ""  # the program is evaluated via the 'network' lookup at path ""
        value = t.get(ev)
        if not isinstance(value, _Net):
            raise fail(f"the network description must evaluate to a network, not a "
                       f"{type(value).__name__}", tree.named["network"].location)
        if any(n.shape is None for n in value.nodes):
            value.validate()  # e.g. a loaded network returned as it is
        return value

    return ev.run(run)


def build_from_text(text: str, name: str = "<string>", *, include_dirs=None, seed: int = 1) -> Network:
    """Build the network that a BrainScriptNetworkBuilder block's *members* describe."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        return evaluate_program(program_tokens("new ComputationNetwork " + text, name, wrap="expr",
                                               include_dirs=include_dirs), seed=seed)
    if stripped[:1] == "(":
        return evaluate_program(program_tokens(text, name, wrap="expr", include_dirs=include_dirs),
                                seed=seed)
    return evaluate_program(program_tokens(text, name, include_dirs=include_dirs), seed=seed)


def build_from_file(path: str | Path, *, seed: int = 1) -> Network:
    p = Path(path)
    net = build_from_text(p.read_text(encoding="utf-8"), str(p), include_dirs=[p.parent], seed=seed)
    if net.name == "network":
        net.name = p.stem
    return net


# ---- .cntk config files (§0.1) ------------------------------------------------------------------
def _strip_hash(line: str) -> str:
    """Remove a '#' comment: at line start (after blanks) or after a space/tab; not in quotes."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c == '"':
            quote = c
        elif c == "#" and (line[:i].strip() == "" or line[i - 1] in " \t"):
            return line[:i]
    return line


_CLOSE = {"[": "]", "{": "}", "(": ")"}


def _capture(text: str, start: int, where: SourceLocation) -> tuple[str, int]:
    """The value starting at ``start`` up to its matching bracket ('"' quoted text skipped)."""
    opener = text[start]
    if opener == '"':
        end = text.find('"', start + 1)
        if end < 0:
            raise ParseError("unterminated string in the config file", location=where)
        return text[start + 1:end], end + 1
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == '"':
            j = text.find('"', i + 1)
            i = len(text) if j < 0 else j
        elif c in "[{(":
            depth += 1
        elif c in "]})":
            depth -= 1
            if depth == 0:
                return text[start:i + 1], i + 1
        i += 1
    raise ParseError(f"no matching closing bracket for '{opener}' in the config file", location=where)


def _parse_section(text: str) -> dict[str, str]:
    """key -> raw value of one config level (values with brackets captured whole)."""
    out: dict[str, str] = {}
    i = 0
    n = len(text)
    pat = re.compile(r"\s*([A-Za-z_][\w.]*)\s*=\s*")
    while i < n:
        m = pat.match(text, i)
        if not m:
            nl = text.find("\n", i)
            i = n if nl < 0 else nl + 1
            continue
        j = m.end()
        if j < n and text[j] in "[{(\"":
            value, j = _capture(text, j, SourceLocation(None))
            if text[m.end()] == '"':
                value = value
        else:
            e = j
            while e < n and text[e] not in "\n;":
                e += 1
            value = text[j:e].strip()
            j = e
        out.setdefault(m.group(1).lower(), value)
        out[m.group(1).lower()] = value
        i = j + 1 if j < n and text[j] in "\n;" else j
    return out


def extract_builder(config_path: str | Path, section: str, overrides: dict[str, str] | None = None) -> tuple[str, str]:
    """(BrainScript text, source name) of ``section``'s BrainScriptNetworkBuilder, ``$var$`` substituted."""
    path = Path(config_path)
    lines = [_strip_hash(l) for l in path.read_text(encoding="utf-8").splitlines()]
    text = "\n".join(l for l in lines if l.strip())
    top = _parse_section(text)
    top.update({k.lower(): v for k, v in (overrides or {}).items()})
    raw = top.get(section.lower())
    if raw is None or raw[:1] not in "[{":
        raise ParseError(f"{path}: no section '{section}' in the config file",
                         hint="sections: " + ", ".join(k for k, v in top.items() if v[:1] in "[{"))
    sec = _parse_section(raw[1:-1])
    body = sec.get("brainscriptnetworkbuilder") or sec.get("experimentalnetworkbuilder")
    if body is None:
        raise ParseError(f"{path}: section '{section}' has no BrainScriptNetworkBuilder")
    if body[:1] not in "[{(":
        raise ParseError(f"{path}: BrainScriptNetworkBuilder must start with '[', '{{' or '(' ")

    def lookup(name: str) -> str | None:
        for scope in (sec, top):
            v = scope.get(name.lower())
            if v is not None:
                return v.strip('"') if v.startswith('"') else v
        return None

    return substitute(body, lookup, str(path)), str(path)


_VAR = re.compile(r"\$([A-Za-z_][^\s,/<>?;':\"\[\]{}\\|!@#%^&*()+=~`$]*)\$")


def substitute(text: str, lookup, where: str = "<config>", depth: int = 0) -> str:
    """CNTK's ``$var$`` substitution (§0.1 step 3), recursive in the values."""
    if depth > 50:
        raise ParseError(f"{where}: $var$ substitution nested too deep (a variable refers to itself?)")

    def repl(m: re.Match) -> str:
        value = lookup(m.group(1))
        if value is None:
            raise ParseError(f"{where}: undefined config variable '${m.group(1)}$'")
        if "\n" in value:
            raise ParseError(f"{where}: config variable '${m.group(1)}$' spans several lines")
        return substitute(value, lookup, where, depth + 1)

    return _VAR.sub(repl, text)


def build_from_config(config_path: str | Path, section: str, *, seed: int = 1,
                      overrides: dict[str, str] | None = None) -> Network:
    """Build the network of ``section``'s BrainScriptNetworkBuilder in a ``.cntk`` file."""
    body, name = extract_builder(config_path, section, overrides)
    stripped = body.strip()
    wrap = "expr"
    if stripped[:1] in "[{":
        body = "new ComputationNetwork " + body
    dirs = [Path(config_path).parent]
    return evaluate_program(program_tokens(body, name, wrap=wrap, include_dirs=dirs), seed=seed)
