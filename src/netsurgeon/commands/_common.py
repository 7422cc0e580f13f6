"""Small helpers shared by the CLI commands."""

from __future__ import annotations

import sys

from netsurgeon.errors import NetsurgeonError
from netsurgeon.ops import Category

__all__ = ["parse_assignments", "write_text", "add_format_option", "parameter_summary",
           "input_names"]


def parse_assignments(items: list[str] | None, what: str = "--set") -> dict[str, str]:
    """``NAME=VALUE`` strings to a dict; raises NetsurgeonError on a malformed item."""
    out: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise NetsurgeonError(f"{what} expects NAME=VALUE, got '{item}'")
        out[name.strip()] = value
    return out


def write_text(text: str, path: str | None) -> None:
    """Write ``text`` to ``path`` atomically, or to stdout when path is None or '-'.

    Raises:
        FormatError: ``path`` is a directory, device or FIFO, its directory is missing, or the
            write failed (full disk, read-only file system...); an existing file is unchanged.
    """
    if path in (None, "-"):
        sys.stdout.write(text)
        if not text.endswith("\n"):
            sys.stdout.write("\n")
        return
    from netsurgeon.formats._atomic import atomic_write

    with atomic_write(path) as f:  # the string as given: a trailing '/' means a directory
        f.write(text.encode("utf-8"))


def parameter_summary(net) -> tuple[int, int]:
    """(number of parameter nodes, number of values they hold)."""
    params = [n for n in net.nodes if n.op in net.registry.op_set(Category.PARAMETER)]
    return len(params), sum(int(n.value.size) for n in params if n.value is not None)


def input_names(net, nodes) -> list[str]:
    """Names of the input (reader-fed) nodes among ``nodes``."""
    inputs = net.registry.op_set(Category.INPUT)
    return [n.name for n in nodes if n.op in inputs]


def add_format_option(parser, flag: str = "--format") -> None:
    """Add a ``--format native|cntk|onnx`` option (default: detect) under the name ``flag``."""
    parser.add_argument(flag, choices=("native", "cntk", "onnx"), default=None,
                        help="model format (default: detected from the file or the extension)")
