"""EditDistanceError and ClassBasedCrossEntropyWithSoftmax against numpy references, on the
harness of test_op_reference (padded sequences of lengths 4, 2, 3 whose padding holds other
values that must not count), and EditDistanceError against the real CNTK 2.7 (the oracle).

The references:

* EditDistanceError(a, b): per sequence, the arg-max label sequences of a (hypothesis) and b
  (reference); with squashInputs a token equal to the token before it is dropped, then the
  tokensToIgnore are dropped (the comparison is with the previous token even when that one is
  ignored: "1 0 1" squashed with 0 ignored is "1 1"); the number of substitutions, deletions
  and insertions of the cheapest alignment (the penalties choose the path, they are not
  summed: at equal cost a substitution, then a deletion if strictly cheaper, else an
  insertion). The value is the total count x real frames / total reference tokens (CNTK
  reports it per frame: errors per reference token); 0/0 is NaN. All of this was measured
  on CNTK 2.7 (the cases of test_edit_distance_matches_cntk).
* ClassBasedCrossEntropyWithSoftmax(labels, h, W, classLogits): labels (word, class, class
  start, class end); −Σ [log softmax(classLogits)[class] + log softmax(W[start:end] · h)[word
  − start]], W (vocabulary, hidden) in numpy order (CNTK [hidden x vocabulary]). CNTK 2.7's
  library refuses to load the node ("Unsupported ComputationNode ... deprecated operation"),
  so this one rests on CNTK's definition only.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import cntk_outputs, needs_oracle
from tests.runtime.test_op_reference import (
    LENGTHS,
    B,
    C,
    Case,
    T,
    X,
    build,
    criterion,
    expected,
)

import netsurgeon
from netsurgeon import formats
from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network

R = np.random.default_rng(4321)


def _packed(padded: np.ndarray, lengths) -> np.ndarray:
    return np.concatenate([padded[b, :n] for b, n in enumerate(lengths)])


# ---- EditDistanceError --------------------------------------------------------------------
def tokens(ids: list[int], squash: bool = False, ignore: tuple[int, ...] = ()) -> list[int]:
    out = []
    for t, cur in enumerate(ids):
        if squash and t > 0 and cur == ids[t - 1]:
            continue
        if cur not in ignore:
            out.append(cur)
    return out


def edit_count(hyp, ref, sub=1.0, dele=1.0, ins=1.0) -> int:
    """The count of edits on CNTK's chosen path (float32 costs, its tie rules)."""
    f = np.float32
    sub, dele, ins = f(sub), f(dele), f(ins)
    n, m = len(hyp), len(ref)
    cost = np.zeros((n + 1, m + 1), np.float32)
    count = np.zeros((n + 1, m + 1), np.int64)
    cost[:, 0], count[:, 0] = np.arange(n + 1) * dele, np.arange(n + 1)
    cost[0, :], count[0, :] = np.arange(m + 1) * ins, np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if hyp[i - 1] == ref[j - 1]:
                cost[i, j], count[i, j] = cost[i - 1, j - 1], count[i - 1, j - 1]
                continue
            d, s, a = cost[i - 1, j] + dele, cost[i - 1, j - 1] + sub, cost[i, j - 1] + ins
            if s <= d and s <= a:
                cost[i, j], count[i, j] = s, count[i - 1, j - 1] + 1
            elif d < a:
                cost[i, j], count[i, j] = d, count[i - 1, j] + 1
            else:
                cost[i, j], count[i, j] = a, count[i, j - 1] + 1
    return int(count[n, m])


def edit_distance(a, b, lengths, sub=1.0, dele=1.0, ins=1.0, squash=False, ignore=()):
    """(batch, time, *sample) arrays -> CNTK's EditDistanceError value, shaped (1,)."""
    ia = a.reshape(a.shape[0], a.shape[1], -1).argmax(-1)
    ib = b.reshape(b.shape[0], b.shape[1], -1).argmax(-1)
    errors = frames = reference = 0
    for s, n in enumerate(lengths):
        frames += n
        hyp = tokens(list(ia[s, :n]), squash, ignore)
        ref = tokens(list(ib[s, :n]), squash, ignore)
        reference += len(ref)
        errors += edit_count(hyp, ref, sub, dele, ins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.float64([errors * frames]) / reference


def labels(n=5, *lead, k=3) -> np.ndarray:
    """One-hot frames of few distinct labels (so that sequences share tokens)."""
    return np.eye(n, dtype=np.float32)[R.integers(0, k, lead)]


def seq_labels(n=5, k=3) -> np.ndarray:
    return labels(n, B, T, k=k)


def ed_case(suffix, a, b, **attrs):
    """A case whose reference is the whole-minibatch value (``post``: the per-frame values
    are zeros, the total is replaced)."""
    names = {"sub": "substitution_penalty", "dele": "deletion_penalty",
             "ins": "insertion_penalty", "squash": "squash_inputs", "ignore": "tokens_to_ignore"}
    want = edit_distance(np.asarray(a, np.float64), np.asarray(b, np.float64), LENGTHS, **attrs)
    return criterion("EditDistanceError", [X(a), X(b)], lambda a, b: np.zeros((B, T)),
                     suffix=suffix, post=lambda _: want,
                     attrs={names[k]: v for k, v in attrs.items()})


_A, _B = seq_labels(), seq_labels()
_SQ = np.eye(4, dtype=np.float32)[np.array([[1, 1, 0, 1], [2, 2, 3, 3], [0, 0, 1, 3]])]
_SQ2 = np.eye(4, dtype=np.float32)[np.array([[1, 0, 0, 1], [2, 3, 2, 2], [1, 1, 1, 0]])]
_DENSE_A, _DENSE_B = R.normal(size=(B, T, 2, 3)).astype(np.float32), \
    R.normal(size=(B, T, 2, 3)).astype(np.float32)


# ---- ClassBasedCrossEntropyWithSoftmax ----------------------------------------------------
VOCAB, HIDDEN = 7, 3
CLASS_RANGES = [(0, 3), (3, 4), (4, 7)]  # class 1 holds one word


def class_labels() -> np.ndarray:
    """(B, T, 4) label frames: word, class, class start, class end; the padding holds
    out-of-range rubbish that must never be read."""
    words = R.integers(0, VOCAB, (B, T))
    out = np.full((B, T, 4), 99.0, np.float32)
    for b in range(B):
        for t in range(LENGTHS[b]):
            c = next(i for i, (lo, hi) in enumerate(CLASS_RANGES) if lo <= words[b, t] < hi)
            out[b, t] = (words[b, t], c, *CLASS_RANGES[c])
    return out


def class_based_ce(lab, h, w, cls):
    """Per-frame −log P(class) − log P(word | class); padding frames give 0."""
    out = np.zeros(lab.shape[:2])
    for b in range(lab.shape[0]):
        for t in range(LENGTHS[b]):
            word, c, lo, hi = (int(v) for v in lab[b, t])
            z = w[lo:hi] @ h[b, t].reshape(-1)
            log_word = z - np.log(np.exp(z - z.max()).sum()) - z.max()
            lc = cls[b, t] - cls[b, t].max()
            log_cls = lc - np.log(np.exp(lc).sum())
            out[b, t] = -(log_word[word - lo] + log_cls[c])
    return out


_CB_LAB, _CB_W = class_labels(), R.normal(size=(VOCAB, HIDDEN)).astype(np.float32)


def _seq(*sample):
    return R.normal(size=(B, T, *sample)).astype(np.float32)


CASES = [
    ed_case("", _A, _B),
    ed_case("-same", _A, _A),
    ed_case("-penalties", _A, _B, sub=2.0, dele=0.5, ins=1.5),
    ed_case("-cheap-deletion", _A, _B, sub=3.0, dele=0.25, ins=1.0),
    ed_case("-squash", _SQ, _SQ2, squash=True),
    ed_case("-ignore", _SQ, _SQ2, ignore=(0,)),
    ed_case("-squash-ignore", _SQ, _SQ2, squash=True, ignore=(3,)),
    ed_case("-dense-rank2", _DENSE_A, _DENSE_B),
    criterion("ClassBasedCrossEntropyWithSoftmax",
              [X(_CB_LAB), X(_seq(HIDDEN)), C(_CB_W), X(_seq(len(CLASS_RANGES)))],
              class_based_ce, tol=1e-4),
    criterion("ClassBasedCrossEntropyWithSoftmax",
              [X(_CB_LAB), X(_seq(1, HIDDEN)), C(_CB_W), X(_seq(len(CLASS_RANGES)))],
              class_based_ce, suffix="-rank2-hidden", tol=1e-4),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_matches_numpy(case: Case):
    net, feeds = build(case)
    got = netsurgeon.evaluate(net, feeds, ["y"], lengths=case.lengths)["y"]
    want = expected(case)
    assert got.shape == want.shape == (1,)
    np.testing.assert_allclose(got, want, rtol=case.tol, atol=case.tol)


def test_edit_distance_of_nothing_to_compare_is_nan():
    none = np.eye(3, dtype=np.float32)[np.zeros((B, T), np.int64)]
    case = ed_case("-empty", none, none, ignore=(0,))
    net, feeds = build(case)
    assert np.isnan(netsurgeon.evaluate(net, feeds, ["y"], lengths=LENGTHS)["y"]).all()


def test_edit_distance_without_sequences_counts_each_sample():
    a, b = labels(5, 6, k=2), labels(5, 6, k=2)
    net, feeds = build(Case("ed", "EditDistanceError", [X(a), X(b)], None))
    got = netsurgeon.evaluate(net, feeds, ["y"])["y"]
    np.testing.assert_allclose(got, [(a.argmax(1) != b.argmax(1)).sum()])


def test_class_based_kernel_is_differentiable():
    import torch

    from netsurgeon.runtime import _kernels as K

    lab = torch.tensor(_CB_LAB.reshape(B * T, 4))
    mask = torch.tensor((np.arange(T)[None] < np.asarray(LENGTHS)[:, None]).reshape(-1),
                        dtype=torch.float32)
    h = torch.tensor(_seq(HIDDEN).reshape(B * T, HIDDEN), requires_grad=True)
    w = torch.tensor(_CB_W, requires_grad=True)
    cls = torch.tensor(_seq(3).reshape(B * T, 3), requires_grad=True)
    K.class_based_ce_sum(lab, h, w, cls, mask).sum().backward()
    real = mask.bool()
    assert h.grad[real].abs().sum() > 0 and (h.grad[~real] == 0).all()
    assert cls.grad[real].abs().sum() > 0 and (cls.grad[~real] == 0).all()
    # only the rows of the classes in the minibatch get a gradient (a one-word class none)
    classes = {int(lab[i, 1]) for i in range(B * T) if real[i]}
    for c, (lo, hi) in enumerate(CLASS_RANGES):
        assert bool((w.grad[lo:hi] != 0).any()) == (c in classes and hi - lo > 1)


@pytest.mark.parametrize("bad,match", [
    (lambda lab: lab.__setitem__((0, 0, 0), 5.0), "outside its class range"),
    (lambda lab: lab.__setitem__((0, 0, 1), 9.0), "beyond the 3 classes"),
])
def test_class_based_label_out_of_range_is_an_error(bad, match):
    lab = _CB_LAB.copy()
    lab[0, 0] = (0, 0, 0, 3)
    bad(lab)
    case = criterion("ClassBasedCrossEntropyWithSoftmax",
                     [X(lab), X(_seq(HIDDEN)), C(_CB_W), X(_seq(3))], class_based_ce)
    net, feeds = build(case)
    with pytest.raises(EvaluationError, match=match) as info:
        netsurgeon.evaluate(net, feeds, ["y"], lengths=LENGTHS)
    assert info.value.node == "y"


def test_class_based_weight_of_the_wrong_width_is_an_error_naming_the_node():
    case = criterion("ClassBasedCrossEntropyWithSoftmax",
                     [X(_CB_LAB), X(_seq(HIDDEN + 1)), C(_CB_W), X(_seq(3))], class_based_ce)
    net, feeds = build(case)
    with pytest.raises(EvaluationError, match="weight matrix") as info:
        netsurgeon.evaluate(net, feeds, ["y"], lengths=LENGTHS)
    assert info.value.node == "y"


@pytest.mark.parametrize("case", [CASES[2], CASES[4], CASES[-2]], ids=lambda c: c.id)
def test_standalone_module_carries_the_kernels(tmp_path, case):
    import importlib.util

    import torch

    from netsurgeon.runtime.standalone import write_module

    net, feeds = build(case)
    # a module without delays takes frames, not sequences: the real frames, one per sample
    feeds = {k: _packed(v, LENGTHS) for k, v in feeds.items()}
    path, _ = write_module(net, tmp_path / "m.py", ["y"])
    spec = importlib.util.spec_from_file_location("m_standalone", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load()
    args = {k: torch.tensor(v) for k, v in feeds.items()}
    got = model(**args)["y"]
    want = netsurgeon.evaluate(net, feeds, ["y"])["y"]
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-6)


# ---- the oracle ---------------------------------------------------------------------------
ORACLE_CASES = {  # name: (hypothesis tokens, reference tokens, lengths, attributes)
    "plain": ([1, 2, 3], [1, 2, 4], [3], {}),
    "normalised-by-reference": ([1, 1, 2, 2], [1, 2, 2, 3], [4], {"squash_inputs": True}),
    "reference-longer": ([1, 1, 1, 1], [1, 2, 3, 4], [4], {"squash_inputs": True}),
    "hypothesis-longer": ([1, 2, 3, 4], [1, 1, 1, 1], [4], {"squash_inputs": True}),
    "count-not-cost": ([1], [2], [1], {"substitution_penalty": 2.0}),
    "deletions-cheap": ([1, 2, 3], [1, 4, 4], [3], {"deletion_penalty": 0.4,
                                                    "insertion_penalty": 0.4}),
    "tie-hypothesis-first": ([3, 3, 4], [4, 1, 3], [3], {"substitution_penalty": 2.0}),
    "tie-hypothesis-first-2": ([3, 4, 2], [1, 2, 3], [3], {"substitution_penalty": 2.0}),
    "two-sequences": ([1, 1, 3, 4, 4], [1, 3, 3, 4, 1], [3, 2], {"squash_inputs": True}),
    "squash-then-ignore": ([1, 0, 1, 2, 0], [1, 1, 2, 2, 2], [5],
                           {"squash_inputs": True, "tokens_to_ignore": (0,)}),
    "ignore": ([1, 0, 1, 2, 0], [1, 1, 2, 2, 2], [5], {"tokens_to_ignore": (0,)}),
    "hypothesis-all-ignored": ([0, 0], [1, 2], [2], {"tokens_to_ignore": (0,)}),
    "nothing-left": ([0, 0], [0, 0], [2], {"tokens_to_ignore": (0,)}),
}


def _oracle_random_cases():
    rng = np.random.default_rng(11)
    out = {}
    for k in range(6):
        lengths = [int(n) for n in rng.integers(1, 7, 4)]
        total = sum(lengths)
        attrs = {"substitution_penalty": float(rng.choice([0.5, 1.0, 2.0, 0.7])),
                 "deletion_penalty": float(rng.choice([0.3, 1.0, 2.5])),
                 "insertion_penalty": float(rng.choice([0.3, 1.0, 2.5, 0.1])),
                 "squash_inputs": bool(k % 2), "tokens_to_ignore": (0,) if k % 3 else ()}
        out[f"random-{k}"] = (list(rng.integers(0, 4, total)), list(rng.integers(0, 4, total)),
                              lengths, attrs)
    return out


ORACLE_CASES.update(_oracle_random_cases())


def _edit_net(n: int, attrs) -> Network:
    net = Network("ed")
    a = net.add("a", "InputValue", shape=(n,))
    b = net.add("b", "InputValue", shape=(n,))
    y = net.add("y", "EditDistanceError", inputs=(a, b), attrs=attrs)
    net.add_to_group("output", y)
    net.validate()
    return net


# every case as a CNTK v2 file; as a v1 file too where tokensToIgnore is not empty (a v1
# file cannot hold an empty list)
_ORACLE_RUNS = [(name, "model") for name in sorted(ORACLE_CASES)] + [
    (name, "dnn") for name in sorted(ORACLE_CASES) if ORACLE_CASES[name][3].get(
        "tokens_to_ignore")]


@needs_oracle
@pytest.mark.parametrize("name,fmt", _ORACLE_RUNS)
def test_edit_distance_matches_cntk(tmp_path, name, fmt):
    hyp, ref, lengths, attrs = ORACLE_CASES[name]
    n = 5
    eye = np.eye(n, dtype=np.float32)
    a, b = eye[np.asarray(hyp)], eye[np.asarray(ref)]
    if name.startswith("random"):  # dense scores with ties: CNTK's arg-max takes the first
        a = a + np.round(np.random.default_rng(3).normal(size=a.shape), 0).astype(np.float32)
    net = _edit_net(n, attrs)
    path = tmp_path / f"ed.{fmt}"
    formats.save(net, path)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "lens.npy", np.asarray(lengths))
    seq = f":{tmp_path / 'lens.npy'}"
    theirs = cntk_outputs(path, {"a": f"{tmp_path / 'a.npy'}{seq}",
                                 "b": f"{tmp_path / 'b.npy'}{seq}"}, ["y"], tmp_path / "out")["y"]
    padded = np.zeros((2, len(lengths), max(lengths), n), np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for i, (s, k) in enumerate(zip(starts, lengths)):
        padded[0, i, :k], padded[1, i, :k] = a[s:s + k], b[s:s + k]
        padded[:, i, k:] = eye[0]  # padding that would count if it were read
    mine = netsurgeon.evaluate(net, {"a": padded[0], "b": padded[1]}, ["y"],
                               lengths=lengths)["y"]
    names = {"substitution_penalty": "sub", "deletion_penalty": "dele",
             "insertion_penalty": "ins", "squash_inputs": "squash", "tokens_to_ignore": "ignore"}
    ref_value = edit_distance(padded[0].astype(np.float64), padded[1].astype(np.float64),
                              lengths, **{names[k]: v for k, v in attrs.items()})
    np.testing.assert_allclose(np.asarray(theirs).reshape(1), mine, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(ref_value, mine, rtol=1e-6, equal_nan=True)
    assert _packed(padded[0], lengths).shape == a.shape
