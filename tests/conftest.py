"""Shared fixtures: where the CNTK ground-truth files are (../shared/cntk beside the checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CNTK = SHARED / "cntk"


@pytest.fixture(scope="session")
def cntk_dir() -> Path:
    """../shared/cntk: real CNTK models, dumps, data and reference outputs."""
    if not CNTK.is_dir():
        pytest.fail(f"{CNTK} is missing: tests need ../shared/cntk beside the checkout")
    return CNTK


@pytest.fixture(autouse=True)
def _fresh_cntk_seed_counters():
    """Each test starts as a new CNTK process: NDL/BrainScript parameter seeds from 1."""
    from netsurgeon.ops.cntk_random import reset_seed_counters

    reset_seed_counters(force_constant=False)
    yield
