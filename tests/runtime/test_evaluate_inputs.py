"""Issue 15 traps of ``netsurgeon.evaluate``: only the inputs the outputs need are required
(MC.dnn's 'labels' is not, for the default outputs given 'features' only), the hint fits
arrays, and outputs of data without a time axis come back (N, *sample), sequences (N, T,
*sample)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.runtime import nets

import netsurgeon
from netsurgeon.errors import EvaluationError


@pytest.fixture
def mc(cntk_dir):
    return netsurgeon.load(cntk_dir / "models/MC.dnn")


def test_default_outputs_need_only_the_inputs_given(mc):
    out = netsurgeon.evaluate(mc, {"features": np.zeros((4, 2), np.float32)})
    assert list(out) == ["z"]  # ce and errs need 'labels': left out
    labels = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    out = netsurgeon.evaluate(mc, {"features": np.zeros((4, 2), np.float32), "labels": labels})
    assert sorted(out) == ["ce", "errs", "z"]


def test_an_output_asked_for_names_the_missing_array(mc):
    with pytest.raises(EvaluationError) as err:
        netsurgeon.evaluate(mc, {"features": np.zeros((4, 2), np.float32)}, ["ce"])
    msg = str(err.value)
    assert "'ce'" in msg and "'labels'" in msg and "inputs={'labels': ...}" in msg
    assert "stream" not in msg and "\n" not in msg


def test_outputs_without_a_time_axis_are_batch_by_sample(mc):
    net = nets.mlp(din=2, dh=4, dout=3)
    out = netsurgeon.evaluate(net, {"features": np.ones((4, 2), np.float32)}, ["z"])
    assert net.node("z").shape == (3,) and out["z"].shape == (4, 3)
    # MC.dnn's z is CNTK [3 x 1] (its bias b is a 3 x 1 column): sample (1, 3), as CNTK 2.7
    # gives it (reference/MC/z.first10.frames.npy is (10, 1, 3)); no time axis is added
    z = netsurgeon.evaluate(mc, {"features": np.zeros((4, 2), np.float32)}, ["z"])["z"]
    assert z.shape == (4, *mc.node("z").shape) == (4, 1, 3)


def test_sequences_keep_their_time_axis():
    net = nets.mlp(din=2, dh=4, dout=3)
    out = netsurgeon.evaluate(net, {"features": np.ones((4, 5, 2), np.float32)}, ["z"],
                              lengths=[5, 3, 1, 2])
    assert out["z"].shape == (4, 5, 3)
    assert not out["z"][1, 3:].any()  # padding zeroed
