"""An editing session: the models, the default model, and each model's in-line NDL script.

CNTK's MEL keeps a table of named models and a default one that commands without a model
prefix work on; in-line NDL (``x = Times(W, y)``) goes to the default model's NDL script and
is evaluated pass by pass as commands need it (ndl-mel.md §C.6). Snippets
(``m = [ ... ]``, LoadNDLSnippet) make new models from NDL text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsurgeon.errors import EditError, SourceLocation, close_matches
from netsurgeon.graph import Network, Node
from netsurgeon.lang.mel._values import canonical_format
from netsurgeon.lang.mel._writes import DirectWriter, Writer

__all__ = ["Model", "Session"]

# wildcards in in-line NDL (a "*" not followed by a repeat count, A.5)
_WILDCARD_IN_NDL = re.compile(r"\*(?!\s*\d)")


@dataclass
class Model:
    """A model known to a session: its MEL name, network and in-line NDL script."""

    name: str
    network: Network
    script: Any = None  # netsurgeon.lang.ndl.NdlScript, created on first in-line NDL
    path: str | None = None


class Session:
    """Named models with a default one, the NDL macro table and the file writer.

    Args:
        macros: an NDL ``MacroTable`` or a path (or paths) of macro files for in-line NDL and
            snippets; the standard library is always there.
        writer: where files go (the MEL runner stages them until the script succeeded).
        seed: parameter-initialisation seed for nodes added with NDL.
        warn: called with each warning text (default: collected in ``warnings``).
    """

    def __init__(
        self,
        *,
        macros: Any = None,
        writer: Writer | None = None,
        seed: int = 1,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._models: dict[str, Model] = {}
        self._default: Model | None = None
        self._explicit_default = False
        self._macro_source = macros
        self._macros: Any = None
        self._counter: Any = None
        self.writer: Writer = writer or DirectWriter()
        self.seed = seed
        self.warnings: list[str] = []
        self._warn = warn

    # ---- models and the default model ------------------------------------------------------
    @property
    def models(self) -> dict[str, Network]:
        """Every loaded model by name, in load order."""
        return {m.name: m.network for m in self._models.values()}

    @property
    def default(self) -> Network | None:
        """The default model's network (None before any model exists)."""
        return self._default.network if self._default else None

    @property
    def default_name(self) -> str | None:
        return self._default.name if self._default else None

    def model(self, name: str | None = None) -> Network:
        """The network of model ``name`` (the default model when None)."""
        return self.entry(name).network

    def entry(self, name: str | None = None) -> Model:
        """The :class:`Model` called ``name`` (the default one when None)."""
        if name is None:
            return self.require_default()
        found = self._models.get(name.lower())
        if found is None:
            raise EditError(f"Model '{name}' does not exist",
                            hint=close_matches(name, [m.name for m in self._models.values()])
                            or self.models_hint())
        return found

    def find_entry(self, name: str) -> Model | None:
        """The model called ``name`` (case-insensitive), or None."""
        return self._models.get(name.lower())

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self._models.values()]

    def models_hint(self) -> str:
        if not self._models:
            return "no model is loaded: use LoadModel or CreateModel first"
        return "models: " + ", ".join(self.model_names)

    def require_default(self, what: str = "this") -> Model:
        if self._default is None:
            raise EditError(
                f"there is no default model for {what}",
                hint="load or create a model first, call SetDefaultModel(model), or prefix "
                "node names with a model name (model.node)",
            )
        return self._default

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        if self._warn is not None:
            self._warn(text)

    def _register(self, name: str, network: Network, *, recent: bool,
                  path: str | None = None) -> Model:
        """Add a model. ``recent``: loads and creates become the default unless SetDefaultModel
        was called (the seed documentation's rule); snippets only when there is none."""
        if not name or any(c in name for c in ".*"):
            raise EditError(f"invalid model name '{name}': it must not contain '.' or '*'")
        old = self._models.pop(name.lower(), None)
        if old is not None:
            self.warn(f"WARNING: conflicting model name {name}. Deleting the old model with the "
                      "same name.")
            if old is self._default:
                self._default = None
                self._explicit_default = False
        model = Model(name, network, path=path)
        network.name = name
        self._models[name.lower()] = model
        if self._default is None or (recent and not self._explicit_default):
            self._default = model
        return model

    def create(self, name: str = "default") -> Network:
        """A new empty model; it becomes the default unless set_default was called."""
        return self._register(name, Network(name), recent=True).network

    def load(self, path: str | os.PathLike[str], name: str | None = None,
             format: str | None = None) -> Network:
        """Load a model file (format from the first bytes unless given) under ``name``
        (default: the file's stem); it becomes the default unless set_default was called."""
        from netsurgeon import formats

        path = str(path)
        name = name or Path(path).stem.split(".")[0] or "model"
        network = formats.load(self.writer.resolve(path), format=canonical_format(format))
        return self._register(name, network, recent=True, path=path).network

    def add_model(self, name: str, network: Network) -> Network:
        """Register an existing Network under ``name`` (becomes the default like a load)."""
        return self._register(name, network, recent=True).network

    def set_default(self, name: str) -> None:
        """Make ``name`` the default model (loads no longer change it)."""
        model = self._models.get(name.lower())
        if model is None:
            raise EditError(f"Model '{name}' does not exist. Cannot set it to default.",
                            hint=self.models_hint())
        self._default = model
        self._explicit_default = True

    def unload(self, *names: str) -> None:
        """Forget models; unknown names only warn (as CNTK)."""
        for name in names:
            model = self._models.pop(name.lower(), None)
            if model is None:
                self.warn(f"WARNING: model {name} does not exist.")
                continue
            if model is self._default:
                self._default = None
                self._explicit_default = False

    # ---- NDL ----------------------------------------------------------------------------------
    @property
    def macros(self) -> Any:
        """The global NDL macro table (standard library plus the user's macros)."""
        if self._macros is None:
            from netsurgeon.lang.ndl import MacroTable

            source = self._macro_source
            if source is not None and hasattr(source, "load_text"):
                self._macros = source
            else:
                table = MacroTable.standard()
                if source is not None:
                    for p in [source] if isinstance(source, (str, os.PathLike)) else source:
                        table.load_file(str(p))
                self._macros = table
        return self._macros

    @property
    def counter(self) -> Any:
        """The session's ``unnamedN`` and automatic-seed counter (shared by every model)."""
        if self._counter is None:
            from netsurgeon.lang.ndl import NameCounter

            self._counter = NameCounter()
        return self._counter

    def _script(self, model: Model) -> Any:
        if model.script is None:
            from netsurgeon.lang.ndl import NdlScript

            model.script = NdlScript(model.network, macros=self.macros, counter=self.counter,
                                     allow_definitions=False, seed=self.seed)
        return model.script

    def ndl_statement(self, text: str, location: SourceLocation | None = None) -> None:
        """Add one in-line NDL statement to the default model (initial pass at once, §C.6)."""
        if self._default is None:
            key = text.split("=", 1)[0].strip()
            raise EditError(
                f"NDL Command cannot be executed until default model is established, cannot set "
                f"'{key}' without a default model", location=location,
                hint="load or create a model first, or call SetDefaultModel(model)",
            )
        if _WILDCARD_IN_NDL.search(text.partition("=")[2]):
            raise EditError(
                "wildcards ('*') are not allowed in in-line NDL; name each node in full",
                location=location, hint="use a MEL command (Copy, SetInput ...) for patterns")
        self._script(self._default).add_statement(text, location)

    def add_ndl(self, text: str, model: str | None = None, *, source: str = "<ndl>") -> list[Node]:
        """Add nodes written in NDL to a model (default: the default model), evaluate all
        passes and return the nodes created. NDL may use the model's nodes by full name."""
        from netsurgeon.lang.mel._script import parse_script, read_mel

        target = self.entry(model)
        saved = self._default
        self._default = target
        before = set(target.network.names())
        try:
            for stmt in parse_script(read_mel(text, source)):
                if stmt.kind not in ("ndl", "assign"):
                    raise EditError("add_ndl takes in-line NDL statements only (name = ...)",
                                    location=stmt.location)
                self.ndl_statement(stmt.text.strip(), stmt.location)
            self.run_passes(target)
        finally:
            self._default = saved
        return [n for n in target.network.nodes if n.name not in before]

    def define(self, name: str, ndl: str, *, location: SourceLocation | None = None) -> Network:
        """An NDL snippet (``name = [ ... ]``): a new model from NDL text; macro definitions in
        it become global. It becomes the default only if there is none yet."""
        from netsurgeon.lang.ndl import evaluate_snippet

        network = evaluate_snippet(ndl, macros=self.macros, counter=self.counter, name=name,
                                   location=location or SourceLocation("<snippet>", 1, 1))
        return self._register(name, network, recent=False).network

    def load_snippet(self, name: str, path: str | os.PathLike[str],
                     section: str | None = None) -> Network:
        """LoadNDLSnippet: evaluate section ``section`` of an NDL file (the whole file when
        None, as the documentation promises) as a snippet model called ``name``."""
        from netsurgeon.lang.mel._sections import read_section

        text, location = read_section(str(path), section)
        return self.define(name, text, location=location)

    def finish(self) -> None:
        """Run every pending in-line NDL pass on every model, so each network is complete."""
        for model in list(self._models.values()):
            self.run_passes(model)

    def run_passes(self, model: Model, upto: str = "final") -> None:
        """Run ``model``'s pending in-line NDL passes up to ``upto`` (initial, resolve, final)."""
        if model.script is not None:
            model.script.run_passes(upto)

    def run_all_passes(self, models: Iterable[Model]) -> None:
        """:meth:`run_passes` on each distinct model."""
        for model in {id(m): m for m in models}.values():
            self.run_passes(model)
