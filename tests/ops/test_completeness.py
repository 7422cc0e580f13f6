"""One completeness test over every op and every layer, and what adding an op takes."""

from __future__ import annotations

import pytest

import netsurgeon.formats.cntk
import netsurgeon.formats.cntk_v2
import netsurgeon.formats.onnx
import netsurgeon.lang.brainscript
import netsurgeon.runtime  # noqa: F401  (attaches the torch layer)
from netsurgeon.errors import RegistryError
from netsurgeon.ops import OPS, Category, Layer, Unsupported, build_registry, completeness
from netsurgeon.ops._build import define, simple_function
from netsurgeon.ops._shapes import same_as_input

LAYERS = ("torch", "cntk_v1", "bs", "onnx", "cntk_v2")


def test_every_layer_is_attached():
    assert {layer.name for layer in OPS.layers()} == set(LAYERS)


def test_every_op_is_decided_by_every_layer():
    assert completeness(OPS) == []


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_decide_with_reasons(layer):
    supported = [op.name for op in OPS if OPS.entry(layer, op) is not None]
    refused = {op.name: OPS.unsupported_reason(layer, op) for op in OPS
               if OPS.entry(layer, op) is None}
    assert supported and all(refused.values()), refused
    for name in OPS.op_set(Category.INTERNAL):
        assert (layer == "torch") == (name in supported)  # only the runtime runs internal ops


def test_a_layer_naming_an_unknown_op_cannot_be_attached():
    ghost = Layer("ghost", object, doc="test")
    ghost.add(["Times", "ELU"], object())
    with pytest.raises(RegistryError, match="ELU"):
        build_registry().attach(ghost)


def test_adding_a_unary_op_takes_three_entries():
    """The registry entry plus a lowering and an ONNX export entry; the report names what is
    missing until then."""
    registry = build_registry()
    define(registry, "Softsign", (1, 1), same_as_input(0), inputs=("x",),
           categories={Category.ELEMENTWISE, Category.UNARY},
           functions=(simple_function("Softsign", "Softsign", "x"),))
    torch_layer = OPS.layer("torch").copy()
    onnx_layer = OPS.layer("onnx").copy()
    for layer in (torch_layer, OPS.layer("cntk_v1"), OPS.layer("bs"), onnx_layer):
        registry.attach(layer)
    missing = completeness(registry)
    assert [m.split(" (")[0] for m in missing] == ["Softsign: no torch entry",
                                                   "Softsign: no onnx entry"]
    from netsurgeon.formats.onnx.export_elementwise import unary as onnx_unary
    from netsurgeon.runtime.lowerings.elementwise import unary

    torch_layer.add("Softsign", unary("{0} / (1 + torch.abs({0}))"))
    onnx_layer.add("Softsign", onnx_unary("Softsign"))
    assert completeness(registry) == []
    assert isinstance(registry.layer("cntk_v1").lookup(registry.op("Softsign")), Unsupported)
