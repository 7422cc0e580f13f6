"""Parameter initialisation: every ``init=`` scheme of NDL and BrainScript, in one place.

The ``init`` dict a LearnableParameter carries (its ``init`` attribute) has the keys ``kind``,
``scale``, ``value``, ``seed``, ``path``, ``literal``, ``kernel`` (NDL's bilinear
kernelHeight/kernelWidth) and ``filter_rank``/``output_rank`` (BrainScript's
initFilterRank/initOutputRank). Kinds and formulas follow bs-library.md and
cntk-config-driver.md §9.1: ``uniform`` (±0.05·scale), ``uniform1``, ``gaussian``
(0.2·scale/√fanIn), ``normal``, ``xavier`` (uniform √(3/fanIn)), ``glorotUniform``,
``glorotNormal``, ``heUniform``, ``heNormal``, ``TruncNormal`` (redrawn outside ±2σ),
``fixedValue``, ``fromFile``, ``fromLiteral`` and ``bilinear``.

Shapes are numpy order. Random draws are CNTK's own (cntk-config-driver.md §9.3,
:mod:`netsurgeon.ops.cntk_random`): a fresh mt19937_64 seeded with the parameter's seed, Boost's
uniform / ziggurat-normal distributions in double with float32 bounds, in CNTK's column-major
storage order (= numpy C order of the numpy-shaped array), cast to the element type — the
values CNTK's CPU path gives, bit for bit (checked against CNTK 2.7 for uniform, normal and
truncated normal).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from netsurgeon.errors import NetsurgeonError
from netsurgeon.ops import cntk_random
from netsurgeon.ops.cntk_random import MT19937_64

__all__ = ["initialize", "read_text_matrix", "fans", "RANDOM_KINDS"]


def read_text_matrix(text: str, source: str = "<literal>") -> np.ndarray:
    """A whitespace-separated text matrix, one CNTK row per line, as a 2-D float array."""
    rows = [line.split() for line in text.replace(";", "\n").splitlines() if line.strip()]
    if not rows:
        raise NetsurgeonError(f"{source}: the matrix text is empty")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise NetsurgeonError(f"{source}: rows of the matrix have different lengths")
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise NetsurgeonError(f"{source}: not a number in the matrix ({exc})") from exc


def initialize(shape: tuple[int, ...], init: dict[str, Any], *, dtype: str = "float32",
               seed: int | None = None) -> np.ndarray:
    """A new array of ``shape`` (numpy order) filled as ``init`` says.

    ``init`` keys: kind, scale, value, seed, path, literal, kernel. ``seed`` overrides
    ``init['seed']`` when the latter is -1 (automatic).
    """
    kind = init.get("kind", "uniform")
    scale = float(init.get("scale", 1.0))
    s = int(init.get("seed", -1))
    if s < 0:
        s = seed if seed is not None else 1
    if kind == "zero":
        return np.zeros(shape, dtype=dtype)
    if kind == "fixedValue":
        return np.full(shape, float(init.get("value", 0.0)), dtype=dtype)
    if kind in ("fromFile", "fromLiteral"):
        if kind == "fromFile":
            from netsurgeon._inputs import read_text

            path = Path(str(init.get("path", "")).strip('"'))
            text = read_text(path, "initFromFilePath file", NetsurgeonError)
            matrix = read_text_matrix(text, str(path))
        else:
            matrix = read_text_matrix(str(init.get("literal", "")))
        flat_rows = shape[-1] if shape else 1
        if matrix.shape[0] != flat_rows or matrix.size != int(np.prod(shape)):
            raise NetsurgeonError(
                f"matrix from {kind} is {matrix.shape[0]}x{matrix.shape[1]} (CNTK rows x cols) "
                f"but the parameter needs {flat_rows} rows and {int(np.prod(shape))} values"
            )
        # CNTK rows = last numpy axis: the numpy array is the column-major matrix transposed
        return np.ascontiguousarray(matrix.T).reshape(shape).astype(dtype)
    n = math.prod(int(d) for d in shape)
    if kind == "uniform":
        r = np.float32(0.05 * scale)
        return _shaped(cntk_random.uniform(MT19937_64(s), n, -r, r), shape, dtype)
    if kind in _FAN_KINDS:
        fan_in, fan_out = fans(shape, int(init.get("filter_rank", 0)),
                               int(init.get("output_rank", 1)))
        dist, rng = _FAN_KINDS[kind]
        r = np.float32(scale * rng(fan_in, fan_out))
        gen = MT19937_64(s)
        if dist == "uniform":
            values = cntk_random.uniform(gen, n, -r, r)
        elif dist == "normal":
            values = cntk_random.normal(gen, n, 0.0, r)
        else:
            values = cntk_random.truncated_normal(gen, n, 0.0, r)
        return _shaped(values, shape, dtype)
    if kind == "bilinear":
        kh, kw = init.get("kernel", (0, 0))
        return _bilinear(shape, int(kh or 0), int(kw or 0), dtype)
    raise NetsurgeonError(f"unknown init kind {kind!r}")


def fans(shape: tuple[int, ...], filter_rank: int = 0, output_rank: int = 1) -> tuple[int, int]:
    """(fanIn, fanOut) of a numpy-order parameter shape (cntk-config-driver.md §9.1).

    In CNTK order ``[d0, d1, ...]`` the first ``filter_rank`` dims are the receptive field;
    the input dims are ``d[filter_rank + output_rank:]`` (``output_rank`` >= 0) or
    ``d[filter_rank:R + output_rank]`` (< 0). fanIn = filter size x input dims; fanOut =
    elements x filter size / fanIn. ``Parameter(out, in)``: fanIn = in, fanOut = out.
    """
    dims = tuple(int(d) for d in reversed(shape)) or (1,)
    rank = len(dims)
    if filter_rank + abs(output_rank) > rank:
        raise NetsurgeonError(f"initFilterRank {filter_rank} + |initOutputRank {output_rank}| "
                              f"exceeds the parameter's rank {rank}")
    receptive = math.prod(dims[:filter_rank])
    inputs = dims[filter_rank + output_rank:] if output_rank >= 0 else \
        dims[filter_rank:rank + output_rank]
    fan_in = max(receptive * math.prod(inputs), 1)
    fan_out = max(math.prod(dims) * receptive // fan_in, 1)
    return fan_in, fan_out


def _shaped(values: np.ndarray, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Draws in CNTK storage order as a numpy-shaped array (float32 first, as CNTK casts)."""
    return values.astype(np.float32).reshape(shape).astype(dtype, copy=False)


# kind -> (distribution, range or standard deviation before the scale, from fanIn and fanOut)
_FAN_KINDS = {
    "uniform1": ("uniform", lambda fi, fo: 1.0),
    "gaussian": ("normal", lambda fi, fo: 0.2 / math.sqrt(fi)),
    "normal": ("normal", lambda fi, fo: 1.0),
    "xavier": ("uniform", lambda fi, fo: math.sqrt(3.0 / fi)),
    "glorotUniform": ("uniform", lambda fi, fo: math.sqrt(6.0 / (fi + fo))),
    "glorotNormal": ("normal", lambda fi, fo: math.sqrt(2.0 / (fi + fo))),
    "heUniform": ("uniform", lambda fi, fo: math.sqrt(6.0 / fi)),
    "heNormal": ("normal", lambda fi, fo: math.sqrt(2.0 / fi)),
    "TruncNormal": ("truncated", lambda fi, fo: 1.0),
}


#: init kinds that draw random numbers (and so take a seed)
RANDOM_KINDS: frozenset[str] = frozenset({"uniform", *_FAN_KINDS})


def _bilinear(shape: tuple[int, ...], kh: int, kw: int, dtype: str) -> np.ndarray:
    """CNTK's bilinear upsampling kernel (bs-library.md §4).

    The kernel size comes from the parameter's own shape: CNTK ``[W x H x C x K]`` = numpy
    ``(K, C, H, W)`` (leading numpy axes repeat it), square, with C = K. Output channel k reads
    input channel c only when k = c: (1 − |w − ctr|/f)·(1 − |h − ctr|/f), f = ⌊(W+1)/2⌋,
    ctr = (W−1)/2; 0 elsewhere. NDL's ``kernelWidth``/``kernelHeight`` (``kh``, ``kw``; 0 = not
    given) must agree with that shape; a parameter of lower rank (NDL's matrix form) is filled
    with one kernel of that size per ``kh·kw`` block.
    """
    if len(shape) >= 4:
        k_out, c_in, h, w = (int(d) for d in shape[-4:])
        if (kh or kw) and (kh, kw) != (h, w):
            raise NetsurgeonError(f"init=bilinear: kernelWidth x kernelHeight {kw}x{kh} differ "
                                  f"from the parameter's kernel {w}x{h} (CNTK [W x H x C x K])")
        if h != w:
            raise NetsurgeonError(f"init=bilinear needs a square kernel, not {w}x{h} (CNTK "
                                  "[W x H x C x K])")
        if c_in != k_out:
            raise NetsurgeonError(f"init=bilinear needs as many output as input channels, not "
                                  f"C={c_in}, K={k_out} (CNTK [W x H x C x K])")
        kh = kw = w
    elif kh <= 0 or kw <= 0:
        raise NetsurgeonError(f"init=bilinear needs a parameter of CNTK shape [W x H x C x K] "
                              f"(W = H, C = K), not numpy {tuple(shape)}")
    factor_h, factor_w = (kh + 1) // 2, (kw + 1) // 2
    ch, cw = (kh - 1) / 2, (kw - 1) / 2
    og = np.ogrid[:kh, :kw]
    kernel = (1 - abs(og[0] - ch) / factor_h) * (1 - abs(og[1] - cw) / factor_w)
    out = np.zeros(shape, dtype=np.float64)
    if len(shape) >= 4:
        view = out.reshape(-1, shape[-4], shape[-3], kh, kw)
        for k in range(shape[-4]):
            view[:, k, k] = kernel
        return out.astype(dtype)
    if out.size % (kh * kw):
        raise NetsurgeonError("init=bilinear: the parameter size is not a multiple of the kernel")
    out.reshape(-1, kh * kw)[:] = kernel.reshape(-1)
    return out.astype(dtype)
