"""Acceptance tests that train or evaluate BrainScript-built networks (netsurgeon.runtime)."""

from __future__ import annotations

import numpy as np
import pytest

import netsurgeon
from netsurgeon.lang.brainscript import build_from_text, clone_function
from netsurgeon.ops.sets import PARAMETERS

runtime = pytest.importorskip("netsurgeon.runtime")
from tests.lang.brainscript.programs import KLD, SLU  # noqa: E402

from netsurgeon.runtime import Trainer, evaluate  # noqa: E402
from netsurgeon.runtime.readers.ctf import CTFReader, streams_for  # noqa: E402
from netsurgeon.runtime.train import TrainConfig  # noqa: E402


def test_kl_adaptation_trains_adapt_net_and_keeps_ref_net(cntk_dir, capsys):
    """The seed's KLD example on MC.dnn, trained on Train-3Classes."""
    net = build_from_text(KLD.format(path=cntk_dir / "models" / "MC.dnn"))
    before = {n.name: n.value.copy() for n in net.nodes if n.op in PARAMETERS}
    trainer = Trainer(net, TrainConfig(epochs=2, minibatch_size=25, learning_rate=0.02))
    train = cntk_dir / "data" / "Train-3Classes_cntk_text.txt"
    history = trainer.fit(lambda: CTFReader(train, streams_for(net), 25))
    assert len(history) == 2
    for name in ("zRef.w", "zRef.b"):
        assert net.node(name).value.tobytes() == before[name].tobytes()  # bit-identical
    for name in ("z.w", "z.b"):
        assert not np.array_equal(net.node(name).value, before[name])
    errors = samples = 0.0
    for mb in CTFReader(cntk_dir / "data" / "Test-3Classes_cntk_text.txt", streams_for(net), 500):
        errors += float(evaluate(net, mb, ["errs"])["errs"].sum())
        samples += mb.samples
    assert samples == 500
    with capsys.disabled():
        print(f"\nKL-adapted MC.dnn: test error {errors:.0f}/{samples:.0f} = "
              f"{100 * errors / samples:.1f} % (CNTK's unadapted model: 10.2 %)")
    assert errors / samples < 0.15


def test_shared_towers_gradient_is_sum_of_both_uses(cntk_dir):
    net = build_from_text(f"""
        m = BS.Network.Load ("{cntk_dir / 'models' / 'MC.dnn'}")
        tower = BS.Network.CloneFunction (m.features, m.z, parameters="shared")
        x1 = Input (2) ; x2 = Input (2) ; labels = Input (3, tag='label')
        z1 = tower (x1) ; z2 = tower (x2)
        ce = CrossEntropyWithSoftmax (labels, z1) + CrossEntropyWithSoftmax (labels, z2)
        criterionNodes = (ce)
    """)
    assert net.node("z1.z.PlusArgs[0]").inputs[0] is net.node("z2.z.PlusArgs[0]").inputs[0]
    W, b = net.node("w"), net.node("b")
    w0, b0 = W.value.astype(np.float64).copy(), b.value.astype(np.float64).copy()
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    y = np.eye(3)[[0, 1, 2, 1]]

    def grads(x):
        z = x @ w0 + b0.reshape(1, -1)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        d = p - y
        return x.T @ d, d.sum(0).reshape(b0.shape)

    (gw1, gb1), (gw2, gb2) = grads(x1), grads(x2)
    lr = 0.1
    trainer = Trainer(net, TrainConfig(epochs=1, minibatch_size=4, learning_rate=lr))
    batch = {"x1": x1.astype(np.float32), "x2": x2.astype(np.float32),
             "labels": y.astype(np.float32)}
    from netsurgeon.runtime.evaluate import batch_from_arrays

    mb, _ = batch_from_arrays(net, batch, None)
    trainer.fit([mb])
    np.testing.assert_allclose(W.value, w0 - lr * (gw1 + gw2), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.value, b0 - lr * (gb1 + gb2), rtol=1e-4, atol=1e-5)
    # one use alone would have moved W by only part of that
    assert not np.allclose(W.value, w0 - lr * gw1, atol=1e-5)


@pytest.mark.parametrize("mode", ["learnable", "constant", "shared"])
def test_recurrent_section_clone_evaluates_identically_on_atis(cntk_dir, mode):
    slu = cntk_dir / "models" / "slu.forward.nobn.cmf"
    original = netsurgeon.load(slu)
    net = build_from_text(f"""
        m = BS.Network.Load ("{slu}")
        f = BS.Network.CloneFunction (m.query, m.z, parameters="{mode}")
        q = Input (943)
        out = f (q)
    """)
    assert any(n.op == "PastValue" for n in net.nodes)
    data = cntk_dir / "data" / "atis.test.ctf"
    ref_reader = CTFReader(data, streams_for(original, {"query": "S0"}, ["query"]), 200,
                           max_sequences=10)
    new_reader = CTFReader(data, streams_for(net, {"q": "S0"}, ["q"]), 200, max_sequences=10)
    for a, b in zip(ref_reader, new_reader):
        za = evaluate(original, a, ["z"])["z"]
        zb = evaluate(net, b, ["out"])["out"]
        np.testing.assert_allclose(zb, za, rtol=1e-5, atol=1e-5)
    reference = np.load(cntk_dir / "reference" / "slu.forward.nobn" / "z.first10.frames.npy")
    lens = np.load(cntk_dir / "reference" / "slu.forward.nobn" / "z.first10.lens.npy")
    frames = np.concatenate([zb[i, :int(n)] for i, n in enumerate(lens)]) if zb.ndim == 3 else zb
    np.testing.assert_allclose(frames, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["learnable", "constant", "shared"])
def test_python_api_recurrent_clone_evaluates_identically(cntk_dir, mode):
    net = netsurgeon.load(cntk_dir / "models" / "slu.forward.nobn.cmf")
    f = clone_function([net.node("query")], net.node("z"), parameters=mode)
    q2 = net.add("query2", "InputValue", shape=(943,))
    f(q2, name="c")
    net.validate()
    data = cntk_dir / "data" / "atis.test.ctf"
    ra = CTFReader(data, streams_for(net, {"query": "S0"}, ["query"]), 200, max_sequences=5)
    rb = CTFReader(data, streams_for(net, {"query2": "S0"}, ["query2"]), 200, max_sequences=5)
    for a, b in zip(ra, rb):
        np.testing.assert_allclose(evaluate(net, b, ["c.z"])["c.z"], evaluate(net, a, ["z"])["z"],
                                   rtol=1e-6, atol=1e-6)


def test_bs_built_lstm_with_cntk_weights_matches_cntk_reference(cntk_dir):
    from netsurgeon.lang.brainscript import build_from_file

    trained = netsurgeon.load(cntk_dir / "models" / "slu.forward.nobn.cmf")
    net = build_from_file(SLU)
    for node in net.nodes:
        if node.op in PARAMETERS:
            net.update(node, value=trained.node(node.name).value)
    reader = CTFReader(cntk_dir / "data" / "atis.test.ctf",
                       streams_for(net, {"query": "S0"}, ["query"]), 200, max_sequences=10)
    z = np.concatenate([
        np.concatenate([o[i, :n] for i, n in enumerate(mb.lengths)])
        if hasattr(mb, "lengths") else o
        for mb in reader for o in [evaluate(net, mb, ["z"])["z"]]])
    reference = np.load(cntk_dir / "reference" / "slu.forward.nobn" / "z.first10.frames.npy")
    np.testing.assert_allclose(z, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["learnable", "constant", "shared"])
def test_clone_of_a_recurrent_section_of_the_network_being_defined(mode):
    """CNTK could not clone a loop of the network being defined (delay inputs attach late);
    netsurgeon attaches them when the clone needs them (policy §3)."""
    net = build_from_text(f"""
        x = Input (3)
        W = ParameterTensor {{(3:3), init='gaussian'}}
        h = Tanh (W * x + PastValue (3, h))
        f = BS.Network.CloneFunction (x, h, parameters="{mode}")
        x2 = Input (3)
        h2 = f (x2)
    """)
    assert net.node("h2.h.z.PlusArgs[1]").op == "PastValue"
    assert net.node("h2.h.z.PlusArgs[1]").inputs[0] is net.node("h2")
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2, 5, 3)).astype(np.float32)
    out = evaluate(net, {"x": data, "x2": data}, ["h", "h2"], lengths=[5, 4])
    np.testing.assert_allclose(out["h2"], out["h"], rtol=1e-6, atol=1e-6)
