"""The one-pass decoders of the CNTK v1 reader agree with its field-by-field reads.

Every record kind the reader decodes in one pass (record heads, relations, parameters, inputs,
BatchNormalization, field-list payloads, dense matrices) falls back to reading field by field
for anything unusual. Reading every real model with the one-pass decoders switched off must
give the same network, node for node, and a corrupt file the same error at the same offset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from netsurgeon.formats.cntk import CntkFormatError, _fields, _reader, read_buffer
from netsurgeon.formats.cntk.payloads import _batchnorm, _conv, _leaves


def _slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch every one-pass decoder off (each then reports 'not plain')."""
    monkeypatch.setattr(_reader, "_fast_head", lambda *a: None)
    monkeypatch.setattr(_reader, "_fast_relation", lambda *a: None)
    monkeypatch.setattr(_fields, "decode_fields", lambda *a: False)
    monkeypatch.setattr(_conv, "decode_fields", lambda *a: False)
    monkeypatch.setattr(_leaves, "dense_view", lambda *a: None)
    monkeypatch.setattr(_leaves.InputValueCodec, "_read_plain", lambda *a: None)
    monkeypatch.setattr(_batchnorm.BatchNormalizationCodec, "_read_plain", lambda *a: None)


def _facts(net) -> list:
    out = []
    for n in net:
        value = None
        if n.value is not None:
            value = (n.value.dtype.str, n.value.shape, n.value.tobytes(), n.value.flags.writeable)
        out.append((n.name, n.op, [(k, repr(v)) for k, v in n.attrs.items()], n.shape,
                    n.dtype, n.learning_rate_multiplier, sorted(n.file_fields.items()),
                    [i.name for i in n.inputs], sorted(u.name for u in n.users), value))
    groups = {g: [m.name for m in ms] for g, ms in net.groups().items()}
    return [out, groups, repr(net.metadata), net.version]


@pytest.fixture(scope="module")
def models(cntk_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((cntk_dir / "models").iterdir())}


def test_real_models_read_the_same_both_ways(models: dict[str, bytes],
                                             monkeypatch: pytest.MonkeyPatch):
    fast = {name: _facts(read_buffer(data, name)) for name, data in models.items()}
    _slow(monkeypatch)
    for name, data in models.items():
        assert _facts(read_buffer(data, name)) == fast[name], name


def _outcome(data: bytes) -> str:
    try:
        read_buffer(data, "t.dnn")
    except CntkFormatError as exc:
        return str(exc)
    return "ok"


def test_corrupt_records_fail_the_same_both_ways(models: dict[str, bytes],
                                                 monkeypatch: pytest.MonkeyPatch):
    """Flipped bytes around the record heads of each model (heads, payload fields, matrix
    headers) and in its relations: the error (message, offset, section) is the same."""
    rng = np.random.default_rng(14)
    cases = []
    for name, data in models.items():
        start = data.find("BNodeList".encode("utf-16-le"))
        relations = data.find("BRelation".encode("utf-16-le"))
        heads = [data.find(n.name.encode("utf-16-le") + b"\0\0", start)
                 for n in read_buffer(data, name)]
        spots = [at + int(d) for at in heads for d in rng.integers(-30, 140, 1)]
        spots += [int(at) for at in rng.integers(relations, len(data) - 8, 20)]
        for at in spots:
            for flip in (0x01, 0xFF):
                bad = bytearray(data)
                bad[at] ^= flip
                cases.append(bytes(bad))
        cases += [data[:at] for at in spots[::7]]
    fast = [_outcome(c) for c in cases]
    assert sum(o != "ok" for o in fast) > len(cases) // 4  # most flips are defects
    _slow(monkeypatch)
    assert [_outcome(c) for c in cases] == fast


@pytest.mark.parametrize("text", ["a", "ab", "z.W", "\u4e2d", "a\u4e2d", "\u4e2da", "\u0100",
                                  "a\u0100b", ""])
@pytest.mark.parametrize("tail", [b"", b"\0", b"\0\0", b"x\0", b"\x01\0\0\0"])
def test_wide_end_finds_the_even_terminator(text: str, tail: bytes):
    """The terminator of a wide string: the first two zero bytes at an even distance, also
    right at the end of the buffer and after a character whose high byte is 0."""
    from netsurgeon.formats.cntk._binary import wide_end

    for lead in (b"", b"\x07"):  # strings at even and odd offsets
        data = lead + text.encode("utf-16-le") + b"\0\0" + tail
        start = len(lead)
        expect = start + 2 * len(text)
        assert wide_end(data, start) == expect
        assert wide_end(data[:expect + 1], start) == -1  # no whole terminator
