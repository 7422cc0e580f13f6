"""CNTK's SGD: settings, log formats, the update rule against numpy, checkpoints and resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tests.runtime import nets

import netsurgeon
from netsurgeon.errors import NetsurgeonError
from netsurgeon.runtime.batch import Minibatch
from netsurgeon.runtime.cntk_sgd import (
    CNTKUpdate,
    SGDSettings,
    determine_start_epoch,
    log_criterion,
    model_name_for_epoch,
    train,
)


def _settings(**kv) -> SGDSettings:
    cfg = {"modelPath": "m.dnn", "maxEpochs": "3", "learningRatesPerSample": "0.1", **kv}
    return SGDSettings.from_lookup(lambda k: cfg.get(k))


@pytest.mark.parametrize("name, total, count, text", [
    ("errs", 488, 1000, "errs = 48.800% * 1000"),
    ("ce", 693.14718, 1000, "ce = 0.69314718 * 1000"),
    ("ce", 1e-5, 1, "ce = 1.00000000e-05 * 1"),
    ("errs", 10, 1, "errs = 1.000e+03% * 1"),
    ("errs", 0, 0, "errs = 0.000% * 0"),
    ("CrossEntropyWithSoftmax", 7105.3042, 10000, "CrossEntropyWithSoftmax = 0.71053042 * 10000"),
])
def test_log_criterion(name, total, count, text):
    assert log_criterion(name, total, count) == text


def test_schedule_float32_and_vectors():
    s = _settings(learningRatesPerSample=None, learningRatesPerMB="0.5:0.2*20:0.1",
                  minibatchSize="25", momentumPerMB="0.9")
    assert len(s.learning_rates_per_mb) == 22
    assert f"{s.lr_per_sample(0):.8g}" == "0.02"
    assert f"{s.lr_per_sample(1):.8g}" == "0.0080000004"
    assert f"{s.lr_per_sample(30):.8g}" == f"{np.float32(np.float32(0.1) / 25):.8g}"
    mu = s.momentum_per_sample_at(0)
    assert f"{mu ** 25:f}" == "0.900000" and f"{-1 / math.log(mu):.1f}" == "237.3"
    assert _settings(momentumAsTimeConstant="100").momentum_per_sample_at(0) == \
        pytest.approx(math.exp(-0.01))
    assert _settings().momentum_per_sample_at(0) == pytest.approx(0.9 ** (1 / 256), 1e-6)


@pytest.mark.parametrize("kv, message", [
    ({"modelPath": None}, "SGD.modelPath: is required"),
    ({"maxEpochs": None}, "SGD.maxEpochs: is required"),
    ({"maxEpochs": "x"}, "SGD.maxEpochs: 'x' is not an integer"),
    ({"learningRatesPerMB": "1"}, "SGD.learningRatesPerMB: give learningRatesPerSample or"),
    ({"learningRatesPerSample": None}, "SGD.learningRatesPerSample: no learning rate"),
    ({"momentumPerMB": "0.9", "momentumPerSample": "0.9"}, "SGD.momentumPerSample: give only"),
    ({"momentumPerMB": "1.0"}, "SGD.momentumPerMB: 1: a momentum must be in [0, 1)"),
    ({"dropoutRate": "0.5:1"}, "SGD.dropoutRate: 1: a dropout rate must be in [0, 1)"),
    ({"epochSize": "10", "minibatchSize": "25"}, "SGD.epochSize: 10 is smaller than"),
    ({"gradUpdateType": "sgdx"}, "SGD.gradUpdateType: 'sgdx': use None"),
    ({"useNAG": "maybe"}, "SGD.useNAG: 'maybe' is not a boolean"),
    ({"minibatchSize": "25*x"}, "SGD.minibatchSize: '25*x': the repeat count"),
    ({"AutoAdjust.learnRateDecreaseFactor": "2"}, "SGD.AutoAdjust.learnRateDecreaseFactor"),
    ({"AutoAdjust.autoAdjustLR": "sometimes"}, "SGD.AutoAdjust.autoAdjustLR: 'sometimes'"),
    ({"L2RegWeight": "-1"}, "SGD.L2RegWeight: -1: give a finite number >= 0"),
])
def test_settings_errors(kv, message):
    with pytest.raises(NetsurgeonError) as err:
        _settings(**kv)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_defaults():
    s = _settings()
    assert s.minibatch_size == [256] and s.grad_update_type == "none"
    assert s.clipping_threshold_per_sample == math.inf and s.gradient_clipping_with_truncation
    assert s.auto_adjust.learn_rate_decrease_factor == 0.618
    assert _settings(useAdagrad="true").grad_update_type == "adagrad"
    assert _settings(gradUpdateType="fsadagrad").grad_update_type == "fsadagrad"


# ---- the update rule against numpy --------------------------------------------------------------
def _run_rule(settings, grads, w0, n, lr, mu_s):
    rule = CNTKUpdate(settings)
    w = torch.tensor(w0)
    for g in grads:
        rule.update("w", w, torch.tensor(g), n, lr, mu_s ** n if mu_s > 0 else 0.0)
    return w.numpy()


def _reference(grads, w0, n, lr, mu, l2=0.0, l1=0.0, clip=math.inf, trunc=True, kind="none"):
    w = w0.astype(np.float64).copy()
    S = np.zeros_like(w)
    A = np.zeros_like(w)
    for g in grads:
        g = g.astype(np.float64).copy()
        if math.isfinite(clip):
            t = clip * n
            if trunc:
                g = np.clip(g, -t, t)
            elif np.linalg.norm(g) > t:
                g *= t / np.linalg.norm(g)
        g += l2 * n * w
        if kind == "adagrad":
            A += g * g
            d = np.sqrt(A + 1e-16)
            w -= lr / np.mean(1 / d) * (g / d)
        else:
            S = mu * S + (1 - mu) * lr * g
            w -= S
        if l1 > 0:
            w = np.sign(w) * np.maximum(np.abs(w) - lr * l1 * n, 0)
    return w


@pytest.mark.parametrize("kv, ref", [
    ({"momentumPerMB": "0.9", "minibatchSize": "4"}, {}),
    ({"momentumPerSample": "0.95"}, {}),
    ({"momentumAsTimeConstant": "20"}, {}),
    ({"momentumPerMB": "0"}, {}),
    ({"L2RegWeight": "0.01"}, {"l2": 0.01}),
    ({"L1RegWeight": "0.01"}, {"l1": 0.01}),
    ({"clippingThresholdPerSample": "0.05"}, {"clip": 0.05}),
    ({"clippingThresholdPerSample": "0.05", "gradientClippingWithTruncation": "false"},
     {"clip": 0.05, "trunc": False}),
    ({"gradUpdateType": "AdaGrad"}, {"kind": "adagrad"}),
])
def test_update_rule_matches_numpy(kv, ref):
    s = _settings(**kv)
    r = np.random.default_rng(3)
    w0 = r.normal(size=(3, 2)).astype(np.float32)
    grads = [r.normal(size=(3, 2)).astype(np.float32) for _ in range(5)]
    n, lr = 4, float(np.float32(0.1))
    mu_s = s.momentum_per_sample_at(0)
    got = _run_rule(s, grads, w0, n, lr, mu_s)
    want = _reference(grads, w0, n, lr, mu_s ** n if mu_s > 0 else 0.0, **ref)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


# ---- training runs --------------------------------------------------------------------------
def _data(seed=0, batches=6, size=5):
    r = np.random.default_rng(seed)
    out = []
    for _ in range(batches):
        x = r.normal(size=(size, 1, 6)).astype(np.float32)
        y = np.eye(3, dtype=np.float32)[r.integers(0, 3, size)][:, None]
        out.append(Minibatch({"features": x, "labels": y}, np.ones(size, np.int64)))
    return out


def _run(tmp_path, data, lines=None, make_mode=True, **kv):
    cfg = {"modelPath": str(tmp_path / "m" / "model.nsm"), "maxEpochs": "3",
           "learningRatesPerMB": "0.5:0.2", "minibatchSize": "5", "momentumPerMB": "0.9", **kv}
    s = SGDSettings.from_lookup(lambda k: cfg.get(k))
    log = (lines.append if lines is not None else lambda _: None)
    return train(None, s, lambda e, mb, size: data(e), build=lambda: nets.mlp(),
                 load_model=lambda p: netsurgeon.load(p, format="native"),
                 save_model=lambda n, p: netsurgeon.save(n, p, format="native"),
                 make_mode=make_mode, trace_level=1, log=log), s


def test_epoch_lines_files_and_resume_bit_for_bit(tmp_path):
    data = _data()
    lines: list[str] = []
    straight, s = _run(tmp_path / "a", lambda e: data, lines, numMBsToShowResult="3")
    finished = [x for x in lines if x.startswith("Finished Epoch")]
    assert len(finished) == 3 and finished[0].startswith(
        "Finished Epoch[ 1 of 3]: [Training] ce = ")
    assert "; errs = " in finished[0] and "totalSamplesSeen = 30; learningRatePerSample = 0.1;" \
        in finished[0]
    assert "learningRatePerSample = 0.039999999" in finished[1]
    assert lines.count("Starting minibatch loop.") == 3
    assert any(x.startswith(" Epoch[ 1 of 3]-Minibatch[   1-   3]: ce = ") for x in lines)
    assert any(x.startswith(" Epoch[ 2 of 3]-Minibatch[   4-   6, 100.00%]: ce = ")
               for x in lines)
    folder = tmp_path / "a" / "m"
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.nsm", "model.nsm.0", "model.nsm.1", "model.nsm.2", "model.nsm.ckp"]

    def crashing(e):
        if e == 2:
            raise RuntimeError("crash")
        return data
    with pytest.raises(RuntimeError):
        _run(tmp_path / "b", crashing)
    assert (tmp_path / "b/m/model.nsm.2.ckp").exists()
    assert not (tmp_path / "b/m/model.nsm.1.ckp").exists()
    lines = []
    resumed, _ = _run(tmp_path / "b", lambda e: data, lines)
    assert any("Starting from checkpoint. Loading network from" in x and "model.nsm.2" in x
               for x in lines)
    for n in straight.nodes:
        if n.op == "LearnableParameter":
            assert np.array_equal(n.value, resumed.node(n.name).value), n.name
    lines = []
    _run(tmp_path / "b", lambda e: data, lines)
    assert lines[-1] == "No further training is necessary."
    assert determine_start_epoch(s, False) == -1
    assert model_name_for_epoch(s, 2) == s.model_path
    assert model_name_for_epoch(s, -1) == s.model_path + ".0"


def test_auto_adjust_decrease_and_rollback(tmp_path):
    good, bad = _data(0), _data(1)
    # epoch 3 (index 2) trains on other data: its criterion is worse -> rollback, lr reduced
    lines: list[str] = []
    _run(tmp_path, lambda e: good if e < 2 else [b for b in bad for _ in range(1)], lines,
         maxEpochs="4", learningRatesPerMB="0.5:0.5", **{
             "AutoAdjust.autoAdjustLR": "AdjustAfterEpoch",
             "AutoAdjust.reduceLearnRateIfImproveLessThan": "0.5"})
    reduced = [x for x in lines if x.startswith("learnRatePerSample reduced to")]
    assert reduced, lines
    assert reduced[0] == f"learnRatePerSample reduced to {float(np.float32(0.1)) * 0.618:.8g}"


def test_search_before_epoch_is_refused(tmp_path):
    with pytest.raises(NetsurgeonError, match="SearchBeforeEpoch is not supported"):
        _run(tmp_path, lambda e: _data(), **{"AutoAdjust.autoAdjustLR": "SearchBeforeEpoch"})


def _params(net):
    return {n.name: n.value for n in net.nodes if n.op == "LearnableParameter"}


def test_auto_adjust_rollback_restores_the_best_model(tmp_path):
    """Epoch 3 first sees shuffled labels: its criterion is worse, so CNTK's AdjustAfterEpoch
    rolls back to epoch 2's model and SGD state, reduces the learning rate and redoes epoch 3.
    The result equals a straight run with that reduced rate from epoch 3 on."""
    good, bad = _data(0), _data(1)
    asked: list[int] = []

    def data(e):
        asked.append(e)
        return bad if asked.count(2) == 1 and e == 2 else good

    lines: list[str] = []
    rolled, _ = _run(tmp_path / "a", data, lines, maxEpochs="4", learningRatesPerMB="0.5:0.5",
                     **{"AutoAdjust.autoAdjustLR": "AdjustAfterEpoch"})
    assert asked == [0, 1, 2, 2, 3]
    model = tmp_path / "a" / "m" / "model.nsm"
    assert f"Loading (rolling back to) previous model with best training-criterion value: " \
        f"{model}.2." in lines
    assert "SGD: revoke back to and update checkpoint file for epoch 2" in lines
    reduced = float(np.float32(0.1)) * 0.618
    assert f"learnRatePerSample reduced to {reduced:.8g}" in lines
    assert sum(x.startswith("Finished Epoch[ 3 of 4]") for x in lines) == 2
    straight, _ = _run(tmp_path / "b", lambda e: good, maxEpochs="4", learningRatesPerMB=None,
                       learningRatesPerSample=f"0.1:0.1:{reduced!r}")
    for name, value in _params(straight).items():
        np.testing.assert_array_equal(_params(rolled)[name], value, err_msg=name)


def test_auto_adjust_increase(tmp_path):
    lines: list[str] = []
    _run(tmp_path, lambda e: _data(0), lines, maxEpochs="3", learningRatesPerMB="0.5",
         **{"AutoAdjust.autoAdjustLR": "AdjustAfterEpoch",
            "AutoAdjust.increaseLearnRateIfImproveMoreThan": "0.01",
            "AutoAdjust.learnRateIncreaseFactor": "1.5"})
    increased = [x for x in lines if x.startswith("learnRatePerSample increased to")]
    # epoch 1 sets the reference (the single-entry schedule covers it); epochs 2 and 3
    # improve by more than 1 %
    assert increased == [f"learnRatePerSample increased to {float(np.float32(0.1)) * 1.5:.8g}",
                         f"learnRatePerSample increased to "
                         f"{float(np.float32(0.1)) * 1.5 * 1.5:.8g}"], lines
    # the rate raised after epoch 2 is epoch 3's
    assert "learningRatePerSample = 0.15;" in [x for x in lines
                                               if x.startswith("Finished Epoch[ 3")][0]


def test_small_models_train_on_one_thread(monkeypatch):
    from netsurgeon.runtime import backends
    from netsurgeon.runtime.cntk_sgd import restore_threads, small_model_threads

    before = torch.get_num_threads()
    monkeypatch.setattr(backends, "_threads", None)
    torch.set_num_threads(2)
    try:
        previous = small_model_threads(nets.mlp(), 25)
        assert previous == 2 and torch.get_num_threads() == 1
        restore_threads(previous)
        assert torch.get_num_threads() == 2
        assert small_model_threads(nets.mlp(), 1 << 22) is None  # enough work per minibatch
        monkeypatch.setattr(backends, "_threads", 2)  # numCPUThreads / --threads chose
        assert small_model_threads(nets.mlp(), 25) is None
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
