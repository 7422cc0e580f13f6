"""``netsurgeon edit SCRIPT.mel``: run a MEL script (ndl-mel.md §C).

Files the script saves or dumps are written only when every statement succeeded (so a failing
script leaves existing files untouched); ``--dry-run`` runs and validates everything and
writes nothing.
"""

from __future__ import annotations

import argparse
import sys

from netsurgeon.errors import EditError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon edit``."""
    parser.add_argument("script", nargs="?",
                        help="the MEL script to run (default with --config: the section's "
                             "editPath)")
    parser.add_argument("--config", metavar="FILE.cntk",
                        help="a CNTK config file: $NAME$ values, editPath and ndlMacros come "
                             "from --section (looked up through the enclosing blocks)")
    parser.add_argument("--section", metavar="NAME", help="the edit section of --config")
    parser.add_argument("--set", dest="variables", action="append", default=[],
                        metavar="NAME=VALUE",
                        help="a value for $NAME$ in the script (repeatable)")
    parser.add_argument("--macros", action="append", default=[], metavar="FILE",
                        help="an NDL macro file for in-line NDL and snippets (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run and validate everything but write no file")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")


def _variables(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise EditError(f"--set expects NAME=VALUE, got '{pair}'")
        out[name.strip()] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon edit``; returns the exit status."""
    from netsurgeon.lang.mel import run as run_mel

    script, variables, macros = args.script, _variables(args.variables), list(args.macros)
    if args.config:
        script, from_config, config_macros = _from_config(args.config, args.section, script)
        variables = {**from_config, **variables}
        macros = config_macros + macros
    elif script is None:
        raise EditError("give a MEL script, or --config FILE.cntk --section NAME whose "
                        "editPath names one")
    result = run_mel(
        script,
        variables,
        macros=macros or None,
        dry_run=args.dry_run,
        make_dirs=True,  # CNTK created the directories of the files it wrote
        warn=lambda text: print(text, file=sys.stderr),
    )
    if not args.quiet:
        for name, net in result.items():
            mark = " (default)" if name == result.default else ""
            print(f"model {name}{mark}: {len(net)} nodes")
        if args.dry_run:
            print("dry run: nothing written")
        for path in result.written:
            print(f"wrote {path}")
    return 0


def _from_config(path: str, section: str | None, script: str | None
                 ) -> tuple[str, dict[str, str], list[str]]:
    """(script, $var$ values, ndlMacros files) from a config section: every plain key seen
    from the section (its own, then the enclosing blocks'), as CNTK's edit action resolved
    the MEL file's variables."""
    from netsurgeon.lang.config import parse_config_file, substitute_variables, unquote
    from netsurgeon.lang.config_assembly import is_block, visible_values

    root = parse_config_file(path)
    scope = root
    if section:
        raw = root.raw(section)
        if not is_block(raw):
            blocks = [k for k, v in root.items() if is_block(v)]
            raise EditError(f"{path}: no section '{section}'",
                            hint="sections: " + ", ".join(blocks) if blocks else None)
        scope = root.section(section)
    variables = visible_values(scope)

    def resolved(key: str) -> str | None:
        raw = scope.raw(key)
        if raw is None:
            return None
        return unquote(substitute_variables(raw, scope.raw, scope.location_of(key)))

    if script is None:
        script = resolved("editPath")
        if not script:
            raise EditError(f"{path}: section '{section}' has no editPath; give the MEL "
                            "script")
    macros = [p.strip() for p in (resolved("ndlMacros") or "").split("+") if p.strip()]
    return script, variables, macros
