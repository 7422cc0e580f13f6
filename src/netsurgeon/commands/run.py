"""``netsurgeon run CONFIG.cntk [KEY=VALUE ...] [SECTION=[KEY=VALUE]] [--dry-run]``: CNTK's
config driver (cntk-config-driver.md §1–4; docs/run.md).

The command line is assembled as ``cntk configFile=CONFIG.cntk ...`` did (overrides after the
file win, ``Section=[...]`` merges into the section), the ``command=`` list runs section by
section, each section's ``action`` dispatched, with CNTK's banners and log lines; ``COMPLETED.``
at the end. Every command is checked first (its section, action, reader, files and
``$variables$``), so a bad config fails before anything is written. An error is
``EXCEPTION occurred: file.cntk:LINE: ...`` on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

from netsurgeon.errors import NetsurgeonError, ParseError

__all__ = ["configure", "run", "run_config"]

_BANNER = "#" * 78


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon run``."""
    parser.add_argument("config", help="the CNTK config file (or configFile=a.cntk+b.cntk)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config lines after the file: KEY=VALUE, SECTION=[KEY=VALUE], "
                             "configFile=MORE.cntk, currentDirectory=DIR, stderr=LOG")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the config and print what each command would do; run "
                             "nothing, write nothing")


class _Log:
    """CNTK's log: stdout, or the ``stderr=`` file; ``timestamping`` prefixes LOGPRINTF lines."""

    def __init__(self) -> None:
        self.stamp = False
        self.file = None
        self.muted = _follower()  # under torchrun only rank 0 logs

    def open(self, path: str, append: bool) -> None:
        from netsurgeon.commands._common import make_parent_dirs

        if self.muted:
            return
        make_parent_dirs(path)
        self.file = open(path, "a" if append else "w", encoding="utf-8")

    def _write(self, text: str) -> None:
        if self.muted:
            return
        if self.file is not None:
            self.file.write(text + "\n")
            self.file.flush()
        else:
            print(text, flush=True)

    def log(self, text: str) -> None:
        if self.stamp:
            prefix = time.strftime("%m/%d/%Y %H:%M:%S: ")
            text = "\n".join(prefix + line if line else line for line in text.split("\n"))
        self._write(text)

    def plain(self, text: str) -> None:
        self._write(text)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon run``; returns the exit status."""
    first = args.config
    argv = [first if "=" in first and first.split("=", 1)[0].strip().lower() == "configfile"
            else f"configFile={first}", *args.overrides]
    return run_config(argv, dry_run=args.dry_run, debug=getattr(args, "debug", False))


def run_config(argv: list[str], *, dry_run: bool = False, debug: bool = False,
               cwd: str | None = None) -> int:
    """Run a CNTK command line (without the program name); returns the exit status."""
    log = _Log()
    try:
        return _run(argv, log, dry_run, cwd)
    except NetsurgeonError as exc:
        if debug:
            raise
        _fail(log, str(exc))
        return 1
    except OSError as exc:
        if debug:
            raise
        from netsurgeon.cli import os_error_text

        _fail(log, os_error_text(exc))
        return 1
    finally:
        log.close()


def _fail(log: _Log, message: str) -> None:
    line = f"EXCEPTION occurred: {message}"
    if log.file is not None:
        log.plain(line)
    print(line, file=sys.stderr, flush=True)


def _run(argv: list[str], log: _Log, dry_run: bool, cwd: str | None) -> int:
    from netsurgeon.commands.run_actions import (
        RunContext,
        actions_of,
        command_section,
        plan,
        run_action,
    )
    from netsurgeon.lang.config_assembly import assemble

    warnings: list[str] = []
    config = assemble(argv, cwd, warn=warnings.append)
    ctx = RunContext(config, log.log, log.plain, dry_run=dry_run)
    top = _top(ctx)
    commands = [c.strip() for c in (top.str("command", "train") or "train").split(":")
                if c.strip()]
    ctx.precision = _precision(top)
    if top.has("type"):
        raise ParseError("the config key 'type' is no longer supported: use precision=float "
                         "or precision=double", location=top.location("type"))
    # check every command before running any (a bad config writes nothing)
    plans = []
    for command in commands:
        sec = command_section(ctx, command)
        for action in actions_of(sec):
            if ctx.precision == "float16" and action not in ("train", "trainRNN"):
                raise ParseError(f"precision=float16 supports only train, not '{action}'",
                                 location=top.location("precision"))
            plans.append((command, sec, action, plan(sec, action, commands)))
    if dry_run:
        for text in warnings:
            print(text)
        print(f"config: {' + '.join(str(f) for f in config.files)} (currentDirectory "
              f"{config.base_dir})")
        print(f"commands: {' '.join(commands)}; precision {ctx.precision}; device "
              f"{_device(top, quiet=True)}")
        for command, _sec, action, lines in plans:
            print(f"{command} ({action}):")
            for line in lines:
                print(f"  {line}")
        for key, label in (("stderr", "log file"), ("doneFile", "done file")):
            if top.str(key):
                print(f"{label}: {_log_name(top, commands) if key == 'stderr' else top.str(key)}")
        print("dry run: nothing run, nothing written")
        return 0

    log.stamp = top.bool("timestamping", False)
    if top.str("stderr"):
        log.open(_log_name(top, commands), top.bool("appendLogFile", False))
    for text in warnings:
        log.plain(text)
    if config.base_dir != Path(cwd or os.getcwd()) and top.has("currentDirectory"):
        log.plain(f"Changed current directory to {config.base_dir}")
    ctx.device = _device(top)
    _threads(ctx, top)
    _reset_seeds(ctx)
    if top.int("traceLevel", 0) > 0:
        _print_config(ctx)
        log.log("Commands: " + " ".join(commands))
        log.log(f'precision = "{ctx.precision}"')
    for command, sec, action, _lines in plans:
        if log.muted and action not in ("train", "trainRNN"):
            continue  # under torchrun, rank 0 alone tests, writes outputs, edits models
        _banner(log, command, action)
        run_action(sec, action)
        log.plain("")
        if sec.int("traceLevel", 0) > 0:
            log.log(f'Action "{action}" complete.')
            log.plain("")
    done = top.str("doneFile")
    if done and not log.muted:
        from netsurgeon.commands._common import make_parent_dirs, write_text

        path = str(ctx.path(done))
        make_parent_dirs(path)
        write_text(f"Successfully finished at {time.strftime('%Y/%m/%d %H:%M:%S')} on "
                   f"{socket.gethostname()}\n", path)
    log.log("__COMPLETED__" if log.stamp else "COMPLETED.")
    return 0


def _follower() -> bool:
    """Whether this process is a torchrun rank other than 0 (docs/distributed.md)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and os.environ.get("RANK", "0") != "0"


def _top(ctx):
    from netsurgeon.commands.run_actions import Section

    return Section(ctx, ctx.root, "global", None)


def _precision(top) -> str:
    value = top.str("precision", "float") or "float"
    if value not in ("float", "double", "float16"):
        raise ParseError(f"Invalid precision string: '{value}' (give float or double)",
                         location=top.location("precision"))
    return value


def _device(top, quiet: bool = False) -> str:
    """deviceId: -1/cpu and auto -> the CPU (CNTK's CPU numbers); a GPU number N -> cuda:N
    when torch sees that GPU, else the CPU with a warning."""
    value = (top.str("deviceId", "auto") or "auto").strip()
    if value.lower() in ("-1", "cpu", "auto"):
        return "cpu"
    if not value.isdigit():
        raise ParseError(f"deviceId={value}: give -1 (CPU), auto or a GPU number",
                         location=top.location("deviceId"))
    from netsurgeon.runtime.device import cntk_device

    device = cntk_device(value)
    if not quiet and device == "cpu":
        print(f"netsurgeon run: warning: deviceId={value}: no such CUDA device, computing on "
              "the CPU", file=sys.stderr)
    return device


def _threads(ctx, top) -> None:
    threads = top.int("numCPUThreads", 0)
    deterministic = top.bool("forceDeterministicAlgorithms", False)
    ctx.force_constant_seed = top.bool("forceConstantRandomSeed", False)
    if not (threads or deterministic):
        return
    from netsurgeon.runtime import set_threads

    if deterministic:
        threads = 1  # torch's CPU kernels are deterministic on one thread
    if threads > 0:
        set_threads(threads)
        ctx.log(f"Using {threads} CPU threads.")


def _reset_seeds(ctx) -> None:
    """A run is a new CNTK process: the NDL/BrainScript parameter seed counters start at 1
    (every seed 1 with ``forceConstantRandomSeed=true``)."""
    try:
        from netsurgeon.ops.cntk_random import reset_seed_counters
    except ImportError:  # pragma: no cover - older trees
        return
    reset_seed_counters(force_constant=ctx.force_constant_seed)


def _log_name(top, commands: list[str]) -> str:
    name = str(top.ctx.path(top.str("stderr") or ""))
    if top.bool("timestamping", False):
        return name + "".join(f"_{c}" for c in commands) + ".log"
    return name


def _banner(log: _Log, command: str, action: str) -> None:
    log.plain("")
    inner = 76
    title = f" {command} command ({action} action)"
    log.log(_BANNER)
    log.log("#" + " " * inner + "#")
    log.log("#" + title.ljust(inner) + "#")
    log.log("#" + " " * inner + "#")
    log.log(_BANNER)
    log.plain("")


def _print_config(ctx) -> None:
    """traceLevel > 0: every top-level key with its value resolved, sorted as CNTK's map."""
    root = ctx.root
    name = ctx.config.main_file.name if ctx.config.main_file else "<config>"
    ctx.plain("Configuration After Processing and Variable Resolution:\n")
    for key, _raw in sorted(root.items(), key=lambda kv: kv[0].lower()):
        try:
            value = root.get(key)
        except NetsurgeonError:
            value = root.raw(key)
        ctx.plain(f"configparameters: {name}:{key}={value}")
        if value is not None and "\n" in value:
            ctx.plain("")

