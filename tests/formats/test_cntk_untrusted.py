"""Untrusted input: every defect raises CntkFormatError (a FormatError) with offset and section.

Truncations, flipped bytes, absurd counts, unknown node types and wrong markers must neither
hang the reader nor make it allocate more than the file's size suggests.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsurgeon.errors import FormatError
from netsurgeon.formats import cntk
from netsurgeon.formats.cntk import CntkFormatError, read_buffer


def wstr(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


@pytest.fixture(scope="module")
def lr_bytes(cntk_dir: Path) -> bytes:
    return (cntk_dir / "models" / "LR_reg.dnn").read_bytes()


@pytest.fixture(scope="module")
def all_bytes(cntk_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((cntk_dir / "models").iterdir())}


def expect_error(data: bytes, section: str | None = None) -> CntkFormatError:
    with pytest.raises(CntkFormatError) as info:
        read_buffer(data, "test.dnn")
    err = info.value
    assert isinstance(err, FormatError)
    assert err.offset is not None and 0 <= err.offset <= len(data)
    assert f"byte {err.offset}" in str(err) and "section" in str(err)
    if section is not None:
        assert section in err.section, (err.section, str(err))
    return err


def test_truncated_at_every_length(lr_bytes: bytes):
    for n in range(len(lr_bytes)):
        err = expect_error(lr_bytes[:n])
        assert err.offset <= n


def test_truncated_big_models(all_bytes: dict[str, bytes]):
    for data in all_bytes.values():
        for n in (0, 7, 8, 40, len(data) // 3, len(data) // 2, len(data) - 9, len(data) - 1):
            expect_error(data[:n])


def test_empty_and_missing_file(tmp_path: Path):
    empty = tmp_path / "empty.dnn"
    empty.write_bytes(b"")
    with pytest.raises(CntkFormatError, match="truncated"):
        cntk.read(empty)
    with pytest.raises(CntkFormatError, match="not found"):
        cntk.read(tmp_path / "nope.dnn")


def _sections(data: bytes) -> dict[str, int]:
    """A byte inside each section of LR_reg.dnn (structural bytes: markers, counts, names)."""
    return {
        "header": data.find(wstr("BCN")),
        "version": data.find(wstr("EVersion")) + 2,
        "node list": data.find(wstr("BNodeList")) + 4,
        "payload": data.find(wstr("BMAT")) + 2,
        "relation": data.find(wstr("BRelation")) + 2,
        "root nodes": data.find(wstr("BFeatureNodes")) + 2,
        "end": data.find(wstr("ECN")),
    }


@pytest.mark.parametrize("section", ["header", "version", "node list", "payload", "relation",
                                     "root nodes", "end"])
def test_flipped_byte_in_each_section(lr_bytes: bytes, section: str):
    at = _sections(lr_bytes)[section]
    bad = bytearray(lr_bytes)
    bad[at] ^= 0x5A
    err = expect_error(bytes(bad), section if section != "payload" else "payload")
    assert err.offset <= at + 2


def test_flipping_every_byte_never_escapes(all_bytes: dict[str, bytes]):
    """Each single-byte flip either still loads (a value changed) or raises CntkFormatError."""
    for name in ("LR_reg.dnn", "MC.dnn"):
        data = all_bytes[name]
        loaded = failed = 0
        for i in range(len(data)):
            bad = bytearray(data)
            bad[i] ^= 0xFF
            try:
                read_buffer(bytes(bad), name)
                loaded += 1
            except CntkFormatError as err:
                assert err.offset is not None and err.section
                failed += 1
        # only parameter data (and a few free-valued scalars) can change without notice
        assert failed > len(data) * 0.8, (loaded, failed)


def test_count_of_2_pow_60(lr_bytes: bytes):
    at = lr_bytes.find(wstr("EVersion")) + len(wstr("EVersion"))
    bad = lr_bytes[:at] + struct.pack("<Q", 1 << 60) + lr_bytes[at + 8:]
    tracemalloc.start()
    t0 = time.perf_counter()
    err = expect_error(bad, "node list")
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "1152921504606846976" in str(err) and err.offset == at
    assert elapsed < 1.0 and peak < 1 << 20


def test_huge_counts_everywhere(lr_bytes: bytes):
    """Every u64 count/size field set to 2**60 fails fast with little memory."""
    fields = []
    rel = lr_bytes.find(wstr("BRelation"))
    # input count of the first relation record
    name_end = lr_bytes.find(b"\0\0", rel + len(wstr("BRelation")))
    while (name_end - rel) % 2:
        name_end = lr_bytes.find(b"\0\0", name_end + 1)
    fields.append(name_end + 2)
    bmat = lr_bytes.find(wstr("BMAT")) + len(wstr("BMAT"))
    rows_at = bmat + 8 + len(wstr("unnamed")) + 4
    fields += [bmat, rows_at, rows_at + 8]
    fields.append(lr_bytes.find(wstr("BFeatureNodes")) + len(wstr("BFeatureNodes")))
    for at in fields:
        bad = lr_bytes[:at] + struct.pack("<Q", 1 << 60) + lr_bytes[at + 8:]
        tracemalloc.start()
        expect_error(bad)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 1 << 20, at


def test_unknown_node_type(lr_bytes: bytes):
    old = wstr("SquareError")
    new = wstr("SquareErrrX")  # same length, unknown name
    assert len(old) == len(new)
    bad = lr_bytes.replace(old, new, 1)
    err = expect_error(bad, "node list")
    assert "unknown node type 'SquareErrrX'" in str(err)
    assert err.offset == lr_bytes.find(old)


def test_wrong_marker(lr_bytes: bytes):
    bad = lr_bytes.replace(wstr("ERelation"), wstr("XRelation"))
    err = expect_error(bad, "relation")
    assert "expected marker 'ERelation'" in str(err)
    assert err.offset == lr_bytes.find(wstr("ERelation"))


def test_bad_version_and_precision(lr_bytes: bytes):
    at = lr_bytes.find(wstr("BVersion")) + len(wstr("BVersion"))
    bad = lr_bytes[:at] + struct.pack("<Q", 32) + lr_bytes[at + 8:]
    assert "version 32" in str(expect_error(bad, "version"))
    bad = lr_bytes.replace(wstr("float"), wstr("flo\u0430t"), 1)
    expect_error(bad, "node list")


def test_unknown_input_name_in_relation(lr_bytes: bytes):
    rel = lr_bytes.find(wstr("BRelation"))
    target = lr_bytes.find(wstr("features"), rel)
    bad = bytearray(lr_bytes)
    bad[target] = ord("g")
    err = expect_error(bytes(bad), "relation")
    assert "gfeatures" in str(err) or "geatures" in str(err)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutations(all_bytes: dict[str, bytes], data):
    """Random byte edits, insertions, deletions and truncations: load or CntkFormatError."""
    name = data.draw(st.sampled_from(["LR_reg.dnn", "MC.dnn", "cifar10.pretrained.cmf",
                                      "slu.forward.nobn.cmf"]))
    buf = bytearray(all_bytes[name])
    # mutate mostly the structural head/tail so the fuzzer does not just hit float data
    for _ in range(data.draw(st.integers(1, 6))):
        where = data.draw(st.one_of(st.integers(0, min(len(buf), 4000) - 1),
                                    st.integers(max(0, len(buf) - 3000), len(buf) - 1),
                                    st.integers(0, len(buf) - 1)))
        kind = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if kind == "flip":
            buf[where] ^= data.draw(st.integers(1, 255))
        elif kind == "set":
            buf[where:where + 8] = data.draw(st.sampled_from(
                [struct.pack("<Q", 1 << 60), struct.pack("<Q", 0), b"\xff" * 8, b"\0" * 8]))
        elif kind == "insert":
            buf[where:where] = data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del buf[where:where + data.draw(st.integers(1, 8))]
        else:
            del buf[where:]
        if not buf:
            break
    t0 = time.perf_counter()
    try:
        read_buffer(bytes(buf), name)
    except CntkFormatError as err:
        assert err.offset is not None and err.section
    assert time.perf_counter() - t0 < 2.0
