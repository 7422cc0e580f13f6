"""``netsurgeon build NET.ndl -o MODEL``: build a network from NDL, validate it and save it.

``$Var$`` in the NDL (and in ``--macros`` files) is resolved as CNTK did (ndl-mel.md §A.2):
from ``--set NAME=VALUE`` first, then from a CNTK config file given with ``--config``: with
``--section S``, the ``NDLNetworkBuilder`` block of section S, then S, then the top level;
without it, the top level and then every nested section in file order. ``$ConfigDir$``
defaults to the config file's folder. With ``--section``, that section's
``NDLNetworkBuilder`` (or the top level's, as CNTK looks keys up through the enclosing blocks)
also supplies ``ndlMacros`` (``+``-separated macro files, loaded before any ``--macros``),
``run``, ``load`` and ``randomSeedOffset`` unless the options say otherwise; each of them may
be set in the block, in the section or at the top level.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from netsurgeon.errors import NetsurgeonError


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon build``."""
    parser.add_argument("ndl", help="NDL network file")
    parser.add_argument("-o", "--output", required=True, help="model file to write (.nsm native, "
                        ".dnn/.cmf CNTK)")
    parser.add_argument("--macros", action="append", default=[], metavar="FILE",
                        help="NDL macro file loaded before the network (repeatable); its macros "
                             "replace standard ones of the same name")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable for $NAME$ in the NDL (repeatable)")
    parser.add_argument("--config", metavar="FILE.cntk",
                        help="CNTK config file whose variables feed $NAME$")
    parser.add_argument("--section", metavar="NAME",
                        help="command section of --config to look variables up in first")
    parser.add_argument("--run", metavar="SECTIONS", help="sections to run (overrides run=)")
    parser.add_argument("--load", metavar="SECTIONS",
                        help="sections to load first (overrides load=)")
    parser.add_argument("--seed", type=int, default=1,
                        help="first automatic random seed for parameters (default 1)")
    parser.add_argument("--no-stdlib", action="store_true",
                        help="do not load the standard macro library")
    parser.add_argument("--name", help="model name (default: the NDL file's stem)")
    parser.add_argument("--format", choices=("native", "cntk", "cntk-v2"), default=None,
                        help="output format (default: from the output extension)")


def builder_section(path: str, section: str):
    """The ``NDLNetworkBuilder`` block seen from command section ``section`` (its own or the
    top level's), else the section itself (keys are looked up through its parents), or None."""
    from netsurgeon.lang.config import parse_config_file

    root = parse_config_file(path)
    sec = root.section(section) if root.is_section(section) else None
    if sec is None or not sec.is_section("NDLNetworkBuilder"):
        return sec
    return sec.section("NDLNetworkBuilder")


def config_lookup(path: str, section: str | None) -> Callable[[str], str | None]:
    """``$var$`` lookup over a CNTK config file (see the module docstring)."""
    from netsurgeon.lang.config import parse_config_file

    root = parse_config_file(path)
    config_dir = str(Path(path).resolve().parent)
    scopes = []
    if section:
        sec = root.section(section) if root.is_section(section) else None
        if sec is None:
            raise NetsurgeonError(f"section '{section}' not found in {path}",
                                  hint="give the name of a command section, e.g. train")
        builder = sec.section("NDLNetworkBuilder") if sec.is_section("NDLNetworkBuilder") else None
        if builder is not None:
            scopes.append(builder)
        scopes.append(sec)

    def lookup(name: str) -> str | None:
        for scope in scopes:
            value = scope.raw(name)
            if value is not None:
                return _unquote(value)
        value = root.raw(name)
        if value is not None:
            return _unquote(value)
        for _scope, key, raw in root.walk():
            if key.lower() == name.lower():
                return _unquote(raw)
        if name.lower() == "configdir":
            return config_dir
        return None

    return lookup


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == '"' and text[-1] == '"' else text


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon build``; returns the exit status."""
    from netsurgeon.commands._common import parameter_summary, parse_assignments
    from netsurgeon.commands._progress import bars_for
    from netsurgeon.lang.ndl import MacroTable, NameCounter, build_file

    sets = {k.lower(): v for k, v in parse_assignments(args.set).items()}
    from_config = config_lookup(args.config, args.section) if args.config else None

    def lookup(name: str) -> str | None:
        value = sets.get(name.lower())
        if value is None and from_config is not None:
            value = from_config(name)
        return value

    from netsurgeon.lang.config import substitute_variables

    counter = NameCounter()
    macros = MacroTable() if args.no_stdlib else MacroTable.standard()
    macro_files = list(args.macros)
    run_sections, load_sections, seed = args.run, args.load, args.seed
    builder = builder_section(args.config, args.section) if args.config and args.section else None
    if builder is None and args.config:  # no builder block: the top level's keys (ndlMacros)
        from netsurgeon.lang.config import parse_config_file

        builder = parse_config_file(args.config)
    if builder is not None:
        def value(key: str) -> str | None:
            raw = builder.raw(key)  # CNTK's lookup: the block, its section, the top level
            if raw is None:
                return None
            return _unquote(substitute_variables(raw, lookup, builder.location_of(key)))

        configured = value("ndlMacros")
        if configured:
            macro_files = [p.strip() for p in configured.split("+") if p.strip()] + macro_files
        run_sections = run_sections or value("run")
        load_sections = load_sections or value("load")
        offset = value("randomSeedOffset")
        if offset and args.seed == 1:
            from netsurgeon.lang.config import to_int

            seed = 1 + to_int(offset, "randomSeedOffset", builder.location_of("randomSeedOffset"))
    for path in macro_files:
        macros.load_file(path, variables=lookup, counter=counter)
    network = build_file(args.ndl, macros=macros, variables=lookup, counter=counter,
                         name=args.name or Path(args.ndl).stem, seed=seed, run=run_sections,
                         load=load_sections, progress=bars_for(args))
    from netsurgeon.commands._common import make_parent_dirs
    from netsurgeon.formats import save

    make_parent_dirs(args.output)  # as CNTK, create the directories of the file written
    fmt = save(network, args.output, args.format, progress=bars_for(args))
    params, values = parameter_summary(network)
    print(f"{args.ndl}: {len(network)} nodes, {params} parameters ({values:,} values) "
          f"-> {args.output} ({fmt})")
    return 0
