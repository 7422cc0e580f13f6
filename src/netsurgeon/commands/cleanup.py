"""``netsurgeon cleanup [DIR ...]``: remove the temp files interrupted saves left behind.

A save writes ``.<name>.netsurgeon-tmp-<host>-<pid>-<random>`` beside its target and renames
it into place; a process killed in between (kill -9, power loss) leaves that file. This command
removes such files when they are stale: their process is no longer running on this machine (or
its pid now belongs to a process started after the file was written), or they were last
written over 24 hours ago (whoever made them). Files of saves still running are kept and listed.
Only regular files with that exact name pattern are touched; links are never followed.

``netsurgeon cleanup MODEL -o OUT`` is the model clean-up: OUT gets MODEL without the nodes no
output, criterion or evaluation node needs (``--keep NODE`` keeps more; ``-n`` lists them and
writes nothing). A file argument means a model, a directory the temporary-file clean-up; the
two are never mixed in one call.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from netsurgeon.errors import NetsurgeonError
from netsurgeon.formats._atomic import is_stale, parse_temp_name

__all__ = ["configure", "run", "find_temp_files"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon cleanup``."""
    parser.add_argument("dirs", nargs="*", default=["."], metavar="DIR|MODEL",
                        help="directories to clean (default: the current one), or one model "
                        "file to write without its unneeded nodes (with -o)")
    parser.add_argument("-o", "--out", default=None, metavar="OUT",
                        help="MODEL: where to write the cleaned model")
    parser.add_argument("--keep", action="append", default=[], metavar="NODE",
                        help="MODEL: also keep this node and what it needs (repeatable)")
    parser.add_argument("--json", action="store_true", help="MODEL: report as JSON")
    parser.add_argument("-r", "--recursive", action="store_true",
                        help="also clean every directory below (symlinks are not followed)")
    parser.add_argument("-n", "--dry-run", action="store_true",
                        help="list what would be removed, remove nothing")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only errors")


def find_temp_files(directory: str, recursive: bool = False) -> list[str]:
    """Every netsurgeon temp file (stale or not) in ``directory``, sorted."""
    found: list[str] = []
    errors: list[OSError] = []
    for root, dirs, files in os.walk(directory, onerror=errors.append):
        found += [os.path.join(root, f) for f in files if parse_temp_name(f)]
        if not recursive:
            dirs.clear()
    if errors and not found and errors[0].filename == directory:
        raise errors[0]
    return sorted(found)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon cleanup``; returns the exit status."""
    files = [d for d in args.dirs if Path(d).is_file()]
    if args.out is not None or files:
        return _clean_model(args)
    if args.keep or args.json:
        raise NetsurgeonError("cleanup: --keep and --json apply to a model (cleanup MODEL -o "
                              "OUT), not to directories")
    removed = kept = freed = 0
    failures: list[str] = []
    for directory in args.dirs:
        if not Path(directory).is_dir():
            what = "is not a directory" if Path(directory).exists() else "does not exist"
            raise NetsurgeonError(f"cleanup: {directory} {what}", hint="give a directory")
        for path in find_temp_files(directory, args.recursive):
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            if not is_stale(path):
                kept += 1
                if not args.quiet:
                    print(f"kept {path} (a save in progress, process "
                          f"{parse_temp_name(Path(path).name)[2]})")
                continue
            size = os.lstat(path).st_size
            if not args.dry_run:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    failures.append(f"{path}: {exc.strerror or exc}")
                    continue
            removed += 1
            freed += size
            if not args.quiet:
                print(f"{'would remove' if args.dry_run else 'removed'} {path} ({_size(size)})")
    if failures:
        more = f" and {len(failures) - 1} more" if len(failures) > 1 else ""
        raise NetsurgeonError(f"cleanup: could not remove {failures[0]}{more}",
                              hint="check the directory's permissions")
    if not args.quiet:
        verb = "would remove" if args.dry_run else "removed"
        print(f"{verb} {removed} stale temporary file{'s' * (removed != 1)} ({_size(freed)})"
              + (f"; kept {kept} of saves in progress" if kept else ""))
    return 0


def _clean_model(args: argparse.Namespace) -> int:
    """``cleanup MODEL -o OUT``: drop the nodes no output, criterion or evaluation node needs."""
    import json

    from netsurgeon.commands._common import make_parent_dirs
    from netsurgeon.commands._model import load_model
    from netsurgeon.formats import format_for_path, save
    from netsurgeon.graph.extract import keep_roots, prune

    if len(args.dirs) != 1 or Path(args.dirs[0]).is_dir():
        what = ", ".join(args.dirs)
        raise NetsurgeonError(f"cleanup: {what}: a model clean-up takes one model file",
                              hint="cleanup MODEL -o OUT; clean directories in another call")
    if args.recursive:
        raise NetsurgeonError("cleanup: -r applies to directories, not to a model file")
    if args.out is None and not args.dry_run:
        raise NetsurgeonError(f"cleanup: {args.dirs[0]} is not a directory; for a model file "
                              "give -o OUT to write it without its unneeded nodes",
                              hint="or -n to list them")
    model = args.dirs[0]
    net = load_model(model)
    before = len(net)
    dropped = prune(net, keep_roots(net, args.keep))
    fmt = None
    if not args.dry_run:
        net.validate()
        fmt = format_for_path(args.out)
        make_parent_dirs(args.out)
        save(net, args.out, fmt)
    if args.json:
        print(json.dumps({"model": model, "out": None if args.dry_run else args.out,
                          "format": fmt, "removed": dropped, "nodes_before": before,
                          "nodes_after": len(net)}, indent=1))
    elif not args.quiet:
        verb = "would drop" if args.dry_run else "dropped"
        listed = f": {', '.join(dropped)}" if dropped else ""
        print(f"{verb} {len(dropped)} unneeded node{'s' * (len(dropped) != 1)}{listed}")
        if not args.dry_run:
            print(f"wrote {args.out} ({fmt}, {len(net)} of {before} nodes)")
    return 0
