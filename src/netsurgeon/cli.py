"""The ``netsurgeon`` command line: a thin dispatcher over ``netsurgeon.commands``.

Each subcommand lives in its own module with ``configure(parser)`` and ``run(args) -> int``,
imported only when chosen, so editing commands never import torch. A NetsurgeonError prints
as one line (file:line:col, node, what to fix) and exits 1, and so does an OS error that no
command turned into one (it names the path and the reason) or running out of memory;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from netsurgeon.errors import NetsurgeonError

__all__ = ["main", "COMMANDS"]

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("netsurgeon.commands.build", "build a network from an NDL file and save it"),
    "dump": ("netsurgeon.commands.dump", "print every node of a model (CNTK Dump format)"),
    "validate": ("netsurgeon.commands.validate", "validate a model: inputs, arity, shapes"),
    "edit": ("netsurgeon.commands.edit", "run a MEL script"),
    "convert": ("netsurgeon.commands.convert", "convert a model between formats"),
    "eval": ("netsurgeon.commands.eval", "evaluate a model on CTF data or .npy arrays"),
    "train": ("netsurgeon.commands.train", "train a model on CTF data"),
    "bs": ("netsurgeon.commands.bs", "build a network from BrainScript, or print its parse tree"),
    "cleanup": ("netsurgeon.commands.cleanup",
                "remove temporary files that interrupted netsurgeon saves left behind, or "
                "write a model without its unneeded nodes"),
    "summary": ("netsurgeon.commands.summary", "list every node: op, shapes, parameters"),
    "diff": ("netsurgeon.commands.diff", "show what changed between two models"),
    "extract": ("netsurgeon.commands.extract",
                "copy the sub-network between given inputs and outputs into a new model"),
    "compare": ("netsurgeon.commands.compare",
                "run the same inputs through two models or two backends and compare"),
    "plot": ("netsurgeon.commands.plot", "draw the graph of a model (Graphviz: .svg, .png, .dot)"),
    "view": ("netsurgeon.commands.view", "open a model in Netron in the web browser"),
    "run": ("netsurgeon.commands.run",
            "run a CNTK config file: command=, actions train/test/write/edit/..."),
}


_DESCRIPTION = ("Open, edit, evaluate, train and save trained neural networks: CNTK v1 and v2 "
                "models, ONNX and netsurgeon's own .nsm files; networks written in NDL, edited "
                "with MEL or BrainScript.")
_EPILOG = ("Run 'netsurgeon COMMAND --help' for the options of a command. The options above "
           "may also be given after the command (netsurgeon eval MODEL DATA --debug). "
           "Documentation: README.md and docs/.")
# the options every command takes, before or after its name: (flags, argparse keywords)
_COMMON = (
    (("--debug",), {"action": "store_true", "help": "show tracebacks on errors"}),
    (("-v", "--verbose"), {"action": "count", "default": 0,
                           "help": "say more (how long the command took); repeatable"}),
    (("-q", "--quiet"), {"action": "store_true",
                         "help": "no progress bars or warnings; commands that report "
                                 "progress (edit, cleanup) print only errors"}),
)


def _common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """The common options on the top parser, or again on a command's (where a value given
    there must not reset one given before the command: their defaults are suppressed)."""
    taken = parser._option_string_actions
    for flags, kwargs in _COMMON:
        free = [f for f in flags if f not in taken]
        if free:
            parser.add_argument(*free, **(kwargs if top else
                                          {**kwargs, "default": argparse.SUPPRESS}))
    if not top:  # a command's own -q/--quiet (edit, cleanup) is the same switch
        for action in parser._actions:
            if action.dest in ("debug", "verbose", "quiet"):
                action.default = argparse.SUPPRESS


def _parser(argv: list[str]) -> tuple[argparse.ArgumentParser, str | None]:
    from netsurgeon import __version__

    parser = argparse.ArgumentParser(prog="netsurgeon", description=_DESCRIPTION,
                                     epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"netsurgeon {__version__}")
    _common_options(parser, top=True)
    parser.add_argument("--max-text-size", type=_size, default=None, metavar="BYTES",
                        help="largest text input read (NDL, MEL, BrainScript, configs); "
                        "default 256M")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a, before in zip(argv, [None, *argv])
                   if not a.startswith("-") and before != "--max-text-size"), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            try:
                importlib.import_module(module).configure(p)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
            _common_options(p, top=False)
    return parser, chosen


def _size(text: str) -> int:
    from netsurgeon._inputs import parse_size

    size = parse_size(text)
    if size is None or size < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a byte count; give e.g. 512M or 1G")
    return size


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, _ = _parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from netsurgeon._inputs import set_text_limit

    set_text_limit(args.max_text_size)  # for this run only (main may be called again)
    import time
    import warnings

    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            if args.quiet:
                warnings.simplefilter("ignore")
            status = _run(args)
        if args.verbose:
            print(f"netsurgeon: {args.command} took {time.perf_counter() - started:.2f} s "
                  f"(exit status {status})", file=sys.stderr)
        return status
    finally:
        _end_progress()  # a bar a command left open
        set_text_limit(None)


def _run(args: argparse.Namespace) -> int:
    module_name = COMMANDS[args.command][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(f"netsurgeon: error: '{args.command}' is not available in this version",
              file=sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except NetsurgeonError as exc:
        _end_progress()
        if args.debug:
            raise
        print(f"netsurgeon: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _end_progress()
        print("netsurgeon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:
        _end_progress()
        if args.debug:
            raise
        print(f"netsurgeon: error: {os_error_text(exc)}", file=sys.stderr)
        return 1
    except MemoryError:
        _end_progress()
        if args.debug:
            raise
        print(f"netsurgeon: error: out of memory in '{args.command}' (the input is too large "
              "for this machine, or asks for more memory than it holds)", file=sys.stderr)
        return 1


def _end_progress() -> None:
    """Close the progress bars still open, so that an error starts on a line of its own."""
    progress = sys.modules.get("netsurgeon.progress")
    if progress is not None:
        progress.close_all()
    tqdm = sys.modules.get("tqdm")  # a library's bar, if one is open
    bars = getattr(getattr(tqdm, "tqdm", None), "_instances", None)
    for bar in list(bars or ()):
        try:
            bar.close()
        except Exception:
            pass


_OS_HINTS = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EACCES: "check the permissions",
    errno.EPERM: "check the permissions",
    errno.ENOENT: "check the path",
    errno.EISDIR: "give a file name",
}


def os_error_text(exc: OSError) -> str:
    """One line for an OS error: the path(s), the reason and, for common causes, a fix."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    reason = reason[:1].lower() + reason[1:]
    paths = [os.fsdecode(p) for p in (exc.filename, exc.filename2) if p is not None]
    text = f"{' -> '.join(paths)}: {reason}" if paths else reason
    hint = _OS_HINTS.get(exc.errno or 0)
    return (f"{text} ({hint})" if hint else text).replace("\n", " ")


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the exit flush does not complain."""
    if sys.stdout is not sys.__stdout__:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
