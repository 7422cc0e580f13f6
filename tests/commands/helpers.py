"""Checks shared by the command tests."""

from __future__ import annotations

from pathlib import Path


def one_error(stderr: str) -> str:
    """The one line of a failed command (no traceback), without its 'netsurgeon: error: '."""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("netsurgeon: error: "), stderr
    return lines[0][len("netsurgeon: error: "):]


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())
