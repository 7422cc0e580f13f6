"""ResNet-18 and MobileNetV3-Small exported by torch.onnx, imported, evaluated against
onnxruntime; then edited with MEL (a new classifier), trained with the backbone frozen and
exported back to ONNX, where onnxruntime agrees with netsurgeon."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from tests.formats.onnx.models import MobileNetV3Small, ResNet18, export, randomized

from netsurgeon import mel
from netsurgeon.formats.onnx.importer import read_model
from netsurgeon.runtime import Minibatch, evaluate
from netsurgeon.runtime.train import TrainConfig, Trainer

SIZE = 32
OPSET = 17


def _exported(model, keep_batch_norm=True) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export(randomized(model), (1, 3, SIZE, SIZE), OPSET, keep_batch_norm)


@pytest.fixture(scope="module")
def resnet() -> bytes:
    return _exported(ResNet18(num_classes=10))


def _ort(data: bytes, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(data, options).run(None, {"input": x})[0]


def _check(data: bytes, name: str) -> None:
    net = read_model(onnx.load_from_string(data), name)
    x = np.random.RandomState(1).randn(3, 3, SIZE, SIZE).astype(np.float32)
    got = evaluate(net, {"input": x}, ["logits"])["logits"]
    want = _ort(data, x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_resnet18_equals_onnxruntime(resnet):
    _check(resnet, "resnet18")


@pytest.mark.parametrize("keep_batch_norm", [True, False])
def test_mobilenet_v3_small_equals_onnxruntime(keep_batch_norm):
    data = _exported(MobileNetV3Small(num_classes=10), keep_batch_norm)
    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    assert {"HardSwish", "HardSigmoid", "GlobalAveragePool", "Conv"} <= ops
    assert ("BatchNormalization" in ops) == keep_batch_norm
    _check(data, "mobilenet")


def test_names_are_the_onnx_output_names(resnet):
    net = read_model(onnx.load_from_string(resnet), "r")
    assert [n.name for n in net.group("output")] == ["logits"]
    assert net.node("logits.times").op == "TransposeTimes"  # Gemm transB=1
    assert net.node("fc.weight").value.shape == (10, 512)  # the initializer as stored
    assert net.node("layer1.0.bn1.running_mean").learning_rate_multiplier == 0
    assert net.node("layer1.0.bn1.weight").learning_rate_multiplier == 1
    frozen = read_model(onnx.load_from_string(resnet), "r", constant=True)
    assert frozen.node("fc.weight").learning_rate_multiplier == 0


def test_mel_new_classifier_and_a_training_step_with_frozen_backbone(resnet, tmp_path):
    net = read_model(onnx.load_from_string(resnet), "r")
    ed = mel.Editor()
    ed.add_model("r", net)
    mel.run("SetPropertyForSubTree(/Flatten_output_0, needGradient, false)\n"
            "SetProperty(*BatchNormalization_output_0, freezeParameters, true)\n"
            "labels = InputValue(5)\n"
            "newW = Parameter(5, 512, init=\"uniform\", initValueScale=0.1)\n"
            "newB = Parameter(5, 1, init=\"fixedValue\", value=0)\n"
            "newZ = Plus(Times(newW, /Flatten_output_0), newB)\n"
            "ce = CrossEntropyWithSoftmax(labels, newZ)\n"
            "SetProperty(ce, criterion, true)\n"
            "SetProperty(labels, label, true)\n", editor=ed)
    net = ed.models["r"]
    frozen = {n.name: n.value.copy() for n in net.nodes if n.op == "LearnableParameter"
              and n.name not in ("newW", "newB", "fc.weight", "fc.bias")}
    assert all(net.node(k).learning_rate_multiplier == 0 for k in frozen)
    before_w = net.node("newW").value.copy()
    rng = np.random.RandomState(2)
    x = rng.randn(4, 3, SIZE, SIZE).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[rng.randint(0, 5, 4)]
    batch = Minibatch({"input": x[:, None], "labels": y[:, None]}, np.ones(4, np.int64))
    Trainer(net, TrainConfig(epochs=1, learning_rate=0.01), criteria=["ce"]).fit([batch])
    assert not np.array_equal(net.node("newW").value, before_w)
    for name, value in frozen.items():
        assert np.array_equal(net.node(name).value, value), name
    # ... and back out: the edited, trained network exported to ONNX runs in onnxruntime
    from netsurgeon.formats import onnx as onnx_format

    path = tmp_path / "edited.onnx"
    onnx_format.save(net, path, ["newZ"])
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x2 = rng.randn(3, 3, SIZE, SIZE).astype(np.float32)
    want = evaluate(net, {"input": x2}, ["newZ"])["newZ"].reshape(3, 5)
    got = _ort(path.read_bytes(), x2).reshape(3, 5)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
