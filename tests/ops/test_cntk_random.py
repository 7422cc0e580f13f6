"""CNTK's parameter-initialisation generator (cntk-config-driver.md §9.3), bit for bit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from netsurgeon.ops import cntk_random as cr
from netsurgeon.ops.init import initialize


def _reference_mt(seed: int, n: int) -> list[int]:
    """Plain mt19937_64 (the C++ standard's definition)."""
    mask = (1 << 64) - 1
    mt = [seed & mask]
    for i in range(1, 312):
        mt.append((6364136223846793005 * (mt[-1] ^ (mt[-1] >> 62)) + i) & mask)
    out, idx = [], 312
    for _ in range(n):
        if idx >= 312:
            for i in range(312):
                y = (mt[i] & 0xFFFFFFFF80000000) | (mt[(i + 1) % 312] & 0x7FFFFFFF)
                mt[i] = mt[(i + 156) % 312] ^ (y >> 1) ^ (0xB5026F5AA96619E9 if y & 1 else 0)
            idx = 0
        y = mt[idx]
        idx += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        out.append(y & mask)
    return out


def test_mt19937_64_first_outputs_seed_1():
    assert cr.MT19937_64(1).random_raw(3).tolist() == [
        2469588189546311528, 2516265689700432462, 8323445853463659930]


@pytest.mark.parametrize("seed", [0, 1, 5489, 2**40 + 7])
def test_mt19937_64_matches_reference(seed):
    g = cr.MT19937_64(seed)
    got = np.concatenate([g.random_raw(5), g.random_raw(700), g.random_raw(1)]).tolist()
    assert got == _reference_mt(seed, 706)


def test_uniform_spec_reference_seed_1():
    # spec §9.3: seed 1, U(-0.05, 0.05)
    ref = np.array([-0.0366123356, -0.0363592952, -0.00487850979, -0.0478975773,
                    -0.0149101885, 0.0411358066], dtype=np.float32)
    got = initialize((6,), {"kind": "uniform", "seed": 1})
    np.testing.assert_array_equal(got, ref)


def test_gaussian_spec_reference_seed_2():
    # spec §9.3: seed 2, N(0, 0.2/sqrt(2)), Boost with sigma as a double: reproduced exactly
    spec = np.array([-0.245131999, 0.218954206, 0.259117782, 0.283432305, -0.048094254,
                     0.0164970998], dtype=np.float32)
    raw = cr.normal(cr.MT19937_64(2), 6, 0.0, 0.2 / np.sqrt(2)).astype(np.float32)
    np.testing.assert_array_equal(raw, spec)
    # CNTK 2.7 passes sigma as float32 (ElemType): its values (Parameter(NormalInitializer),
    # CPU) differ from the spec's in the last bit of 4 of the 6 -- init follows CNTK 2.7
    cntk27 = np.array([-0.24513201415538788, 0.21895422041416168, 0.2591177821159363,
                       0.28343233466148376, -0.0480942539870739, 0.01649710163474083],
                      dtype=np.float32)
    got = initialize((2, 50), {"kind": "gaussian", "seed": 2})  # CNTK [50 x 2], fanIn 2
    np.testing.assert_array_equal(got.reshape(-1)[:6], cntk27)
    np.testing.assert_allclose(got.reshape(-1)[:6], spec, rtol=2e-7)


def test_normal_vectorised_equals_scalar_path():
    g = cr.MT19937_64(3)
    scalar = np.array([cr._unit_normal_one(g) for _ in range(3000)])  # includes tails
    np.testing.assert_array_equal(cr.unit_normal(cr.MT19937_64(3), 3000), scalar)
    # and the stream continues exactly after the values taken
    g = cr.MT19937_64(3)
    parts = np.concatenate([cr.unit_normal(g, 1000), cr.unit_normal(g, 2000)])
    np.testing.assert_array_equal(parts, scalar)


def test_seed_counters():
    cr.reset_seed_counters()
    assert [cr.next_ndl_seed(), cr.next_ndl_seed(), cr.next_bs_seed()] == [1, 2, 1]
    cr.reset_seed_counters(force_constant=True)
    assert [cr.next_ndl_seed(), cr.next_ndl_seed()] == [1, 1]
    cr.reset_seed_counters(force_constant=False)
    assert cr.next_ndl_seed() == 1


_ORACLE_SRC = Path(os.environ.get("CNTK_RNG_ORACLE", "/tmp/rngoracle/rng_oracle"))


@pytest.mark.slow
@pytest.mark.skipif(not _ORACLE_SRC.exists(), reason="rng_oracle (CNTK 2.7 Parameter init) absent")
@pytest.mark.parametrize("kind,scale,seed,n", [("uniform", 0.05, 9, 2_000_000),
                                                ("normal", 0.3, 3, 2_000_000),
                                                ("truncNormal", 0.5, 4, 300_000)])
def test_against_cntk_27(tmp_path, kind, scale, seed, n):
    """The real CNTK 2.7 library's Parameter(initializer, CPU) values (a small C++ program
    linked to libCntk.Core, see the report of this change)."""
    out = tmp_path / "o.f32"
    oracle = Path(os.environ.get("CNTK_ORACLE_DIR", "/tmp/cntk-oracle"))
    env = dict(os.environ, LD_LIBRARY_PATH=f"{oracle}/wheel/cntk/libs:{oracle}/lib")
    subprocess.run([str(_ORACLE_SRC), kind, repr(scale), str(seed), str(n), "1", str(out)],
                   check=True, env=env)
    ref = np.fromfile(out, np.float32)
    g = cr.MT19937_64(seed)
    if kind == "uniform":
        got = cr.uniform(g, n, -np.float32(scale), np.float32(scale)).astype(np.float32)
    elif kind == "normal":
        got = cr.normal(g, n, 0.0, np.float32(scale)).astype(np.float32)
    else:
        got = cr.truncated_normal(g, n, 0.0, scale)
    np.testing.assert_array_equal(got, ref)
