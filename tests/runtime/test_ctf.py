"""The CNTK Text Format reader: sequences, sparse streams, comments, errors with line numbers."""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.errors import FormatError
from netsurgeon.runtime.batch import SparseRows
from netsurgeon.runtime.readers import CTFReader, StreamSpec

SPECS = [StreamSpec("x", "x", (3,)), StreamSpec("w", "words", (5,))]


def _write(tmp_path, text, name="d.ctf"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_sequences_sparse_and_comments(tmp_path):
    p = _write(tmp_path, (
        "7 |x 1 2 3 |w 0:1 |# a comment: ends at the next bar \n"
        "7 |x 4 5 6 |w 4:2.5\n"
        "8\t|x 7 8 9\t|w 1:1 2:1 |extra ignored\n"
        "\n"
        "|x 0 0 1 |w 3:1\n"
    ))
    batches = list(CTFReader(p, SPECS, minibatch_size=100))
    assert len(batches) == 1
    mb = batches[0]
    assert mb.lengths.tolist() == [2, 1, 1]
    x = mb.streams["x"]
    assert x.shape == (3, 2, 3)
    np.testing.assert_array_equal(x[0], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(x[1, 1], [0, 0, 0])  # padding
    w = mb.streams["words"]
    assert isinstance(w, SparseRows) and w.rows == 6
    dense = w.to_dense().reshape(3, 2, 5)
    assert dense[0, 1, 4] == 2.5 and dense[1, 0, 1] == 1 and dense[1, 0, 2] == 1
    assert dense[2, 0, 3] == 1 and dense[2, 1].sum() == 0


def test_minibatches_count_samples_and_stream(tmp_path):
    lines = "".join(f"{i // 3} |x {i} 0 0 |w 0:1\n" for i in range(30))  # 10 sequences of 3
    p = _write(tmp_path, lines)
    batches = list(CTFReader(p, SPECS, minibatch_size=7))
    assert [mb.batch for mb in batches] == [2, 2, 2, 2, 2]
    assert sum(mb.samples for mb in batches) == 30
    first = next(iter(CTFReader(p, SPECS, minibatch_size=7, max_sequences=1)))
    assert first.batch == 1


@pytest.mark.parametrize("text,message", [
    ("|x 1 2 |w 0:1\n", r"d.ctf:1: stream 'x' has 2 values but input 'x' has dimension 3"),
    ("|x 1 2 3 |w 0:1\n|x 1 a 3 |w 0:1\n", r"d.ctf:2: stream 'x': 'a' is not a number"),
    ("|x 1 2 3 |w 5:1\n", r"d.ctf:1: stream 'w': index 5 is outside the input dimension 5"),
    ("|x 1 2 3 |w 0:1\n\n|x 1 2 3 |w 1\n", r"d.ctf:3: stream 'w' mixes dense and sparse"),
    ("|x 1 2 3 |w x:1\n", r"d.ctf:1: stream 'w': 'x:1' is not index:value"),
    ("hello\n", r"d.ctf:1: no '\|name values' field"),
    ("1 |x 1 2 3 |w 0:1\n1 |x 1 2 3\n", r"d.ctf:1: sequence '1': stream 'w' has 1 samples"),
    ("|y 1\n", r"d.ctf:1: no mapped stream on this line .*--map NODE=STREAM"),
])
def test_errors_name_file_and_line(tmp_path, text, message):
    p = _write(tmp_path, text)
    with pytest.raises(FormatError, match=message):
        list(CTFReader(p, SPECS))


def test_atis_file(cntk_dir):
    specs = [StreamSpec("S0", "query", (943,)), StreamSpec("S2", "slotLabels", (129,))]
    total = seqs = 0
    for mb in CTFReader(cntk_dir / "data/atis.test.ctf", specs, 512):
        total += mb.samples
        seqs += mb.batch
        assert isinstance(mb.streams["query"], SparseRows)
    assert (seqs, total) == (893, 10984)
