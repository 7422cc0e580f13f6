"""Every MEL test lints every model after every statement and every Editor call.

``net.lint()`` checks the IR's invariants (name index, users maps, groups, attributes against
the registry). The fixture wraps ``Interpreter.execute_statement`` and the public ``Editor``
methods, so a command that leaves a model inconsistent fails the test that ran it, whether
the command succeeded or raised. A lint failure is an AssertionError, so ``pytest.raises``
of a user error never swallows it.
"""

from __future__ import annotations

import functools
import inspect

import pytest
from mel_helpers import rbff_network

from netsurgeon import formats
from netsurgeon.errors import GraphError
from netsurgeon.lang.mel import Editor, Interpreter

LINTS = {"count": 0}


def _lint_all(editor: Editor, after: str) -> None:
    for name, net in editor.models.items():
        try:
            net.lint()
        except GraphError as exc:
            raise AssertionError(f"lint of model '{name}' after {after}: {exc}") from exc
    LINTS["count"] += 1


def _linting(fn, editor_of, describe):
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            result = fn(self, *args, **kwargs)
        except BaseException:
            _lint_all(editor_of(self), describe(args) + " (failed)")
            raise
        _lint_all(editor_of(self), describe(args))
        return result

    return wrapper


@pytest.fixture(autouse=True)
def lint_after_every_command(monkeypatch):
    """Lint all models after each MEL statement and each public Editor method."""
    monkeypatch.setattr(Interpreter, "execute_statement", _linting(
        Interpreter.execute_statement, lambda interp: interp.editor,
        lambda args: f"statement {args[0].text.strip()[:60]!r}"))
    for name, member in inspect.getmembers(Editor, inspect.isfunction):
        if not name.startswith("_"):
            monkeypatch.setattr(Editor, name, _linting(
                member, lambda ed: ed, lambda args, n=name: f"Editor.{n}{args!r}"[:80]))
    yield


@pytest.fixture
def model(tmp_path):
    """The RBFF test network saved as ``m.nsm``."""
    path = tmp_path / "m.nsm"
    formats.save(rbff_network(), path)
    return path
