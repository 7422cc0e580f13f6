"""Issue 15 trap: ``Network.add(..., tags=[...])`` puts the node in the groups the tags name
(aliases such as 'criteria' included), refuses a tag that names no group in one line listing
the valid ones, and the Trainer's hint says how to do it."""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.errors import EvaluationError, GraphError
from netsurgeon.graph import Network


def _net() -> Network:
    net = Network("t")
    net.add("x", "InputValue", shape=(2,), tags=["feature"])
    net.add("y", "InputValue", shape=(3,), tags=("label", "feature"))
    w = net.add_parameter("W", np.zeros((2, 3), np.float32))
    z = net.add("z", "Times", inputs=(w, "x"), tags=["output"])
    net.add("ce", "CrossEntropyWithSoftmax", inputs=("y", z), tags=["criteria"])
    return net


def test_tags_put_the_node_in_their_groups():
    net = _net()
    groups = {g: [n.name for n in members] for g, members in net.groups().items()}
    assert groups == {"feature": ["x", "y"], "label": ["y"], "criterion": ["ce"],
                      "evaluation": [], "output": ["z"]}
    assert net.node("ce").tags == {"criterion"}


def test_a_tagged_criterion_is_trained_on():
    from netsurgeon.runtime import Trainer

    net = _net()
    net.validate()
    assert [n.name for n in Trainer(net).criteria] == ["ce"]


def test_an_unknown_tag_is_refused_before_anything_changes():
    net = _net()
    version = net.version
    with pytest.raises(GraphError) as err:
        net.add("e", "ClassificationError", inputs=("y", "z"), tags=["evalution", "metric"])
    msg = str(err.value)
    assert "'metric'" in msg and "'e'" in msg and "\n" not in msg
    for group in ("feature", "label", "criterion", "evaluation", "output"):
        assert f"'{group}'" in msg
    assert net.get("e") is None and net.version == version


def test_the_trainer_says_how_to_tag_a_criterion():
    from netsurgeon.runtime import Trainer

    net = Network("t")
    net.add("x", "InputValue", shape=(2,))
    net.validate()
    with pytest.raises(EvaluationError) as err:
        Trainer(net)
    assert 'tags=["criterion"]' in str(err.value)
