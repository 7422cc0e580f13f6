"""Long networks: generated code split into chunk functions, linear in the chain length.

The quadratic step was the last-use bookkeeping of code generation (every unit rescanned the
whole last-use table to find the values to ``del``: 188 s for 100,000 nodes); CPython's
compiler then needed minutes and gigabytes for one 1,000,000-line function, so long bodies are
cut into chunk functions compiled one by one (``runtime/chunks.py``). Timings are in
``bench/bench_chain_eval.py``; here: the chunked code computes exactly what the unchunked
code does (every op of the reference table, loops, sparse inputs, training), errors still name
the node, and values are handed over without keeping dead ones alive.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from tests.runtime import nets
from tests.runtime.test_op_reference import CASES, build, expected, feed_batch

import netsurgeon
from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network
from netsurgeon.runtime import Evaluator, chunks, compile_network, evaluate, generate
from netsurgeon.runtime.batch import SparseRows
from netsurgeon.runtime.evaluate import batch_from_arrays
from netsurgeon.runtime.train import TrainConfig, Trainer


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Split every body, into chunks of one unit wherever possible."""
    monkeypatch.setattr(chunks, "SPLIT_ABOVE", 0)
    monkeypatch.setattr(chunks, "CHUNK_LINES", 1)


def _chain(n: int, width: int = 2) -> Network:
    net = Network("chain")
    prev = net.add("x", "InputValue", shape=(width,))
    for i in range(n):
        prev = net.add(f"n{i}", "Tanh" if i % 2 else "Negate", inputs=(prev,))
    net.add_to_group("output", prev)
    net.validate()
    return net


def _chain_reference(x: np.ndarray, n: int) -> np.ndarray:
    want = x.astype(np.float64)
    for i in range(n):
        want = np.tanh(want) if i % 2 else -want
    return want


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_reference_op_computes_the_same_when_split(case, tiny_chunks):
    net, feeds = build(case)
    src = generate(net, ["y"])
    computes = src.text.count("\n") > 2  # pass-through ops only return their input
    assert not computes or (len(src.pieces) >= 2 and "def c_chunk" in src.text), src.text
    if any(isinstance(v, SparseRows) for v in feeds.values()):
        got = netsurgeon.evaluate(net, feed_batch(net, feeds, None), ["y"])["y"]
        got = got[:, 0] if net.node("y").dynamic else got
    else:
        got = netsurgeon.evaluate(net, feeds, ["y"], lengths=case.lengths)["y"]
    np.testing.assert_allclose(got, expected(case), rtol=case.tol, atol=case.tol)


@pytest.mark.parametrize("op", ["PastValue", "FutureValue"])
def test_recurrent_loop_stays_in_one_chunk(op, tiny_chunks):
    net = nets.rnn(op=op, init=0.3)
    src = generate(net, ["h"])
    loop = [i for i, line in enumerate(src.text.splitlines(), 1) if "for t in range(" in line]
    assert len(loop) == 1 and len(src.pieces) >= 2
    x = nets.rng(3).normal(size=(2, 5, 3)).astype(np.float32)
    got = evaluate(net, {"x": x}, ["h"], lengths=[5, 3])["h"]
    for b, n in enumerate([5, 3]):
        want = nets.rnn_reference(net, x[b], n, backward=op == "FutureValue", init=0.3)
        np.testing.assert_allclose(got[b, :n], want, rtol=1e-5, atol=1e-6)


def test_training_through_chunks_equals_unsplit(monkeypatch):
    r = nets.rng(5)
    x = r.normal(size=(40, 6)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[r.integers(0, 3, 40)]
    batches = [batch_from_arrays(nets.mlp(), {"features": x[i:i + 10], "labels": y[i:i + 10]})[0]
               for i in range(0, 40, 10)]
    plain = nets.mlp()
    Trainer(plain, TrainConfig(epochs=2, learning_rate=0.01, momentum=0.5)).fit(batches)
    monkeypatch.setattr(chunks, "SPLIT_ABOVE", 0)
    monkeypatch.setattr(chunks, "CHUNK_LINES", 1)
    split = nets.mlp()
    trainer = Trainer(split, TrainConfig(epochs=2, learning_rate=0.01, momentum=0.5))
    trainer.fit(batches)
    assert any(len(c.source.pieces) > 1 for c in trainer._compiled.values())
    for name in ("L1.W", "L1.b", "L2.W", "L2.b"):
        np.testing.assert_allclose(split.node(name).value, plain.node(name).value, rtol=1e-6)


def test_an_error_in_a_later_chunk_names_its_node(tiny_chunks):
    net = nets.mlp()
    net.update("L2.b", value=np.zeros((4,), np.float32))  # wrong size: fails at run time
    compiled = compile_network(net, ["z"])
    assert len(compiled.source.pieces) > 2
    with pytest.raises(EvaluationError, match="'z'"):
        evaluate(net, {"features": np.zeros((2, 6), np.float32)}, ["z"])


def test_values_are_handed_over_and_freed():
    """A chain above the threshold is split; each chunk receives and returns only the one
    live value, empties the list it was given, and every value is deleted after its use."""
    n = chunks.SPLIT_ABOVE  # Negate/Tanh: two lines per node (assignment and del)
    net = _chain(n)
    src = generate(net, [f"n{n - 1}"])
    assert len(src.pieces) > 5
    text = src.text
    assert text.count("s.clear()") == len(src.pieces) - 1
    handed = re.findall(r"^    return \[(.*)\]$", text, re.M)
    assert handed and all(h.count(",") == 0 for h in handed)  # one value across each cut
    body = text.split("\ndef c_chunk(", 1)[1]  # forward itself only hands the input over
    assert len(re.findall(r"^    del ", body, re.M)) == n - 1
    x = np.array([[0.3, -0.2]], np.float32)
    got = evaluate(net, {"x": x}, [f"n{n - 1}"])[f"n{n - 1}"]
    np.testing.assert_allclose(got, _chain_reference(x, n), rtol=1e-5)


def test_wide_live_set_is_cut_only_where_handing_over_is_cheap(monkeypatch):
    """100 parallel branches stay alive for the whole body; cuts still happen (the bound
    grows with the chunk) and the result is exact."""
    monkeypatch.setattr(chunks, "SPLIT_ABOVE", 0)
    monkeypatch.setattr(chunks, "CHUNK_LINES", 50)
    net = Network("wide")
    x = net.add("x", "InputValue", shape=(2,))
    heads = [net.add(f"b{j}.0", "Negate", inputs=(x,)) for j in range(100)]
    for depth in range(1, 4):
        heads = [net.add(f"b{j}.{depth}", "Tanh", inputs=(h,)) for j, h in enumerate(heads)]
    total = heads[0]
    for j, h in enumerate(heads[1:], 1):
        total = net.add(f"sum{j}", "Plus", inputs=(total, h))
    net.validate()
    src = generate(net, [total.name])
    assert len(src.pieces) > 2
    for handed in re.findall(r"^    return \[(.*)\]$", src.text, re.M):
        count = handed.count(",") + 1
        assert count <= 100 + 1
    xs = np.array([[0.5, -1.5]], np.float32)
    got = evaluate(net, {"x": xs}, [total.name])[total.name]
    np.testing.assert_allclose(got, 100 * np.tanh(np.tanh(np.tanh(-xs))), rtol=1e-5)


def test_short_networks_are_not_split():
    src = generate(nets.mlp(), ["z", "ce"])
    assert src.pieces == (1,) and "chunk" not in src.text


def test_compiled_network_forgets_its_source_lines():
    import gc
    import linecache

    compiled = compile_network(nets.mlp(), ["z"])
    files = list(compiled.files)
    assert all(f in linecache.cache for f in files)
    del compiled
    gc.collect()
    assert not any(f in linecache.cache for f in files)


def test_chain_of_20000_nodes_evaluates_split():
    n = 20_000
    net = _chain(n)
    x = np.array([[0.1, 0.7]], np.float32)
    ev = Evaluator(net, [f"n{n - 1}"])
    mb = batch_from_arrays(net, {"x": x})[0]
    got = ev.run(mb)[f"n{n - 1}"].numpy()
    assert len(ev.compiled(mb).source.pieces) > 5
    np.testing.assert_allclose(got, _chain_reference(x, n), rtol=1e-5)


@pytest.mark.slow
def test_chain_of_1000000_nodes_in_a_minute_hang_guard():
    """Issue 10: 1,000,000 Tanh nodes (the budget: under a minute; this guard is generous)."""
    import time

    n = 1_000_000
    net = Network("chain")
    prev = net.add("x", "InputValue", shape=(4,))
    for i in range(n):
        prev = net.add(f"n{i}", "Tanh", inputs=(prev,))
    net.validate()
    t0 = time.perf_counter()
    out = evaluate(net, {"x": np.ones((2, 4), np.float32)}, [prev.name])[prev.name]
    assert time.perf_counter() - t0 < 300
    want = 1.0
    for _ in range(n):
        want = math.tanh(want)
    np.testing.assert_allclose(out, np.full((2, 4), want), rtol=1e-3)
