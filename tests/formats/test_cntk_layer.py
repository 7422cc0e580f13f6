"""The cntk_v1 registry layer: typed entries, derived decisions, file spellings, file fields."""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.errors import GraphError
from netsurgeon.formats.cntk import CNTK_V1, CntkFormatError, PayloadCodec, encode
from netsurgeon.formats.cntk._codec import COMMON_FIELDS, EMPTY
from netsurgeon.formats.cntk._fields import FieldCodec
from netsurgeon.formats.cntk._layer import EMPTY_PAYLOAD_OPS, file_names
from netsurgeon.graph import Network
from netsurgeon.ops import OPS, Category, OpSpec, Unsupported, completeness


def test_attached_and_complete():
    assert OPS.layer("cntk_v1") is CNTK_V1
    assert [p for p in completeness(OPS) if "cntk_v1" in p] == []
    for spec in OPS:
        entry = CNTK_V1.lookup(spec)
        assert isinstance(entry, (PayloadCodec, Unsupported)), spec.name
        if not isinstance(entry, Unsupported):
            assert COMMON_FIELDS <= entry.file_fields
            assert all(k.startswith("cntk_v1.") for k in entry.file_fields)


def test_derived_decisions():
    assert CNTK_V1.lookup(OPS.op("Sigmoid")) is EMPTY  # §7.3 factory op without attributes
    assert "Sigmoid" not in set(CNTK_V1.names())  # derived, not listed
    for internal in OPS.op_set(Category.INTERNAL):
        reason = OPS.unsupported_reason("cntk_v1", internal)
        assert reason and "internal" in reason, internal
    outsider = OpSpec("NotInCntk", (0, 0), lambda ctx: (1,))
    assert "not in CNTK's v1 node factory" in CNTK_V1.lookup(outsider).reason
    # a factory op with attributes has an explicit entry saying where they go
    for name in EMPTY_PAYLOAD_OPS:
        spec = OPS.op(name)
        if spec.attrs:
            assert name in set(CNTK_V1.names()), name


def test_field_codecs_name_registry_attributes():
    """Every attribute a field codec maps onto exists on every op that uses the codec."""
    for spec in OPS:
        codec = CNTK_V1.get(spec)
        if isinstance(codec, FieldCodec):
            assert codec.attrs <= set(spec.attrs), (spec.name, codec.attrs - set(spec.attrs))


def test_file_spellings_come_from_the_registry():
    names = file_names()
    assert names["ErrorPrediction"] == "ClassificationError"
    assert names["Delay"] == "PastValue" and names["RowSlice"] == "Slice"
    assert names["Scale"] == names["ColumnElementTimes"] == "ElementTimes"
    assert "TimesPlus" not in names and "errorprediction" not in names  # exact spellings
    for spec in OPS:
        supported = CNTK_V1.get(spec) is not None
        for spelling in (spec.name, *spec.aliases):
            assert (names.get(spelling) == spec.name) == supported, spelling


def test_writer_refuses_internal_ops():
    net = Network()
    x = net.add("x", "InputValue", shape=(3,))
    w = net.add_parameter("W", np.ones((3, 2), np.float32))
    b = net.add_parameter("b", np.zeros(2, np.float32))
    net.add("tp", "TimesPlus", inputs=(w, x, b))
    with pytest.raises(CntkFormatError, match="TimesPlus node 'tp' cannot be stored .*internal"):
        encode(net)


def test_lint_holds_file_fields_to_the_codec():
    net = Network()
    x = net.add("x", "InputValue", shape=(3,), file_fields={"cntk_v1.rows_placeholder": 3})
    net.lint()
    net.update(x, file_fields={"cntk_v1.matrix_dims": (3, 1)})  # a Mean's field, not an input's
    with pytest.raises(GraphError, match="not one the cntk_v1 layer writes for InputValue"):
        net.lint()


def test_file_fields_are_what_the_writer_uses():
    """A file field changes the bytes exactly where it says (here: the matrix name)."""
    net = Network()
    net.add_parameter("W", np.ones((2, 2), np.float32))
    plain = encode(net).getvalue()
    net.update("W", file_fields={"cntk_v1.matrix_name": "Wmat"})
    named = encode(net).getvalue()
    assert "unnamed".encode("utf-16-le") in plain and "Wmat".encode("utf-16-le") in named
    assert len(named) == len(plain) - 2 * (len("unnamed") - len("Wmat"))
