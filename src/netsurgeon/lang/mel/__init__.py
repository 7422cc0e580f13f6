"""MEL, CNTK's Model Editing Language (ndl-mel.md §C), and the Python editing API.

``run(script_or_path, variables={...})`` runs a script and returns its models; ``Editor``
does the same edits from Python. Files a script writes are staged and only put in place when
the whole script succeeded, so a failing script leaves every existing file untouched.
``import netsurgeon.mel`` gives this same module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from netsurgeon.lang.mel._commands import COMMANDS, find_command
from netsurgeon.lang.mel._interpreter import Interpreter, read_script
from netsurgeon.lang.mel._writes import StagedWriter
from netsurgeon.lang.mel.api import PROPERTIES, Editor, Model

__all__ = ["run", "Editor", "Model", "Interpreter", "COMMANDS", "PROPERTIES", "find_command",
           "RunResult"]


class RunResult(dict):
    """The models a script left, by name (a dict of Network), plus what it wrote."""

    written: list[str]
    warnings: list[str]
    default: str | None


def run(
    script: str | os.PathLike[str],
    variables: Mapping[str, Any] | None = None,
    *,
    macros: Any = None,
    dry_run: bool = False,
    editor: Editor | None = None,
    warn: Any = None,
    make_dirs: bool = False,
) -> RunResult:
    """Run a MEL script (a path or the text itself) and return its models by name.

    Args:
        variables: values for ``$name$`` in the script (names are case-insensitive).
        macros: NDL macro file path(s) or a MacroTable for in-line NDL and snippets.
        dry_run: run and validate everything, write nothing.
        editor: run on an existing Editor (its models stay loaded); files are still staged.
        warn: called with each warning (CNTK printed them).
        make_dirs: create the missing directories of the files the script writes (CNTK's
            driver did; ``netsurgeon run`` sets it).

    Raises:
        NetsurgeonError: with ``file:line:col`` of the failing statement; nothing was written.
    """
    text, file = read_script(script)
    writer = StagedWriter(dry_run=dry_run, make_dirs=make_dirs)
    if editor is None:
        editor = Editor(macros=macros, writer=writer, warn=warn)
    previous, editor.writer = editor.writer, writer
    try:
        Interpreter(editor, variables).execute(text, file)
        editor.finish()  # in-line NDL after the last command still gets its inputs
        written = writer.commit()
    except BaseException:
        writer.discard()
        raise
    finally:
        editor.writer = previous
    result = RunResult(editor.models)
    result.written = written
    result.warnings = list(editor.warnings)
    result.default = editor.default_name
    return result

