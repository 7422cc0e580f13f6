"""Small helpers shared by the CLI commands."""

from __future__ import annotations

import sys

from netsurgeon.errors import NetsurgeonError
from netsurgeon.ops import Category

__all__ = ["parse_assignments", "write_text", "add_format_option", "parameter_summary",
           "input_names", "make_parent_dirs"]


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


def make_parent_dirs(path: str) -> None:
    """Create the directories above the file ``path`` that do not exist yet (CNTK created
    the directories of the files it wrote). Raises NetsurgeonError, one line, if one cannot
    be made (a file in the way, no permission)."""
    import os
    from pathlib import Path

    parent = Path(path).parent
    if str(parent) in ("", ".") or parent.is_dir():
        return
    blocker = next((p for p in (parent, *parent.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise NetsurgeonError(f"cannot write {path}: {blocker} is a file, not a directory",
                              hint="choose another output path")
    try:
        os.makedirs(parent, exist_ok=True)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise NetsurgeonError(f"cannot create the directory {parent} for {path}: {reason}",
                              hint="choose another output path") from None


def parameter_summary(net) -> tuple[int, int]:
    """(number of parameter nodes, number of values they hold)."""
    params = [n for n in net.nodes if n.op in net.registry.op_set(Category.PARAMETER)]
    return len(params), sum(int(n.value.size) for n in params if n.value is not None)


def input_names(net, nodes) -> list[str]:
    """Names of the input (reader-fed) nodes among ``nodes``."""
    inputs = net.registry.op_set(Category.INPUT)
    return [n.name for n in nodes if n.op in inputs]


def add_format_option(parser, flag: str = "--format") -> None:
    """Add a ``--format native|cntk|cntk-v2|onnx`` option (default: detect) under the name
    ``flag``."""
    parser.add_argument(flag, choices=("native", "cntk", "cntk-v2", "onnx"), default=None,
                        help="model format (default: detected from the file or the extension)")


def report_error(args, exc: BaseException) -> int:
    """Print a netsurgeon or OS error in one line and return 2: the exit status of commands
    whose 1 means "different" (``diff``, ``compare``). ``--debug`` re-raises it."""
    import sys

    from netsurgeon.errors import NetsurgeonError

    if getattr(args, "debug", False):
        raise exc
    from netsurgeon.cli import os_error_text

    text = str(exc) if isinstance(exc, NetsurgeonError) else os_error_text(exc)
    print(f"netsurgeon: error: {text}", file=sys.stderr)
    return 2
