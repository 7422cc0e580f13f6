"""CNTK's reader randomisation for CTF data, and epochs of minibatches
(cntk-config-driver.md §9.4, §12.1).

Per sweep ``s`` (a pass over the data) the engine is a fresh ``mt19937_64`` seeded with
``randomizationSeed + s``; "random index in [a, b)" is ``a + rng() % (b - a)``. The chunks are
shuffled first (``swap(v[i], v[rng() % n])`` for i = 0..n-1; one draw even for a single chunk),
then the sequences: for each position t, j is drawn uniformly in t's randomisation window
and ``seq[t]``, ``seq[j]`` swapped. With one chunk (every tutorial file: chunks are 32 MiB)
the window is the whole data, as the spec states.

Open point: several chunks. Chunks here are cut from consecutive sequences of about
``chunk_size_in_bytes`` of file; the window of a position is the chunks within
``randomization_window`` (chunks, or samples when ``sample_based``) from its own chunk in the
randomised chunk order, and every sequence may move in it ("retry if either cannot move" is
then never taken). That is a reading of the terse spec, not verified against CNTK.

:func:`ctf_epoch_minibatches` is the entry point of the training loop.
"""

from __future__ import annotations

from collections.abc import Iterator

from netsurgeon.errors import FormatError
from netsurgeon.ops.cntk_random import MT19937_64

__all__ = ["sweep_order", "ctf_epoch_minibatches", "DEFAULT_CHUNK_BYTES"]

DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024


def sweep_order(chunks: list[list[int]], sweep: int, seed: int = 0, *,
                window: int | None = None, sample_based: bool = False,
                lengths: list[int] | None = None) -> list[int]:
    """The randomised order of the sequence indices of sweep ``sweep``.

    ``chunks``: the sequence indices of each chunk in file order. ``window``: the
    randomisation window in chunks (or samples with ``sample_based``, using ``lengths``);
    None = CNTK's default (4 GiB / chunk size chunks: all of them for files below 4 GiB).
    """
    rng = MT19937_64(int(seed) + int(sweep))
    n = len(chunks)
    order = list(range(n))
    for i in range(n):
        j = rng.next() % n
        order[i], order[j] = order[j], order[i]
    seqs: list[int] = []
    owner: list[int] = []  # position -> index of its chunk in the randomised chunk order
    for c, chunk in enumerate(order):
        seqs.extend(chunks[chunk])
        owner.extend([c] * len(chunks[chunk]))
    if not seqs:
        return seqs
    # chunk-position bounds of each randomised chunk
    starts = [0] * (n + 1)
    for c, chunk in enumerate(order):
        starts[c + 1] = starts[c] + len(chunks[chunk])
    if window is None or n == 1:
        spans = None
    else:
        if sample_based:
            if lengths is None:
                raise FormatError("sample-based randomization window needs sequence lengths")
            sizes = [sum(lengths[s] for s in chunks[chunk]) for chunk in order]
            avg = max(1, sum(sizes) // max(n, 1))
            half = max(1, int(window) // avg) // 2
        else:
            half = max(1, int(window)) // 2
        spans = [(starts[max(0, c - half)], starts[min(n, c + half + 1)]) for c in range(n)]
    total = len(seqs)
    for t in range(total):
        a, b = (0, total) if spans is None else spans[owner[t]]
        j = a + rng.next() % (b - a)
        seqs[t], seqs[j] = seqs[j], seqs[t]
    return seqs


def _chunks(reader, seqs: list, chunk_size_in_bytes: int) -> list[list[int]]:
    """Sequence indices grouped into chunks of about ``chunk_size_in_bytes`` of file."""
    try:
        size = reader.path.stat().st_size
    except OSError:
        size = 0
    if size <= chunk_size_in_bytes or len(seqs) < 2:
        return [list(range(len(seqs)))]
    per_line = size / max(1, seqs[-1].line)
    out: list[list[int]] = [[]]
    start_line = seqs[0].line
    for i, s in enumerate(seqs):
        if (s.line - start_line) * per_line >= chunk_size_in_bytes and out[-1]:
            out.append([])
            start_line = s.line
        out[-1].append(i)
    return out


def ctf_epoch_minibatches(reader, epoch: int, minibatch_size: int, epoch_size: int = 0,
                          randomize: bool = True, seed: int = 0, *,
                          randomization_window: int | None = None,
                          sample_based_window: bool = False,
                          chunk_size_in_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator:
    """The minibatches of epoch ``epoch`` (0-based) as CNTK's CTF reader gives them.

    ``reader``: a :class:`~netsurgeon.runtime.readers.ctf.CTFReader` (its own minibatch size
    is not used). ``epoch_size``: samples per epoch (0 = one sweep); an epoch may span sweeps
    and holds the sequences whose first sample falls in ``[epoch·E, (epoch+1)·E)``.
    ``randomize`` False: file order every sweep. Minibatches are consecutive sequences up to
    ``minibatch_size`` samples (at least one sequence). The parsed data are cached on the reader.
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
    sweep_samples = sum(lengths)
    size = int(epoch_size) if int(epoch_size) > 0 else sweep_samples
    first, last = int(epoch) * size, (int(epoch) + 1) * size
    chunks = _chunks(reader, seqs, int(chunk_size_in_bytes)) if randomize else None
    pending: list = []
    frames = 0
    sweep = first // sweep_samples if int(epoch_size) > 0 else int(epoch)
    pos = sweep * sweep_samples  # sample index of the sweep's start
    while pos < last:
        if randomize:
            order = sweep_order(chunks, sweep, seed, window=randomization_window,
                                sample_based=sample_based_window, lengths=lengths)
        else:
            order = list(range(len(seqs)))
        for i in order:
            n = lengths[i]
            if pos >= last:
                break
            if pos >= first:
                if pending and frames + n > minibatch_size:
                    yield reader._assemble(pending)
                    pending, frames = [], 0
                pending.append(seqs[i])
                frames += n
            pos += n
        sweep += 1
        if int(epoch_size) <= 0:
            break
    if pending:
        yield reader._assemble(pending)
