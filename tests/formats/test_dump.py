"""Dump text follows ndl-mel.md §D token by token."""

from __future__ import annotations

import numpy as np

from netsurgeon.formats.dump import dump_text
from netsurgeon.graph import Network


def net() -> Network:
    n = Network()
    n.add("features", "InputValue", shape=(2,))
    n.add("image", "InputValue", shape=(1, 28, 28))
    n.add_parameter("w", np.array([[-2.12661719, 0.952834427, 1.21579206],
                                   [-1.18152845, 2.20572948, -0.982756078]], np.float32))
    n.add_parameter("b", np.array([7.49606657], np.float32))
    n.add("z", "Times", inputs=("w", "features"))
    n.add("c", "Plus", inputs=("z", None))
    return n


def test_metadata_only():
    text = dump_text(net())
    assert text == (
        " \nb=LearnableParameter [1,1]   learningRateMultiplier=1.000000  NeedsGradient=true"
        " \nc=Plus ( z , NULL )"
        " \nfeatures=InputValue [ 2 ]"
        " \nimage=InputValue [ 28 x 28 x 1 ]"
        " \nw=LearnableParameter [3,2]   learningRateMultiplier=1.000000  NeedsGradient=true"
        " \nz=Times ( w , features )"
    )


def test_with_data_prints_cntk_rows():
    n = net()
    text = dump_text(n, include_data=True, nodes=[n.node("w")])
    assert text.splitlines() == [
        " ",
        "w=LearnableParameter [3,2]   learningRateMultiplier=1.000000  NeedsGradient=true ",
        " -2.12661719 -1.18152845 ",
        " 0.952834427 2.20572948 ",
        " 1.21579206 -0.982756078 ",
        " " + "#" * 68,
    ]


def test_frozen_parameter_and_double_precision():
    n = Network()
    n.add_parameter("k", np.array([0.1], np.float64), learning_rate_multiplier=0)
    assert dump_text(n, include_data=True).splitlines()[1:3] == [
        "k=LearnableParameter [1,1]   learningRateMultiplier=0.000000  NeedsGradient=false ",
        " 0.10000000000000001 ",
    ]
