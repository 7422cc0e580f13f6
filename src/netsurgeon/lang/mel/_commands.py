"""The MEL command table: names, aliases, argument counts, options (ndl-mel.md §C.3, §C.8).

Command names, option names and keyword values use CNTK's abbreviation rule: case-insensitive,
and a word may be a *prefix* of the full name if it is at least half as long (integer division).
The first entry in table order that matches wins, main name before aliases, exactly as CNTK.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from netsurgeon.errors import EditError, close_matches

__all__ = ["CommandSpec", "COMMANDS", "find_command", "abbreviates", "match_keyword",
           "unknown_command"]


def abbreviates(word: str, full: str) -> bool:
    """CNTK's rule: ``word`` names ``full`` if it is a CI prefix at least len(full)//2 long."""
    w, f = word.lower(), full.lower()
    return len(w) >= len(f) // 2 and f.startswith(w) and len(w) > 0


def match_keyword(word: str, choices: tuple[str, ...]) -> str | None:
    """The first choice ``word`` abbreviates, or None."""
    for choice in choices:
        if abbreviates(word, choice):
            return choice
    return None


@dataclass(frozen=True)
class CommandSpec:
    """One MEL command: canonical name, aliases, positional argument range, options."""

    name: str
    aliases: tuple[str, ...]
    min_args: int
    max_args: int | None  # None: any number
    options: tuple[str, ...] = ()
    usage: str = ""
    option_aliases: dict[str, str] = field(default_factory=dict)

    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


# CNTK's matching order (C.3). DumpNetwork and SaveModelWithName are accepted too: the
# documentation promises them.
COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("CreateModel", (), 0, 0, (), "m = CreateModel()"),
    CommandSpec("CreateModelWithName", (), 1, 1, (), "CreateModelWithName(m)"),
    CommandSpec("LoadModel", (), 1, 1, ("format",), 'm = LoadModel("file"[, format=cntk|native])'),
    CommandSpec("LoadModelWithName", (), 2, 2, ("format",),
                'LoadModelWithName(m, "file"[, format=cntk|native])'),
    CommandSpec("LoadNDLSnippet", (), 2, 2, ("section",),
                'LoadNDLSnippet(m, "file.ndl"[, section=name])'),
    CommandSpec("SaveDefaultModel", (), 1, 1, ("format",),
                'SaveDefaultModel("file"[, format=...])'),
    CommandSpec("SaveModel", ("SaveModelWithName",), 1, 2, ("format",),
                'SaveModel([m, ]"file"[, format=...])'),
    CommandSpec("SetDefaultModel", (), 1, 1, (), "SetDefaultModel(m)"),
    CommandSpec("UnloadModel", (), 1, None, (), "UnloadModel(m[, m2, ...])"),
    CommandSpec("DumpModel", ("Dump", "DumpNetwork"), 2, 2, ("includeData",),
                'DumpModel(m, "file"[, includeData=false])'),
    CommandSpec("DumpNode", (), 2, 2, ("includeData",),
                'DumpNode(node, "file"[, includeData=false])'),
    CommandSpec("CopyNode", ("Copy",), 2, 2, ("copy", "copyFlag"),
                "Copy(from, to[, copy=all|value])"),
    CommandSpec("CopySubTree", (), 2, 3, ("copy", "copyFlag"),
                "CopySubTree(fromRoot, toModel, namePrefix[, copy=all|value]) or "
                "CopySubTree(fromRoot, [toModel.]prefixFromRoot[, copy=...])"),
    CommandSpec("CopyNodeInputs", ("CopyInputs",), 2, 2, (), "CopyInputs(from, to)"),
    CommandSpec("SetNodeInput", ("SetInput",), 3, 3, (), "SetInput(node, inputIndex, inputNode)"),
    CommandSpec("SetNodeInputs", ("SetInputs",), 2, None, (),
                "SetInputs(node, input0[, input1, ...])"),
    CommandSpec("SetProperty", (), 3, 3, (), "SetProperty(node, property, value)"),
    CommandSpec("SetPropertyForSubTree", (), 3, 3, (),
                "SetPropertyForSubTree(root, property, value)"),
    CommandSpec("RemoveNode", ("Remove",), 1, None, (), "Remove(node[, node2, ...])"),
    CommandSpec("DeleteNode", ("Delete",), 1, None, (), "Delete(node[, node2, ...])"),
    CommandSpec("Rename", (), 2, 2, (), "Rename(oldName, newName)"),
    CommandSpec("ReviseParameter", (), 2, 2, (), 'ReviseParameter(node, "values.txt")'),
)

_ALL_SPELLINGS = [s for c in COMMANDS for s in c.spellings()]


@functools.lru_cache(maxsize=256)
def find_command(word: str) -> CommandSpec | None:
    """The command ``word`` names under CNTK's abbreviation rule, or None."""
    for spec in COMMANDS:
        for spelling in spec.spellings():
            if abbreviates(word, spelling):
                return spec
    return None


def unknown_command(word: str) -> EditError:
    """The error for a MEL command name that does not exist, with close spellings as hint."""
    hint = close_matches(word, _ALL_SPELLINGS)
    if word.lower() in ("createmodelwithname",):
        hint = None
    return EditError(
        f"Unknown Editor function '{word}'",
        hint=hint or "MEL commands are " + ", ".join(c.name for c in COMMANDS)
        + "; macros cannot be defined in MEL (use --macros or an NDL snippet m = [ ... ])",
    )
