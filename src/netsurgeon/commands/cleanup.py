"""``netsurgeon cleanup [DIR ...]``: remove the temp files interrupted saves left behind.

A save writes ``.<name>.netsurgeon-tmp-<host>-<pid>-<random>`` beside its target and renames
it into place; a process killed in between (kill -9, power loss) leaves that file. This command
removes such files when they are stale: their process is no longer running on this machine (or
its pid now belongs to a process started after the file was written), or they were last
written over 24 hours ago (whoever made them). Files of saves still running are kept and listed.
Only regular files with that exact name pattern are touched; links are never followed.
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
    parser.add_argument("dirs", nargs="*", default=["."], metavar="DIR",
                        help="directories to clean (default: the current one)")
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
