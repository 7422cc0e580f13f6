"""``netsurgeon.to_torch``: the network as a torch module, on the real CNTK models.

Outputs are compared with CNTK 2.7's reference outputs and with ``netsurgeon.evaluate``;
``torch.export``, ``torch.jit.trace`` and ``torch.compile`` run on the module.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from tests.runtime import nets

import netsurgeon
from netsurgeon.errors import EvaluationError
from netsurgeon.formats import load
from netsurgeon.graph import Network, freeze
from netsurgeon.runtime import evaluate
from netsurgeon.runtime.codegen import needed_nodes
from netsurgeon.runtime.module import TorchModule
from netsurgeon.runtime.readers import CTFReader, streams_for
from netsurgeon.runtime.train import TrainConfig, Trainer

REFERENCE = [  # model, input file, CNTK 2.7 output
    ("01_OneHidden.dnn", "onehidden_4x784.npy", "01_OneHidden/z.z.npy"),
    ("cifar10.pretrained.cmf", "cifar_3x3x32x32.npy", "cifar10.pretrained/z.npy"),
    ("cifar10.ResNet.cmf", "cifar_3x3x32x32.npy", "cifar10.ResNet/z.npy"),
]
MODELS = ["MC.dnn", "01_OneHidden.dnn", "cifar10.pretrained.cmf", "cifar10.ResNet.cmf"]


def _net(cntk_dir, name) -> Network:
    return load(cntk_dir / "models" / name)


def _feeds(module, batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand((batch, *shape), generator=g)
            for n, (_, shape) in zip(module.input_names, module._inputs)}


def _max_diff(a: dict, b: dict) -> float:
    assert list(a) == list(b)
    return max(float((a[k].detach() - b[k].detach()).abs().max()) for k in a)


@pytest.mark.parametrize("model,inputs,ref", REFERENCE)
def test_reference_outputs(cntk_dir, model, inputs, ref):
    net = _net(cntk_dir, model)
    out = net.group("output")[0].name
    module = netsurgeon.to_torch(net, [out])
    x = np.load(cntk_dir / "reference/inputs" / inputs)
    with torch.no_grad():
        got = module(features=torch.from_numpy(x))[out].numpy()
    want = np.load(cntk_dir / "reference" / ref)
    assert np.abs(got.reshape(want.shape) - want).max() / np.abs(want).max() <= 1e-6
    ours = evaluate(net, {"features": x}, [out])[out]
    np.testing.assert_allclose(got, ours, rtol=1e-5, atol=1e-5)


def test_mc_on_test_data(cntk_dir):
    """The whole criterion path: CNTK's errs 51 and ce 121.735 on Test-3Classes."""
    net = _net(cntk_dir, "MC.dnn")
    module = netsurgeon.to_torch(net)
    assert module.output_names == ["z", "ce", "errs"]
    errs = ce = 0.0
    for mb in CTFReader(cntk_dir / "data/Test-3Classes_cntk_text.txt", streams_for(net), 100):
        feeds = {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)).reshape(
            len(mb.lengths), -1) for k, v in mb.streams.items()}
        with torch.no_grad():
            out = module(**feeds)
        errs += float(out["errs"])
        ce += float(out["ce"])
    assert errs == 51
    assert ce == pytest.approx(121.735, rel=1e-5)


def test_slu_recurrent_against_cntk(cntk_dir):
    """An LSTM (recurrent loops): padded sequences with lengths, CNTK's first 10 sequences."""
    net = _net(cntk_dir, "slu.forward.nobn.cmf")
    module = netsurgeon.to_torch(net, ["z"])
    specs = streams_for(net, {"query": "S0"}, ["query"])
    mb = next(iter(CTFReader(cntk_dir / "data/atis.test.ctf", specs, 256, 10)))
    b = len(mb.lengths)
    x = torch.from_numpy(mb.streams["query"].to_dense().reshape(b, -1, 943))
    with torch.no_grad():
        z = module(query=x, lengths=torch.from_numpy(mb.lengths))["z"].numpy()
    real = np.arange(z.shape[1])[None] < mb.lengths[:, None]
    ref = np.load(cntk_dir / "reference/slu.forward.nobn/z.first10.frames.npy")
    assert np.abs(z[real] - ref).max() / np.abs(ref).max() <= 1e-6
    assert not z[~real].any()  # padding is zero
    ours = evaluate(net, {"query": x.numpy()}, ["z"], lengths=mb.lengths)["z"]
    np.testing.assert_allclose(z, ours, rtol=1e-6, atol=1e-6)


def test_state_dict_is_the_parameter_nodes(cntk_dir):
    net = _net(cntk_dir, "cifar10.ResNet.cmf")
    module = netsurgeon.to_torch(net)
    state = module.state_dict()
    params = [n for n in needed_nodes(net, net.group("output") + net.group("criterion"))
              if n.op == "LearnableParameter"]
    assert sorted(state) == sorted(n.name for n in params)
    for n in params:
        np.testing.assert_array_equal(state[n.name].numpy(), n.value)
    buffers = {name for name, _ in module.named_buffers()}
    assert "p_z_conv1_b_runMean" in buffers and "p_z_conv1_b_runInvStdDev" in buffers
    assert module.node_attributes["z.conv1.b.runMean"] == "p_z_conv1_b_runMean"
    # round trip into a fresh module; changed weights change the outputs
    other = netsurgeon.to_torch(net)
    changed = {k: v * 1.5 for k, v in state.items()}
    assert other.load_state_dict(changed).missing_keys == []
    x = _feeds(module)
    with torch.no_grad():
        assert _max_diff(module(**x), other(**x)) > 1e-3
        other.load_state_dict(state)
        assert _max_diff(module(**x), other(**x)) == 0
    bad = dict(state)
    bad.pop("z.z.b")
    bad["nonsense"] = state["z.z.W"]
    with pytest.raises(RuntimeError, match=r"(?s)Missing key\(s\).*z\.z\.b.*Unexpected key\(s\).*"
                                           r"nonsense"):
        other.load_state_dict(bad)
    result = other.load_state_dict(bad, strict=False)
    assert result.missing_keys == ["z.z.b"] and result.unexpected_keys == ["nonsense"]
    with pytest.raises(RuntimeError, match="size mismatch for z.z.b"):
        other.load_state_dict({**state, "z.z.b": torch.zeros(3)})


def test_frozen_parameters():
    net = nets.mlp()
    freeze([net.node("L1.W")])
    params = dict(netsurgeon.to_torch(net).named_parameters())
    assert params["p_L1_W"].requires_grad is False
    assert params["p_L2_W"].requires_grad is True


def test_shared_storage_is_one_parameter():
    net = nets.mlp()
    arr = np.full((3,), 0.5, np.float32)
    extra = net.add_parameter("bias2", arr)
    net.update(net.node("L2.b"), value=arr)
    net.set_input(net.node("z"), 1, net.add("zb", "Plus", inputs=(extra, net.node("L2.b"))))
    net.validate()
    module = netsurgeon.to_torch(net)
    state = module.state_dict()
    assert state["bias2"].data_ptr() == state["L2.b"].data_ptr()
    assert len([p for p in module.parameters() if p.shape == (3,)]) == 1
    assert module.node_attributes["bias2"] == module.node_attributes["L2.b"]
    x = _feeds(module)
    want = evaluate(net, {k: v.numpy() for k, v in x.items()})
    with torch.no_grad():
        got = module(**x)
    for k in want:
        np.testing.assert_allclose(got[k].numpy(), want[k], rtol=1e-6, atol=1e-6)


def _bn_dropout_net() -> Network:
    r = nets.rng(3)
    net = Network("bnd")
    x = net.add("x", "InputValue", shape=(4,))
    ps = [net.add_parameter(n, v.astype(np.float32), learning_rate_multiplier=0 if n in
                            ("bn.mean", "bn.var") else 1)
          for n, v in {"bn.scale": r.uniform(0.5, 2, 4), "bn.bias": r.normal(size=4),
                       "bn.mean": r.normal(size=4), "bn.var": r.uniform(0.5, 2, 4)}.items()]
    bn = net.add("bn", "BatchNormalization", inputs=(x, *ps),
                 attrs={"spatial": False, "epsilon": 1e-5, "normalization_time_constant": 0.0})
    d = net.add("d", "Dropout", inputs=(bn,), attrs={"dropout_rate": 0.5})
    net.add_to_group("output", d)
    net.validate()
    return net


def test_train_and_eval_switch_batch_norm_and_dropout():
    net = _bn_dropout_net()
    module = netsurgeon.to_torch(net)
    assert not module.training
    assert {n for n, _ in module.named_buffers()} == {"p_bn_mean", "p_bn_var"}
    x = torch.randn(64, 4)
    with torch.no_grad():
        np.testing.assert_allclose(module(x=x)["d"].numpy(),
                                   evaluate(net, {"x": x.numpy()})["d"], rtol=1e-5, atol=1e-6)
        mean0 = module.p_bn_mean.clone()
        module.train()
        y = module(x=x)["d"]
    assert (y == 0).float().mean() > 0.3  # dropout on
    np.testing.assert_allclose(module.p_bn_mean.numpy(), x.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    assert not torch.equal(module.p_bn_mean, mean0)  # running statistics updated in place
    np.testing.assert_array_equal(module.state_dict()["bn.mean"].numpy(),
                                  module.p_bn_mean.numpy())
    np.testing.assert_array_equal(net.node("bn.mean").value, mean0.numpy())  # net untouched


def test_training_step_matches_the_trainer(cntk_dir):
    """One SGD step through the module equals the Trainer's (same code, same gradients)."""
    net = _net(cntk_dir, "MC.dnn")
    module = netsurgeon.to_torch(net).train()
    batch = next(iter(CTFReader(cntk_dir / "data/Test-3Classes_cntk_text.txt",
                                streams_for(net), 50)))
    feeds = {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)).reshape(50, -1)
             for k, v in batch.streams.items()}
    opt = torch.optim.SGD(module.parameters(), lr=0.01)
    module(**feeds)["ce"].sum().backward()
    opt.step()
    trainer = Trainer(net, TrainConfig(learning_rate=0.01))
    trainer.step(batch)
    trainer.write_back()
    for name, value in module.state_dict().items():
        np.testing.assert_allclose(value.numpy(), net.node(name).value, rtol=1e-6, atol=1e-7)


def test_the_trainer_runs_a_to_torch_module(cntk_dir):
    """One implementation: the Trainer's module is a TorchModule (state dict keyed by node
    name, its parameters are the ones trained), and a step through ``to_torch(net)`` equals
    ``Trainer.step`` bit for bit (in the Trainer's weight layout)."""
    net = _net(cntk_dir, "MC.dnn")
    trainer = Trainer(net, TrainConfig(learning_rate=0.01))
    module = trainer.module
    assert isinstance(module, TorchModule) and module.training
    nodes = {n.name for n in needed_nodes(net, trainer.criteria + trainer.metrics)
             if n.op == "LearnableParameter"}
    assert set(module.state_dict()) == nodes
    assert all(trainer.tensors[n] is getattr(module, a) for n, a in module.node_attributes.items())
    assert [id(p) for p in trainer._params] == [id(p) for p in module.parameters()
                                                 if p.requires_grad]
    other = netsurgeon.to_torch(net, trainer.criteria + trainer.metrics,
                                column_major=Trainer.column_major).train()
    assert type(other).__mro__[1] is type(module).__mro__[1] is TorchModule
    assert other.state_dict().keys() == module.state_dict().keys()
    batch = next(iter(CTFReader(cntk_dir / "data/Test-3Classes_cntk_text.txt",
                                streams_for(net), 50)))
    feeds = {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)).reshape(50, -1)
             for k, v in batch.streams.items()}
    opt = torch.optim.SGD(other.parameters(), lr=0.01)
    out = other(**feeds)
    loss = out["ce"].sum()
    loss.backward()
    opt.step()
    value, metrics = trainer.step(batch)
    assert value == float(loss.detach())
    assert metrics == [float(out[m.name].detach().sum()) for m in trainer.metrics]
    mine = module.state_dict()
    for name, tensor in other.state_dict().items():
        assert torch.equal(tensor, mine[name]), name
    trainer.write_back()  # the trained values reach the network, keyed by the same names
    for name, tensor in mine.items():
        np.testing.assert_array_equal(net.node(name).value, tensor.numpy())


def test_errors_name_the_node(cntk_dir):
    net = _net(cntk_dir, "cifar10.ResNet.cmf")
    module = netsurgeon.to_torch(net, ["z"])
    with pytest.raises(EvaluationError, match=r"node 'features'.*shape \(2, 5\)"):
        module(features=torch.zeros(2, 5))
    with pytest.raises(TypeError):
        module(labels=torch.zeros(2, 10))
    module.train()  # pre-version-13 batch normalization: no training code
    with pytest.raises(EvaluationError, match=r"z\.conv1\.b.*inverse standard deviations"):
        module(features=torch.zeros(2, 3, 32, 32))
    empty = Network("empty")
    p = empty.add("p", "LearnableParameter", shape=(2,))
    empty.add_to_group("output", empty.add("y", "Sigmoid", inputs=(p,)))
    with pytest.raises(EvaluationError, match="'p'.*no value"):
        netsurgeon.to_torch(empty)


def test_run_time_error_names_the_node():
    net = nets.mlp()
    module = netsurgeon.to_torch(net, ["z"])
    with pytest.raises(EvaluationError, match=r"evaluation failed at node 'L1\.z'"):
        module(features=torch.zeros(2, 6, dtype=torch.float64))


def test_lazy_top_level_name():
    code = ("import sys, netsurgeon; assert 'torch' not in sys.modules; "
            "f = netsurgeon.to_torch; assert 'torch' in sys.modules; print(f.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "to_torch", out.stderr


@pytest.mark.parametrize("model", MODELS)
def test_torch_export(cntk_dir, model):
    module = netsurgeon.to_torch(_net(cntk_dir, model))
    feeds = _feeds(module)
    with torch.no_grad():
        want = module(**feeds)
    program = torch.export.export(module, (), feeds)
    assert _max_diff(program.module()(**feeds), want) == 0


def test_jit_trace(cntk_dir):
    module = netsurgeon.to_torch(_net(cntk_dir, "cifar10.pretrained.cmf"), ["z"])
    feeds = _feeds(module)
    with torch.no_grad():
        want = module(**feeds)
        traced = torch.jit.trace(module, example_kwarg_inputs=feeds, strict=False)
        assert _max_diff(traced(**feeds), want) <= 1e-5


def test_torch_compile_eager_backends(cntk_dir):
    """fullgraph on MC (no graph break) and the recurrent LSTM (loops unrolled)."""
    mc = netsurgeon.to_torch(_net(cntk_dir, "MC.dnn"))
    feeds = _feeds(mc)
    want = mc(**feeds)
    torch._dynamo.reset()
    assert _max_diff(torch.compile(mc, backend="aot_eager", fullgraph=True)(**feeds), want) == 0
    slu = netsurgeon.to_torch(_net(cntk_dir, "slu.forward.nobn.cmf"), ["z"])
    x, lengths = torch.rand(2, 5, 943), torch.tensor([5, 3])
    with torch.no_grad():
        want = slu(query=x, lengths=lengths)
        got = torch.compile(slu, backend="eager")(query=x, lengths=lengths)
    assert _max_diff(got, want) == 0


@pytest.mark.slow
def test_torch_compile_inductor(cntk_dir):
    module = netsurgeon.to_torch(_net(cntk_dir, "MC.dnn"))
    feeds = _feeds(module)
    torch._dynamo.reset()
    with torch.no_grad():
        assert _max_diff(torch.compile(module)(**feeds), module(**feeds)) <= 1e-5


def test_split_method_code_passes_the_module(monkeypatch):
    """A long network's code is cut into chunk functions; each one gets ``self``."""
    from netsurgeon.runtime import chunks

    monkeypatch.setattr(chunks, "SPLIT_ABOVE", 0)
    monkeypatch.setattr(chunks, "CHUNK_LINES", 1)
    net = nets.mlp()
    module = netsurgeon.to_torch(net)
    assert len(module._compiled["forward_eval"][0].pieces) > 2
    x = _feeds(module)
    want = evaluate(net, {k: v.numpy() for k, v in x.items()})
    with torch.no_grad():
        got = module(**x)
    for k in want:
        np.testing.assert_allclose(got[k].numpy(), want[k], rtol=1e-6, atol=1e-6)
