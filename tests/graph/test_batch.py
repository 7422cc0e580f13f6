"""NodeBatch: nodes checked as they are added, inserted with their edges and groups at commit."""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.errors import GraphError
from netsurgeon.graph import Network
from netsurgeon.graph._batch import NodeBatch, canonical_kinds
from netsurgeon.ops import OPS


def _mlp_by_add() -> Network:
    net = Network("m")
    x = net.add("x", "InputValue", shape=(3,))
    w = net.add_parameter("W", np.ones((2, 3), np.float32))
    h = net.add("h", "Times", inputs=(w, x))
    net.set_inputs(h, (w, x))
    net.add("y", "Sigmoid", inputs=(h,))
    net.add_to_group("feature", x)
    net.add_to_group("output", net.get("y"))
    return net


def _mlp_by_batch() -> tuple[Network, NodeBatch]:
    net = Network("m")
    batch = NodeBatch(net)
    x = batch.add("x", OPS.op("InputValue"), shape=(3,))
    w = batch.add("W", OPS.op("LearnableParameter"), value=np.ones((2, 3), np.float32))
    h = batch.add("h", OPS.op("Times"))
    y = batch.add("y", OPS.op("Sigmoid"))
    batch.set_inputs(h, (w, x))
    batch.set_inputs(y, (h,))
    batch.add_to_group("feature", x)
    batch.add_to_group("output", y)
    batch.add_to_group("output", y)  # a repeat is no change
    return net, batch


def test_nothing_changes_before_commit():
    net, batch = _mlp_by_batch()
    assert len(net) == 0 and net.version == 0 and len(batch) == 4
    assert batch.get("H").name == "h" and net.get("h") is None
    assert batch.get("h").network is None


def test_commit_builds_what_add_builds():
    net, batch = _mlp_by_batch()
    nodes = batch.commit()
    assert [n.name for n in nodes] == ["x", "W", "h", "y"]
    net.lint()
    ref = _mlp_by_add()
    for a, b in zip(net, ref):
        assert (a.name, a.op, dict(a.attrs), a.shape, a.dtype, a.learning_rate_multiplier) == \
            (b.name, b.op, dict(b.attrs), b.shape, b.dtype, b.learning_rate_multiplier)
        assert [i.name for i in a.inputs] == [i.name for i in b.inputs]
        assert sorted(u.name for u in a.users) == sorted(u.name for u in b.users)
        assert a.network is net
    assert {g: [n.name for n in m] for g, m in net.groups().items()} == \
        {g: [n.name for n in m] for g, m in ref.groups().items()}
    assert net.use_count("h", "y") == 1
    assert net.version > 0


def test_attributes_completed_and_coerced():
    net = Network("m")
    batch = NodeBatch(net)
    node = batch.add("t", OPS.op("Times"), attrs={"output_rank": 2.0})
    assert node.attrs["output_rank"] == 2 and type(node.attrs["output_rank"]) is int
    assert set(node.attrs) == set(OPS.op("Times").attrs)
    with pytest.raises(GraphError, match="no_such"):
        batch.add("u", OPS.op("Times"), attrs={"no_such": 1})
    batch.commit()
    net.lint()


@pytest.mark.parametrize("name", ["x", "X"])
def test_taken_names_are_worded_as_add_words_them(name: str):
    net = Network("m")
    net.add("x", "InputValue", shape=(1,))
    batch = NodeBatch(net)
    with pytest.raises(GraphError) as in_net:
        batch.add(name, OPS.op("Sigmoid"))
    with pytest.raises(GraphError) as by_add:
        net.add(name, "Sigmoid")
    assert in_net.value.message == by_add.value.message
    batch.add("y", OPS.op("Sigmoid"))
    with pytest.raises(GraphError, match="a node named 'y' already exists in network 'm'"):
        batch.add("Y", OPS.op("Sigmoid"))
    with pytest.raises(GraphError, match="non-empty name"):
        batch.add("", OPS.op("Sigmoid"))


def test_inputs_are_checked():
    net = Network("m")
    outside = Network("o").add("z", "InputValue", shape=(1,))
    batch = NodeBatch(net)
    a = batch.add("a", OPS.op("InputValue"), shape=(1,))
    s = batch.add("s", OPS.op("Sigmoid"))
    with pytest.raises(GraphError, match="takes 1 inputs, not 2"):
        batch.set_inputs(s, (a, a))
    with pytest.raises(GraphError, match="neither in the batch nor in network 'm'"):
        batch.set_inputs(s, (outside,))
    with pytest.raises(GraphError, match="not waiting in this batch"):
        batch.set_inputs(outside, (a,))
    batch.set_inputs(s, (None,))  # a missing input is allowed, as in the network
    batch.commit()
    assert s.inputs == (None,)
    net.lint()


def test_groups_and_specs_are_checked():
    net = Network("m")
    batch = NodeBatch(net)
    a = batch.add("a", OPS.op("InputValue"), shape=(1,))
    with pytest.raises(GraphError, match="not a canonical group name"):
        batch.add_to_group("features", a)
    with pytest.raises(GraphError, match="neither in the batch nor in network"):
        batch.add_to_group("feature", Network("o").add("z", "InputValue", shape=(1,)))
    foreign = type(OPS.op("Sigmoid")).__new__(type(OPS.op("Sigmoid")))
    foreign.__dict__.update(OPS.op("Sigmoid").__dict__)
    with pytest.raises(GraphError, match="registry"):
        batch.add("s", foreign)


def test_commit_once_and_nodes_of_the_network_as_inputs():
    net = Network("m")
    x = net.add("x", "InputValue", shape=(2,))
    batch = NodeBatch(net)
    y = batch.add("y", OPS.op("Sigmoid"))
    batch.set_inputs(y, (x,))
    batch.add_to_group("output", x)  # a node already in the network may join a group
    batch.commit()
    assert net.users("x") == [y] and net.group("output") == [x]
    with pytest.raises(GraphError, match="committed already"):
        batch.commit()
    with pytest.raises(GraphError, match="not waiting"):
        batch.set_inputs(y, ())


def test_canonical_attributes_are_taken_as_they_are():
    spec = OPS.op("Times")
    kinds = canonical_kinds(spec)
    assert kinds["output_rank"] is int
    net = Network("m")
    batch = NodeBatch(net)
    given = {"output_rank": 2}
    trusted = batch.add("a", spec, given, canonical=True)
    checked = batch.add("b", spec, given)
    assert dict(trusted.attrs) == dict(checked.attrs)
    assert list(trusted.attrs) == list(checked.attrs)  # the op's order, as the check makes
    batch.commit()
    net.lint()


def test_a_batch_refuses_a_network_changed_meanwhile_and_adds_after_commit():
    net = Network("m")
    batch = NodeBatch(net)
    batch.add("x", OPS.op("InputValue"), shape=(1,))
    net.add("X", "InputValue", shape=(1,))  # would clash at the commit
    with pytest.raises(GraphError, match="changed while the batch was open"):
        batch.commit()
    assert [n.name for n in net] == ["X"]
    done = NodeBatch(net)
    done.commit()
    with pytest.raises(GraphError, match="committed already"):
        done.add("y", OPS.op("InputValue"), shape=(1,))
    with pytest.raises(GraphError, match="committed already"):
        done.add_to_group("output", net.get("X"))
