"""The real CNTK 2.7 as a test oracle: ``cntk_eval`` from shared/tools/cntk-oracle.

Tests using it are skipped where it is not built (``bash build.sh`` there, about 2 minutes;
it installs into /tmp/cntk-oracle, or ``CNTK_ORACLE_DIR``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ORACLE = Path(os.environ.get("CNTK_ORACLE_DIR", "/tmp/cntk-oracle"))
CNTK_EVAL = ORACLE / "bin" / "cntk_eval"

needs_oracle = pytest.mark.skipif(not CNTK_EVAL.exists(),
                                  reason=f"CNTK 2.7 oracle not built ({CNTK_EVAL} is absent)")


def cntk_eval(*args: str) -> subprocess.CompletedProcess[str]:
    """Run cntk_eval with the oracle's libraries (what env.sh sets)."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    libs = f"{ORACLE}/wheel/cntk/libs:{ORACLE}/lib"
    env["LD_LIBRARY_PATH"] = libs + (":" + env["LD_LIBRARY_PATH"]
                                     if env.get("LD_LIBRARY_PATH") else "")
    return subprocess.run([str(CNTK_EVAL), *args], env=env, capture_output=True, text=True,
                          timeout=300)


def cntk_info(model: Path) -> dict[str, Any]:
    """What CNTK 2.7 loads from ``model``: its arguments and outputs (``--info``)."""
    p = cntk_eval(str(model), "--info")
    assert p.returncode == 0, f"CNTK 2.7 cannot load {model}: {p.stderr[-2000:]}"
    return json.loads(p.stdout)


def cntk_outputs(model: Path, inputs: dict[str, str | Path], outputs: list[str],
                 outdir: Path) -> dict[str, np.ndarray]:
    """CNTK 2.7's values of ``outputs`` (names or uids) for the .npy ``inputs``
    (``x.npy`` or ``x.npy:lengths.npy`` for sequences)."""
    args = [str(model), "--outdir", str(outdir), *(f"{k}={v}" for k, v in inputs.items())]
    for o in outputs:
        args += ["--output", o]
    p = cntk_eval(*args)
    assert p.returncode == 0, p.stderr[-2000:]
    return {o: np.load(outdir / f"{o}.npy") for o in outputs}
