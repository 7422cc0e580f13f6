"""The atomic writer (formats/_atomic.py): regular files only, symlinks written through, modes
from the umask, fsync before and after the rename, recognisable temp files that a later save
or ``netsurgeon cleanup`` removes, and every OS failure a one-line error with the old file
intact and no temp file left (fault injection at every os call of a save)."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from netsurgeon.errors import FormatError
from netsurgeon.formats import _atomic, cntk, load, native, save
from netsurgeon.formats._atomic import atomic_write, is_stale, parse_temp_name, temp_name
from netsurgeon.graph import Network

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def network(scale: float = 1.0) -> Network:
    net = Network("m")
    x = net.add("features", "InputValue", shape=(4,))
    w = net.add_parameter("W", np.arange(12, dtype=np.float32).reshape(4, 3) * scale)
    net.add("z", "Times", inputs=(w, x))
    net.add_to_group("output", "z")
    net.validate()
    return net


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text
    return text


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if parse_temp_name(p.name))


# ---- what a save may replace -----------------------------------------------------------------
def test_device_target_is_refused_before_anything_is_written(tmp_path):
    before = os.stat("/dev/null")
    with pytest.raises(FormatError, match="character device") as err:
        save(network(), "/dev/null")
    one_line(err.value)
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino and not leftovers(Path("/dev"))


def test_fifo_target_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "pipe.nsm"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match=r"FIFO \(named pipe\)"):
        save(network(), fifo)  # opening a FIFO for writing would block: refusing cannot hang
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and leftovers(tmp_path) == []


def test_directory_target_and_trailing_slash(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(FormatError, match="it is a directory .give a file name inside it."):
        save(network(), tmp_path / "d")
    with pytest.raises(FormatError, match="cannot end with '/'"):
        save(network(), f"{tmp_path}/new/")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_missing_or_non_directory_parent(tmp_path):
    with pytest.raises(FormatError, match="directory .*no does not exist .create it first."):
        save(network(), tmp_path / "no" / "m.nsm")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FormatError, match="file is not a directory"):
        save(network(), tmp_path / "file" / "m.nsm")


def test_symlink_is_written_through(tmp_path):
    real = tmp_path / "store" / "m.nsm"
    real.parent.mkdir()
    save(network(1.0), real)
    old_inode = real.stat().st_ino
    link = tmp_path / "current.nsm"
    link.symlink_to(Path("store") / "m.nsm")  # relative, as people make them
    save(network(2.0), link)
    assert link.is_symlink() and os.readlink(link) == str(Path("store") / "m.nsm")
    assert real.stat().st_ino != old_inode  # replaced by a rename, not rewritten in place
    np.testing.assert_array_equal(load(real).node("W").value, network(2.0).node("W").value)
    assert leftovers(tmp_path) == [] and leftovers(real.parent) == []


def test_dangling_symlink_creates_its_target_and_loops_are_errors(tmp_path):
    link = tmp_path / "out.nsm"
    link.symlink_to(tmp_path / "made.nsm")
    save(network(), link)
    assert link.is_symlink() and (tmp_path / "made.nsm").is_file()
    loop = tmp_path / "loop.nsm"
    loop.symlink_to(loop)
    with pytest.raises(FormatError, match="cannot write .*loop.nsm.*symbolic links") as err:
        save(network(), loop)
    one_line(err.value)


def test_symlink_to_a_device_is_refused(tmp_path):
    link = tmp_path / "null.nsm"
    link.symlink_to("/dev/null")
    with pytest.raises(FormatError, match=r"null.nsm \(a link to /dev/null\): it is a character"):
        save(network(), link)
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_read_only_file_is_not_replaced(tmp_path, monkeypatch):
    path = tmp_path / "m.nsm"
    save(network(), path)
    path.chmod(0o444)
    if IS_ROOT:  # root passes every access check: answer as the kernel would for a user
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == path
                            and mode & os.W_OK else real_access(p, mode, **k))
    before = path.read_bytes()
    with pytest.raises(FormatError, match="the file is read-only"):
        save(network(2.0), path)
    assert path.read_bytes() == before


# ---- permissions -------------------------------------------------------------------------------
@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_new_files_get_mode_from_the_umask(tmp_path, umask, mask):
    umask(mask)
    save(network(), tmp_path / "m.nsm")
    cntk.write(network(), tmp_path / "m.dnn")
    with atomic_write(tmp_path / "t.txt") as f:
        f.write(b"text")
    for name in ("m.nsm", "m.dnn", "t.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name


def test_in_place_save_keeps_the_mode(tmp_path, umask):
    umask(0o077)
    path = tmp_path / "m.nsm"
    save(network(), path)
    path.chmod(0o644)
    save(network(2.0), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o640)
    cntk.write(network(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# ---- durability ----------------------------------------------------------------------------
def test_file_is_fsynced_before_the_rename_and_directory_after(tmp_path, monkeypatch):
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append(f"fsync {kind}")
        return real_fsync(fd)

    def replace(src, dst, *a, **k):
        calls.append("replace")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save(network(), tmp_path / "m.nsm")
    assert calls == ["fsync file", "replace", "fsync dir"]


def test_directory_fsync_is_skipped_where_unsupported(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    save(network(), tmp_path / "m.nsm")
    assert load(tmp_path / "m.nsm").node("W").shape == (4, 3)


# ---- fault injection -------------------------------------------------------------------------
_STEPS = ("open", "chmod", "write", "fsync", "close", "replace")


class Faults:
    """Wrap the os calls a save makes on files under ``root``; fail call number ``fail_at``."""

    def __init__(self, monkeypatch, root: Path, fail_at: int | None = None,
                 code: int = errno.ENOSPC) -> None:
        self.root, self.fail_at, self.code = str(root), fail_at, code
        self.fds: set[int] = set()
        self.trace: list[str] = []
        for name in _STEPS:
            monkeypatch.setattr(os, name, self._wrap(name, getattr(os, name)))

    def _ours(self, name: str, args) -> bool:
        if name in ("open", "replace"):
            return os.fsdecode(args[0]).startswith(self.root)
        return args[0] in self.fds

    def _wrap(self, name, real):
        def call(*args, **kwargs):
            if not self._ours(name, args):
                return real(*args, **kwargs)
            step = len(self.trace)
            self.trace.append(name)
            if step == self.fail_at:
                if name == "close":  # Linux releases the fd even when close reports an error
                    real(*args, **kwargs)
                    self.fds.discard(args[0])
                raise OSError(self.code, os.strerror(self.code))
            result = real(*args, **kwargs)
            if name == "open":
                self.fds.add(result)
            elif name == "close":
                self.fds.discard(args[0])
            return result

        return call


def _save_native(path):
    save(network(2.0), path)


def _save_cntk(path):
    cntk.write(network(2.0), path)


def _save_text(path):
    from netsurgeon.commands._common import write_text

    write_text("new text\n" * 1000, str(path))


def _save_big(path):  # 4 MB of weights: several writes, past the 1 MB buffer
    net = Network("big")
    net.add_parameter("W", np.ones((1000, 1000), np.float32))
    save(net, path)


WRITERS = {"native": (_save_native, "m.nsm"), "cntk": (_save_cntk, "m.dnn"),
           "text": (_save_text, "d.txt"), "native-big": (_save_big, "big.nsm")}


def _trace(tmp_path, monkeypatch, writer) -> list[str]:
    save_fn, name = WRITERS[writer]
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / name).write_bytes(b"old")
    with monkeypatch.context() as m:
        faults = Faults(m, probe)
        save_fn(probe / name)
    return faults.trace


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_failure_at_every_step_keeps_the_old_file(tmp_path, monkeypatch, writer, code):
    save_fn, name = WRITERS[writer]
    trace = _trace(tmp_path, monkeypatch, writer)
    assert trace[0] == "open" and "fsync" in trace and "replace" in trace and trace[-1] == "close"
    assert writer != "native-big" or trace.count("write") >= 2
    commit = trace.index("replace")
    reason = os.strerror(code)
    for step, call in enumerate(trace):
        d = tmp_path / f"step{step}"
        d.mkdir()
        target = d / name
        target.write_bytes(b"old")
        with monkeypatch.context() as m:
            Faults(m, d, fail_at=step, code=code)
            with pytest.raises(FormatError) as err:
                save_fn(target)
        text = one_line(err.value)
        assert str(target) in text and reason[1:].lower() in text, (step, call, text)
        assert leftovers(d) == [], (step, call)
        if step <= commit:  # up to and including the rename: the old file, untouched
            assert target.read_bytes() == b"old", (step, call)
        else:  # syncing the directory after the rename: the new file, complete, and said so
            assert "was written, but syncing its directory failed" in text
            assert target.read_bytes() != b"old"
            if writer != "text":
                load(target)


def test_interrupt_mid_write_leaves_nothing(tmp_path):
    path = tmp_path / "m.nsm"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_write(path) as f:
        f.write(b"partial")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_errors_from_the_producer_pass_through_unchanged(tmp_path):
    path = tmp_path / "m.nsm"
    with pytest.raises(ValueError, match="mine"), atomic_write(path):
        raise ValueError("mine")
    assert list(tmp_path.iterdir()) == []


# ---- temp file names, stale ones ---------------------------------------------------------------
def test_temp_names_are_recognisable_and_bounded():
    name = temp_name("model.nsm")
    target, host, pid = parse_temp_name(name)
    assert name.startswith(".model.nsm.netsurgeon-tmp-") and (target, pid) == ("model.nsm",
                                                                                os.getpid())
    long = temp_name("é" * 200 + ".nsm")
    assert len(long.encode()) <= 255 and parse_temp_name(long)
    for other in ("model.nsm", ".model.nsm.tmp", ".m.netsurgeon-tmp-h-12-short", ".x.nsm.mel-1"):
        assert parse_temp_name(other) is None


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fake_temp(directory: Path, target: str, pid: int, host: str | None = None,
               age_s: float = 0.0) -> Path:
    host = host or _atomic._HOST
    path = directory / f".{target}{_atomic.TEMP_MARK}{host}-{pid}-abcd1234"
    path.write_bytes(b"x" * 100)
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return path


def test_a_save_removes_stale_temp_files_of_its_target(tmp_path):
    dead = _fake_temp(tmp_path, "m.nsm", _dead_pid())
    live = _fake_temp(tmp_path, "m.nsm", os.getpid())
    old = _fake_temp(tmp_path, "m.nsm", os.getpid(), host="elsewhere", age_s=25 * 3600)
    remote = _fake_temp(tmp_path, "m.nsm", _dead_pid(), host="elsewhere")
    other = _fake_temp(tmp_path, "other.nsm", _dead_pid())
    save(network(), tmp_path / "m.nsm")
    assert not dead.exists() and not old.exists()
    assert live.exists() and remote.exists() and other.exists()  # in use / not judged here
    assert is_stale(other) and not is_stale(live) and not is_stale(remote)


def test_a_reused_pid_does_not_keep_a_temp_file_alive(tmp_path):
    if not Path(f"/proc/{os.getpid()}/stat").exists():
        pytest.skip("needs /proc")
    started = _atomic._process_start(os.getpid())
    stale = _fake_temp(tmp_path, "m.nsm", os.getpid())
    os.utime(stale, (started - 60, started - 60))  # written before this process existed
    assert is_stale(stale)


_SLOW_SAVE = """
import sys, time
from netsurgeon.formats._atomic import atomic_write
with atomic_write(sys.argv[1]) as f:
    f.write(b"n" * (1 << 20)); f.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def test_kill_9_during_a_save_then_cleanup(tmp_path):
    target = tmp_path / "m.nsm"
    target.write_bytes(b"old")
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(target)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        (left,) = leftovers(tmp_path)
        assert not is_stale(tmp_path / left)  # its process is running: kept
        run = subprocess.run([sys.executable, "-m", "netsurgeon", "cleanup", str(tmp_path)],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and "kept" in run.stdout and leftovers(tmp_path) == [left]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == [left]
    dry = subprocess.run([sys.executable, "-m", "netsurgeon", "cleanup", "-n", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert "would remove" in dry.stdout and leftovers(tmp_path) == [left]
    run = subprocess.run([sys.executable, "-m", "netsurgeon", "cleanup", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "removed 1 stale temporary file (1.0 MB)" in run.stdout
    assert leftovers(tmp_path) == [] and target.read_bytes() == b"old"


def test_memory_mapped_source_survives_an_in_place_save(tmp_path):
    path = tmp_path / "m.nsm"
    save(network(1.0), path)
    mapped = native.load(path)
    save(network(3.0), path)
    np.testing.assert_array_equal(mapped.node("W").value, network(1.0).node("W").value)
    np.testing.assert_array_equal(load(path).node("W").value, network(3.0).node("W").value)


def test_existing_file_on_a_read_only_mount_says_so(tmp_path, monkeypatch):
    path = tmp_path / "m.nsm"
    path.write_bytes(b"old")
    real_statvfs = os.statvfs

    class ReadOnly:
        def __init__(self, st):
            self.f_flag = st.f_flag | os.ST_RDONLY

    monkeypatch.setattr(os, "access", lambda p, mode, **k: not mode & os.W_OK)
    monkeypatch.setattr(os, "statvfs", lambda p: ReadOnly(real_statvfs(p)))
    with pytest.raises(FormatError, match="m.nsm: read-only file system .the file system is"):
        save(network(), path)
    assert path.read_bytes() == b"old"
