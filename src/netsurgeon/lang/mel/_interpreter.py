"""The MEL interpreter: statements in, :class:`~netsurgeon.lang.mel.api.Editor` calls out.

Each statement is dispatched to one Editor method; any error gets the statement's
``file:line:col``. In-line NDL goes to the default model's NDL script (initial pass at once,
the other passes when a command needs them, §C.6); ``m = [ ... ]`` is an NDL snippet (§C.7).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from netsurgeon.errors import EditError, NetsurgeonError
from netsurgeon.lang.config import read_text_file
from netsurgeon.lang.mel._commands import (
    COMMANDS,
    CommandSpec,
    find_command,
    match_keyword,
    unknown_command,
)
from netsurgeon.lang.mel._script import Statement, parse_script, read_mel
from netsurgeon.lang.mel._values import to_bool
from netsurgeon.lang.mel.api import Editor

__all__ = ["Interpreter", "read_script", "bind_arguments"]


def read_script(script: str | os.PathLike[str]) -> tuple[str, str | None]:
    """(text, file name): a path (an existing file, or any ``os.PathLike``) or MEL text."""
    if isinstance(script, os.PathLike):
        path = Path(script)
    elif "\n" not in script and "(" not in script and "=" not in script:
        path = Path(script)
    else:
        return script, None
    return read_text_file(path, "MEL script"), str(path)


def bind_arguments(spec: CommandSpec, stmt: Statement) -> tuple[list[str], dict[str, str]]:
    """Split arguments into positional ones and options (C.2): an unquoted ``name=value``
    after the required arguments is an option, matched with the abbreviation rule."""
    positional: list[str] = []
    options: dict[str, str] = {}
    for arg in stmt.args:
        opt = arg.option() if spec.options else None
        if opt is not None and len(positional) >= spec.min_args:
            name, value = opt
            canon = match_keyword(name, spec.options)
            if canon is None:
                raise EditError(f"Invalid optional parameter '{name}' for {spec.name}; valid "
                                f"options: {', '.join(spec.options)}", hint=f"usage: {spec.usage}")
            options["copy" if canon == "copyFlag" else canon] = value
            continue
        if options:
            raise EditError(f"{spec.name}: positional argument '{arg.text}' after an option",
                            hint=f"usage: {spec.usage}")
        positional.append(arg.text)
    high = spec.max_args
    if len(positional) < spec.min_args or (high is not None and len(positional) > high):
        want = (f"{spec.min_args}" if high == spec.min_args else
                f"{spec.min_args} or more" if high is None else f"{spec.min_args} to {high}")
        raise EditError(f"Invalid number of parameters for {spec.name}: expected {want}, got "
                        f"{len(positional)}", hint=f"usage: {spec.usage}")
    return positional, options


class Interpreter:
    """Runs MEL text on an Editor.

    Args:
        editor: the models, default model, macros and file writer.
        variables: ``$name$`` values (case-insensitive names).
    """

    def __init__(self, editor: Editor, variables: Mapping[str, Any] | None = None) -> None:
        self.editor = editor
        self._vars = {str(k).lower(): str(v) for k, v in (variables or {}).items()}
        self._handlers: dict[str, Callable[[list[str], dict[str, str]], None]] = {
            "CreateModel": self._create,
            "CreateModelWithName": self._create_with_name,
            "LoadModel": self._load,
            "LoadModelWithName": self._load_with_name,
            "LoadNDLSnippet": self._load_snippet,
            "SaveDefaultModel": self._save_default,
            "SaveModel": self._save,
            "SetDefaultModel": lambda a, o: self.editor.set_default(a[0]),
            "UnloadModel": lambda a, o: self.editor.unload(*a),
            "DumpModel": self._dump,
            "DumpNode": self._dump_node,
            "CopyNode": lambda a, o: self.editor.copy(a[0], a[1], o.get("copy", "all")),
            "CopySubTree": self._copy_subtree,
            "CopyNodeInputs": lambda a, o: self.editor.copy_inputs(a[0], a[1]),
            "SetNodeInput": lambda a, o: self.editor.set_input(a[0], a[1], a[2]),
            "SetNodeInputs": lambda a, o: self.editor.set_inputs(a[0], *a[1:]),
            "SetProperty": lambda a, o: self.editor.set_property(a[0], a[1], a[2]),
            "SetPropertyForSubTree":
                lambda a, o: self.editor.set_property_for_subtree(a[0], a[1], a[2]),
            "RemoveNode": lambda a, o: self.editor.remove(*a),
            "DeleteNode": lambda a, o: self.editor.remove(*a),
            "Rename": lambda a, o: self.editor.rename(a[0], a[1]),
            "ReviseParameter": lambda a, o: self.editor.revise_parameter(a[0], a[1]),
        }

    def lookup(self, name: str) -> str | None:
        return self._vars.get(name.lower())

    def parse(self, text: str, file: str | None = None) -> list[Statement]:
        """Read and classify a whole script (syntax errors surface before anything runs).

        A file with top-level ``load=``/``edit=`` keys (C.1) is CNTK's sectioned form: the
        ``load`` sections' macros become global, and the ``edit`` sections (``:``-separated)
        are the statements, in that order."""
        src = read_mel(text, file, self.lookup)
        statements = parse_script(src)
        keys: dict[str, Statement] = {}
        for stmt in statements:
            if stmt.kind == "ndl":
                key = stmt.text.partition("=")[0].strip().lower()
                if key in ("load", "edit"):
                    keys.setdefault(key, stmt)
        if not keys:
            return statements
        if "edit" not in keys:
            raise EditError("this MEL file has load= but no edit=, so CNTK ran none of its "
                            "commands", location=keys["load"].location,
                            hint="add edit=SECTION naming the sections to run (':'-separated)")
        if "load" in keys:
            self.editor.macros.load_text(text, file or "<string>", self.lookup)
        sections = {s.target.lower(): s for s in statements if s.kind == "snippet"}
        out: list[Statement] = []
        names = keys["edit"].text.partition("=")[2].strip().strip('"')
        for name in [n.strip() for n in names.split(":") if n.strip()]:
            section = sections.get(name.lower())
            if section is None or section.body_span is None:
                raise EditError(f"edit section '{name}' is not defined in this file",
                                location=keys["edit"].location,
                                hint="sections: " + ", ".join(s.target for s in sections.values()))
            out.extend(parse_script(src, *section.body_span))
        return out

    def execute(self, text: str, file: str | None = None) -> None:
        """Run every statement in order."""
        for stmt in self.parse(text, file):
            self.execute_statement(stmt)

    def execute_statement(self, stmt: Statement) -> None:
        """Run one statement; a user error gets the statement's location."""
        try:
            self._dispatch(stmt)
        except NetsurgeonError as exc:
            raise exc.with_location(stmt.location) from None

    def _dispatch(self, stmt: Statement) -> None:
        if stmt.kind == "ndl":
            self.editor.ndl_statement(stmt.text.strip(), stmt.location)
        elif stmt.kind == "snippet":
            self.editor.define(stmt.target, stmt.args[0].text,
                               location=stmt.body_location or stmt.location)
        elif stmt.kind == "assign":
            spec = find_command(stmt.name)
            if spec is not None and spec.name in ("CreateModel", "CreateModelWithName"):
                if stmt.args:
                    raise EditError(f"{stmt.target} = CreateModel() takes no arguments")
                self.editor.create(stmt.target)
            elif spec is not None and spec.name in ("LoadModel", "LoadModelWithName"):
                load = next(c for c in COMMANDS if c.name == "LoadModel")
                args, opts = bind_arguments(load, stmt)
                self.editor.load(args[0], stmt.target, opts.get("format"))
            else:
                self.editor.ndl_statement(stmt.text.strip(), stmt.location)
        else:
            spec = find_command(stmt.name)
            if spec is None:
                raise unknown_command(stmt.name)
            args, opts = bind_arguments(spec, stmt)
            self._handlers[spec.name](args, opts)

    # ---- commands needing more than one call ---------------------------------------------------
    def _create(self, a: list[str], o: dict[str, str]) -> None:
        self.editor.create("default")  # a bare CreateModel() works (CNTK's source rejected it)

    def _create_with_name(self, a: list[str], o: dict[str, str]) -> None:
        self.editor.create(a[0])

    def _load(self, a: list[str], o: dict[str, str]) -> None:
        self.editor.load(a[0], "default", o.get("format"))

    def _load_with_name(self, a: list[str], o: dict[str, str]) -> None:
        self.editor.load(a[1], a[0], o.get("format"))

    def _load_snippet(self, a: list[str], o: dict[str, str]) -> None:
        self.editor.load_snippet(a[0], a[1], o.get("section"))

    def _save(self, a: list[str], o: dict[str, str]) -> None:
        if len(a) == 1:  # the documentation's SaveModel("file"): the default model
            self.editor.save(a[0], None, o.get("format"))
        else:
            self.editor.entry(a[0])  # unknown model: clear error before anything else
            self.editor.save(a[1], a[0], o.get("format"))

    def _save_default(self, a: list[str], o: dict[str, str]) -> None:
        self.editor.save(a[0], None, o.get("format"))

    def _dump(self, a: list[str], o: dict[str, str]) -> None:
        if a[0].lower() not in {n.lower() for n in self.editor.models}:
            raise EditError(f"Model '{a[0]}' does not exist. Cannot dump non-existent model.",
                            hint=self.editor.models_hint())
        self.editor.dump(a[1], a[0], to_bool(o.get("includeData", "false"), "includeData"))

    def _dump_node(self, a: list[str], o: dict[str, str]) -> None:
        self.editor.dump_nodes(a[0], a[1], to_bool(o.get("includeData", "false"), "includeData"))

    def _copy_subtree(self, a: list[str], o: dict[str, str]) -> None:
        from netsurgeon.graph import split_model_prefix

        if len(a) == 3:  # CNTK: (from, toModel, namePrefix)
            self.editor.copy_subtree(a[0], a[2], self.editor.entry(a[1]).name, o.get("copy", "all"))
            return
        model, rest = split_model_prefix(a[1], list(self.editor.models))
        # the documentation's two-argument form: the target root is the source root's name
        # with a prefix (CopySubTree(L2.RL, new.L2.RL)), or just a model (same names there)
        _, source = split_model_prefix(a[0], list(self.editor.models))
        if model is not None and rest == "*" and not a[1].rstrip().endswith("*"):
            prefix = ""
        elif rest.endswith(source) and rest != source:
            prefix = rest[: len(rest) - len(source)]
        else:
            raise EditError(
                f"CopySubTree({a[0]}, {a[1]}): the target must be the source root's name with a "
                f"prefix (e.g. new.{source}), or a model name",
                hint="or use CopySubTree(fromRoot, toModel, namePrefix)")
        self.editor.copy_subtree(a[0], prefix, model, o.get("copy", "all"))

