"""LambdaRank and NDCG1Eval against numpy references of CNTK's definitions, and against CNTK 2.7.

CNTK's ranking criteria take three values per sample: gain, score (the prediction) and query id.
A query group is a run of consecutive samples with equal query ids; CNTK takes the samples of a
group as pre-sorted by gain, descending, so the first is the ideal top and the given order the
ideal ranking. Ranks sort by score descending, ties by gain ascending. With N samples and Q
groups (CNTK 2.7's numbers, from its library):

* NDCG1Eval = 100·N/Q · Σ_groups gain(top-scored) / gain(first) (a group whose first gain is 0
  counts 0);
* LambdaRank's value = 100·N/Q · Σ_groups (1 − DCG/IDCG), DCG = Σ gain/ln(2 + rank), IDCG the
  same in the given order (1 where IDCG is 0); its gradient with respect to the scores is
  CNTK's lambdas: for each pair i < j of a group with gain_i > gain_j,
  λ = |(gain_i − gain_j)(1/ln(2+rank_i) − 1/ln(2+rank_j))| / IDCG / (1 + exp(s_i − s_j)),
  −λ to s_i and +λ to s_j.

The gradient numbers in ``CNTK_GRADIENTS`` were computed by CNTK 2.7 itself (``CNTK::LambdaRank``
of the v2.7 C++ API, Function::Forward/Backward with root gradient 1, float32); the oracle
(cntk_eval) computes forward values only. The gradient equals CNTK's wherever each group's gains
are pre-sorted and distinct; with equal gains in a group CNTK 2.7 misaligns its score
differences (see the test below) and netsurgeon deliberately keeps the true lambdas. Gains
not sorted within a group break CNTK's assumption: netsurgeon then takes the pairs i < j with
gain_i > gain_j (what CNTK 2.7 does in most but not all such inputs tried).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.oracle import cntk_info, cntk_outputs, needs_oracle
from tests.runtime.test_op_reference import LENGTHS, C, Case, X, build, criterion, expected

import netsurgeon
from netsurgeon import formats
from netsurgeon.errors import EvaluationError
from netsurgeon.runtime import compile_network
from netsurgeon.runtime.evaluate import batch_from_arrays

R = np.random.default_rng(2024)


# ---- references ---------------------------------------------------------------------------
def _groups(q) -> list[np.ndarray]:
    q = np.asarray(q).reshape(-1)
    cut = np.flatnonzero(q[1:] != q[:-1]) + 1
    return np.split(np.arange(len(q)), cut)


def _ranks(g, s) -> np.ndarray:
    order = sorted(range(len(s)), key=lambda k: (-s[k], g[k], k))
    r = np.empty(len(s), int)
    r[order] = np.arange(len(s))
    return r


def ndcg1_ref(g, s, q) -> float:
    g, s = np.ravel(g), np.ravel(s)
    groups = _groups(q)
    total = sum(g[idx][_ranks(g[idx], s[idx]) == 0][0] / g[idx][0]
                for idx in groups if g[idx][0] > 0)
    return 100 * len(g) * total / len(groups)


def lambda_rank_ref(g, s, q) -> tuple[float, np.ndarray]:
    """(CNTK's output value, d value / d scores as CNTK backpropagates it)."""
    g, s = np.ravel(g).astype(np.float64), np.ravel(s).astype(np.float64)
    groups = _groups(q)
    total, grad = 0.0, np.zeros(len(g))
    for idx in groups:
        gg, ss = g[idx], s[idx]
        rank = _ranks(gg, ss)
        disc = 1 / np.log(2 + np.arange(len(idx)))
        ideal = gg @ disc
        if ideal <= 0:
            total += 1
            continue
        total += 1 - (gg @ disc[rank]) / ideal
        for i in range(len(idx)):
            for j in range(i + 1, len(idx)):
                if gg[i] > gg[j]:
                    lam = abs((gg[i] - gg[j]) * (disc[rank[i]] - disc[rank[j]])) / ideal \
                        / (1 + np.exp(ss[i] - ss[j]))
                    grad[idx[i]] -= lam
                    grad[idx[j]] += lam
    return 100 * len(g) * total / len(groups), grad


def _sorted_gains(q, levels=4) -> np.ndarray:
    """Gains pre-sorted (descending) within each group, distinct where possible."""
    g = np.zeros(len(q), np.float32)
    for idx in _groups(q):
        g[idx] = np.sort(R.choice(levels + len(idx), len(idx), replace=False))[::-1]
    return g


def _col(a) -> np.ndarray:
    return np.asarray(a, np.float32).reshape(-1, 1)


Q1 = np.array([1, 1, 1, 1, 2, 2, 2, 5, 5, 3, 3, 3, 3, 1, 1], np.float32)  # 5 groups (1 twice)
G1, S1 = _sorted_gains(Q1), R.normal(size=len(Q1)).astype(np.float32)
G_TIED = np.array([3, 2, 2, 1, 0, 0, 4, 4], np.float32)  # ties of gain (and of score below)
S_TIED = np.array([0.5, 0.5, -1.0, 0.5, 2.0, 0.1, 0.3, 0.3], np.float32)
Q_TIED = np.array([7, 7, 7, 7, 7, 7, 8, 8], np.float32)
G_ZERO = np.array([0, 0, 2, 1, 0, 0], np.float32)  # a group whose gains are all 0
S_ZERO = np.array([0.2, -0.4, 0.1, 0.9, 0.0, 0.3], np.float32)
Q_ZERO = np.array([0, 0, 1, 1, 2, 2], np.float32)


def _ranking(op, g, s, q, ref, suffix):
    return Case(f"{op}-{suffix}", op, [X(_col(g)), X(_col(s)), X(_col(q))],
                lambda g, s, q: np.array([ref(g, s, q)]), tol=1e-4)


def _seq_ref(ref):
    """The reference on the real frames of a padded (B, T, 1) batch, in frame order."""
    def run(g, s, q):
        mask = np.arange(g.shape[1])[None, :] < np.asarray(LENGTHS)[:, None]
        return np.array([ref(g[mask], s[mask], q[mask])])
    return run


_QSEQ = np.repeat(np.arange(3, dtype=np.float32), 4).reshape(3, 4, 1)
_QSEQ[0, 2:] = 9  # two groups in the first sequence
_GSEQ = np.array([[3, 1, 2, 0], [2, 1, 5, 5], [4, 2, 1, 7]], np.float32).reshape(3, 4, 1)
_SSEQ = R.normal(size=(3, 4, 1)).astype(np.float32)

CASES = [
    _ranking("NDCG1Eval", G1, S1, Q1, ndcg1_ref, "groups"),
    _ranking("NDCG1Eval", G_TIED, S_TIED, Q_TIED, ndcg1_ref, "ties"),
    _ranking("NDCG1Eval", G_ZERO, S_ZERO, Q_ZERO, ndcg1_ref, "zero-gain-group"),
    _ranking("LambdaRank", G1, S1, Q1, lambda g, s, q: lambda_rank_ref(g, s, q)[0], "groups"),
    _ranking("LambdaRank", G_TIED, S_TIED, Q_TIED, lambda g, s, q: lambda_rank_ref(g, s, q)[0],
             "ties"),
    _ranking("LambdaRank", G_ZERO, S_ZERO, Q_ZERO, lambda g, s, q: lambda_rank_ref(g, s, q)[0],
             "zero-gain-group"),
    # padded sequences: the padding (other values) must not count or split groups
    Case("NDCG1Eval-padded", "NDCG1Eval", [X(_GSEQ), X(_SSEQ), X(_QSEQ)],
         _seq_ref(ndcg1_ref), lengths=LENGTHS, tol=1e-4),
    Case("LambdaRank-padded", "LambdaRank", [X(_GSEQ), X(_SSEQ), X(_QSEQ)],
         _seq_ref(lambda g, s, q: lambda_rank_ref(g, s, q)[0]), lengths=LENGTHS, tol=1e-4),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ranking_op_matches_numpy(case: Case):
    net, feeds = build(case)
    got = netsurgeon.evaluate(net, feeds, ["y"], lengths=case.lengths)["y"]
    want = expected(case)
    assert got.shape == want.shape == (1,)
    np.testing.assert_allclose(got, want, rtol=case.tol, atol=case.tol)


# ---- the gradient -------------------------------------------------------------------------
def _score_gradient(g, s, q, lengths=None) -> np.ndarray:
    """d LambdaRank / d scores through the compiled network (training mode)."""
    case = Case("grad", "LambdaRank", [X(g), X(s), X(q)], None, lengths=lengths)
    net, feeds = build(case)
    compiled = compile_network(net, ["y"], training=True)
    args = compiled.feed(batch_from_arrays(net, feeds, lengths)[0])
    k = compiled.source.inputs.index("x1")
    args[k] = args[k].detach().clone().requires_grad_(True)
    compiled.run(args)["y"].sum().backward()
    return args[k].grad.numpy().reshape(np.shape(s)[:-1])


@pytest.mark.parametrize("g,s,q", [(G1, S1, Q1), (G_TIED, S_TIED, Q_TIED),
                                   (G_ZERO, S_ZERO, Q_ZERO)], ids=["groups", "ties", "zero"])
def test_lambda_rank_gradient_is_cntks_lambdas(g, s, q):
    got = _score_gradient(_col(g), _col(s), _col(q))
    np.testing.assert_allclose(got, lambda_rank_ref(g, s, q)[1], rtol=1e-5, atol=1e-6)
    assert abs(got.sum()) < 1e-5  # every pair gives and takes the same λ


def test_lambda_rank_gradient_ignores_padding():
    got = _score_gradient(_GSEQ, _SSEQ, _QSEQ, LENGTHS)
    mask = np.arange(4)[None, :] < np.asarray(LENGTHS)[:, None]
    want = np.zeros((3, 4))
    want[mask] = lambda_rank_ref(_GSEQ[mask], _SSEQ[mask], _QSEQ[mask])[1]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


#: (gains, scores, query ids) -> CNTK 2.7's LambdaRank value and score gradient (float32)
CNTK_GRADIENTS = [
    (([3, 2, 1, 0], [0.1, 0.5, 0.3, 0.2], [1, 1, 1, 1]), 70.46826,
     [-0.14075154, -0.05267974, 0.06807438, 0.12535691]),
    (([3, 2, 1, 0], [0.1, 0.5, 0.3, 0.2], [1, 1, 2, 2]), 17.31968,
     [-0.05184541, 0.05184541, -0.17531607, 0.17531607]),
    (([3, 2, 1, 0], [0.9, 0.5, 0.3, 0.2], [1, 1, 2, 2]), 0.0,
     [-0.03475301, 0.03475301, -0.17531607, 0.17531607]),
    (([1, 0], [0.9, 0.5], [1, 1]), 0.0, [-0.14811246, 0.14811246]),
    (([0, 0], [0.9, 0.5], [1, 1]), 200.0, [0.0, 0.0]),
    (([3, 1], [0.36, 0.58], [1, 1]), 40.658474, [-0.11278243, 0.11278243]),
    (([4, 2, 1, 3, 0, 2, 1, 0, 5], [0.3, -0.2, 0.8, 1.1, 0.4, -0.5, 0.0, 0.7, 0.2],
      [1, 1, 1, 2, 2, 1, 1, 1, 4]), 133.87035,
     [-0.13677119, -0.046281364, 0.18305254, -0.12246203, 0.12246203, -0.32308853,
      -0.062757209, 0.38584575, 0.0]),
]


def test_tied_gains_get_the_lambdas_not_cntks_misaligned_score_differences():
    """Where a group holds equal gains, CNTK 2.7 reads the score difference of the wrong pair
    (it stores one per pair i < j but consumes them only for pairs of different gains): for
    gains [3, 3, 1], scores [0.58, 0.36, -0.54] it gives [-0.0825585, -0.0119457, 0.0945042].
    netsurgeon keeps each pair's own difference (the LambdaRank gradient)."""
    g, s, q = [3, 3, 1], [0.58, 0.36, -0.54], [1, 1, 1]
    got = _score_gradient(_col(g), _col(s), _col(q))
    np.testing.assert_allclose(got, lambda_rank_ref(g, s, q)[1], rtol=1e-5, atol=1e-7)
    assert np.abs(got - [-0.0825585, -0.0119457, 0.0945042]).max() > 0.01


@pytest.mark.parametrize("inputs,value,grad", CNTK_GRADIENTS)
def test_lambda_rank_matches_cntk_numbers(inputs, value, grad):
    g, s, q = (_col(a) for a in inputs)
    case = Case("cntk", "LambdaRank", [X(g), X(s), X(q)], None)
    net, feeds = build(case)
    got = netsurgeon.evaluate(net, feeds, ["y"])["y"]
    np.testing.assert_allclose(got, [value], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(_score_gradient(g, s, q), grad, rtol=1e-5, atol=1e-7)
    ref_value, ref_grad = lambda_rank_ref(*inputs)
    np.testing.assert_allclose([ref_value], [value], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ref_grad, grad, rtol=1e-5, atol=1e-7)


def test_ranking_criteria_train_no_gradient_into_gains():
    g = torch.tensor(_col(G1), requires_grad=True)
    s = torch.tensor(_col(S1), requires_grad=True)
    from netsurgeon.runtime import _kernels as K

    K.lambda_rank(g, s, torch.tensor(_col(Q1)), None).sum().backward()
    assert g.grad is None and s.grad is not None


# ---- refusals -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", [
    criterion("LambdaRank", [X(np.zeros((3, 4, 2), np.float32)), X(np.zeros((3, 4, 1))),
                             X(np.zeros((3, 4, 1)))], None, suffix="-two-gains-per-frame"),
    Case("NDCG1Eval-constants", "NDCG1Eval",
         [C(_col(G1)), C(_col(S1)), C(_col(Q1))], None),
], ids=lambda c: c.id)
def test_ranking_needs_one_value_per_frame(case):
    net, feeds = build(case)
    with pytest.raises(EvaluationError) as info:
        netsurgeon.evaluate(net, feeds, ["y"], lengths=case.lengths)
    assert info.value.node == "y"


# ---- the real CNTK ------------------------------------------------------------------------
@needs_oracle
@pytest.mark.parametrize("g,s,q", [(G1, S1, Q1), (G_TIED, S_TIED, Q_TIED),
                                   (G_ZERO, S_ZERO, Q_ZERO)], ids=["groups", "ties", "zero"])
def test_ranking_values_match_cntk(tmp_path, g, s, q):
    """A v2 file with LambdaRank (op 59) and NDCG (op 60) evaluated by CNTK 2.7."""
    case = Case("rank", "NDCG1Eval", [X(_col(g)), X(_col(s)), X(_col(q))], None)
    net, feeds = build(case)
    net.add("lr", "LambdaRank", inputs=[net.node("x0"), net.node("x1"), net.node("x2")])
    net.add_to_group("output", net.node("lr"))
    net.validate()
    path = tmp_path / "rank.model"
    formats.save(net, path)
    info = cntk_info(path)
    assert sorted(a["name"] for a in info["arguments"]) == ["x0", "x1", "x2"]
    paths = {}
    for name, value in feeds.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], value)
    theirs = cntk_outputs(path, paths, ["y", "lr"], tmp_path / "out")
    ours = netsurgeon.evaluate(net, feeds, ["y", "lr"])
    for name in ("y", "lr"):
        np.testing.assert_allclose(ours[name].reshape(-1), theirs[name].reshape(-1),
                                   rtol=1e-5, atol=1e-3)
