"""How BrainScript text reaches the parser (brainscript.md §0) and the public build API.

``build_from_text`` evaluates the members of a BrainScriptNetworkBuilder block (what a
``.bs`` network file holds); ``build_from_config`` takes the block out of a ``.cntk`` config
file section, with CNTK's ``#`` comment rule, bracket capture and ``$var$`` substitution.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from netsurgeon.errors import EvaluationError, ParseError
from netsurgeon.graph import Network
from netsurgeon.lang.brainscript.diagnostics import one_line_errors
from netsurgeon.lang.brainscript.evaluator import MAX_STEPS
from netsurgeon.lang.brainscript.lexer import Token, tokenize
from netsurgeon.lang.brainscript.library import library_sources
from netsurgeon.lang.brainscript.parser import Expr, parse_tokens
from netsurgeon.lang.config import parse_config_file, read_text_file

__all__ = ["build_from_text", "build_from_file", "build_from_config", "extract_builder",
           "program_tokens", "evaluate_program"]


@lru_cache(maxsize=1)
def _stdlib_tokens() -> tuple[Token, ...]:
    """The core library's tokens: the library file, then the generated definitions."""
    return tuple(tok for text, source in library_sources() for tok in tokenize(text, source)[:-1])


def program_tokens(body: str, name: str, *, wrap: str = "record", include_dirs=None,
                   device_id: int = -1, locate=None) -> list[Token]:
    """The tokens of CNTK's builder program (§0.2): library, deviceId, traceLevel, precision
    and ``network = new ComputationNetwork [ body ]`` (or ``network = body`` for ``(``…``)``)."""
    head = f"deviceId = {device_id}\ntraceLevel = 0\nprecision = 'float'\nnetwork = "
    if wrap == "record":
        head += "new ComputationNetwork [ "
    toks = list(_stdlib_tokens())
    toks += tokenize(head, "<builder>")[:-1]
    body_toks = tokenize(body, name, include_dirs, locate)
    toks += body_toks[:-1]
    # the closing bracket is CNTK's, but a parse error there is at the end of the user's file
    end = body_toks[-1].location
    tail = tokenize(" ]" if wrap == "record" else " ", "<builder>")
    return toks + [replace(tok, location=end) for tok in tail]


def evaluate_program(tokens: list[Token], *, seed: int = 1,
                     max_steps: int | None = MAX_STEPS) -> Network:
    """Parse and evaluate a builder program; returns its ``network`` member.

    ``max_steps`` bounds the evaluation steps (None: no bound); errors are one line."""
    from netsurgeon.graph import Network as _Net
    from netsurgeon.lang.brainscript.evaluator import Evaluator
    from netsurgeon.lang.brainscript.values import DONE, Record, fail

    with one_line_errors():
        tree: Expr = parse_tokens(tokens)
        ev = Evaluator(seed=seed, max_steps=max_steps)

        def program():
            top = ev.eval(tree, Record(), "")
            # members of the top-level record are at their own name, so `network = (f(x))`
            # names f's nodes `network.…` (CNTK's G2P log); `new ComputationNetwork [...]`
            # resets the path to "" (brainscript.md §4.1)
            t = top.members["network"]
            value = t.value if t.state == DONE else (yield t)
            if not isinstance(value, _Net):
                raise fail(f"the network description must evaluate to a network, not a "
                           f"{type(value).__name__}", tree.named["network"].location)
            if any(n.shape is None for n in value.nodes):
                value.validate()  # e.g. a loaded network returned as it is
            return value

        try:
            return ev.drive(program())
        except MemoryError:
            raise EvaluationError("out of memory while evaluating the BrainScript program",
                                  hint="see the limits in docs/brainscript.md") from None


def build_from_text(text: str, name: str = "<string>", *, include_dirs=None,
                    seed: int = 1, max_steps: int | None = MAX_STEPS) -> Network:
    """Build the network that a BrainScriptNetworkBuilder block's *members* describe."""
    stripped = text.strip()
    with one_line_errors():
        if stripped[:1] in ("[", "{"):
            toks = program_tokens("new ComputationNetwork " + text, name, wrap="expr",
                                  include_dirs=include_dirs)
        elif stripped[:1] == "(":
            toks = program_tokens(text, name, wrap="expr", include_dirs=include_dirs)
        else:
            toks = program_tokens(text, name, include_dirs=include_dirs)
    return evaluate_program(toks, seed=seed, max_steps=max_steps)


def build_from_file(path: str | Path, *, seed: int = 1,
                    max_steps: int | None = MAX_STEPS) -> Network:
    """Evaluate a BrainScript file (``include`` resolved next to it) into a network named
    after the file unless the program names it."""
    p = Path(path)
    net = build_from_text(read_text_file(p, "BrainScript file"), str(p), include_dirs=[p.parent],
                          seed=seed, max_steps=max_steps)
    if net.name == "network":
        net.name = p.stem
    return net


# ---- .cntk config files (§0.1) ------------------------------------------------------------------
_BUILDER_KEYS = ("BrainScriptNetworkBuilder", "ExperimentalNetworkBuilder")


def extract_builder(config_path: str | Path, section: str,
                    overrides: dict[str, str] | None = None) -> tuple[str, str]:
    """(BrainScript text, source name) of ``section``'s BrainScriptNetworkBuilder, with
    ``$var$`` substituted (see :func:`locate_builder` for the text's file locations).

    The ``.cntk`` file goes through the shared config layer (ndl-mel.md §A = brainscript.md
    §0.1): ``#`` comments, bracket capture, sections, and ``$var$`` looked up in the section,
    then the root (``overrides`` replace root keys). A section without its own builder uses
    the one at the top level of the file (CNTK looks a key up through the enclosing scopes).
    """
    text, name, _locate = locate_builder(config_path, section, overrides)
    return text, name


def locate_builder(config_path: str | Path, section: str,
                   overrides: dict[str, str] | None = None):
    """:func:`extract_builder` plus a function from offsets in the text to the locations in
    the config file where they were written."""
    path = Path(config_path)
    root = parse_config_file(path)
    for key, value in (overrides or {}).items():
        root.set(key, value)
    raw = root.raw(section)
    if raw is None or raw.lstrip()[:1] not in ("[", "{"):
        raise ParseError(f"{path}: no section '{section}' in the config file",
                         hint="sections: " + ", ".join(k for k, v in root.items()
                                                       if v.lstrip()[:1] in ("[", "{")))
    sec = root.section(section)
    key = next((k for k in _BUILDER_KEYS if sec is not None and sec.has_local(k)), None)
    if key is None:  # inherited from the top level (CNTK's scope lookup)
        key = next((k for k in _BUILDER_KEYS if sec is not None and k in sec), None)
    if sec is None or key is None:
        raise ParseError(f"{path}: section '{section}' has no BrainScriptNetworkBuilder "
                         "(and the file has none at the top level)")
    if (sec.raw(key) or "")[:1] not in ("[", "{", "("):
        raise ParseError(f"{path}: BrainScriptNetworkBuilder must start with '[', '{{' or '(' ",
                         location=sec.location_of(key))
    found = sec.locate_value(key)
    assert found is not None  # the key was found above
    text, locate = found
    return text, str(path), locate


def build_from_config(config_path: str | Path, section: str, *, seed: int = 1,
                      overrides: dict[str, str] | None = None,
                      max_steps: int | None = MAX_STEPS) -> Network:
    """Build the network of ``section``'s BrainScriptNetworkBuilder in a ``.cntk`` file."""
    from netsurgeon.lang.brainscript.diagnostics import SourceText, remember

    with one_line_errors():
        body, name, locate = locate_builder(config_path, section, overrides)
        if body.strip()[:1] in "[{":
            prefix = "new ComputationNetwork "
            body, inner = prefix + body, locate

            def locate(offset: int, _inner=inner, _n=len(prefix)):
                return _inner(max(offset - _n, 0))
        # errors count lines and columns from the config file; --show-source shows its lines
        remember(SourceText(read_text_file(config_path, "config file"), name))
        toks = program_tokens(body, name, wrap="expr", include_dirs=[Path(config_path).parent],
                              locate=locate)
    return evaluate_program(toks, seed=seed, max_steps=max_steps)
