"""CNTK's CTF reader randomisation and epochs (cntk-config-driver.md §9.4)."""

from __future__ import annotations

import numpy as np

from netsurgeon.ops.cntk_random import MT19937_64
from netsurgeon.runtime.readers.ctf import CTFReader, StreamSpec
from netsurgeon.runtime.readers.randomize import ctf_epoch_minibatches, sweep_order


def _spec_order(n: int, seed: int) -> list[int]:
    """The spec's single-chunk algorithm, written out plainly."""
    rng = MT19937_64(seed)
    rng.next()  # the chunk shuffle of one chunk: swap(v[0], v[rng() % 1])
    v = list(range(n))
    for t in range(n):
        j = rng.next() % n
        v[t], v[j] = v[j], v[t]
    return v


def test_single_chunk_order_is_the_spec_algorithm():
    assert sweep_order([list(range(10))], 0, 0) == _spec_order(10, 0)
    assert sweep_order([list(range(10))], 3, 5) == _spec_order(10, 8)  # seed + sweep
    assert sorted(sweep_order([list(range(7)), list(range(7, 12))], 1, 0, window=1)) == \
        list(range(12))


def _reader(tmp_path, n=10):
    p = tmp_path / "d.ctf"
    p.write_text("".join(f"|x {i}\n" for i in range(n)))
    return CTFReader(p, [StreamSpec("x", "x", (1,))])


def _values(mbs):
    return [mb.streams["x"].reshape(-1).astype(int).tolist() for mb in mbs]


def test_epochs_minibatches(tmp_path):
    r = _reader(tmp_path)
    assert _values(ctf_epoch_minibatches(r, 0, 4, 0, randomize=False)) == \
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    # epochs of 6 samples span sweeps
    assert _values(ctf_epoch_minibatches(r, 1, 4, 6, randomize=False)) == [[6, 7, 8, 9], [0, 1]]
    got = sum(_values(ctf_epoch_minibatches(r, 0, 3, 0, randomize=True, seed=0)), [])
    assert got == _spec_order(10, 0)
    got1 = sum(_values(ctf_epoch_minibatches(r, 1, 3, 0, randomize=True, seed=0)), [])
    assert got1 == _spec_order(10, 1)
    assert np.all(np.sort(got1) == np.arange(10))
