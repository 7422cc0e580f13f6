"""TimeReverse, Shift and GMMLogLikelihood against numpy references, on the harness of
test_op_reference (padded sequences of lengths 4, 2, 3 whose padding holds other values).

The references (CNTK's BrainScript could not construct any of the three, and CNTK 2.x has no
v2 primitive for them, so there is no oracle; they rest on CNTK's node definitions):

* TimeReverse(x): per sequence, y[t] = x[length - 1 - t] for the real frames.
* Shift(x, boundary, fromOffset=k, boundaryMode): y[t] = x[t + k] while 0 <= t + k < length;
  outside, the boundary value (mode -1; per frame when the boundary has a dynamic axis) or the
  nearest edge frame (mode 0).
* GMMLogLikelihood(prior, means, logStd, x): log Σ_k softmax(prior)_k Π_d N(x_d; μ_kd, σ_kd),
  σ = exp(logStd), component k = row k of a (K, D) view of means/logStd.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.runtime.test_op_reference import LENGTHS, B, C, Case, T, X, build, expected, normal

import netsurgeon
from netsurgeon.errors import EvaluationError


def reverse_ref(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    for b, n in enumerate(LENGTHS):
        out[b, :n] = x[b, :n][::-1]
    return out


def shift_ref(x: np.ndarray, boundary: np.ndarray, k: int, mode: int = -1) -> np.ndarray:
    out = np.zeros_like(x)
    for b, n in enumerate(LENGTHS):
        for t in range(n):
            s = t + k
            if 0 <= s < n:
                out[b, t] = x[b, s]
            elif mode == 0:
                out[b, t] = x[b, min(max(s, 0), n - 1)]
            else:
                out[b, t] = boundary[b, t] if boundary.ndim == x.ndim else boundary
    return out


def gmm_ref(prior: np.ndarray, means: np.ndarray, log_std: np.ndarray,
            x: np.ndarray) -> np.ndarray:
    k, d = prior.shape[-1], x.shape[-1]
    lead = x.shape[:-1]
    logp = prior - prior.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    mu, ls = means.reshape(k, d), log_std.reshape(k, d)
    comp = np.zeros(lead + (k,))
    for j in range(k):
        sigma = np.exp(ls[j])
        dens = np.exp(-0.5 * ((x - mu[j]) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
        comp[..., j] = np.exp(logp[..., j]) * dens.prod(-1)
    return np.log(comp.sum(-1))[..., None]


_X = normal(B, T, 2, 3)
_BOUND = np.float32([[0.5, -0.5, 2.0]])

CASES = [
    Case("TimeReverse", "TimeReverse", [X(_X)], reverse_ref, lengths=LENGTHS),
    Case("Shift-past", "Shift", [X(_X), C(np.float32([7.0]))],
         lambda x, b: shift_ref(x, b, -1), attrs={"from_offset": -1}, lengths=LENGTHS),
    Case("Shift-future-2-sample-boundary", "Shift", [X(_X), C(_BOUND)],
         lambda x, b: shift_ref(x, b, 2), attrs={"from_offset": 2}, lengths=LENGTHS),
    Case("Shift-frame-boundary", "Shift", [X(_X), X(normal(B, T, 2, 3))],
         lambda x, b: shift_ref(x, b, 1), attrs={"from_offset": 1}, lengths=LENGTHS),
    Case("Shift-duplicate", "Shift", [X(_X), C(np.float32([0.0]))],
         lambda x, b: shift_ref(x, b, -2, mode=0),
         attrs={"from_offset": -2, "boundary_mode": 0}, lengths=LENGTHS),
    Case("GMMLogLikelihood", "GMMLogLikelihood",
         [C(normal(3)), C(normal(3, 4)), C(0.3 * normal(12)), X(normal(B, T, 4))],
         gmm_ref, lengths=LENGTHS, tol=1e-4),
    Case("GMMLogLikelihood-per-frame-prior", "GMMLogLikelihood",
         [X(normal(B, 2)), C(normal(8)), C(0.3 * normal(2, 4)), X(normal(B, 4))],
         gmm_ref, tol=1e-4),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sequence_op_matches_numpy(case: Case):
    net, feeds = build(case)
    got = netsurgeon.evaluate(net, feeds, ["y"], lengths=case.lengths)["y"]
    want = expected(case)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=case.tol, atol=case.tol)


def test_time_reverse_twice_is_the_identity():
    case = Case("TimeReverse", "TimeReverse", [X(_X)], reverse_ref, lengths=LENGTHS)
    net, feeds = build(case)
    z = net.add("z", "TimeReverse", inputs=(net.node("y"),))
    net.add_to_group("output", z)
    got = netsurgeon.evaluate(net, feeds, ["z"], lengths=LENGTHS)["z"]
    np.testing.assert_allclose(got, expected(Case("id", "Pass", [X(_X)], lambda x: x,
                                                  lengths=LENGTHS)), atol=1e-6)


def test_shift_along_a_static_axis_is_refused_naming_the_node():
    case = Case("Shift-static", "Shift", [X(_X), C(np.float32([0.0]))], lambda x, b: x,
                attrs={"from_offset": 1, "dim": 1}, lengths=LENGTHS)
    net, feeds = build(case)
    with pytest.raises(EvaluationError, match="y.*Shift along axis 1"):
        netsurgeon.evaluate(net, feeds, ["y"], lengths=LENGTHS)


def test_gmm_means_of_the_wrong_size_are_refused():
    from netsurgeon.errors import NetsurgeonError

    with pytest.raises(NetsurgeonError, match="means need 3 components x 4"):
        build(Case("bad", "GMMLogLikelihood",
                   [C(normal(3)), C(normal(10)), C(normal(10)), X(normal(B, 4))], gmm_ref))
