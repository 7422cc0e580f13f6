"""CNTK Text Format (CTF) reader, streaming minibatches from files of any size.

One sample per line: ``[SEQID] |name v1 v2 ... |name idx:val ... |# comment``. Lines that
share a leading sequence id (consecutive) form one sequence; a line without an id is a
sequence of its own. Dense streams list every value; sparse streams list ``index:value``
pairs (0-based). A field starting with ``#`` is a comment up to the next ``|``. Only the
streams that are mapped to inputs are parsed. Minibatch size counts samples (frames), as
CNTK's does: sequences are added while they fit, and a minibatch holds at least one.

Values must be finite float32 numbers (``nan``, ``inf`` and overflows such as ``1e39`` are
errors naming the line and stream: CNTK's parser did not read them either). An empty field
(``|features |labels 0 1``) is an all-zero sample of a *sparse* stream (a sample without
indices); for a dense stream it is an error (a dense sample lists all its values). A file
without any sample is an error (``no samples in FILE``). Only regular files are read.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np

from netsurgeon._inputs import check_regular, open_regular
from netsurgeon.errors import FormatError
from netsurgeon.ops import Category
from netsurgeon.runtime.batch import Minibatch, SparseRows

__all__ = ["StreamSpec", "CTFReader", "streams_for"]


@dataclass
class StreamSpec:
    """One stream to read: its name in the file, the input node it feeds and its size."""

    stream: str
    input: str
    shape: tuple[int, ...]

    @property
    def dim(self) -> int:
        return prod(self.shape)


def streams_for(network, mapping: Mapping[str, str] | None = None,
                inputs: list[str] | None = None) -> list[StreamSpec]:
    """Stream specs for a network's input nodes: stream name = node name unless mapped.

    ``inputs`` restricts to those nodes (default: every input node the network has).
    """
    mapping = dict(mapping or {})
    fed = network.registry.op_set(Category.INPUT)
    names = inputs if inputs is not None else [n.name for n in network.nodes if n.op in fed]
    for node_name in mapping:
        network.node(node_name)  # unknown node -> GraphError with close matches
    specs = []
    for name in names:
        node = network.node(name)
        specs.append(StreamSpec(mapping.get(node.name, node.name), node.name,
                                tuple(node.shape or ())))
    return specs


class _Sequence:
    __slots__ = ("sid", "line", "samples")

    def __init__(self, sid, line: int, count: int) -> None:
        self.sid = sid
        self.line = line
        self.samples: list[list] = [[] for _ in range(count)]


class CTFReader:
    """Iterate over a CTF file in minibatches.

    Args:
        path: the .ctf / .txt file.
        streams: which streams to read and the inputs they feed.
        minibatch_size: samples per minibatch (a longer sequence gets a minibatch of its own).
        max_sequences: stop after this many sequences (None = all).
    """

    def __init__(self, path: str | Path, streams: list[StreamSpec], minibatch_size: int = 256,
                 max_sequences: int | None = None) -> None:
        self.path = Path(path)
        check_regular(self.path, "data file", FormatError)
        if int(minibatch_size) < 1:
            raise FormatError(f"minibatch size {minibatch_size}: give 1 or more samples")
        if max_sequences is not None and int(max_sequences) < 1:
            raise FormatError(f"max_sequences {max_sequences}: give 1 or more (or None: all)")
        self.streams = streams
        self.minibatch_size = int(minibatch_size)
        self.max_sequences = max_sequences
        self._index = {s.stream: i for i, s in enumerate(streams)}
        self.sparse: list[bool | None] = [None] * len(streams)
        self._empty: list[int | None] = [None] * len(streams)  # line of an early empty field

    # ---- parsing ---------------------------------------------------------------------------
    def _error(self, line: int, message: str) -> FormatError:
        return FormatError(f"{self.path}:{line}: {message}")

    def _parse_field(self, text: str, k: int, line: int):
        spec = self.streams[k]
        tokens = text.split()
        if not tokens:
            return self._empty_field(k, line)
        is_sparse = ":" in tokens[0]
        if self.sparse[k] is None:
            self.sparse[k] = is_sparse
            if not is_sparse and self._empty[k] is not None:
                shows = f" (line {line} shows that it is dense)" if line != self._empty[k] else ""
                raise self._error(self._empty[k], _empty_dense(spec) + shows)
        elif self.sparse[k] != is_sparse:
            raise self._error(line, f"stream '{spec.stream}' mixes dense and sparse "
                                    "(index:value) samples")
        if is_sparse:
            return self._sparse_field(tokens, spec, line)
        if len(tokens) != spec.dim:
            raise self._error(line, f"stream '{spec.stream}' has {len(tokens)} values but input "
                                    f"'{spec.input}' has dimension {spec.dim}")
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                values = np.array(tokens, dtype=np.float32)
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise self._error(line, f"stream '{spec.stream}': '{bad}' is not a number") from None
        if not np.isfinite(values).all():
            bad = tokens[int(np.flatnonzero(~np.isfinite(values))[0])]
            raise self._error(line, f"stream '{spec.stream}': {_not_finite(bad)}")
        return values

    def _empty_field(self, k: int, line: int):
        """An empty field: an all-zero sparse sample; an error for a dense stream."""
        if self.sparse[k] is False:
            raise self._error(line, _empty_dense(self.streams[k]))
        if self.sparse[k] is None and self._empty[k] is None:
            self._empty[k] = line
        return [], []

    def _sparse_field(self, tokens: list[str], spec: StreamSpec, line: int):
        idx, val = [], []
        for tok in tokens:
            i, sep, v = tok.partition(":")
            try:
                ii, vv = int(i), float(v) if v else 1.0
            except ValueError:
                raise self._error(line, f"stream '{spec.stream}': '{tok}' is not "
                                        "index:value") from None
            if not sep:
                raise self._error(line, f"stream '{spec.stream}': '{tok}' is not index:value")
            if ii < 0 or ii >= spec.dim:
                raise self._error(line, f"stream '{spec.stream}': index {ii} is outside "
                                        f"the input dimension {spec.dim} of '{spec.input}'")
            if not (math.isfinite(vv) and abs(vv) <= _FLOAT32_MAX):
                raise self._error(line, f"stream '{spec.stream}': {_not_finite(tok)}")
            idx.append(ii)
            val.append(vv)
        return idx, val

    def sequences(self) -> Iterator[_Sequence]:
        """Parsed sequences in file order (streaming)."""
        count = len(self.streams)
        current: _Sequence | None = None
        done = 0
        with open_regular(self.path, "data file", FormatError) as (binary, _size):
            fh = io.TextIOWrapper(binary, encoding="utf-8", errors="replace")
            for lineno, raw in enumerate(fh, 1):
                text = raw.strip()
                if not text:
                    continue
                bar = text.find("|")
                if bar < 0:
                    raise self._error(lineno, "no '|name values' field on this line")
                sid = text[:bar].strip() or None
                if current is None or sid is None or sid != current.sid:
                    if current is not None:
                        yield current
                        done += 1
                        if self.max_sequences is not None and done >= self.max_sequences:
                            return
                    current = _Sequence(sid, lineno, count)
                for field in text[bar + 1:].split("|"):
                    if not field or field[0] == "#":
                        continue
                    parts = field.split(None, 1)
                    if not parts:
                        raise self._error(lineno, "a field has no stream name after '|'")
                    name = parts[0]
                    rest = parts[1] if len(parts) > 1 else ""
                    k = self._index.get(name)
                    if k is None:
                        continue
                    current.samples[k].append(self._parse_field(rest, k, lineno))
        if current is not None and (self.max_sequences is None or done < self.max_sequences):
            yield current

    # ---- minibatches -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Minibatch]:
        pending: list[_Sequence] = []
        frames = 0
        found = False
        for seq in self.sequences():
            found = True
            n = self._length(seq)
            if pending and frames + n > self.minibatch_size:
                yield self._assemble(pending)
                pending, frames = [], 0
            pending.append(seq)
            frames += n
        if pending:
            yield self._assemble(pending)
        if not found:
            raise FormatError(f"no samples in {self.path}: the file is empty or holds only "
                              "blank lines; give a CTF file with lines like '|name v1 v2 ...'")

    def _length(self, seq: _Sequence) -> int:
        counts = [len(s) for s in seq.samples]
        n = max(counts) if counts else 0
        for spec, c in zip(self.streams, counts):
            if c != n:
                raise self._error(seq.line, f"sequence {seq.sid!r}: stream '{spec.stream}' has "
                                            f"{c} samples, other streams {n}"
                                  + ("; is the stream name right (--map NODE=STREAM)?"
                                     if c == 0 else ""))
        if n == 0:
            raise self._error(seq.line, "no mapped stream on this line (looking for "
                                        + ", ".join(s.stream for s in self.streams)
                                        + "); map streams to inputs with --map NODE=STREAM")
        return n

    def _assemble(self, seqs: list[_Sequence]) -> Minibatch:
        lengths = np.array([len(s.samples[0]) for s in seqs], np.int64)
        b, t = len(seqs), int(lengths.max())
        streams: dict[str, object] = {}
        for k, spec in enumerate(self.streams):
            if self.sparse[k] is not False:  # None: every sample so far was an empty field
                indptr = np.zeros(b * t + 1, np.int64)
                cols: list[int] = []
                vals: list[float] = []
                row = 0
                for s in seqs:
                    for idx, val in s.samples[k]:
                        cols.extend(idx)
                        vals.extend(val)
                        row += 1
                        indptr[row] = len(cols)
                    pad = t - len(s.samples[k])
                    indptr[row + 1: row + 1 + pad] = len(cols)
                    row += pad
                streams[spec.input] = SparseRows(indptr, np.array(cols, np.int64),
                                                 np.array(vals, np.float32), b * t, spec.dim)
            else:
                arr = np.zeros((b, t, spec.dim), np.float32)
                for i, s in enumerate(seqs):
                    if s.samples[k]:
                        arr[i, : len(s.samples[k])] = np.stack(s.samples[k])
                streams[spec.input] = arr.reshape((b, t) + tuple(spec.shape))
        return Minibatch(streams, lengths, seqs[0].line, [s.sid for s in seqs])


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _not_finite(token: str) -> str:
    return (f"'{token}' is not a finite float32 number (NaN, Inf and values beyond "
            f"±{_FLOAT32_MAX:.4g} cannot be read)")


def _empty_dense(spec: StreamSpec) -> str:
    return (f"stream '{spec.stream}' is empty, but a dense sample of input '{spec.input}' needs "
            f"{spec.dim} values (only a sparse stream's sample may be empty)")


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
