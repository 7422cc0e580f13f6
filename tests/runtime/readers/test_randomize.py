"""CNTK's CTF reader randomisation and epochs (cntk-config-driver.md §9.4), against sample
orders printed by the real CNTK 2.7 library (a MinibatchSource over a CTFDeserializer:
CNTK's BlockRandomizer)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import CNTK

from netsurgeon.ops.cntk_random import MT19937_64
from netsurgeon.runtime.readers.ctf import CTFReader, StreamSpec
from netsurgeon.runtime.readers.randomize import (
    chunk_windows,
    chunks_by_bytes,
    ctf_epoch_minibatches,
    sweep_order,
)

SIMPLE2D_TRAIN = CNTK / "configs" / "Simple2d" / "Data" / "SimpleDataTrain_cntk_text.txt"


def _single_chunk_order(n: int, seed: int) -> list[int]:
    """One chunk: a fresh mt19937_64(seed) swaps each position t with rng() % n."""
    rng = MT19937_64(seed)
    v = list(range(n))
    for t in range(n):
        j = rng.next() % n
        v[t], v[j] = v[j], v[t]
    return v


def _lines_reader(tmp_path, n=100, name="x100.ctf"):
    """``|x i`` for i < n: 5 bytes a line below 10, 6 bytes up to 99."""
    p = tmp_path / name
    p.write_text("".join(f"|x {i}\n" for i in range(n)))
    return CTFReader(p, [StreamSpec("x", "x", (1,))])


def _values(mbs):
    return [mb.streams["x"].reshape(-1).astype(int).tolist() for mb in mbs]


def _sweeps(reader, sweeps, **kw):
    return sum((sum(_values(ctf_epoch_minibatches(reader, e, 7, 0, True, **kw)), [])
                for e in range(sweeps)), [])


def test_simple2d_first_samples_are_cntks():
    """The first line numbers (0-based) CNTK 2.7 gives for SimpleDataTrain (seed 0, 1 chunk)."""
    assert sweep_order([list(range(10000))], 0, 0)[:10] == \
        [5694, 8810, 4377, 3278, 6387, 2618, 3663, 8257, 3318, 2]
    assert sweep_order([list(range(10))], 3, 5) == _single_chunk_order(10, 8)  # seed + sweep


def test_chunks_cut_where_cntk_cuts():
    sizes = [5] * 10 + [6] * 90  # the x100 file
    assert [len(c) for c in chunks_by_bytes(sizes, 200)] == [35, 33, 32]
    assert [len(c) for c in chunks_by_bytes(sizes, 4)] == [1] * 100  # a sequence never splits
    assert chunk_windows([0, 1, 2, 3, 4], 2, False) == [(0, 2), (0, 2), (1, 3), (2, 4)]
    assert chunk_windows([0, 10, 20, 30], 3, False) == [(0, 3)] * 3


# CNTK 2.7's order for x100 (chunkSizeInBytes=100: 7 chunks), two sweeps each.
_CNTK_WINDOW_2_CHUNKS_SEED_0 = [
    7, 13, 57, 55, 12, 17, 61, 50, 58, 6, 59, 1, 8, 62, 0, 5, 11, 2, 3, 10, 60, 15, 64, 53, 14,
    4, 9, 54, 65, 56, 63, 16, 51, 52, 77, 70, 71, 76, 67, 75, 79, 72, 66, 78, 74, 81, 80, 68, 69,
    73, 99, 98, 38, 39, 48, 37, 40, 42, 43, 45, 41, 47, 34, 44, 36, 49, 46, 35, 30, 27, 22, 32,
    25, 31, 20, 26, 29, 18, 28, 24, 19, 23, 33, 21, 93, 83, 92, 96, 84, 82, 90, 85, 95, 91, 86,
    89, 87, 88, 97, 94, 6, 58, 52, 61, 62, 1, 64, 55, 14, 65, 50, 51, 12, 8, 0, 4, 63, 2, 9, 53,
    5, 56, 57, 13, 3, 10, 11, 7, 17, 15, 16, 60, 54, 59, 20, 25, 31, 19, 32, 27, 18, 26, 23, 28,
    30, 24, 21, 22, 33, 29, 82, 86, 96, 90, 95, 91, 83, 94, 92, 84, 93, 88, 85, 97, 87, 89, 76,
    66, 73, 70, 75, 79, 80, 67, 78, 77, 68, 74, 69, 81, 72, 71, 43, 37, 49, 47, 39, 36, 45, 34,
    41, 42, 48, 40, 38, 44, 35, 46, 99, 98]
_CNTK_WINDOW_45_SAMPLES_SEED_0 = [
    64, 56, 59, 60, 62, 53, 63, 58, 54, 52, 50, 65, 55, 57, 51, 61, 11, 1, 6, 13, 12, 9, 7, 10,
    15, 0, 4, 5, 14, 8, 16, 17, 3, 2, 71, 80, 69, 77, 75, 73, 76, 67, 78, 68, 66, 72, 70, 81, 74,
    99, 39, 34, 37, 45, 46, 98, 43, 36, 79, 42, 41, 35, 48, 44, 38, 47, 49, 40, 24, 31, 27, 18,
    23, 26, 30, 29, 22, 32, 19, 25, 28, 33, 20, 21, 91, 93, 86, 83, 84, 92, 95, 97, 82, 88, 85,
    96, 87, 94, 89, 90, 52, 64, 60, 63, 56, 62, 50, 55, 58, 65, 57, 61, 53, 51, 59, 54, 14, 1,
    12, 9, 10, 16, 3, 8, 13, 7, 5, 0, 4, 6, 17, 2, 11, 15, 18, 24, 28, 32, 25, 20, 33, 23, 21,
    29, 30, 26, 31, 19, 22, 27, 86, 96, 90, 93, 89, 84, 92, 88, 85, 94, 97, 83, 87, 95, 82, 91,
    68, 70, 73, 75, 67, 69, 66, 78, 74, 79, 81, 71, 80, 77, 72, 76, 43, 34, 39, 42, 41, 36, 46,
    98, 44, 45, 38, 99, 37, 48, 49, 47, 40, 35]


def test_many_chunks_and_windows_as_cntk(tmp_path):
    r = _lines_reader(tmp_path)
    assert _sweeps(r, 2, seed=0, randomization_window=2, chunk_size_in_bytes=100) == \
        _CNTK_WINDOW_2_CHUNKS_SEED_0
    assert _sweeps(r, 2, seed=0, randomization_window=45, sample_based_window=True,
                   chunk_size_in_bytes=100) == _CNTK_WINDOW_45_SAMPLES_SEED_0


def test_epochs_minibatches(tmp_path):
    r = _lines_reader(tmp_path, 10, "d.ctf")
    assert _values(ctf_epoch_minibatches(r, 0, 4, 0, randomize=False)) == \
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    # epochs of 6 samples span sweeps
    assert _values(ctf_epoch_minibatches(r, 1, 4, 6, randomize=False)) == [[6, 7, 8, 9], [0, 1]]
    got = sum(_values(ctf_epoch_minibatches(r, 0, 3, 0, randomize=True, seed=0)), [])
    assert got == _single_chunk_order(10, 0)
    got1 = sum(_values(ctf_epoch_minibatches(r, 1, 3, 0, randomize=True, seed=0)), [])
    assert got1 == _single_chunk_order(10, 1)
    assert np.all(np.sort(got1) == np.arange(10))


_ORACLE = Path(os.environ.get("CNTK_READER_ORACLE", "/tmp/readeroracle/reader_oracle2"))


@pytest.mark.slow
@pytest.mark.skipif(not _ORACLE.exists(), reason="reader_oracle2 (CNTK 2.7 MinibatchSource "
                    "over a CTF file; a C++ program outside the repository) absent")
@pytest.mark.parametrize("chunk_bytes, window, samples, seed", [
    (0, 0, 0, 0), (40, 3, 0, 3), (100, 0, 50, 0), (250, 2, 0, 7), (40, 0, 20, 1)])
def test_against_cntk_27(tmp_path, chunk_bytes, window, samples, seed):
    """Sequences of 1-4 lines with ids; three sweeps; one sequence a minibatch."""
    rng = np.random.RandomState(3)
    path = tmp_path / "seq.ctf"
    path.write_text("".join(f"{i} |x {i * 10 + k}\n" for i in range(60)
                            for k in range(rng.randint(1, 5))))
    reader = CTFReader(path, [StreamSpec("x", "x", (1,))])
    got = [int(mb.streams["x"].reshape(-1)[0]) for e in range(3)
           for mb in ctf_epoch_minibatches(
               reader, e, 1, 0, True, seed, randomization_window=(samples or window or None),
               sample_based_window=bool(samples), chunk_size_in_bytes=chunk_bytes or 32 << 20)]
    oracle = Path(os.environ.get("CNTK_ORACLE_DIR", "/tmp/cntk-oracle"))
    env = dict(os.environ, LD_LIBRARY_PATH=f"{oracle}/wheel/cntk/libs:{oracle}/lib")
    out = subprocess.run([str(_ORACLE), str(path), "x", "1", str(seed), str(window),
                          str(samples), str(chunk_bytes), str(3 * sum(reader._all_lengths)),
                          "1"],
                         capture_output=True, text=True, check=True, env=env).stdout
    ref = [int(float(b.split()[0])) for b in out.replace("sweepEnd", "").split("--")
           if b.strip()]
    assert len(ref) == len(got) > 60 and got == ref


def test_one_sample_lines_give_the_readers_minibatches(tmp_path):
    """The stacked fast path (every line a one-sample sequence of dense streams) yields what
    the reader's own assembly does."""
    p = tmp_path / "d.ctf"
    p.write_text("".join(f"|a {i} {-i}\t|b {i % 3}\n" for i in range(23)))
    reader = CTFReader(p, [StreamSpec("a", "A", (2,)), StreamSpec("b", "B", (1,))])
    got = list(ctf_epoch_minibatches(reader, 1, 5, 0, True, 2))
    order = sweep_order([list(range(23))], 1, 2)
    assert [mb.samples for mb in got] == [5, 5, 5, 5, 3]
    seqs = reader._all_sequences
    for k, mb in enumerate(got):
        want = reader._assemble([seqs[i] for i in order[5 * k: 5 * k + 5]])
        assert mb.first_line == want.first_line and mb.sequence_ids == want.sequence_ids
        np.testing.assert_array_equal(mb.lengths, want.lengths)
        for name in ("A", "B"):
            assert mb.streams[name].dtype == want.streams[name].dtype
            np.testing.assert_array_equal(mb.streams[name], want.streams[name])


@pytest.mark.slow
@pytest.mark.skipif(not _ORACLE.exists(), reason="reader_oracle2 (CNTK 2.7 MinibatchSource "
                    "over a CTF file; a C++ program outside the repository) absent")
@pytest.mark.parametrize("minibatch, chunk_bytes", [(3, 0), (8, 0), (13, 100)])
def test_packing_against_cntk_27(tmp_path, minibatch, chunk_bytes):
    """Sequences of 1-4 samples packed into minibatches of up to N samples, as CNTK packs them
    (one sweep; CNTK's v2 source, which has no epochs, lets the sweep's last minibatch run
    into the next sweep, so that one is not compared)."""
    rng = np.random.RandomState(3)
    path = tmp_path / "seq.ctf"
    path.write_text("".join(f"{i} |x {i * 10 + k}\n" for i in range(60)
                            for k in range(rng.randint(1, 5))))
    reader = CTFReader(path, [StreamSpec("x", "x", (1,))])
    got = []
    for mb in ctf_epoch_minibatches(reader, 0, minibatch, 0, True, 0,
                                    chunk_size_in_bytes=chunk_bytes or 32 << 20):
        values = mb.streams["x"].reshape(-1)
        mask = mb.frame_mask()
        got.append(sorted(int(v) for v, m in zip(values, mask if mask is not None else
                                                 np.ones(values.size)) if m))
    oracle = Path(os.environ.get("CNTK_ORACLE_DIR", "/tmp/cntk-oracle"))
    env = dict(os.environ, LD_LIBRARY_PATH=f"{oracle}/wheel/cntk/libs:{oracle}/lib")
    out = subprocess.run([str(_ORACLE), str(path), "x", "1", "0", "0", "0", str(chunk_bytes),
                          str(sum(reader._all_lengths)), str(minibatch)],
                         capture_output=True, text=True, check=True, env=env).stdout
    ref = [sorted(int(float(v)) for v in b.split()) for b in out.replace("sweepEnd", "")
           .split("--") if b.strip()]
    assert len(got) > 10 and got[:-1] == ref[:len(got) - 1]
