"""How BrainScript text reaches the parser (brainscript.md §0) and the public build API.

``build_from_text`` evaluates the members of a BrainScriptNetworkBuilder block (what a
``.bs`` network file holds); ``build_from_config`` takes the block out of a ``.cntk`` config
file section, with CNTK's ``#`` comment rule, bracket capture and ``$var$`` substitution.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from netsurgeon.errors import ParseError
from netsurgeon.graph import Network
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


def build_from_text(text: str, name: str = "<string>", *, include_dirs=None,
                    seed: int = 1) -> Network:
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
    """Evaluate a BrainScript file (``include`` resolved next to it) into a network named
    after the file unless the program names it."""
    p = Path(path)
    net = build_from_text(read_text_file(p, "BrainScript file"), str(p), include_dirs=[p.parent],
                          seed=seed)
    if net.name == "network":
        net.name = p.stem
    return net


# ---- .cntk config files (§0.1) ------------------------------------------------------------------
_BUILDER_KEYS = ("BrainScriptNetworkBuilder", "ExperimentalNetworkBuilder")


def extract_builder(config_path: str | Path, section: str,
                    overrides: dict[str, str] | None = None) -> tuple[str, str]:
    """(BrainScript text, source name) of ``section``'s BrainScriptNetworkBuilder, with
    ``$var$`` substituted.

    The ``.cntk`` file goes through the shared config layer (ndl-mel.md §A = brainscript.md
    §0.1): ``#`` comments, bracket capture, sections, and ``$var$`` looked up in the section,
    then the root (``overrides`` replace root keys).
    """
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
    if sec is None or key is None:
        raise ParseError(f"{path}: section '{section}' has no BrainScriptNetworkBuilder")
    if (sec.raw(key) or "")[:1] not in ("[", "{", "("):
        raise ParseError(f"{path}: BrainScriptNetworkBuilder must start with '[', '{{' or '(' ")
    return sec.get(key) or "", str(path)


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
