"""NDL scripts: whole files (``build_network``), MEL snippets and incremental in-line scripts.

:class:`NdlScript` binds parsed statements to one network and runs the three passes over the
statements each pass has not seen yet, which is what MEL's in-line NDL needs (§C.6).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import NetsurgeonError, ParseError, SourceLocation
from netsurgeon.lang.config import (
    SourceText,
    Tokenizer,
    find_braces,
    read_source,
    read_text_file,
    split_array,
    unquote,
)
from netsurgeon.lang.ndl._evaluate import Evaluator
from netsurgeon.lang.ndl._macros import MacroTable, NameCounter
from netsurgeon.lang.ndl._parser import Parser
from netsurgeon.lang.ndl._symbols import NdlCall, NdlConst, NdlMacroCall, Scope

if TYPE_CHECKING:
    from netsurgeon.graph import Network, Node
    from netsurgeon.ops import OpRegistry
    from netsurgeon.progress import ProgressBar, ProgressFactory

__all__ = ["NdlScript", "build_network", "evaluate_snippet", "file_blocks", "variable_lookup",
           "PASSES"]

PASSES = ("initial", "resolve", "final")

def variable_lookup(variables: Any) -> Callable[[str], str | None]:
    """A case-insensitive ``$var$`` lookup from a mapping, a callable or None (no variables)."""
    if variables is None:
        return lambda _name: None
    if callable(variables) and not isinstance(variables, Mapping):
        return variables
    low = {str(k).lower(): str(v) for k, v in variables.items()}
    return lambda name: low.get(name.lower())


def file_blocks(src: SourceText, run: str | None = None, load: str | None = None
                ) -> list[tuple[int, int]]:
    """FileParse (§B.1): the text ranges to parse as NDL, in order.

    If the text (or the arguments) names ``load``/``run`` sections, those sections' ``[...]``
    values, load first; otherwise the whole text as one block.
    """
    text = src.text
    if run is None and load is None and not _has_section_keys(text):
        return [(0, len(text))]
    entries: dict[str, list[tuple[int, int]]] = {}
    values: dict[str, str] = {}
    tok = Tokenizer(src, ";")
    for rec in tok:
        body = rec.text
        eq = body.find("=")
        brace = min((i for i in (body.find(c) for c in "([{\"") if i >= 0), default=-1)
        if eq <= 0 or (0 <= brace < eq):
            continue
        key = body[:eq].strip().lower()
        vstart = rec.start + eq + 1
        while vstart < rec.end and text[vstart] in " \t":
            vstart += 1
        if vstart < rec.end and text[vstart] in "([{\"":
            close = find_braces(text, vstart, None, src.location)
            span = (vstart, close + 1)
            if close + 1 > tok.pos:
                tok.pos = close + 1
        else:
            span = (vstart, rec.end)
        value = text[span[0]:span[1]].strip()
        if value.startswith("[") and key in entries and values[key].startswith("["):
            entries[key].append(span)
        else:
            entries[key] = [span]
            values[key] = value
    load_text = load if load is not None else values.get("load")
    run_text = run if run is not None else values.get("run")
    if load_text is None and run_text is None:
        return [(0, len(text))]
    blocks: list[tuple[int, int]] = []
    for which, names in (("load", load_text), ("run", run_text)):
        if names is None:
            continue
        for section in split_array(unquote(names.strip())):
            spans = entries.get(section.lower())
            if spans is None or not values[section.lower()].startswith(("[", "{")):
                raise ParseError(
                    f"required parameter missing: section '{section}' named by {which}= is not "
                    "defined in this file", location=src.location(0),
                    hint=f"add {section}=[ ... ] or fix the {which}= list")
            blocks.extend(spans)
    return blocks


_SECTION_KEYS = re.compile(r"(?i)(?<![\w.])(load|run)\s*=")


def _has_section_keys(text: str) -> bool:
    """Whether ``text`` assigns ``load`` or ``run`` (the words looked for first: the regex
    alone costs more than the rest of reading a big file)."""
    low = text.lower()
    return ("load" in low or "run" in low) and _SECTION_KEYS.search(text) is not None


class NdlScript:
    """NDL statements bound to a network, evaluated pass by pass.

    Args:
        network: where the nodes go (a loaded model for MEL in-line NDL).
        macros: the global macro table (default: the standard library).
        counter: the session's ``unnamedN`` counter and seed counter.
        allow_definitions: macro definitions allowed (NDL files, snippets) or not (in-line).
        seed: the first automatic random seed (CNTK's ``randomSeedOffset`` + 1).
        special_lists: read FeatureNodes/LabelNodes/... after the resolve pass.
        require_features: fail if the network ends up without a feature node.
        base_dir: where relative ``initFromFilePath`` files are looked for.
        source: the file name errors about the whole script name (default: the first parsed).
    """

    def __init__(self, network: Network, *, macros: MacroTable | None = None,
                 counter: NameCounter | None = None, allow_definitions: bool = False,
                 seed: int = 1, registry: OpRegistry | None = None, special_lists: bool = True,
                 require_features: bool = False, base_dir: str | Path | None = None,
                 source: str | None = None) -> None:
        self.network = network
        self.registry = registry or network.registry
        self.macros = macros if macros is not None else MacroTable.standard(self.registry)
        self.counter = counter if counter is not None else NameCounter()
        self.allow_definitions = allow_definitions
        self.special = special_lists
        self.require_features = require_features
        self.scope = Scope()
        self.parser = Parser(self.macros, self.counter, self.registry)
        self.evaluator = Evaluator(network, self.registry, self.counter, seed_offset=seed - 1,
                                   base_dir=Path(base_dir) if base_dir is not None else None)
        self._done = {p: 0 for p in PASSES}
        self._source = source  # the file, for errors about the whole script

    def build_while_parsing(self) -> None:
        """Build plain calls as they are parsed (:meth:`Parser.simple_calls`), each one while
        every statement before it is built: for a whole script into a new network, where
        nothing runs between the passes. The network, its nodes and groups, the symbols and
        the errors are what the passes alone make (an alias of a built call, which renames
        its node, starts again from an empty network and leaves everything to the passes)."""
        if len(self.network):
            raise ValueError("building while parsing needs an empty network")
        self.evaluator.link_early = True
        self.parser.early = _EarlyBuild(self)

    # ---- adding statements -----------------------------------------------------------------------
    def parse(self, src: SourceText, start: int = 0, end: int | None = None) -> None:
        """Parse a block of statements (no passes run)."""
        if self._source is None:
            self._source = src.source
        self.parser.parse_block(src, start, len(src.text) if end is None else end, self.scope,
                                mode="normal", allow_definitions=self.allow_definitions)

    def add_text(self, text: str, source: str = "<string>",
                 location: SourceLocation | None = None) -> None:
        """Parse NDL text (already comment-stripped and substituted); no passes run."""
        self.parse(SourceText.plain(text, source, location))

    def add_statement(self, text: str, location: SourceLocation | None = None) -> None:
        """Parse one in-line statement and run the initial pass for it (§C.6)."""
        self.parse(SourceText.plain(text, location.file if location else None, location))
        self.run_passes("initial")

    def run_passes(self, upto: str = "final", progress: ProgressBar | None = None) -> None:
        """Run each pass up to ``upto`` over the statements it has not processed yet
        (``progress``: a bar of :mod:`netsurgeon.progress`, updated per statement and pass)."""
        if upto not in PASSES:
            raise ValueError(f"upto must be one of {PASSES}, not {upto!r}")
        ev = self.evaluator
        for pass_name in PASSES[:PASSES.index(upto) + 1]:
            if pass_name == "resolve" and ev.pending_tags:
                ev.apply_pending_tags()  # of the statements built while parsing: the first
            statements = self.scope.statements
            # a call without nested calls (most statements) goes to its step directly
            direct = {"initial": lambda call: ev.create(call, "", None),
                      "resolve": ev.connect, "final": ev.initialize}[pass_name]
            done = self._done
            while done[pass_name] < len(statements):
                stmt = statements[done[pass_name]]
                done[pass_name] += 1
                if type(stmt) is NdlCall and not stmt.nested:
                    direct(stmt)
                else:
                    ev.run(stmt, pass_name)
                if progress is not None:
                    progress.update(1)
            if pass_name == "resolve" and self.special:
                self.evaluator.special_lists(
                    self.scope, require_features=self.require_features,
                    location=SourceLocation(self._source, 1, 1) if self._source else None)

    # ---- reading symbols -------------------------------------------------------------------------
    def symbol(self, name: str) -> Any:
        """The parser-level symbol called ``name`` (dot rule), or None."""
        return self.scope.find(name)

    def lookup(self, name: str) -> Node | float | None:
        """What an NDL symbol stands for: its node, a number (constants), or None.

        A symbol that stands for a model node (``x = features`` in in-line NDL) gives that
        node; unevaluated calls and unresolvable references give None.
        """
        sym = self.scope.find(name)
        if sym is None:
            return None
        from netsurgeon.graph import Node

        ev = self.evaluator
        for _ in range(10_000):
            d = ev.deref(sym, network=True)
            if isinstance(d, Node):
                return d if d.network is self.network else None
            if isinstance(d, NdlConst):
                return float(d.value)
            if isinstance(d, NdlCall):
                comp = d.comp
                return comp if comp is not None and comp.network is self.network else None
            if isinstance(d, NdlMacroCall):
                sym = d.return_symbol()
                if sym is None:
                    return None
                continue
            return None
        return None

    def rename_symbol(self, old: str, new: str) -> None:
        """Make the top-level symbol ``old`` known as ``new`` (its node is not renamed; node
        renames need nothing here, symbols hold the Node objects)."""
        sym = self.scope.table.pop(old.lower(), None)
        if sym is None:
            raise ParseError(f"no NDL symbol named '{old}'")
        Parser.bind_key(self.scope, new, sym, None)

    @property
    def statements(self) -> list[Any]:
        return list(self.scope.statements)


class _EarlyBuild:
    """The parser's view of a script that builds while parsing (``Parser.early``)."""

    __slots__ = ("script", "done", "build", "quick")

    def __init__(self, script: NdlScript) -> None:
        self.script = script
        self.done = script._done
        self.build = script.evaluator.build_now
        self.quick = script.evaluator._quick  # build_now's plans of calls of inputs only

    @property
    def network(self) -> Network:
        return self.script.network

    def undo(self) -> None:
        """Back to nothing built, in a new empty network; parse only from now on."""
        from netsurgeon.graph import Network

        script = self.script
        for stmt in script.scope.statements[:self.done["initial"]]:
            stmt.comp = None
            stmt.input_map = []
            stmt.initialized = False
        for name in self.done:
            self.done[name] = 0
        old = script.network
        script.network = script.evaluator.network = Network(old.name, old.registry)
        script.evaluator.pending_tags.clear()
        script.parser.early = None


def build_network(text: str, *, source: str = "<string>", macros: MacroTable | None = None,
                  variables: Any = None, counter: NameCounter | None = None, name: str = "model",
                  seed: int = 1, registry: OpRegistry | None = None, run: str | None = None,
                  load: str | None = None, validate: bool = True,
                  progress: bool | ProgressFactory | None = None) -> Network:
    """Build a network from a whole NDL file (§B.1): ``$var$`` substitution, load/run
    sections, macro definitions, the three passes, special lists and parameter initialisation;
    unless ``validate`` is False, then :func:`~netsurgeon.graph.passes.prepare` (validation,
    shape inference, and the values of parameters whose 0 dimensions it inferred).

    ``progress``: a bar (see :mod:`netsurgeon.progress`) counting the top-level statements
    through the three passes. Raises ParseError (with file:line:col) or ValidationError.
    """
    from netsurgeon.graph import Network, prepare
    from netsurgeon.progress import bar

    src = read_source(text, source, variable_lookup(variables))
    network = Network(name, registry)
    base_dir = Path(source).parent if source and not source.startswith("<") else None
    script = NdlScript(network, macros=macros, counter=counter, allow_definitions=True, seed=seed,
                       registry=registry, special_lists=True, require_features=True,
                       base_dir=base_dir, source=source)
    script.build_while_parsing()  # nothing runs between the passes of a whole file
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of small objects and no cycles to free: the collector only slows us
    try:
        for start, end in file_blocks(src, run, load):
            script.parse(src, start, end)
        network = script.network  # a new one if building while parsing was undone
        with bar(progress, f"build {network.name}", len(PASSES) * len(script.scope.statements),
                 "statements") as shown:
            built = sum(script._done.values())
            if built:
                shown.update(built)  # statement passes done while parsing
            script.run_passes("final", shown)
    finally:
        if gc_was_enabled:
            gc.enable()
    if validate:
        try:
            prepare(network)
        except NetsurgeonError as exc:
            node = network.get(exc.node) if exc.node else None
            if node is not None and node.location is not None:
                exc.with_location(node.location)
            raise
    network.metadata.setdefault("source", source)
    return network


def build_file(path: str | Path, **kwargs: Any) -> Network:
    """:func:`build_network` on a file."""
    p = Path(path)
    text = read_text_file(p, "NDL file")
    kwargs.setdefault("name", p.stem)
    return build_network(text, source=str(p), **kwargs)


def evaluate_snippet(text: str, *, macros: MacroTable | None = None,
                     counter: NameCounter | None = None, location: SourceLocation | None = None,
                     name: str = "model", seed: int = 1,
                     registry: OpRegistry | None = None) -> Network:
    """A MEL NDL snippet ``name = [ ... ]`` (§C.7): a new network from one NDL block.

    Macro definitions are allowed (and go into ``macros``); ``load``/``run`` are ordinary
    statements; all three passes run and the special lists are read. No validation runs.
    ``text`` may include the enclosing brackets. The seed documentation's promise that a
    snippet need not be complete is kept: no feature node is required.
    """
    from netsurgeon.graph import Network

    network = Network(name, registry)
    script = NdlScript(network, macros=macros, counter=counter, allow_definitions=True, seed=seed,
                       registry=registry, special_lists=True, require_features=False)
    src = SourceText.plain(text, location.file if location else "<snippet>", location)
    script.parse(src)
    script.run_passes("final")
    return network
