"""CNTK's parameter-initialisation random numbers, bit for bit (cntk-config-driver.md §9.3).

CNTK (CPU path, and any device with ``initOnCPUOnly=true``) fills a parameter from a fresh
``std::mt19937_64`` seeded with the parameter's seed, in CNTK's column-major storage order —
which is numpy C order of the numpy-shaped array (CNTK ``[rows x cols]`` is numpy
``(cols, rows)``) — drawing each value in double and casting it to the element type:

* uniform: Boost's ``uniform_real_distribution<double>(lo, hi)``:
  ``u = double(x) / 2^64 * (hi - lo) + lo``, drawn again while ``u >= hi``;
* gaussian: Boost's ``normal_distribution<double>(mean, sigma)``, the ziggurat of Boost >= 1.56
  (``unit_normal_distribution``): one 64-bit draw split by ``generate_int_float_pair<double, 8>``
  into 8 low bits (sign bit + 7-bit layer of 128) and a 53-bit fraction; the wedge test draws
  a ``uniform_01``; the tail samples two ``exponential_distribution`` values (Boost 1.60's
  inverse-CDF ``-log(1 - uniform_01)/lambda``, which CNTK 2.7 was built with) until ``2y > x^2``;
* truncated normal: the gaussian stream with values outside ``mean ± 2·sigma`` (compared in
  float32) skipped.

``lo``, ``hi``, ``mean`` and ``sigma`` are float32 values, as CNTK passes them (``ElemType``).
Checked against the real CNTK 2.7 library (tests/ops/test_cntk_random.py). The ziggurat tables
are the double values of Boost's ``normal_table`` (recomputed with 60-digit arithmetic; they
agree with Boost's literal constants).

The seed counters of NDL and BrainScript (§9.2) live here too: :data:`SEEDS`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MT19937_64", "uniform", "normal", "truncated_normal", "SeedCounters", "SEEDS",
           "next_ndl_seed", "next_bs_seed", "reset_seed_counters"]

_N, _M = 312, 156
_MATRIX_A = np.uint64(0xB5026F5AA96619E9)
_UPPER = np.uint64(0xFFFFFFFF80000000)
_LOWER = np.uint64(0x7FFFFFFF)
_TWO64 = 18446744073709551616.0


class MT19937_64:
    """``std::mt19937_64``, vectorised: :meth:`random_raw` returns the next ``n`` outputs."""

    def __init__(self, seed: int) -> None:
        state = [0] * _N
        state[0] = int(seed) & 0xFFFFFFFFFFFFFFFF
        for i in range(1, _N):
            prev = state[i - 1]
            state[i] = (6364136223846793005 * (prev ^ (prev >> 62)) + i) & 0xFFFFFFFFFFFFFFFF
        self._state = np.array(state, dtype=np.uint64)
        self._pending = np.empty(0, dtype=np.uint64)

    def _twist(self, blocks: int) -> np.ndarray:
        """``blocks`` x 312 new raw (untempered) words after the current state."""
        buf = np.empty(_N * (blocks + 1), dtype=np.uint64)
        buf[:_N] = self._state
        y = np.empty(_M, dtype=np.uint64)
        t = np.empty(_M, dtype=np.uint64)
        one, a, upper, lower, s1 = np.uint64(1), _MATRIX_A, _UPPER, _LOWER, np.uint64(1)
        for k in range(0, _N * blocks, _M):
            np.bitwise_and(buf[k:k + _M], upper, out=y)
            np.bitwise_and(buf[k + 1:k + _M + 1], lower, out=t)
            np.bitwise_or(y, t, out=y)
            np.bitwise_and(y, one, out=t)
            np.multiply(t, a, out=t)
            np.right_shift(y, s1, out=y)
            np.bitwise_xor(y, t, out=y)
            np.bitwise_xor(y, buf[k + _M:k + _N], out=buf[k + _N:k + _N + _M])
        self._state = buf[-_N:].copy()
        return buf[_N:]

    @staticmethod
    def _temper(y: np.ndarray) -> np.ndarray:
        y = y ^ ((y >> np.uint64(29)) & np.uint64(0x5555555555555555))
        y ^= (y << np.uint64(17)) & np.uint64(0x71D67FFFEDA60000)
        y ^= (y << np.uint64(37)) & np.uint64(0xFFF7EEE000000000)
        y ^= y >> np.uint64(43)
        return y

    def random_raw(self, n: int) -> np.ndarray:
        """The next ``n`` 64-bit outputs (uint64)."""
        have = self._pending
        if n <= have.size:
            out, self._pending = have[:n], have[n:]
            return out
        blocks = -(-(n - have.size) // _N)
        fresh = self._temper(self._twist(blocks))
        out = np.concatenate([have, fresh])
        self._pending = out[n:]
        return out[:n]

    def unread(self, draws: np.ndarray) -> None:
        """Give back ``draws`` (the last ones taken): the next outputs are these again."""
        self._pending = np.concatenate([draws, self._pending])

    def next(self) -> int:
        """One output, as a Python int."""
        return int(self.random_raw(1)[0])


# ---- uniform -----------------------------------------------------------------------------

def uniform(gen: MT19937_64, n: int, lo: float, hi: float) -> np.ndarray:
    """``n`` doubles of Boost's ``uniform_real_distribution<double>(lo, hi)``."""
    lo, hi = float(lo), float(hi)
    parts: list[np.ndarray] = []
    need = n
    while need > 0:
        d = gen.random_raw(need)
        u = d.astype(np.float64) / _TWO64 * (hi - lo) + lo
        ok = u < hi
        if ok.all():
            parts.append(u)
            break
        good = np.flatnonzero(ok)
        parts.append(u[good])
        need -= good.size
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _uniform01(gen: MT19937_64) -> float:
    """Boost's ``uniform_01<double>``: ``double(x) * 2^-64``, drawn again while it rounds to 1."""
    while True:
        u = float(gen.next()) * (1.0 / _TWO64)
        if u < 1.0:
            return u


class _Cursor:
    """Draws from a buffer from position ``pos`` on, then from the generator."""

    def __init__(self, d: np.ndarray, pos: int, gen: MT19937_64) -> None:
        self.d, self.pos, self.gen = d, pos, gen
        self.extra: list[int] = []

    def next(self) -> int:
        self.pos += 1
        if self.pos <= self.d.size:
            return int(self.d[self.pos - 1])
        self.extra.append(self.gen.next())
        return self.extra[-1]


def _int_float_pair(x: int) -> tuple[float, int]:
    """Boost's ``generate_int_float_pair<double, 8>`` for one 64-bit draw ``x``."""
    bucket = x & 0xFF
    x &= ~(1 << 11)  # Boost: "zero out unused bits" (clears bit m - digits = 11 only)
    return float(x >> 8) * (1.0 / 72057594037927936.0), bucket


def _exponential(gen: MT19937_64, lam: float) -> float:
    """Boost 1.60's ``exponential_distribution<double>(lam)``: ``-1/lam * log(1 - uniform_01)``
    (what CNTK 2.7 was built with; Boost >= 1.65 samples it with a ziggurat instead)."""
    return -1.0 / lam * math.log(1.0 - _uniform01(gen))


def _unit_normal_one(gen: MT19937_64) -> float:
    """One value of Boost's ``unit_normal_distribution<double>`` (scalar path)."""
    while True:
        r, b = _int_float_pair(gen.next())
        sign = (b & 1) * 2 - 1
        i = b >> 1
        x = r * _NORMAL_X[i]
        if x < _NORMAL_X[i + 1]:
            return x * sign
        if i == 0:
            return _normal_tail(gen) * sign
        y01 = _uniform01(gen)
        y = _NORMAL_Y[i] + y01 * (_NORMAL_Y[i + 1] - _NORMAL_Y[i])
        if y < math.exp(-(x * x / 2)):
            return x * sign


def _normal_tail(gen: MT19937_64) -> float:
    """Boost's ``generate_tail``: exponential(x1) + x1, accepted when 2y > x^2."""
    start = float(_NORMAL_X[1])
    while True:
        x = _exponential(gen, start)
        y = _exponential(gen, 1.0)
        if 2 * y > x * x:
            return x + start


def unit_normal(gen: MT19937_64, n: int) -> np.ndarray:
    """``n`` doubles of Boost's ``unit_normal_distribution<double>``, vectorised.

    Most draws are accepted by the ziggurat's rectangle test at once; a wedge draw takes the
    next draw as its ``uniform_01`` (accepted or the loop restarts after it); a tail draw (and
    a wedge whose uniform would round to 1) goes through the scalar path.
    """
    parts: list[np.ndarray] = []
    need = n
    mask8, bit11, s8 = np.uint64(0xFF), np.uint64(~(1 << 11) & 0xFFFFFFFFFFFFFFFF), np.uint64(8)
    while need > 0:
        m = need + need // 16 + 64
        d = gen.random_raw(m)
        bucket = (d & mask8).astype(np.intp)
        layer = bucket >> 1
        x = ((d & bit11) >> s8).astype(np.float64) * (1.0 / 72057594037927936.0)
        x *= _NORMAL_X[layer]
        fast = x < _NORMAL_X[layer + 1]
        x *= (bucket & 1) * 2 - 1
        special = np.flatnonzero(~fast)
        # wedge tests for every special draw with a following draw (the tail ones are ignored)
        sp = special[special + 1 < m]
        li = layer[sp]
        y01 = d[sp + 1].astype(np.float64) * (1.0 / _TWO64)
        y = _NORMAL_Y[li] + y01 * (_NORMAL_Y[li + 1] - _NORMAL_Y[li])
        xa = x[sp]
        accept = y < np.exp(-(xa * xa / 2))
        simple = (li != 0) & (y01 < 1.0)
        out = fast
        wedge_end = np.zeros(m, dtype=bool)  # output positions that also used the next draw
        tail_end = np.zeros(m, dtype=np.intp)  # scalar-path outputs: the draw after their last
        stop = m
        consumed = 0
        overflow = False
        for k, p in enumerate(special.tolist()):
            if p < consumed:
                continue
            if k < sp.size and simple[k]:
                out[p + 1] = False
                if accept[k]:
                    out[p] = True
                    wedge_end[p] = True
                consumed = p + 2
                continue
            # tail (or uniform_01 redraw, or last draw): the scalar path from draw p
            cur = _Cursor(d, p, gen)
            x[p] = _unit_normal_one(cur)
            out[p] = True
            if cur.pos > m:  # it read past this buffer: stop here
                out[p + 1:] = False
                stop = p + 1
                wedge_end[p] = False
                overflow = True
                break
            out[p + 1:cur.pos] = False
            wedge_end[p] = False
            tail_end[p] = cur.pos
            consumed = cur.pos
        pos = np.flatnonzero(out[:stop])
        if pos.size >= need:
            last = int(pos[need - 1])
            parts.append(x[pos[:need]])
            end = int(tail_end[last]) if tail_end[last] else last + 1 + int(wedge_end[last])
            if not (overflow and last == stop - 1):
                extra = np.array(cur.extra, dtype=np.uint64) if overflow else d[:0]
                gen.unread(np.concatenate([d[end:], extra]))
            break
        parts.append(x[pos])
        need -= pos.size
    return np.concatenate(parts) if parts else np.empty(0)


def normal(gen: MT19937_64, n: int, mean: float, sigma: float) -> np.ndarray:
    """``n`` doubles of Boost's ``normal_distribution<double>(mean, sigma)``."""
    return unit_normal(gen, n) * float(sigma) + float(mean)


def truncated_normal(gen: MT19937_64, n: int, mean: float, sigma: float) -> np.ndarray:
    """CNTK's ``SetTruncatedNormalRandomValue``: float32 normals outside
    ``[mean - 2 sigma, mean + 2 sigma]`` (float32 bounds) skipped."""
    m32, s32 = np.float32(mean), np.float32(sigma)
    low, high = m32 - np.float32(2) * s32, m32 + np.float32(2) * s32
    parts: list[np.ndarray] = []
    need = n
    while need > 0:
        v = normal(gen, need + need // 16 + 16, float(m32), float(s32)).astype(np.float32)
        good = v[(v >= low) & (v <= high)]
        parts.append(good[:need])
        need -= min(need, good.size)
    return np.concatenate(parts)


# ---- seeds (cntk-config-driver.md §9.2) -------------------------------------------------

class SeedCounters:
    """CNTK's process-wide automatic parameter seeds: NDL's and BrainScript's counters.

    Both start at 1 and are never reset by CNTK within a process (a second network continues
    counting); :meth:`reset` starts a new "process". ``force_constant`` is
    ``forceConstantRandomSeed=true``: every automatic seed is then 1 (counters still advance).
    """

    def __init__(self) -> None:
        self.ndl = 0
        self.bs = 0
        self.force_constant = False

    def next_ndl(self) -> int:
        """The next NDL seed (1, 2, 3, ...)."""
        self.ndl += 1
        return 1 if self.force_constant else self.ndl

    def next_bs(self) -> int:
        """The next BrainScript seed (1, 2, 3, ...)."""
        self.bs += 1
        return 1 if self.force_constant else self.bs

    def reset(self, *, force_constant: bool | None = None) -> None:
        """Both counters back to 0 (next seed 1); optionally set ``force_constant``."""
        self.ndl = self.bs = 0
        if force_constant is not None:
            self.force_constant = force_constant

    def __repr__(self) -> str:
        return f"SeedCounters(ndl={self.ndl}, bs={self.bs}, force_constant={self.force_constant})"


#: the process-wide counters NDL and BrainScript builds draw from
SEEDS = SeedCounters()


def next_ndl_seed() -> int:
    """The next automatic NDL parameter seed (process-wide)."""
    return SEEDS.next_ndl()


def next_bs_seed() -> int:
    """The next automatic BrainScript parameter seed (process-wide)."""
    return SEEDS.next_bs()


def reset_seed_counters(*, force_constant: bool | None = None) -> None:
    """Start the NDL and BrainScript seed counters again at 1 (a new CNTK process)."""
    SEEDS.reset(force_constant=force_constant)


# ---- ziggurat tables (Boost normal_table<double> / exponential_table<double>) ----------------

_NORMAL_X = np.array([
    3.7130862467403634, 3.4426198558966523, 3.2230849845786187, 3.0832288582142136,
    2.978696252645017, 2.894344007018671, 2.8231253505459666, 2.761169372384154,
    2.7061135731187225, 2.6564064112581924, 2.610972248428613, 2.569033625921639,
    2.5300096723854666, 2.493454522091951, 2.45901817740835, 2.4264206455302118,
    2.3954342780074676, 2.3658713701139877, 2.337575241335531, 2.310413683695002,
    2.2842740596736566, 2.2590595738653296, 2.234686395587057, 2.211081408874728,
    2.1881804320720204, 2.1659267937448408, 2.1442701823562613, 2.12316570866979,
    2.1025731351849988, 2.0824562379877247, 2.0627822745039635, 2.0435215366506694,
    2.024646973372934, 2.006133869958967, 1.9879595741230607, 1.9701032608497133,
    1.9525457295488888, 1.9352692282919002, 1.9182573008597321, 1.9014946531003176,
    1.8849670357028692, 1.868661140989542, 1.8525645117230871, 1.836665460253384,
    1.8209529965910052, 1.8054167642140488, 1.790046982594619, 1.7748343955807693,
    1.759770224894232, 1.7448461281083765, 1.7300541605582436, 1.7153867407081165,
    1.700836618564301, 1.6863968467734862, 1.6720607540918522, 1.6578219209482075,
    1.6436741568569826, 1.6296114794646783, 1.615628095037133, 1.601718380215277,
    1.5878768648844006, 1.5740982160167498, 1.5603772223598407, 1.5467087798535035,
    1.533087877667556, 1.5195095847593707, 1.5059690368565504, 1.4924614237746154,
    1.4789819769830979, 1.4655259573357946, 1.4520886428822164, 1.4386653166774612,
    1.4252512545068616, 1.4118417124397602, 1.3984319141236063, 1.3850170377251487,
    1.3715922024197322, 1.3581524543224228, 1.344692751745713, 1.3312079496576765,
    1.317692783201343, 1.3041418501204216, 1.290549591917873, 1.2769102735516997,
    1.2632179614460282, 1.2494664995643336, 1.235649483254481, 1.2217602305309625,
    1.2077917504067577, 1.1937367078237722, 1.1795873846544607, 1.1653356361550469,
    1.150972842138976, 1.1364898520030755, 1.121876922572254, 1.1071236475235353,
    1.0922188768965537, 1.0771506248819376, 1.0619059636836194, 1.0464709007525803,
    1.0308302360564556, 1.0149673952392995, 0.9988642334806435, 0.9825008035027604,
    0.9658550793881306, 0.9489026254979119, 0.9316161966013539, 0.9139652510088018,
    0.8959153525662386, 0.8774274290977156, 0.8584568431780508, 0.8389522142812075,
    0.8188539066833177, 0.7980920606262748, 0.7765839878761484, 0.75423066443451,
    0.7309119106218813, 0.706479611313608, 0.6807479186459042, 0.6534786387150424,
    0.6243585973090883, 0.592962942441978, 0.558692178375518, 0.5206560387251449,
    0.47743783725378786, 0.42654798630330515, 0.3628714310284183, 0.2723208647046638, 0.0,
])
_NORMAL_Y = np.array([
    0.0, 0.0026696290839025036, 0.00554899522081647, 0.008624484412930471, 0.011839478657982313,
    0.015167298010672042, 0.018592102737165814, 0.022103304616111593, 0.025693291936149616,
    0.02935631744025383, 0.03308788614650515, 0.03688438878696877, 0.040742868074790606,
    0.04466086220087243, 0.048636295860284055, 0.05266740190350317, 0.05675266348153858,
    0.060890770348566374, 0.06508058521363187, 0.06932111739418026, 0.07361150188475489,
    0.07795098251465471, 0.08233889824295741, 0.08677467189554297, 0.09125780082763471,
    0.09578784912257815, 0.10036444102954555, 0.10498725541035454, 0.10965602101581776,
    0.11437051244988827, 0.11913054670871859, 0.12393598020398175, 0.12878670619710397,
    0.13368265258464765, 0.13862377998585104, 0.143610080091933, 0.14864157424369698,
    0.15371831220958657, 0.15884037114093508, 0.16400785468492773, 0.16922089223892475,
    0.17447963833240232, 0.17978427212496212, 0.18513499701071343, 0.19053204032091373,
    0.1959756531181104, 0.20146611007620324, 0.2070037094418738, 0.2125887730737361,
    0.2182216465563706, 0.2239026993871339, 0.22963232523430271, 0.23541094226572765,
    0.24123899354775133, 0.24711694751469673, 0.25304529850976587, 0.25902456739871077,
    0.26505530225816193, 0.2711380791410253, 0.27727350292189773, 0.28346220822601254,
    0.2897048604458105, 0.2960021568498558, 0.30235482778947975, 0.30876363800925194,
    0.31522938806815753, 0.3217529158792086, 0.3283350983761524, 0.33497685331697113,
    0.3416791412350137, 0.3484429675498725, 0.35526938485154713, 0.3621594953730332,
    0.36911445366827517, 0.3761354695144544, 0.3832238110598836, 0.3903808082413895,
    0.39760785649804253, 0.40490642081148837, 0.4122780401070246, 0.41972433205403825,
    0.4272469983095624, 0.4348478302546619, 0.4425287152802466, 0.450291643686927,
    0.45813871627287195, 0.466072152694571, 0.4740943006982496, 0.4822076463348387,
    0.4904148252893216, 0.49871863547658435, 0.5071220510813046, 0.515628238249872,
    0.5242405726789928, 0.5329626593899875, 0.5417983550317241, 0.5507517931210553,
    0.5598274127106948, 0.5690299910747216, 0.5783646811267024, 0.5878370544418206,
    0.5974531509518123, 0.6072195366326049, 0.6171433708265625, 0.6272324852578146,
    0.6374954773431448, 0.6479418211185508, 0.6585820000586536, 0.6694276673577062,
    0.6804918410064144, 0.6917891434460358, 0.7033360990258174, 0.7151515074204771,
    0.7272569183545059, 0.7396772436833382, 0.7524415591857038, 0.7655841739092359,
    0.7791460859417032, 0.7931770117838592, 0.8077382946961211, 0.822907211395262,
    0.8387836053106472, 0.8555006078850643, 0.8732430489268536, 0.8922816508023027,
    0.9130436479920381, 0.936282681708371, 0.9635996931557675, 1.0,
])
