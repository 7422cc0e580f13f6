"""What every action of ``netsurgeon run`` shares: the run context, typed config lookups with
CNTK's rules, network source selection (cntk-config-driver.md §4.1), reader blocks (§12) and
model files."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from netsurgeon.errors import ArgumentError, NetsurgeonError, ParseError, SourceLocation
from netsurgeon.lang.config import ConfigDict, split_array, to_bool, to_float, to_int, unquote
from netsurgeon.lang.config_assembly import AssembledConfig, is_block

__all__ = ["RunContext", "Section", "BUILDER_KEYS", "ReaderSpec", "model_format",
           "save_model", "load_model"]

#: network builders in CNTK's order of precedence (§4.1)
BUILDER_KEYS = ("SimpleNetworkBuilder", "NDLNetworkBuilder", "BrainScriptNetworkBuilder",
                "ExperimentalNetworkBuilder")
SUPPORTED_READER = "CNTKTextFormatReader"


@dataclass
class RunContext:
    """One ``netsurgeon run``: the assembled config and where its lines go."""

    config: AssembledConfig
    log: Callable[[str], None]  # CNTK's LOGPRINTF: a line, timestamped with timestamping=true
    plain: Callable[[str], None]  # a line without timestamp
    dry_run: bool = False
    precision: str = "float"
    device: str = "cpu"
    force_constant_seed: bool = False
    written: list[str] = field(default_factory=list)

    @property
    def root(self) -> ConfigDict:
        return self.config.root

    def path(self, value: str) -> Path:
        return self.config.path(value)


class Section:
    """A command section (or a block in it) with CNTK's typed lookups (parent walk, ``$var$``
    at lookup time, the value ``default`` meaning the built-in default)."""

    def __init__(self, ctx: RunContext, scope: ConfigDict, command: str,
                 where: SourceLocation | None = None) -> None:
        self.ctx = ctx
        self.scope = scope
        self.command = command
        self.where = where

    @property
    def path_name(self) -> str:
        names = []
        s: ConfigDict | None = self.scope
        while s is not None:
            names.append(s.name or "global")
            s = s.parent
        return ":".join(reversed(names))

    def location(self, key: str) -> SourceLocation | None:
        return self.scope.location_of(key) or self.where

    def has(self, key: str) -> bool:
        return self.scope.find(key) is not None

    def has_local(self, key: str) -> bool:
        return self.scope.has_local(key)

    def str(self, key: str, default: str | None = None) -> str | None:
        value = self.scope.get(key)
        if value is None:
            return default
        value = unquote(value.strip())
        return default if value == "default" else value

    def required(self, key: str) -> str:
        value = self.str(key)
        if value is None:
            raise ParseError(f"configparameters: required parameter missing: "
                             f"{self.path_name}:{key}", location=self.where)
        return value

    def int(self, key: str, default: int) -> int:
        value = self.str(key)
        return default if value is None else to_int(value, key, self.location(key))

    def float(self, key: str, default: float) -> float:
        value = self.str(key)
        return default if value is None else to_float(value, key, self.location(key))

    def bool(self, key: str, default: bool) -> bool:
        value = self.str(key)
        return default if value is None else to_bool(value, key, self.location(key))

    def list(self, key: str) -> list[str]:
        value = self.str(key)
        return [] if not value else [unquote(v.strip()) for v in split_array(value) if v.strip()]

    def file(self, key: str, default: str | None = None) -> Path | None:
        value = self.str(key, default)
        return None if value is None else self.ctx.path(value)

    def block(self, key: str) -> Section | None:
        raw = self.scope.raw(key)
        if not is_block(raw):
            return None
        child = self.scope.section(key)
        return None if child is None else Section(self.ctx, child, self.command,
                                                  self.location(key))

    def lookup(self) -> Callable[[str], str | None]:
        """``$var$`` values through this scope and its parents."""
        return lambda name: self.scope.raw(name)

    def error(self, message: str, key: str | None = None, cls=ParseError) -> NetsurgeonError:
        return cls(message, location=self.location(key) if key else self.where)


def command_section(ctx: RunContext, command: str) -> Section:
    """The section of a ``command=`` entry; an error naming it if it is not a block."""
    root = ctx.root
    raw = root.raw(command)
    where = root.location_of("command")
    if raw is None or not is_block(raw):
        blocks = [k for k, v in root.items() if is_block(v)]
        raise ParseError(f"command '{command}' has no section: define {command}=[ action=... ]"
                         + (f" (sections: {', '.join(blocks)})" if blocks else ""),
                         location=root.location_of(command) or where)
    scope = root.section(command)
    assert scope is not None
    return Section(ctx, scope, command, root.location_of(command))


# ---- network sources (§4.1) ----------------------------------------------------------------
def builder_key(sec: Section) -> str | None:
    """The network builder visible from ``sec`` (parent walk), in CNTK's order, or None."""
    for key in BUILDER_KEYS:
        if sec.has(key):
            return key
    return None


def build_network(sec: Section, key: str):
    """Build the network of the builder ``key`` visible from ``sec`` (in float64 with
    ``precision=double``)."""
    if key == "SimpleNetworkBuilder":
        net = _simple_network(sec)
    elif key == "NDLNetworkBuilder":
        net = _ndl_network(sec)
    else:
        net = _bs_network(sec, key)
    if sec.ctx.precision == "double":
        to_double(net)
    return net


def to_double(net) -> None:
    """``precision=double``: every float32 value of the network (parameters, constants) in
    float64, so that the runtime computes in float64 (it follows the parameters' dtype).
    The initial values are those of CNTK's float generator, widened."""
    import numpy as np

    for node in net.nodes:
        value = node.value
        if value is not None and getattr(value, "dtype", None) == np.float32:
            net.update(node, value=np.asarray(value, dtype=np.float64), dtype="float64")
        elif node.dtype == "float32":
            net.update(node, dtype="float64")


def _simple_network(sec: Section):
    """SimpleNetworkBuilder (§11.3): its keys looked up from the block with the parent walk."""
    from netsurgeon.lang.simple_network import build_simple_network

    block = sec.block("SimpleNetworkBuilder")
    if block is None:
        raise sec.error("SimpleNetworkBuilder must be a [...] block", "SimpleNetworkBuilder")
    try:
        return build_simple_network(block.str)
    except NetsurgeonError as exc:
        key = getattr(exc, "config_key", None)
        raise block.error(exc.message, key if key and block.has(key) else None) from None


def _ndl_network(sec: Section):
    from netsurgeon.lang.ndl import MacroTable, NameCounter, build_file

    block = sec.block("NDLNetworkBuilder")
    if block is None:
        raise sec.error("NDLNetworkBuilder must be a [...] block", "NDLNetworkBuilder")
    desc = block.str("networkDescription")
    lookup = block.lookup()
    run, load = block.str("run"), block.str("load")
    if not desc and not run:
        raise block.error("In NDLNetworkBuilder section either a 'networkDescription=filename' "
                          "or 'run=sectionName' must exist", "NDLNetworkBuilder")
    counter = NameCounter()
    macros = MacroTable.standard()
    for name in (block.str("ndlMacros") or "").split("+"):
        if name.strip():
            macros.load_file(sec.ctx.path(name.strip()), variables=lookup, counter=counter)
    seed = 1 + block.int("randomSeedOffset", 0)
    if desc:  # the config's run=/load= override the file's
        path = sec.ctx.path(desc)
        return build_file(path, macros=macros, variables=lookup, counter=counter, seed=seed,
                          name=path.stem, run=run, load=load)
    return _ndl_from_sections(block, run, load, macros=macros, variables=lookup,
                              counter=counter, seed=seed)


_NDL_SECTIONS = "<NDL sections of the config>"


def _ndl_from_sections(block: Section, run: str, load: str | None, **kwargs):
    """NDLNetworkBuilder without networkDescription (ndl-mel.md B.1): ``run=`` names one
    section of the config holding NDL, ``load=`` optionally one more (executed first); errors
    point at the config file's lines."""
    from netsurgeon.lang.ndl import build_network as build_ndl

    pieces = []  # (start offset of the value in the text, locate in the config file)
    text = ""
    for which, name in (("load", load), ("run", run)):
        if name is None:
            continue
        if not re.fullmatch(r"[\w.]+", name):
            raise block.error(f"{which}={name}: without networkDescription, {which}= names one "
                              "section of the config", which)
        if not is_block(block.scope.raw(name)):
            raise block.error(f"the configuration parameter '{which}={name}' doesn't specify "
                              "another section in this configuration file", which)
        found = block.scope.find(name)
        assert found is not None
        located = found.locate_value(name)
        head = f"{name}="
        first = text.count("\n") + 1  # the line of the text where this section starts
        pieces.append((first, len(head), located, found.location_of(name)))
        text += head + (block.scope.raw(name) or "") + "\n"
    try:
        return build_ndl(text, source=_NDL_SECTIONS, run=run, load=load, name=run, **kwargs)
    except NetsurgeonError as exc:
        loc = exc.location
        if loc is not None and loc.file == _NDL_SECTIONS and loc.line is not None:
            exc.location = _config_location(pieces, loc.line, (loc.column or 1) - 1)
            exc.args = (exc._render(),)
        raise


def _config_location(pieces, line: int, column: int) -> SourceLocation | None:
    """Where line ``line`` (1-based), ``column`` (0-based) of the text of config sections
    was written in the config. ``pieces``: (first line, head length, locate_value's result,
    the key's location) per section; the value's lines map one to one to the substituted
    value's, whose offsets locate_value maps (a ``$var$`` earlier on the same line shifts the
    column)."""
    first, head, located, where = max((p for p in pieces if p[0] <= line), key=lambda p: p[0],
                                      default=pieces[0])
    if located is None:
        return where
    subst, locate = located
    k = line - first
    lines = subst.split("\n")
    if k >= len(lines):
        return where
    col = max(0, column - (head if k == 0 else 0))
    start = sum(len(x) + 1 for x in lines[:k])
    return locate(start + min(col, max(len(lines[k]) - 1, 0)))


def _bs_network(sec: Section, key: str):
    from netsurgeon.lang.brainscript.diagnostics import one_line_errors
    from netsurgeon.lang.brainscript.host import evaluate_program, program_tokens

    found = sec.scope.locate_value(key)
    if found is None:
        raise sec.error(f"no {key} in section '{sec.command}'")
    body, locate = found
    if body.strip()[:1] not in ("[", "{", "("):
        raise sec.error(f"{key} must start with '[', '{{' or '('", key)
    name = str(sec.ctx.config.main_file or "<config>")
    with one_line_errors():
        if body.strip()[:1] in "[{":
            prefix = "new ComputationNetwork "
            inner = locate
            body = prefix + body

            def locate(offset: int, _inner=inner, _n=len(prefix)):
                return _inner(max(offset - _n, 0))
        device = -1 if sec.ctx.device == "cpu" else int(sec.ctx.device.partition(":")[2] or 0)
        toks = program_tokens(body, name, wrap="expr", include_dirs=sec.ctx.config.include_dirs,
                              device_id=device, locate=locate)
    return evaluate_program(toks, seed=1)


def network_for_eval(sec: Section, node_key: str):
    """test/eval/write's network: built fresh when a builder is visible, else ``modelPath``
    loaded (§4.1 step 5)."""
    key = builder_key(sec)
    if key is not None:
        return build_network(sec, key), f"built by {key}"
    path = sec.file("modelPath")
    if path is None:
        sec.required("modelPath")
    assert path is not None
    return load_model(str(path)), str(path)


# ---- model files ------------------------------------------------------------------------
_EPOCH_SUFFIX = re.compile(r"(\.\d+)?(\.ckp)?$")


def model_format(path: str) -> str:
    """The format CNTK's driver writes ``path`` in: CNTK v1, unless the model name (without
    ``.N``/``.ckp``) asks for netsurgeon's own, a CNTK 2.x or an ONNX file."""
    from netsurgeon.formats import format_for_path

    base = _EPOCH_SUFFIX.sub("", path) or path
    fmt = format_for_path(base)
    if fmt == "native" and Path(base).suffix.lower() != ".nsm":
        return "cntk"
    return fmt


def save_model(network, path: str) -> None:
    """Save atomically, creating the directories (as CNTK did)."""
    from netsurgeon.commands._common import make_parent_dirs
    from netsurgeon.formats import save

    make_parent_dirs(path)
    save(network, path, model_format(path))


def load_model(path: str):
    from netsurgeon.formats import load

    if not Path(path).is_file():
        from netsurgeon.errors import ModelFileNotFoundError

        raise ModelFileNotFoundError(f"{path}: model file not found (train it first, or check "
                                     "modelPath)")
    return load(path)


# ---- readers (§12) ----------------------------------------------------------------------
@dataclass
class StreamBlock:
    name: str  # the network input node
    alias: str  # the stream name in the file
    dim: int
    format: str


@dataclass
class ReaderSpec:
    """A checked ``reader=[...]`` block of CNTKTextFormatReader."""

    file: Path
    streams: list[StreamBlock]
    randomize: bool
    seed: int
    section: Section

    def streams_for(self, network) -> list:
        """StreamSpecs for the network inputs the reader feeds (inputs the network lacks are
        skipped; a network input no stream feeds is an error)."""
        from netsurgeon.ops import Category
        from netsurgeon.runtime.readers import StreamSpec

        inputs = network.registry.op_set(Category.INPUT)
        specs = []
        by_name = {s.name.lower(): s for s in self.streams}
        for node in network.nodes:
            if node.op not in inputs:
                continue
            block = by_name.get(node.name.lower())
            if block is None:
                continue
            specs.append(StreamSpec(block.alias, node.name, tuple(node.shape or (block.dim,))))
        if not specs:
            raise self.section.error(
                "the reader feeds none of the network's inputs (" + ", ".join(
                    n.name for n in network.nodes if n.op in inputs) + "); name the input=[...] "
                "streams after the input nodes", "input")
        return specs

    def minibatches(self, network, minibatch_size: int, skip_samples: int = 0,
                    max_samples: int = 0) -> Iterator:
        """Minibatches in file order, sweeping again as needed: from sample ``skip_samples``
        on, ``max_samples`` of them (0: one whole sweep)."""
        from netsurgeon.runtime.readers import CTFReader

        streams = self.streams_for(network)
        reader = CTFReader(self.file, streams, minibatch_size)
        if max_samples <= 0:
            yield from reader
            return
        seen = 0  # samples read so far, counting every sweep
        taken = 0
        while taken < max_samples:
            for mb in reader:
                n = int(mb.lengths.sum())
                if seen + n <= skip_samples:
                    seen += n
                    continue
                seen += n
                yield mb
                taken += n
                if taken >= max_samples:
                    return


def reader_spec(sec: Section, key: str = "reader", *, randomize: bool | None = None
                ) -> ReaderSpec:
    """The ``key`` block visible from ``sec`` as a CNTKTextFormatReader; other readers and
    missing or unreadable files are one-line errors with the config's file:line."""
    block = sec.block(key)
    if block is None:
        raise sec.error(f"section '{sec.command}' has no {key}=[...] block (readerType, file, "
                        "input)")
    rtype = block.str("readerType")
    if block.has_local("deserializers"):
        raise block.error(f"the reader of section '{sec.command}' uses deserializers=(...); "
                          f"netsurgeon run reads only readerType={SUPPORTED_READER}",
                          "deserializers", ArgumentError)
    if rtype != SUPPORTED_READER:
        shown = f"readerType={rtype}" if rtype else "no readerType"
        raise block.error(f"{shown} in section '{sec.command}': netsurgeon run reads only "
                          f"{SUPPORTED_READER} (CNTK Text Format) data; convert the data to "
                          "CTF", "readerType" if rtype else None, ArgumentError)
    name = block.required("file")
    path = sec.ctx.path(name)
    if not path.is_file():
        why = "no such file" if not path.exists() else "not a regular file"
        raise block.error(f"cannot read the reader file {name} of section '{sec.command}' "
                          f"({path}): {why}", "file")
    inputs = block.block("input")
    if inputs is None:
        raise block.error(f"the reader of section '{sec.command}' has no input=[...] block",
                          "file")
    streams = []
    for sname, raw in inputs.scope.items():
        if not is_block(raw):
            continue
        sb = inputs.block(sname)
        assert sb is not None
        dim = sb.int("dim", 0)
        if dim <= 0:
            raise sb.error(f"stream '{sname}' needs dim=N (N > 0)", "dim")
        fmt = (sb.str("format") or "").lower()
        if fmt not in ("dense", "sparse"):
            raise sb.error(f"stream '{sname}': format must be dense or sparse", "format")
        alias = sb.str("alias") or sname
        streams.append(StreamBlock(sname, alias, dim, fmt))
    rnd = randomize
    if rnd is None:
        text = block.str("randomize", "true")
        rnd = text != "None" and to_bool(text, "randomize", block.location("randomize"))
    return ReaderSpec(path, streams, rnd, block.int("randomizationSeed", 0), block)
