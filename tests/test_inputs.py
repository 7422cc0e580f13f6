"""Every input is opened through netsurgeon._inputs: regular files only, text capped.

Issue 10.4: a FIFO given as any input hung forever (the file was read before the regular-file
check) and ``/dev/zero`` as a text input was read until MemoryError. Each command and each
kind of input is tried here with a FIFO nobody writes to and with devices; a watchdog thread
feeds the FIFO an end-of-file after a generous delay, so a regression fails instead of hanging.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from netsurgeon import _inputs as inputs
from netsurgeon.errors import FormatError, NetsurgeonError, ParseError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and devices are POSIX's")

HANG_GUARD_S = 30.0  # a refused input answers at once; this only turns a hang into a failure


@pytest.fixture
def fifo(tmp_path):
    """A FIFO nobody writes to; after HANG_GUARD_S a watchdog opens and closes its write end
    (again and again) so that a reader blocked on it sees end-of-file."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    stop = threading.Event()

    def watchdog():
        if stop.wait(HANG_GUARD_S):
            return
        while not stop.is_set():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join()


def refused(call, *match: str, error: type = NetsurgeonError) -> str:
    start = time.monotonic()
    with pytest.raises(error) as info:
        call()
    assert time.monotonic() - start < HANG_GUARD_S, "the read blocked"
    text = str(info.value)
    assert "\n" not in text, text
    for m in match:
        assert m in text, text
    return text


# ---- the module ----------------------------------------------------------------------------
def test_regular_files_are_read(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"\xef\xbb\xbfhello\n")
    assert inputs.read_text(p) == "hello\n"
    assert inputs.read_bytes(p) == b"\xef\xbb\xbfhello\n"
    assert inputs.read_head(p, 3) == b"\xef\xbb\xbf"
    buf, size = inputs.map_file(p)
    assert size == 9 and bytes(buf[:3]) == b"\xef\xbb\xbf"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert inputs.map_file(empty) == (b"", 0) and inputs.read_text(empty) == ""
    link = tmp_path / "link.txt"
    link.symlink_to(p)
    assert inputs.read_text(link) == "hello\n"  # symlinks are followed


@pytest.mark.parametrize("reader", ["read_text", "read_bytes", "read_head", "map_file",
                                    "check_regular", "open_regular"])
def test_a_fifo_is_refused_before_it_is_opened(fifo, reader):
    def call():
        fn = getattr(inputs, reader)
        if reader == "read_head":
            return fn(fifo, 8, "model file", FormatError)
        if reader == "open_regular":
            with fn(fifo, "model file", FormatError):
                pass
        return fn(fifo, "model file", FormatError)

    text = refused(call, "is a FIFO (named pipe)", error=FormatError)
    assert text.startswith(f"{fifo}: cannot read the model file: ")


def test_a_fifo_swapped_in_after_the_stat_does_not_block(fifo, monkeypatch, tmp_path):
    """The path is checked again on the open file: O_NONBLOCK, then fstat."""
    regular = os.stat(tmp_path)
    regular = os.stat_result((stat.S_IFREG | 0o644,) + tuple(regular)[1:])
    real_stat = os.stat
    monkeypatch.setattr(inputs.os, "stat", lambda p, *a, **k: regular if Path(p) == fifo
                        else real_stat(p, *a, **k))
    refused(lambda: inputs.read_text(fifo, "NDL file", ParseError), "is a FIFO",
            error=ParseError)


@pytest.mark.parametrize("device, kind", [("/dev/zero", "character device"),
                                          ("/dev/null", "character device"),
                                          ("/dev/urandom", "character device")])
def test_devices_are_refused(device, kind):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    refused(lambda: inputs.read_text(device, "NDL file", ParseError), kind, error=ParseError)
    refused(lambda: inputs.map_file(device, "model file", FormatError), kind, error=FormatError)


def test_directories_missing_files_and_odd_paths(tmp_path):
    refused(lambda: inputs.read_text(tmp_path, "NDL file"), f"{tmp_path}: cannot read the "
            "NDL file: it is a directory")
    refused(lambda: inputs.read_text(tmp_path / "nope.ndl", "NDL file"), "nope.ndl: cannot read "
            "the NDL file: not found")
    (tmp_path / "f").write_text("x")
    refused(lambda: inputs.read_text(tmp_path / "f" / "g"), "a folder on its path is a file")
    refused(lambda: inputs.read_text("a\0b"), "NUL character")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    refused(lambda: inputs.read_text(dangling), "not found")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    p = tmp_path / "secret.ndl"
    p.write_text("x")
    p.chmod(0)
    refused(lambda: inputs.read_text(p, "NDL file"), "permission denied")


def test_the_text_cap_and_its_environment_variable(tmp_path, monkeypatch):
    p = tmp_path / "big.ndl"
    p.write_bytes(b"x" * 1000)
    assert inputs.text_limit() == inputs.DEFAULT_TEXT_LIMIT == 256 * 1024 * 1024
    monkeypatch.setenv(inputs.TEXT_LIMIT_ENV, "1000")
    assert inputs.read_text(p) == "x" * 1000  # exactly at the cap: read
    monkeypatch.setenv(inputs.TEXT_LIMIT_ENV, "999")
    refused(lambda: inputs.read_text(p, "NDL file", ParseError),
            "it is 1000 bytes, above the limit of 999 bytes",
            f"raise it with netsurgeon --max-text-size 1M, or {inputs.TEXT_LIMIT_ENV}=1M",
            error=ParseError)
    for raw, value in (("2K", 2048), ("3 MB", 3 << 20), ("1g", 1 << 30), ("5MiB", 5 << 20)):
        monkeypatch.setenv(inputs.TEXT_LIMIT_ENV, raw)
        assert inputs.text_limit() == value
    monkeypatch.setenv(inputs.TEXT_LIMIT_ENV, "lots")
    refused(lambda: inputs.read_text(p), f"{inputs.TEXT_LIMIT_ENV}='lots' is not a byte count")
    monkeypatch.delenv(inputs.TEXT_LIMIT_ENV)
    refused(lambda: inputs.read_bytes(p, limit=10), "above the limit of 10 bytes")
    assert len(inputs.read_bytes(p)) == 1000  # binary reads: no cap but the file's size


def test_a_file_that_reports_no_size_is_still_capped():
    """/proc files say size 0 and hold more: at most cap + 1 bytes are read."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("no /proc")
    refused(lambda: inputs.read_bytes("/proc/self/status", limit=10),
            "more than 10 bytes, above the limit of 10 bytes")


@pytest.mark.parametrize("data, match, where", [
    ("x = 1\n".encode("utf-16"), "UTF-16 (little-endian) text (byte order mark FF FE)", ":1:1:"),
    (b"\xfe\xff" + "x = 1\n".encode("utf-16-be"), "UTF-16 (big-endian)", ":1:1:"),
    ("x = 1\n".encode("utf-32"), "UTF-32 (little-endian) text", ":1:1:"),
    (b"\x00\x00\xfe\xff" + "x".encode("utf-32-be"), "UTF-32 (big-endian)", ":1:1:"),
    ("x = 1\n".encode("utf-16-le"), "looks like UTF-16 text without a byte order mark", ":1:2:"),
    ("x = 1\n".encode("utf-16-be"), "looks like UTF-16 text", ":1:1:"),
    (b"x = 1\ny = 2\0\n", "NUL byte at byte offset 11: it is not a text file", ":2:6:"),
])
def test_text_that_is_not_utf8_is_one_line(tmp_path, data, match, where):
    p = tmp_path / "net.ndl"
    p.write_bytes(data * 40)  # issue 10: a UTF-16 NDL file printed 81 lines full of NULs
    text = refused(lambda: inputs.read_text(p, "NDL file", ParseError), match,
                   error=ParseError)
    assert text.startswith(f"{p}{where} cannot read the NDL file: ") and "\0" not in text


def test_latin1_and_utf8_bom_are_still_read(tmp_path):
    p = tmp_path / "net.ndl"
    p.write_bytes(b"caf\xe9 = 1\n")  # not UTF-8: read as Latin-1, as CNTK read bytes
    assert inputs.read_text(p) == "café = 1\n"
    p.write_bytes("\ufeffcafé = 1\n".encode())
    assert inputs.read_text(p) == "café = 1\n"


# ---- every input of the command line -------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A model and the scripts that name ``{bad}`` as the input they open."""
    from netsurgeon.cli import main

    root = tmp_path_factory.mktemp("cli")
    ndl = Path(__file__).resolve().parents[1] / "examples" / "two_layer.ndl"
    assert main(["build", str(ndl), "-o", str(root / "m.nsm")]) == 0
    return root, ndl


def _commands(root: Path, ndl: Path, bad: Path) -> dict[str, list[str]]:
    model = str(root / "m.nsm")
    mel = root / f"load_{bad.name}.mel"
    mel.write_text(f'm = LoadModel("{bad}")\n')
    mel_cntk = root / f"load_cntk_{bad.name}.mel"
    mel_cntk.write_text(f'm = LoadModel("{bad}", format=cntk)\n')
    bs = root / f"load_{bad.name}.bs"
    bs.write_text(f'net = BS.Network.Load("{bad}")\n')
    revise = root / f"revise_{bad.name}.mel"
    revise.write_text(f'm = LoadModel("{root / "m.nsm"}")\nReviseParameter(m.B0, "{bad}")\n')
    init = root / f"init_{bad.name}.ndl"
    init.write_text(f'x = Input(3)\nW = Parameter(2, 3, init="fromFile", '
                    f'initFromFilePath="{bad}")\nz = Times(W, x)\nFeatureNodes = (x)\n')
    out = str(root / "o.nsm")
    return {
        "build": ["build", str(bad), "-o", out],
        "build --macros": ["build", str(ndl), "-o", out, "--macros", str(bad)],
        "build --config": ["build", str(ndl), "-o", out, "--config", str(bad)],
        "edit": ["edit", str(bad)],
        "edit --macros": ["edit", str(mel), "--macros", str(bad)],
        "bs": ["bs", str(bad)],
        "bs --parse-tree": ["bs", "--parse-tree", str(bad)],
        "bs --config": ["bs", "--config", str(bad), "--section", "train"],
        "dump": ["dump", str(bad)],
        "validate": ["validate", str(bad)],
        "convert": ["convert", str(bad), str(root / "o.dnn")],
        "eval model": ["eval", str(bad), str(root / "none.txt")],
        "eval data": ["eval", model, str(bad)],
        "train model": ["train", str(bad), str(root / "none.txt"), "-o", out],
        "MEL LoadModel": ["edit", str(mel)],
        "MEL LoadModel format=cntk": ["edit", str(mel_cntk)],
        "BS.Network.Load": ["bs", str(bs)],
        "MEL ReviseParameter": ["edit", str(revise)],
        "NDL initFromFilePath": ["build", str(init), "-o", out],
    }


COMMANDS = ["build", "build --macros", "build --config", "edit", "edit --macros", "bs",
            "bs --parse-tree", "bs --config", "dump", "validate", "convert", "eval model",
            "eval data", "train model", "MEL LoadModel", "MEL LoadModel format=cntk",
            "BS.Network.Load", "MEL ReviseParameter", "NDL initFromFilePath"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "directory"])
def test_every_command_refuses_a_fifo_or_device_at_once(files, fifo, command, kind, capsys):
    from netsurgeon.cli import main

    root, ndl = files
    bad = {"fifo": fifo, "/dev/zero": Path("/dev/zero"), "directory": root}[kind]
    if command == "edit --macros" and not _accepts(main, "edit", "--macros"):
        pytest.skip("edit has no --macros")
    table = _commands(root, ndl, bad)
    assert list(table) == COMMANDS
    argv = table[command]
    start = time.monotonic()
    assert main(argv) == 1
    assert time.monotonic() - start < HANG_GUARD_S, "the read blocked"
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("netsurgeon: error: "), err
    assert str(bad) in err, err
    why = {"fifo": "FIFO", "/dev/zero": "character device", "directory": "directory"}[kind]
    assert why in err, err


def _accepts(main, command: str, option: str) -> bool:
    import importlib

    from netsurgeon.cli import COMMANDS as TABLE

    parser = __import__("argparse").ArgumentParser()
    importlib.import_module(TABLE[command][0]).configure(parser)
    return any(option in a.option_strings for a in parser._actions)


def test_the_max_text_size_flag_sets_the_cap_for_one_run(tmp_path, capsys):
    from netsurgeon.cli import main

    ndl = tmp_path / "net.ndl"
    example = Path(__file__).resolve().parents[1] / "examples" / "two_layer.ndl"
    ndl.write_text(example.read_text() + " " * 4096)
    out = tmp_path / "m.nsm"
    assert main(["--max-text-size", "1K", "build", str(ndl), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "above the limit of 1024 bytes" in err and not out.exists()
    assert main(["--max-text-size", "1M", "build", str(ndl), "-o", str(out)]) == 0
    assert inputs.text_limit() == inputs.DEFAULT_TEXT_LIMIT  # the flag ends with the run
    with pytest.raises(SystemExit):
        main(["--max-text-size", "4Q", "build", str(ndl)])
    assert "'4Q' is not a byte count" in capsys.readouterr().err


def test_a_small_text_file_allocates_its_size_not_the_cap(tmp_path):
    import tracemalloc

    p = tmp_path / "small.bs"
    p.write_text("x = 1\n" * 7000)  # 42 KB
    tracemalloc.start()
    try:
        assert len(inputs.read_text(p)) == 42_000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak  # read(limit + 1) reserved the whole 256 MiB cap
    proc = inputs.read_text("/proc/self/status")  # fstat says 0 bytes: read to the end
    assert proc.startswith("Name:")
