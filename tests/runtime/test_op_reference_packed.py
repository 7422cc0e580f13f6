"""Where, PackedIndex, GatherPacked and ScatterPacked (a new dynamic axis on the padded-batch
runtime) against numpy references on ragged sequences (lengths 4, 2, 3; padding holds other
values that must not count).

The references, per sequence b of length n and a 0/1 condition c:

* Where(c): the time indices t < n with c[t] != 0, in order, as a new sequence of length
  Σ c (CNTK also repeats frames for conditions > 1 and takes fractional ones; the runtime
  selects every nonzero frame once);
* BS.Sequences.Gather(c, x) = GatherPacked(PackedIndex(x, Where(c)), x): x's frames where c;
* BS.Sequences.Scatter(c, y) = ScatterPacked(c, PackedIndex(c, Where(c)), y): y's frames put
  back at c's positions on c's axis, zeros elsewhere.

Values on a Where axis come back in the minibatch's (batch, time) grid, each sequence's frames
at the front and zeros after its own length. The network is also checked against CNTK 2.7
(the oracle) through a v2 file, whose outputs come on the new axis, packed.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import cntk_outputs, needs_oracle
from tests.runtime.test_op_reference import LENGTHS, B, Case, T, X, build, expected

import netsurgeon
from netsurgeon import formats
from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network

R = np.random.default_rng(77)
COND = np.float32([[1, 0, 1, 1], [0, 1, 1, 0], [0, 0, 0, 1]])[..., None]  # (B, T, 1)
XS = R.normal(size=(B, T, 3)).astype(np.float32)


def where_ref(cond: np.ndarray) -> np.ndarray:
    out = np.zeros((B, T, 1))
    for b, n in enumerate(LENGTHS):
        hits = [t for t in range(n) if cond[b, t, 0] != 0]
        out[b, :len(hits), 0] = hits
    return out


def gather_ref(cond: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    for b, n in enumerate(LENGTHS):
        hits = [t for t in range(n) if cond[b, t, 0] != 0]
        out[b, :len(hits)] = x[b, hits]
    return out


def new_lengths(cond: np.ndarray) -> list[int]:
    return [int((cond[b, :n, 0] != 0).sum()) for b, n in enumerate(LENGTHS)]


def scatter_ref(cond: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.zeros_like(y, dtype=np.float64)
    for b, n in enumerate(LENGTHS):
        hits = [t for t in range(n) if cond[b, t, 0] != 0]
        out[b, hits] = y[b, :len(hits)]
    return out


def _packed_net() -> Network:
    """x, c -> Gather(c, x) (g), Scatter(c, g) (s), the index nodes, and ops on the new
    axis: g + 1 (p, its padding must come back zero) and FutureValue(g) (f, which must use
    the new axis's lengths)."""
    net = Network("packed")
    x = net.add("x", "InputValue", shape=(3,))
    c = net.add("c", "InputValue", shape=(1,))
    w = net.add("w", "Where", inputs=[c])
    pi = net.add("pi", "PackedIndex", inputs=[x, w])
    g = net.add("g", "GatherPacked", inputs=[pi, x])
    ci = net.add("ci", "PackedIndex", inputs=[c, w])
    s = net.add("s", "ScatterPacked", inputs=[c, ci, g])
    one = net.add_parameter("one", np.float32([1.0]), learning_rate_multiplier=0)
    p = net.add("p", "Plus", inputs=[g, one])
    f = net.add("f", "FutureValue", inputs=[g], attrs={"initial_state": -5.0})
    for n in (w, pi, g, s, p, f):
        net.add_to_group("output", n)
    net.validate()
    return net


def _run(outputs: list[str], cond: np.ndarray = COND) -> dict[str, np.ndarray]:
    return netsurgeon.evaluate(_packed_net(), {"x": XS, "c": cond}, outputs, lengths=LENGTHS)


CASES = [
    Case("Where", "Where", [X(COND)], where_ref, lengths=LENGTHS),
    Case("Where-real-valued", "Where", [X(np.float32(R.normal(size=(B, T, 1)) > 0.3))],
         where_ref, lengths=LENGTHS),
    # the network cases: see test_packed_ops_match_numpy (the coverage test counts the ops)
    Case("PackedIndex", "PackedIndex", [], None),
    Case("GatherPacked", "GatherPacked", [], None),
    Case("ScatterPacked", "ScatterPacked", [], None),
]


@pytest.mark.parametrize("case", CASES[:2], ids=[c.id for c in CASES[:2]])
def test_where_matches_numpy(case: Case):
    net, feeds = build(case)
    got = netsurgeon.evaluate(net, feeds, ["y"], lengths=case.lengths)["y"]
    np.testing.assert_allclose(got, expected(case), atol=0)


def test_packed_ops_match_numpy():
    got = _run(["w", "pi", "g", "s", "p", "f"])
    cond = COND.astype(np.float64)
    np.testing.assert_allclose(got["w"], where_ref(cond))
    rows = where_ref(cond)[..., 0] + np.arange(B)[:, None] * T
    for b, n in enumerate(new_lengths(cond)):
        rows[b, n:] = 0  # padding of the new axis
    np.testing.assert_allclose(got["pi"][..., 0], rows)
    gathered = gather_ref(cond, XS)
    np.testing.assert_allclose(got["g"], gathered, rtol=1e-6)
    # Scatter(c, Gather(c, x)) = x where c, 0 elsewhere (on the real frames)
    np.testing.assert_allclose(got["s"], scatter_ref(cond, gathered), rtol=1e-6)
    np.testing.assert_allclose(got["s"], expected(Case("s", "Pass", [X(XS * COND)],
                                                       lambda v: v, lengths=LENGTHS)), rtol=1e-6)
    plus = gathered + 1
    future = np.zeros_like(gathered)
    for b, n in enumerate(new_lengths(cond)):
        plus[b, n:] = 0
        future[b, :n] = np.concatenate([gathered[b, 1:n], np.full((1, 3), -5.0)])[:n]
    np.testing.assert_allclose(got["p"], plus, rtol=1e-6)
    np.testing.assert_allclose(got["f"], future, rtol=1e-6)


def test_an_empty_selection_gives_an_empty_sequence():
    cond = COND.copy()
    cond[1] = 0
    got = _run(["g", "s"], cond)
    assert not got["g"][1].any() and not got["s"][1].any()
    np.testing.assert_allclose(got["g"][0], gather_ref(cond, XS)[0], rtol=1e-6)


def test_gradients_flow_through_gather_and_scatter():
    import torch

    from netsurgeon.runtime import to_torch

    module = to_torch(_packed_net(), ["s"])
    x = torch.tensor(XS, requires_grad=True)
    out = module(x=x, c=torch.tensor(COND), lengths=torch.tensor(LENGTHS))["s"]
    out.sum().backward()
    want = COND[..., 0] * (np.arange(T)[None] < np.asarray(LENGTHS)[:, None])
    np.testing.assert_allclose(x.grad.numpy(), np.repeat(want[..., None], 3, -1))


def test_mixing_the_new_axis_with_the_old_is_refused_naming_the_node():
    net = _packed_net()
    bad = net.add("bad", "Plus", inputs=[net.node("g"), net.node("x")])
    net.add_to_group("output", bad)
    net.validate()
    with pytest.raises(EvaluationError, match="bad.*different dynamic axes"):
        netsurgeon.evaluate(net, {"x": XS, "c": COND}, ["bad"], lengths=LENGTHS)


@needs_oracle
def test_packed_ops_match_cntk(tmp_path):
    """The same network saved as a CNTK v2 file and run by CNTK 2.7 (every selection
    non-empty: CNTK refuses empty sequences)."""
    cond = COND.copy()
    cond[2, 1, 0] = 1
    net = _packed_net()
    formats.save(net, tmp_path / "m.model")

    def pack(a: np.ndarray, lengths) -> np.ndarray:
        return np.concatenate([a[b, :n] for b, n in enumerate(lengths)])

    np.save(tmp_path / "x.npy", pack(XS, LENGTHS))
    np.save(tmp_path / "c.npy", pack(cond, LENGTHS))
    np.save(tmp_path / "l.npy", np.asarray(LENGTHS))
    lens = f":{tmp_path / 'l.npy'}"
    theirs = cntk_outputs(tmp_path / "m.model", {"x": f"{tmp_path / 'x.npy'}{lens}",
                                                 "c": f"{tmp_path / 'c.npy'}{lens}"},
                          ["g", "s", "f", "w"], tmp_path / "out")
    mine = _run(["g", "s", "f", "w"], cond)
    new = new_lengths(cond)
    for name in ("g", "f", "w"):
        np.testing.assert_allclose(pack(mine[name], new).reshape(-1),
                                   np.asarray(theirs[name]).reshape(-1), rtol=1e-6)
    np.testing.assert_allclose(pack(mine["s"], LENGTHS).reshape(-1),
                               np.asarray(theirs["s"]).reshape(-1), rtol=1e-6)
