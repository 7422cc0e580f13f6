"""Minibatches as the runtime consumes them: (batch, time, *sample) plus sequence lengths.

A dense stream is a numpy array (B, T, dim...) zero-padded past each sequence's length. A
sparse stream is a :class:`SparseRows` CSR matrix with B*T rows (row b*T + t), fed to the
model as a torch sparse CSR tensor without densifying.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SparseRows", "Minibatch", "extent"]


@dataclass
class SparseRows:
    """A CSR matrix of ``rows`` x ``dim``: row r holds cols[indptr[r]:indptr[r+1]]."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    rows: int
    dim: int

    def to_dense(self) -> np.ndarray:
        out = np.zeros((self.rows, self.dim), np.float32)
        counts = np.diff(self.indptr)
        out[np.repeat(np.arange(self.rows), counts), self.indices] = self.values
        return out

    def to_torch(self, dtype=None, device=None):
        """A torch sparse CSR tensor (on ``device``, default the CPU)."""
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            out = torch.sparse_csr_tensor(
                torch.from_numpy(self.indptr.astype(np.int64)),
                torch.from_numpy(self.indices.astype(np.int64)),
                torch.from_numpy(self.values.astype(np.float32)).to(dtype or torch.float32),
                size=(self.rows, self.dim), check_invariants=False)
            return out if device is None else out.to(device)

    def select_rows(self, rows: np.ndarray) -> SparseRows:
        """The CSR matrix of the given rows, in that order."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        counts = ends - starts
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        take = np.repeat(starts - indptr[:-1], counts) + np.arange(int(indptr[-1]))
        return SparseRows(indptr, self.indices[take], self.values[take], len(rows), self.dim)


@dataclass
class Minibatch:
    """Streams of one minibatch and the length of each of its B sequences."""

    streams: dict[str, np.ndarray | SparseRows]
    lengths: np.ndarray
    first_line: int = 0  # for messages: first data line of the minibatch
    sequence_ids: list = field(default_factory=list)

    @property
    def batch(self) -> int:
        return int(len(self.lengths))

    @property
    def steps(self) -> int:
        return int(self.lengths.max()) if len(self.lengths) else 0

    @property
    def samples(self) -> int:
        """Real samples (frames) in the minibatch: CNTK's minibatch size unit."""
        return int(self.lengths.sum())

    def frame_mask(self) -> np.ndarray | None:
        """(B*T,) float mask of real frames, or None when no frame is padding."""
        b, t = self.batch, self.steps
        if np.all(self.lengths == t):
            return None
        return (np.arange(t)[None, :] < self.lengths[:, None]).reshape(b * t).astype(np.float32)

    def select(self, start: int, stop: int) -> Minibatch:
        """The minibatch of sequences ``start:stop`` (its time axis trimmed to their longest):
        a data-parallel rank's part of a global minibatch."""
        lengths = self.lengths[start:stop]
        t = int(lengths.max()) if len(lengths) else 0
        streams: dict[str, np.ndarray | SparseRows] = {}
        for name, data in self.streams.items():
            if isinstance(data, SparseRows):
                rows = (np.arange(start, stop)[:, None] * self.steps + np.arange(t)[None, :])
                streams[name] = data.select_rows(rows.reshape(-1))
            else:
                streams[name] = data[start:stop, :t]
        return Minibatch(streams, lengths, self.first_line, self.sequence_ids[start:stop])


_ONES: dict[int, bytes] = {}  # B -> the bytes of B int64 ones (feed-forward lengths)


def extent(lengths: np.ndarray) -> tuple[int, int, bool]:
    """``(B, T, full)`` of a minibatch's sequence lengths: the sequences, the longest one's
    length and whether no frame is padding. Feed-forward minibatches (every length 1) are
    recognised from the bytes, as numpy reductions cost microseconds per call, more than a
    small network's whole evaluation takes in onnxruntime."""
    b = len(lengths)
    if b <= 1:
        return (b, int(lengths[0]), True) if b else (0, 0, True)
    if lengths.dtype == np.int64:
        ones = _ONES.get(b)
        if ones is None:
            if len(_ONES) >= 64:
                _ONES.clear()
            ones = _ONES[b] = np.ones(b, np.int64).tobytes()
        if lengths.tobytes() == ones:
            return b, 1, True
    t = int(lengths.max())
    return b, t, int(lengths.min()) == t
