"""Passes: the interface, shape inference, parameter initialisation and linear fusion."""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.errors import ShapeError
from netsurgeon.graph import Network, prepare
from netsurgeon.graph.passes import (
    FuseLinear,
    InferShapes,
    InitializeParameters,
    Pass,
    PassError,
    PassManager,
    PassResult,
)

UNIFORM = {"kind": "uniform", "scale": 1.0, "value": 0.0, "seed": 7, "path": "", "literal": "",
           "kernel": (0, 0)}


def inferred_weight_net() -> Network:
    """Times(W, x) with W = Parameter(3, 0): the 0 dimension comes from x."""
    net = Network()
    x = net.add("x", "InputValue", shape=(5,))
    w = net.add("W", "LearnableParameter", shape=(0, 3), attrs={"init": UNIFORM})
    net.add("t", "Times", inputs=(w, x))
    return net


def test_infer_shapes_completes_shapes_but_never_values():
    net = inferred_weight_net()
    result = InferShapes()(net)
    assert result.modified and net.node("W").shape == (5, 3) and net.node("W").value is None
    assert net.node("t").shape == (3,) and net.node("t").dynamic is True
    assert not InferShapes()(net).modified  # nothing left to change
    net.lint()


def test_initialize_parameters_fills_inferred_parameters_once():
    net = inferred_weight_net()
    prepare(net)
    value = net.node("W").value
    assert value.shape == (5, 3) and np.all(np.abs(value) <= 0.05)
    assert not InitializeParameters()(net).modified  # a fitting value is kept
    assert net.node("W").value is value


def test_a_parameter_without_init_cannot_change_shape():
    net = inferred_weight_net()
    net.set_attrs("W", init=None)
    with pytest.raises(ShapeError, match="cannot become"):
        net.validate()


def test_a_parameter_larger_than_memory_is_refused_before_numpy_is_asked(monkeypatch):
    from netsurgeon.errors import NetsurgeonError
    from netsurgeon.graph.passes import initialize_parameters

    monkeypatch.setattr(initialize_parameters, "_physical_memory", lambda: 59)  # bytes
    net = inferred_weight_net()  # W becomes (5, 3) float32: 60 bytes
    with pytest.raises(NetsurgeonError, match=r"parameter 'W' of shape \(5, 3\) needs 60 bytes, "
                       "more than this machine's 59 bytes of memory") as err:
        prepare(net)
    assert err.value.node == "W" and net.node("W").value is None
    monkeypatch.setattr(initialize_parameters, "_physical_memory", lambda: 60)
    prepare(net)
    assert net.node("W").value.shape == (5, 3)


class _Broken(Pass):
    def call(self, net):
        raise KeyError("oops")


class _Touch(Pass):
    def call(self, net):
        net.update("x", tags={"touched"})
        return PassResult(net, True)


def test_pass_manager_names_the_failing_pass_and_lints():
    net = inferred_weight_net()
    with pytest.raises(PassError, match=r"pass _Broken failed after passes \['_Touch'\]: KeyError"):
        PassManager([_Touch(), _Broken()], lint_after_each=True)(net)
    assert PassManager([_Touch()])(net).modified


def _affine(with_conv: bool = False) -> Network:
    net = Network()
    if with_conv:
        x = net.add("x", "InputValue", shape=(2, 5, 5))
        w = net.add_parameter("W", np.ones((4, 2, 3, 3), np.float32))
        t = net.add("t", "Convolution", inputs=(w, x),
                    attrs={"kernel_shape": (2, 3, 3), "map_count": (4,),
                           "auto_padding": (False, True, True)})
        b = net.add_parameter("b", np.ones((4, 1, 1), np.float32))
    else:
        x = net.add("x", "InputValue", shape=(5,))
        w = net.add_parameter("W", np.ones((5, 3), np.float32))
        t = net.add("t", "Times", inputs=(w, x))
        b = net.add_parameter("b", np.ones((3,), np.float32))
    p = net.add("p", "Plus", inputs=(t, b))
    net.add("s", "Sigmoid", inputs=(p,))
    net.add_to_group("output", p)
    net.validate()
    return net


@pytest.mark.parametrize("conv, fused_op", [(False, "TimesPlus"), (True, "ConvolutionPlus")])
def test_fuse_linear_rewrites_plus_of_times(conv, fused_op):
    net = _affine(conv)
    shape = net.node("p").shape
    assert FuseLinear()(net).modified
    fused = net.node("p")
    assert fused.op == fused_op and [i.name for i in fused.inputs] == ["W", "x", "b"]
    assert "t" not in net and net.node("s").inputs == (fused,) and net.group("output") == [fused]
    assert fused.shape == shape
    net.lint()
    net.validate()
    assert net.node("p").shape == shape


def test_fuse_linear_keeps_what_is_needed():
    net = _affine()
    assert not FuseLinear(keep={"t"})(net).modified  # the Times value is an output
    net = _affine()
    net.add("other", "Tanh", inputs=("t",))
    assert not FuseLinear()(net).modified  # the Times has a second user
    net = _affine()
    assert not FuseLinear(sparse_inputs={"x"})(net).modified


def _padded_shortcut(keep_inner_output: bool = False, outer_axes=(-1, -3)):
    """CIFAR ResNet's channel padding: Transpose(RowStack(Transpose(x), Transpose(pad)))."""
    from netsurgeon.graph import Network

    net = Network("shortcut")
    x = net.add("x", "InputValue", shape=(4, 3, 5))
    pad = net.add_parameter("pad", np.zeros((2, 1, 1), np.float32))
    tx = net.add("tx", "TransposeDimensions", inputs=(x,), attrs={"axes": (-1, -3)})
    tp = net.add("tp", "TransposeDimensions", inputs=(pad,), attrs={"axes": (-3, -1)})
    stack = net.add("stack", "RowStack", inputs=(tx, tp), attrs={"axis": -1})
    out = net.add("out", "TransposeDimensions", inputs=(stack,), attrs={"axes": outer_axes})
    net.add_to_group("output", out)
    if keep_inner_output:
        net.add_to_group("output", tx)
    net.validate()
    return net


def test_splice_transposed_stacks_the_untransposed_inputs_on_the_swapped_axis():
    from netsurgeon.graph.passes import SpliceTransposed

    net = _padded_shortcut()
    before = net.node("out").shape
    assert SpliceTransposed(keep=["out"])(net).modified
    out = net.node("out")
    assert (out.op, out.attrs["axis"], out.shape) == ("RowStack", -3, before)
    assert [i.name for i in out.inputs] == ["x", "pad"]
    assert {n.name for n in net.nodes} == {"x", "pad", "out"}
    assert net.group("output") == [out]
    net.validate()  # the shape rule agrees: (6, 3, 5)
    assert out.shape == (6, 3, 5)


def test_splice_transposed_keeps_a_transpose_something_else_needs():
    from netsurgeon.graph.passes import SpliceTransposed

    net = _padded_shortcut(keep_inner_output=True)
    assert SpliceTransposed(keep=["out", "tx"])(net).modified
    assert "tx" in net and net.node("out").op == "RowStack"


def test_splice_transposed_leaves_other_swaps_alone():
    from netsurgeon.graph.passes import SpliceTransposed

    net = _padded_shortcut(outer_axes=(-1, -2))  # a different swap: not the pattern
    assert not SpliceTransposed(keep=["out"])(net).modified
