"""Minibatch extents: (B, T, full) from the sequence lengths, as the backends read them."""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.runtime.batch import Minibatch, extent


@pytest.mark.parametrize("lengths", [[], [1], [7], [1] * 32, [1] * 256, [3, 3, 3],
                                     [1, 2], [2, 1, 1], [5, 1, 5], [0, 0]])
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_extent_equals_the_reductions(lengths, dtype):
    lens = np.asarray(lengths, dtype)
    batch = Minibatch({}, lens)
    want = (batch.batch, batch.steps, batch.frame_mask() is None)
    assert extent(lens) == want
    assert extent(lens) == want  # the cached ones pattern of this B gives the same


def test_a_length_other_than_one_among_ones_is_not_feed_forward():
    lens = np.ones(64, np.int64)
    assert extent(lens) == (64, 1, True)
    lens[17] = 2
    assert extent(lens) == (64, 2, False)
