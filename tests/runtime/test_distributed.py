"""In-process parts of data-parallel training, --device and --precision: shards of a global
minibatch, CNTK's parallelTrain defaults, device and precision choices, bfloat16 autocast.

The multi-process runs (gloo, torchrun) are in tests/commands/test_train_parallel.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tests.conftest import CNTK

from netsurgeon import formats
from netsurgeon.errors import EvaluationError
from netsurgeon.runtime import Evaluator
from netsurgeon.runtime.batch import Minibatch, SparseRows
from netsurgeon.runtime.device import check_precision, cntk_device, resolve_device
from netsurgeon.runtime.distributed import Parallel, ParallelConfig, from_cntk
from netsurgeon.runtime.readers import CTFReader, streams_for
from netsurgeon.runtime.train import TrainConfig, Trainer

NO_CUDA = "no CUDA device on this machine (the CPU path is tested)"


def _batch() -> Minibatch:
    """Three sequences of lengths 3, 1, 2: a dense (B, T, 2) stream and a sparse one."""
    lengths = np.array([3, 1, 2], np.int64)
    dense = np.arange(3 * 3 * 2, dtype=np.float32).reshape(3, 3, 2)
    rows = np.zeros((9, 4), np.float32)
    for b, n in enumerate(lengths):
        for t in range(n):
            rows[b * 3 + t, (b + t) % 4] = b + t + 1
    indptr = np.concatenate([[0], np.cumsum((rows != 0).sum(1))]).astype(np.int64)
    cols = np.nonzero(rows)[1].astype(np.int64)
    sparse = SparseRows(indptr, cols, rows[rows != 0], 9, 4)
    return Minibatch({"x": dense, "s": sparse}, lengths, 1, ["a", "b", "c"])


def test_select_keeps_the_sequences_and_trims_time():
    mb = _batch()
    part = mb.select(1, 3)
    assert part.lengths.tolist() == [1, 2] and part.steps == 2
    assert part.sequence_ids == ["b", "c"]
    np.testing.assert_array_equal(part.streams["x"], mb.streams["x"][1:3, :2])
    full = mb.streams["s"].to_dense().reshape(3, 3, 4)
    np.testing.assert_array_equal(part.streams["s"].to_dense().reshape(2, 2, 4), full[1:3, :2])
    assert part.samples == 3


@pytest.mark.parametrize("world", [2, 3, 5])
def test_shards_see_every_sequence_once(world):
    mb = Minibatch({"x": np.zeros((7, 1, 1), np.float32)}, np.ones(7, np.int64), 1,
                   list("abcdefg"))
    parts = [Parallel(rank=r, world=world).shard(mb) for r in range(world)]
    assert [s for p in parts for s in p.sequence_ids] == list("abcdefg")
    assert max(p.batch for p in parts) - min(p.batch for p in parts) <= 1


def test_cntk_parallel_train_defaults_and_keys():
    assert from_cntk("none", {}, 2) is None
    bm = Parallel(from_cntk("BlockMomentumSGD", {}, 4), rank=0, world=4)
    assert bm.block == 120000 * 4 and bm.block_momentum == pytest.approx(0.75)
    assert bm.config.nesterov and bm.config.reset_sgd_momentum and not bm.warnings()
    ma = Parallel(from_cntk("ModelAveragingSGD", {"blocksizeperworker": "100"}, 4), world=4)
    assert ma.config.method == "model-averaging" and ma.block == 400
    tc = Parallel(from_cntk("BlockMomentumSGD", {"blocksize": "1000",
                                                 "blockmomentumastimeconstant": "2000",
                                                 "parallelizationstartepoch": "3"}, 2), world=2)
    assert tc.block_momentum == pytest.approx(math.exp(-0.5)) and tc.config.start_epoch == 3
    assert not tc.active(1) and tc.active(2)
    assert from_cntk("DataParallelSGD", {}, 2).method == "data"
    wild = Parallel(ParallelConfig("block-momentum", block_momentum=0.0,
                                   block_learning_rate=1.5), world=2)
    assert "may diverge" in wild.warnings()[0]
    with pytest.raises(EvaluationError, match="parameter server"):
        from_cntk("DataParallelASGD", {}, 2)
    with pytest.raises(EvaluationError, match="give DataParallelSGD"):
        from_cntk("Horovod", {}, 2)
    with pytest.raises(EvaluationError, match="parallel method 'async'"):
        ParallelConfig("async")


def test_one_process_is_never_parallel():
    assert not Parallel().active(0) and Parallel().is_writer


def test_device_choices(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(EvaluationError, match=r"^device 'cuda': no CUDA device; use --device "
                                              r"cpu$"):
        resolve_device("cuda")
    with pytest.raises(EvaluationError, match="give cpu, cuda, cuda:N or auto"):
        resolve_device("gpu0")
    assert cntk_device("-1") == "cpu" and cntk_device("0") == "cpu"  # no GPU 0 here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(EvaluationError, match=r"1 CUDA device\(s\), cuda:0 to cuda:0"):
        resolve_device("cuda:3")
    assert cntk_device("0") == "cuda:0"


def test_precision_choices():
    cpu = torch.device("cpu")
    assert check_precision(None, cpu) == "float32"
    assert check_precision("bfloat16", cpu) == "bfloat16"
    with pytest.raises(EvaluationError, match="float16 needs a CUDA device"):
        check_precision("float16", cpu)
    with pytest.raises(EvaluationError, match="give float32, float16 or bfloat16"):
        check_precision("float8", cpu)


def _mc():
    net = formats.load(CNTK / "models" / "MC.dnn")
    reader = CTFReader(CNTK / "data" / "Train-3Classes_cntk_text.txt", streams_for(net), 50)
    return net, list(reader)


def _test_error(net, device=None) -> float:
    test = CTFReader(CNTK / "data" / "Test-3Classes_cntk_text.txt", streams_for(net), 500)
    ev = Evaluator(net, ["errs"], device=device)
    mbs = list(test)
    return sum(float(ev.run(mb)["errs"].sum()) for mb in mbs) / sum(mb.samples for mb in mbs)


@pytest.mark.slow
def test_bfloat16_autocast_trains_close_to_float32():
    losses = {}
    for precision in ("float32", "bfloat16"):
        net, data = _mc()
        trainer = Trainer(net, TrainConfig(epochs=1, learning_rate=0.01, momentum=0.9),
                          device="cpu", precision=precision)
        losses[precision] = trainer.fit(data)[-1]["loss"]
        errors = _test_error(net)
        assert errors < 0.12, precision  # it learned (untrained MC.dnn is worse)
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=0.03)
    assert losses["bfloat16"] != losses["float32"]  # the autocast did run in bfloat16


def test_bfloat16_evaluation_is_close_and_returns_float32():
    net, data = _mc()
    exact = Evaluator(net, ["z"]).run(data[0])["z"]
    low = Evaluator(net, ["z"], device="cpu", precision="bfloat16").run(data[0])["z"]
    assert low.dtype == torch.float32 and not torch.equal(low, exact)
    np.testing.assert_allclose(low.numpy(), exact.numpy(), rtol=0.02, atol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_evaluation_equals_cpu():
    net, data = _mc()
    cpu = Evaluator(net, ["z", "ce"]).run(data[0])
    gpu = Evaluator(net, ["z", "ce"], device="cuda").run(data[0])
    for name in cpu:
        np.testing.assert_allclose(gpu[name].numpy(), cpu[name].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_training_reaches_the_cpu_test_error():
    errors = {}
    for device in ("cpu", "cuda"):
        net, data = _mc()
        Trainer(net, TrainConfig(epochs=3, learning_rate=0.01, momentum=0.9),
                device=device).fit(data)
        errors[device] = _test_error(net, device)
    assert errors["cuda"] == pytest.approx(errors["cpu"], abs=0.002)
