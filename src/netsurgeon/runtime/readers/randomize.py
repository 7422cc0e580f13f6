"""CNTK's reader randomisation for CTF data, and epochs of minibatches
(cntk-config-driver.md §9.4, §12.1; CNTK's BlockRandomizer = ChunkRandomizer + SequenceRandomizer).

Checked against the real CNTK 2.7 library (a ``MinibatchSource`` over a ``CTFDeserializer``,
the BlockRandomizer that ``readerType=CNTKTextFormatReader`` uses too): identical sample order
over several sweeps for one and for many chunks, chunk and sample windows, variable-length
sequences and several seeds; and Simple2d/OneHidden's training log (baseline.cpu.txt) shows
the same minibatches. What CNTK does, per sweep ``s`` (one pass over the data):

* **Chunks** are consecutive sequences of the file; a sequence starts a new chunk when adding
  its bytes would make the chunk exceed ``chunkSizeInBytes`` (32 MiB; so a small file is one
  chunk). They are shuffled with their **own** ``mt19937_64(seed + s)``:
  ``swap(v[i], v[rng() % n])`` for i = 0..n-1.
* Each randomised chunk c gets a window of chunks: with a window of W chunks it is W chunks
  wide, centred on c (begin ``c - W//2``) and shifted to lie inside [0, n); with a window of
  W samples (``sampleBasedRandomizationWindow``) its begin is the first chunk starting at most
  W//2 samples before c's start and its end grows while the next chunk's end lies less than
  W//2 samples after c's start. Default window: 4 GiB / chunkSizeInBytes chunks.
* **Sequences** are laid out in randomised chunk order and shuffled with a second, fresh
  ``mt19937_64(seed + s)``: for each position t, j = ``a + rng() % (b - a)`` over the
  positions [a, b) of t's chunk window; the draw is repeated unless the sequence at j comes
  from a chunk in t's window and the one at t from a chunk in j's window; then they swap.
  (Drawing the swaps from the chunk shuffle's engine, as this module first read §9.4, shifts
  every draw by one: Simple2d then trained on other minibatches than CNTK's.)
* **Minibatches** take consecutive randomised sequences while they fit in the minibatch size
  in samples (at least one sequence): also checked against CNTK 2.7.

:func:`ctf_epoch_minibatches` is the entry point of the training loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from netsurgeon.errors import FormatError
from netsurgeon.ops.cntk_random import MT19937_64
from netsurgeon.runtime.batch import Minibatch

__all__ = ["sweep_order", "chunk_windows", "chunks_by_bytes", "ctf_epoch_minibatches",
           "DEFAULT_CHUNK_BYTES", "DEFAULT_WINDOW_BYTES"]

DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024
DEFAULT_WINDOW_BYTES = 4 * 1024 * 1024 * 1024  # default window: this many bytes of chunks


def chunks_by_bytes(sizes: Sequence[int], chunk_size_in_bytes: int) -> list[list[int]]:
    """Sequence indices grouped as CNTK's CTF index does: a sequence of ``sizes[i]`` bytes
    starts a new chunk when the current (non-empty) chunk would exceed the limit."""
    out: list[list[int]] = [[]]
    used = 0
    for i, size in enumerate(sizes):
        if used > 0 and used + size > chunk_size_in_bytes:
            out.append([])
            used = 0
        out[-1].append(i)
        used += size
    return out


def chunk_windows(starts: Sequence[int], window: int, sample_based: bool) -> list[tuple[int, int]]:
    """[begin, end) of each randomised chunk's window. ``starts``: the n + 1 start positions
    of the chunks in randomised order, in samples (the last is the total; for a window in
    chunks only their number matters); ``window`` in chunks, or samples with ``sample_based``."""
    n = len(starts) - 1
    out = []
    if not sample_based:
        w = max(1, int(window))
        for c in range(n):
            begin = max(0, min(c - w // 2, n - w))
            out.append((begin, min(n, begin + w)))
        return out
    half = int(window) // 2
    begin = end = 0
    for c in range(n):
        while begin < c and starts[c] - starts[begin] > half:
            begin += 1
        end = max(end, c + 1)
        while end < n and starts[end + 1] - starts[c] < half:
            end += 1
        out.append((begin, end))
    return out


def sweep_order(chunks: list[list[int]], sweep: int, seed: int = 0, *,
                window: int | None = None, sample_based: bool = False,
                lengths: Sequence[int] | None = None) -> list[int]:
    """The randomised order of the sequence indices of sweep ``sweep``.

    ``chunks``: the sequence indices of each chunk in file order. ``window``: the
    randomisation window in chunks (or samples with ``sample_based``, using ``lengths``, the
    samples of each sequence); None = every chunk.
    """
    n = len(chunks)
    if window is None:
        window, sample_based = n, False
    rng = MT19937_64(int(seed) + int(sweep))
    order = list(range(n))
    for i in range(n):
        j = rng.next() % n
        order[i], order[j] = order[j], order[i]
    if sample_based and lengths is None:
        raise FormatError("a sample-based randomization window needs the sequence lengths")
    pos = [0] * (n + 1)  # sequence position of each randomised chunk's start
    smp = [0] * (n + 1)  # its sample position
    for c, chunk in enumerate(order):
        pos[c + 1] = pos[c] + len(chunks[chunk])
        smp[c + 1] = smp[c] + (sum(lengths[s] for s in chunks[chunk]) if sample_based else 0)
    wins = chunk_windows(smp if sample_based else pos, window, sample_based)
    seqs: list[int] = []
    home: list[int] = []  # position -> randomised chunk of the sequence now there
    for c, chunk in enumerate(order):
        seqs.extend(chunks[chunk])
        home.extend([c] * len(chunks[chunk]))
    place = list(home)  # position -> the randomised chunk that position belongs to
    total = len(seqs)
    rng = MT19937_64(int(seed) + int(sweep))
    full = all(w == (0, n) for w in wins)
    for t in range(total):
        wb, we = wins[place[t]]
        a, span = pos[wb], pos[we] - pos[wb]
        while True:
            j = a + rng.next() % span
            if full:
                break
            if wb <= home[j] < we:
                jb, je = wins[place[j]]
                if jb <= home[t] < je:
                    break
        seqs[t], seqs[j] = seqs[j], seqs[t]
        home[t], home[j] = home[j], home[t]
    return seqs


def _sequence_bytes(path, seqs: list) -> list[int]:
    """Bytes of each sequence in the file: from its first line to the next sequence's."""
    data = np.fromfile(path, dtype=np.uint8)
    line_starts = np.concatenate([[0], np.flatnonzero(data == 10) + 1])
    first = np.array([s.line for s in seqs], dtype=np.int64) - 1
    offsets = np.append(line_starts[first], data.size)
    return np.diff(offsets).astype(np.int64).tolist()


def _chunks(reader, seqs: list, chunk_size_in_bytes: int) -> list[list[int]]:
    """The reader's sequences in CNTK's chunks (one when the file is below the chunk size)."""
    try:
        size = reader.path.stat().st_size
    except OSError:
        size = 0
    if size <= chunk_size_in_bytes or len(seqs) < 2:
        return [list(range(len(seqs)))]
    return chunks_by_bytes(_sequence_bytes(reader.path, seqs), chunk_size_in_bytes)


def ctf_epoch_minibatches(reader, epoch: int, minibatch_size: int, epoch_size: int = 0,
                          randomize: bool = True, seed: int = 0, *,
                          randomization_window: int | None = None,
                          sample_based_window: bool = False,
                          chunk_size_in_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator:
    """The minibatches of epoch ``epoch`` (0-based) as CNTK's CTF reader gives them.

    ``reader``: a :class:`~netsurgeon.runtime.readers.ctf.CTFReader` (its own minibatch size
    is not used). ``epoch_size``: samples per epoch (0 = one sweep); an epoch may span sweeps
    and holds the sequences whose first sample falls in ``[epoch·E, (epoch+1)·E)``.
    ``randomize`` False: file order every sweep. ``randomization_window``: in chunks, or in
    samples with ``sample_based_window``; None = 4 GiB of chunks. Minibatches are consecutive
    sequences up to ``minibatch_size`` samples (at least one sequence). The parsed data are
    cached on the reader.
    """
    if int(minibatch_size) < 1:
        raise FormatError(f"minibatch size {minibatch_size}: give 1 or more samples")
    seqs = getattr(reader, "_all_sequences", None)
    if seqs is None:
        seqs = list(reader.sequences())
        if not seqs:
            raise FormatError(f"no samples in {reader.path}")
        reader._all_sequences = seqs
        reader._all_lengths = [reader._length(s) for s in seqs]
    lengths = reader._all_lengths
    assemble = _frame_assembler(reader, seqs, lengths)
    sweep_samples = sum(lengths)
    size = int(epoch_size) if int(epoch_size) > 0 else sweep_samples
    first, last = int(epoch) * size, (int(epoch) + 1) * size
    chunks = _chunks(reader, seqs, int(chunk_size_in_bytes)) if randomize else None
    window = randomization_window
    if window is None:  # CNTK's default: 4 GiB of chunks
        window = max(1, DEFAULT_WINDOW_BYTES // max(1, int(chunk_size_in_bytes)))
        sample_based_window = False
    pending: list = []
    frames = 0
    sweep = first // sweep_samples if int(epoch_size) > 0 else int(epoch)
    pos = sweep * sweep_samples  # sample index of the sweep's start
    while pos < last:
        if randomize:
            order = sweep_order(chunks, sweep, seed, window=window,
                                sample_based=sample_based_window, lengths=lengths)
        else:
            order = list(range(len(seqs)))
        for i in order:
            n = lengths[i]
            if pos >= last:
                break
            if pos >= first:
                if pending and frames + n > minibatch_size:
                    yield assemble(pending)
                    pending, frames = [], 0
                pending.append(i)
                frames += n
            pos += n
        sweep += 1
        if int(epoch_size) <= 0:
            break
    if pending:
        yield assemble(pending)


def _frame_assembler(reader, seqs: list, lengths: list[int]):
    """Sequence indices -> Minibatch. When every sequence is one sample of dense streams (the
    common case: CTF lines without ids), the samples are stacked once per reader and a
    minibatch is a fancy-indexing of them; otherwise the reader's own assembly."""
    frames = getattr(reader, "_all_frames", None)
    if frames is None:
        frames = {}
        if all(n == 1 for n in lengths) and all(sp is False for sp in reader.sparse):
            for k, spec in enumerate(reader.streams):
                stacked = np.stack([s.samples[k][0] for s in seqs])
                frames[spec.input] = stacked.reshape((len(seqs), 1) + tuple(spec.shape))
        reader._all_frames = frames
    if not frames:
        return lambda pending: reader._assemble([seqs[i] for i in pending])

    def assemble(pending: list[int]) -> Minibatch:
        idx = np.asarray(pending, dtype=np.intp)
        return Minibatch({name: arr[idx] for name, arr in frames.items()},
                         np.ones(len(pending), np.int64), seqs[pending[0]].line,
                         [seqs[i].sid for i in pending])

    return assemble
