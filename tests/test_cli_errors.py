"""OS errors through the real command line: one line naming the path and the reason, exit 1,
no traceback (``--debug`` shows it), an existing file unchanged; and ``netsurgeon cleanup``."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from netsurgeon import formats
from netsurgeon.cli import main, os_error_text
from netsurgeon.formats._atomic import _HOST, TEMP_MARK, parse_temp_name
from netsurgeon.graph import Network

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def model(tmp_path) -> Path:
    net = Network("m")
    x = net.add("features", "InputValue", shape=(2,))
    w = net.add_parameter("W", np.ones((2, 3), np.float32))
    net.add("z", "Times", inputs=(w, x))
    net.add_to_group("output", "z")
    net.validate()
    path = tmp_path / "m.nsm"
    formats.save(net, path)
    return path


def cli(*args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    """The real command line in a subprocess (the timeout is a hang guard)."""
    return subprocess.run([sys.executable, "-m", "netsurgeon", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT)


def one_error(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("netsurgeon: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def temps(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if parse_temp_name(p.name)]


# ---- targets a save must not replace -------------------------------------------------------
def test_convert_to_dot(model, tmp_path):
    proc = cli("convert", model, ".", cwd=tmp_path)
    assert proc.returncode == 1
    assert "cannot write .: it is a directory (give a file name inside it)" in one_error(
        proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nsm"]


def test_output_is_a_directory_or_has_no_directory(model, tmp_path):
    (tmp_path / "d").mkdir()
    proc = cli("dump", model, "-o", tmp_path / "d")
    assert proc.returncode == 1 and "d: it is a directory" in one_error(proc.stderr)
    proc = cli("convert", model, tmp_path / "no" / "x.dnn")
    line = one_error(proc.stderr)
    assert proc.returncode == 1 and f"directory {tmp_path / 'no'} does not exist" in line
    proc = cli("dump", model, "-o", f"{tmp_path}/out/")
    assert proc.returncode == 1 and "cannot end with '/'" in one_error(proc.stderr)
    assert not (tmp_path / "out").exists()


def test_dev_null_is_not_replaced(model):
    before = os.stat("/dev/null")
    for args in (("dump", model, "-o", "/dev/null"), ("convert", model, "/dev/null")):
        proc = cli(*args)
        assert proc.returncode == 1 and "/dev/null: it is a character device" in one_error(
            proc.stderr)
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino,
                                                                            before.st_rdev)


def test_fifo_output_neither_hangs_nor_is_replaced(model, tmp_path):
    fifo = tmp_path / "out.txt"
    os.mkfifo(fifo)
    proc = cli("dump", model, "-o", fifo, timeout=60)
    assert proc.returncode == 1 and "FIFO" in one_error(proc.stderr)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_symlink_output_is_written_through(model, tmp_path):
    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    proc = cli("dump", model, "-o", tmp_path / "link.txt")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "link.txt").is_symlink() and "z" in (tmp_path / "real.txt").read_text()


# ---- OS failures: injected where a test cannot make them (full disk, read-only mount) --------
def _fail(monkeypatch, name: str, code: int, under: Path) -> None:
    real = getattr(os, name)
    fds: set[int] = set()
    real_open = os.open

    def tracking_open(path, *a, **k):
        fd = real_open(path, *a, **k)
        if os.fsdecode(path).startswith(str(under)):
            fds.add(fd)
        return fd

    def failing(first, *a, **k):
        ours = first in fds if isinstance(first, int) else os.fsdecode(first).startswith(
            str(under))
        if ours:
            raise OSError(code, os.strerror(code))
        return real(first, *a, **k)

    if name != "open":
        monkeypatch.setattr(os, "open", tracking_open)
    monkeypatch.setattr(os, name, failing)


@pytest.mark.parametrize(("name", "code", "words"), [
    ("write", errno.ENOSPC, "no space left on device (free some space or write elsewhere)"),
    ("open", errno.EROFS, "read-only file system (the file system is read-only; write elsewhere)"),
    ("open", errno.EACCES, "permission denied (check the permissions"),
    ("replace", errno.EIO, "input/output error"),
    ("fsync", errno.EDQUOT, "disk quota exceeded"),
])
@pytest.mark.parametrize("command", ["convert", "dump", "build"])
def test_os_errors_on_output_are_one_line(model, tmp_path, monkeypatch, capsys, name, code,
                                          words, command):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / ("x.txt" if command == "dump" else "x.dnn")
    target.write_bytes(b"old")
    ndl = tmp_path / "n.ndl"
    ndl.write_text("x = InputValue(2)\nW = LearnableParameter(3, 2)\nz = Times(W, x)\n"
                   "FeatureNodes = (x)\nOutputNodes = (z)\n")
    argv = {"convert": ["convert", str(model), str(target)],
            "dump": ["dump", str(model), "-o", str(target)],
            "build": ["build", str(ndl), "-o", str(target)]}[command]
    _fail(monkeypatch, name, code, out_dir)
    assert main(argv) == 1
    line = one_error(capsys.readouterr().err)
    assert f"cannot write {target}: {words}" in line
    assert target.read_bytes() == b"old" and temps(out_dir) == []


def test_eval_save_outputs_onto_a_place_that_cannot_take_them(tmp_path, monkeypatch, capsys,
                                                             cntk_dir):
    model, data = cntk_dir / "models/MC.dnn", cntk_dir / "data/Test-3Classes_cntk_text.txt"
    (tmp_path / "file").write_text("x")
    argv = ["eval", str(model), str(data), "--output", "z", "--save-outputs"]
    assert main([*argv, str(tmp_path / "file" / "out")]) == 1
    line = one_error(capsys.readouterr().err)
    assert line == f"netsurgeon: error: cannot write {tmp_path / 'file' / 'out'}: not a directory"
    real_mkdir = os.mkdir

    def read_only(path, *a, **k):
        if str(path).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *a, **k)

    monkeypatch.setattr(os, "mkdir", read_only)
    assert main([*argv, str(tmp_path / "ro")]) == 1
    assert one_error(capsys.readouterr().err) == (
        f"netsurgeon: error: cannot write {tmp_path / 'ro'}: read-only file system "
        "(the file system is read-only; write elsewhere)")


def test_any_os_error_a_command_lets_through_is_one_line(monkeypatch, capsys, model):
    from netsurgeon.commands import validate

    def boom(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/some/where")

    monkeypatch.setattr(validate, "run", boom)
    assert main(["validate", str(model)]) == 1
    assert one_error(capsys.readouterr().err) == (
        "netsurgeon: error: /some/where: permission denied (check the permissions)")
    with pytest.raises(PermissionError):
        main(["--debug", "validate", str(model)])


def test_memory_error_is_one_line(monkeypatch, capsys, model):
    from netsurgeon.commands import validate

    def hungry(args):
        raise MemoryError

    monkeypatch.setattr(validate, "run", hungry)
    assert main(["validate", str(model)]) == 1
    assert "out of memory in 'validate'" in one_error(capsys.readouterr().err)


def test_os_error_text_forms():
    assert os_error_text(OSError(errno.ENOSPC, "No space left on device")) == (
        "no space left on device (free some space or write elsewhere)")
    assert os_error_text(OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b")) == (
        "a -> b: invalid cross-device link")
    assert "\n" not in os_error_text(OSError("two\nlines"))


def test_closed_pipe_is_quiet(model):
    proc = subprocess.Popen([sys.executable, "-m", "netsurgeon", "dump", str(model), "--data"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and err == ""


# ---- netsurgeon cleanup --------------------------------------------------------------------
def _temp(directory: Path, target: str, pid: int, host: str = _HOST, size: int = 10,
          age_s: float = 0) -> Path:
    path = directory / f".{target}{TEMP_MARK}{host}-{pid}-0000abcd"
    path.write_bytes(b"x" * size)
    if age_s:
        os.utime(path, (time.time() - age_s,) * 2)
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_cleanup_removes_only_stale_temp_files(tmp_path):
    dead = _temp(tmp_path, "a.nsm", _dead_pid(), size=3 << 20)
    live = _temp(tmp_path, "b.nsm", os.getpid())
    old_remote = _temp(tmp_path, "c.nsm", 1, host="otherhost", age_s=2 * 86400)
    new_remote = _temp(tmp_path, "d.nsm", _dead_pid(), host="otherhost")
    look_alike = tmp_path / ".e.nsm.netsurgeon-tmp-x"
    look_alike.write_text("keep")
    link = tmp_path / f".f.nsm{TEMP_MARK}{_HOST}-{_dead_pid()}-0000abcd"
    link.symlink_to(look_alike)
    sub = tmp_path / "sub"
    sub.mkdir()
    deep = _temp(sub, "g.nsm", _dead_pid())
    proc = cli("cleanup", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not dead.exists() and not old_remote.exists()
    assert live.exists() and new_remote.exists() and look_alike.exists() and link.is_symlink()
    assert deep.exists()  # not recursive by default
    assert f"kept {live} (a save in progress, process {os.getpid()})" in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("removed 2 stale temporary files (3.0 MB)")
    proc = cli("cleanup", "-r", "-q", tmp_path)
    assert proc.returncode == 0 and proc.stdout == "" and not deep.exists()


def test_cleanup_errors_are_one_line(tmp_path):
    proc = cli("cleanup", tmp_path / "nope")
    assert proc.returncode == 1
    assert one_error(proc.stderr).endswith("nope does not exist (give a directory)")
    (tmp_path / "f").write_text("x")
    proc = cli("cleanup", tmp_path / "f")
    assert proc.returncode == 1 and "is not a directory" in one_error(proc.stderr)


def test_cleanup_default_is_the_current_directory(tmp_path):
    stale = _temp(tmp_path, "a.nsm", _dead_pid())
    proc = cli("cleanup", "--dry-run", cwd=tmp_path)
    assert f"would remove ./{stale.name} (10 bytes)" in proc.stdout and stale.exists()
    assert cli("cleanup", cwd=tmp_path).returncode == 0 and not stale.exists()


def test_names_from_a_file_never_break_an_error_over_lines(tmp_path, capsys):
    """A node name holding a newline (or any control character) is shown escaped."""
    from netsurgeon import formats
    from netsurgeon.errors import FormatError
    from netsurgeon.graph import Network

    err = FormatError("node 'a\nb' has op 'X\r\t\x00'", hint="fix\nit")
    assert str(err) == "node 'a\\nb' has op 'X\\r\\t\\x00' (fix\\nit)"
    net = Network("n")
    a = net.add("x\ny", "InputValue", shape=(2,))
    b = net.add("b", "InputValue", shape=(3,))
    net.add("p\nq", "Plus", inputs=(a, b))
    path = tmp_path / "m.nsm"
    formats.save(net, path)
    assert main(["validate", str(path)]) == 1  # (2,) + (3,): an error naming p\nq
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and "p\\nq" in line, line
