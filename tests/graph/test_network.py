"""Network mutations keep names, wiring, users and groups consistent."""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.errors import GraphError, ValidationError
from netsurgeon.graph import Network, copy_nodes


def small() -> Network:
    net = Network("m")
    x = net.add("features", "InputValue", shape=(4,))
    w = net.add_parameter("L1.W", np.ones((4, 3), np.float32))
    t = net.add("L1.T", "Times", inputs=(w, x))
    b = net.add_parameter("L1.B", np.zeros((3,), np.float32))
    p = net.add("L1.P", "Plus", inputs=(t, b))
    net.add("L1.S", "Sigmoid", inputs=(p,))
    net.add_to_group("feature", x)
    net.add_to_group("output", "L1.S")
    return net


def test_add_and_lookup_case_insensitive():
    net = small()
    assert net.node("l1.w") is net.node("L1.W")
    assert "L1.t" in net
    with pytest.raises(GraphError, match="already exists"):
        net.add("l1.w", "Sigmoid")
    net.lint()


def test_unknown_node_lists_close_matches():
    net = small()
    with pytest.raises(GraphError) as err:
        net.node("L1.Q")
    assert "L1.P" in str(err.value) or "L1.S" in str(err.value)


def test_set_input_append_and_out_of_range():
    net = small()
    net.set_input("L1.P", 1, "L1.T")
    assert [i.name for i in net.node("L1.P").inputs] == ["L1.T", "L1.T"]
    assert net.node("L1.T").users == [net.node("L1.P")]
    assert net.node("L1.B").users == []
    with pytest.raises(GraphError, match="out of range"):
        net.set_input("L1.P", 3, "L1.B")
    with pytest.raises(GraphError, match="Plus operation 'L1.P' takes 2 inputs, not 3"):
        net.set_input("L1.P", 2, "L1.B")  # appending beyond the op's arity is refused at once
    stack = net.add("stack", "RowStack", inputs=("L1.B",))
    net.set_input(stack, 1, "L1.B")  # index == count appends
    assert stack.inputs == (net.node("L1.B"), net.node("L1.B"))
    assert net.use_count("L1.B", stack) == 2
    net.lint()


def test_remove_refuses_used_node_then_detaches():
    net = small()
    with pytest.raises(GraphError, match="still used by L1.P"):
        net.remove("L1.T")
    net.remove("L1.T", detach_users="all")
    assert net.node("L1.P").inputs[0] is None
    assert net.node("L1.W").users == []
    net.lint()


def test_remove_never_leaves_a_dangling_second_reference():
    net = small()
    net.set_inputs("L1.P", ["L1.T", "L1.T"])
    net.remove("L1.T", detach_users="all")  # CNTK kept the second reference to a deleted node
    assert net.node("L1.P").inputs == (None, None)
    net.lint()
    with pytest.raises(GraphError, match="'refuse' or 'all', not 'first'"):
        net.remove("L1.P", detach_users="first")


def test_remove_many_is_all_or_nothing():
    net = small()
    before = net.names()
    with pytest.raises(GraphError):
        net.remove_many(["L1.S", "nope"])
    assert net.names() == before


def test_rename_keeps_wiring_and_groups():
    net = small()
    net.rename("L1.S", "out")
    assert net.group("output")[0].name == "out"
    assert net.node("out").inputs[0].name == "L1.P"
    with pytest.raises(GraphError, match="already exists"):
        net.rename("out", "l1.p")
    net.rename("out", "OUT")  # case change of the same node is fine
    net.lint()


def test_replace_all_uses_with():
    net = small()
    r = net.add("L1.R", "RectifiedLinear", inputs=("L1.P",))
    changed = net.replace_all_uses_with("L1.P", r, exclude={r})
    assert [c.name for c in changed] == ["L1.S"]
    assert net.node("L1.S").inputs[0] is r
    net.lint()


def test_copy_nodes_copies_each_value_once_and_rewires_inside():
    net = small()
    src = [net.node(n) for n in ("L1.W", "L1.T")]
    copies = copy_nodes(src, into=net, names={n: n.name.replace("L1", "L2") for n in src},
                        outside="disconnect")
    w2, t2 = copies[src[0]], copies[src[1]]
    assert w2.value is not src[0].value and not np.shares_memory(w2.value, src[0].value)
    np.testing.assert_array_equal(w2.value, src[0].value)
    assert t2.inputs == (w2, None)  # the outside input becomes missing, as MEL Copy does
    net.lint()


def test_network_copy_is_deep():
    net = small()
    twin = net.copy("twin")
    twin.node("L1.W").value[0, 0] = 5
    assert net.node("L1.W").value[0, 0] == 1
    assert [n.name for n in twin.group("output")] == ["L1.S"]
    twin.lint()


def test_bad_group_tag():
    net = small()
    with pytest.raises(GraphError, match="Invalid group tag"):
        net.add_to_group("bogus", "L1.S")
    net.add_to_group("evalErr", "L1.S")
    assert net.groups_of("L1.S") == ["evaluation", "output"]


def test_validate_infers_shapes():
    net = small()
    net.validate()
    assert net.node("L1.S").shape == (3,)
    assert net.node("L1.S").dynamic is True
    assert net.node("L1.W").dynamic is False


def test_validate_reports_missing_input_and_arity():
    net = small()
    net.set_input("L1.P", 0, None)
    with pytest.raises(ValidationError,
                       match=r"input 0 .* of Plus operation 'L1.P' is not connected"):
        net.validate()
    net = small()
    net.set_inputs("L1.P", ["L1.T"])  # too few is only an error once the network is checked
    with pytest.raises(ValidationError, match="expects 2 inputs"):
        net.validate()
    with pytest.raises(GraphError, match="takes 2 inputs, not 1"):
        net.set_inputs("L1.P", ["L1.T"], complete=True)


def test_validate_dimension_mismatch_names_node_and_shapes():
    net = small()
    net.add_parameter("bad", np.zeros((5,), np.float32))
    net.set_input("L1.P", 1, "bad")
    with pytest.raises(ValidationError) as err:
        net.validate()
    text = str(err.value)
    assert "L1.P" in text and "(3,)" in text and "(5,)" in text


def test_times_mismatch_message():
    net = Network()
    x = net.add("x", "InputValue", shape=(7,))
    w = net.add_parameter("W", np.zeros((4, 3), np.float32))
    net.add("t", "Times", inputs=(w, x))
    with pytest.raises(ValidationError, match="'t'"):
        net.validate()


def test_attrs_of_canonical_type_are_kept_and_others_coerced():
    net = Network("m")
    kernel = (3, 3)
    conv = net.add("c", "Convolution", attrs={"kernel_shape": kernel, "transpose": False})
    assert conv.attrs["kernel_shape"] is kernel  # already canonical: taken as it is
    other = net.add("d", "Convolution", attrs={"kernel_shape": [3.0, 2], "transpose": 1})
    assert other.attrs["kernel_shape"] == (3, 2) and type(other.attrs["kernel_shape"]) is tuple
    assert all(type(d) is int for d in other.attrs["kernel_shape"])
    assert other.attrs["transpose"] is True
    with pytest.raises(GraphError, match="kernel_shape"):
        net.add("e", "Convolution", attrs={"kernel_shape": ("x",)})
    with pytest.raises(GraphError, match="no attribute 'kernel'"):
        net.add("f", "Convolution", attrs={"kernel": (3,)})


def test_set_inputs_takes_nodes_names_and_iterators():
    net = Network("m")
    a = net.add("a", "InputValue", shape=(2,))
    b = net.add("b", "InputValue", shape=(2,))
    p = net.add("p", "Plus")
    net.set_inputs(p, (x for x in (a, b)))
    assert p.inputs == (a, b) and net.users(a) == [p]
    net.set_inputs("p", ["b", a])
    assert p.inputs == (b, a)
    other = Network("o").add("z", "InputValue", shape=(2,))
    with pytest.raises(GraphError, match="not in network"):
        net.set_inputs(p, [a, other])
    assert p.inputs == (b, a)
