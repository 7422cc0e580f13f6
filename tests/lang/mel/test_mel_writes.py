"""MEL's staged writes (lang/mel/_writes.py): a failing script writes nothing at all. Every
target is checked when its save runs and again before the first rename; a rename that still
fails rolls back the ones already made (the previous files restored). Staged files are named
like every netsurgeon temp file, so ``netsurgeon cleanup`` finds a killed run's leftovers."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mel_helpers import go, rbff_network

from netsurgeon import formats
from netsurgeon.errors import FormatError, NetsurgeonError
from netsurgeon.formats._atomic import is_stale, parse_temp_name
from netsurgeon.lang.mel._writes import StagedWriter

ROOT = Path(__file__).resolve().parents[3]



def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if parse_temp_name(p.name))


def files(directory: Path) -> dict[str, bytes]:
    """The user's files (not temp files) and their bytes."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())
            if p.is_file() and not parse_temp_name(p.name)}


TWO_SAVES = 'm = LoadModel("$D/m.nsm")\nSaveModel(m, "$D/a.nsm")\nSaveModel(m, "$D/b.nsm")\n'


# ---- the case: the second target is a directory ------------------------------------
def test_second_target_a_directory_writes_neither_file_through_the_cli(model, tmp_path):
    (tmp_path / "a.nsm").write_bytes(b"old a")
    (tmp_path / "b.nsm").mkdir()
    script = tmp_path / "two.mel"
    script.write_text(TWO_SAVES.replace("$D", str(tmp_path)))
    before = files(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "netsurgeon", "edit", str(script)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"netsurgeon: error: {script}:3:")  # the failing SaveModel
    assert "b.nsm: it is a directory" in line and "Traceback" not in proc.stderr
    assert files(tmp_path) == before and temps(tmp_path) == []


def test_a_new_first_target_is_not_created_either(model, tmp_path):
    (tmp_path / "b.nsm").mkdir()
    with pytest.raises(FormatError, match="it is a directory"):
        go(TWO_SAVES, tmp_path)
    assert not (tmp_path / "a.nsm").exists() and temps(tmp_path) == []


def test_dry_run_checks_targets_too(model, tmp_path):
    (tmp_path / "b.nsm").mkdir()
    with pytest.raises(FormatError, match="it is a directory"):
        go(TWO_SAVES, tmp_path, dry_run=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.nsm", "m.nsm"]


def test_device_and_fifo_targets_are_refused_at_the_statement(model, tmp_path):
    os.mkfifo(tmp_path / "p.nsm")
    with pytest.raises(FormatError, match=r":2:.*FIFO"):
        go('m = LoadModel("$D/m.nsm")\nSaveModel(m, "$D/p.nsm")', tmp_path)
    with pytest.raises(FormatError, match=r":2:.*character device"):
        go('m = LoadModel("$D/m.nsm")\nDump(m, "/dev/null")', tmp_path)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and temps(tmp_path) == []


# ---- failures at commit time: all or nothing -------------------------------------------------
def test_target_turned_into_a_directory_before_commit(model, tmp_path):
    (tmp_path / "a.nsm").write_bytes(b"old a")
    writer = StagedWriter()
    net = formats.load(model)
    for name in ("a.nsm", "b.nsm"):
        writer.write(str(tmp_path / name), lambda real: formats.save(net, real))
    (tmp_path / "b.nsm").mkdir()  # someone else made it meanwhile
    with pytest.raises(FormatError, match="b.nsm: it is a directory"):
        writer.commit()
    assert (tmp_path / "a.nsm").read_bytes() == b"old a" and temps(tmp_path) == []


class CommitFaults:
    """Fail the os call number ``fail_at`` (counting calls on paths under ``root``)."""

    NAMES = ("link", "chmod", "replace", "open", "fsync", "close")

    def __init__(self, monkeypatch, root: Path, fail_at=None, code=errno.EIO, also=()):
        self.root, self.fail_at, self.code, self.also = str(root), fail_at, code, set(also)
        self.trace: list[str] = []
        self.fds: set[int] = set()
        for name in self.NAMES:
            monkeypatch.setattr(os, name, self._wrap(name, getattr(os, name)))

    def _wrap(self, name, real):
        def call(*args, **kwargs):
            first = args[0]
            ours = (first in self.fds) if isinstance(first, int) else \
                os.fsdecode(first).startswith(self.root)
            if not ours:
                return real(*args, **kwargs)
            step = len(self.trace)
            self.trace.append(name)
            if step == self.fail_at or step in self.also:
                raise OSError(self.code, os.strerror(self.code))
            result = real(*args, **kwargs)
            if name == "open":
                self.fds.add(result)
            return result

        return call


def _staged_pair(tmp_path, model):
    """A writer with a.nsm (replacing an old file) and b.nsm, c.txt (new) staged."""
    (tmp_path / "a.nsm").write_bytes(b"old a")
    writer = StagedWriter()
    net = formats.load(model)
    writer.write(str(tmp_path / "a.nsm"), lambda real: formats.save(net, real))
    writer.write(str(tmp_path / "b.nsm"), lambda real: formats.save(net, real))
    writer.write(str(tmp_path / "c.txt"), lambda real: Path(real).write_text("dump"))
    return writer


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_a_failure_at_every_step_of_the_commit_is_all_or_nothing(model, tmp_path, monkeypatch,
                                                                   code):
    probe = tmp_path / "probe"
    probe.mkdir()
    writer = _staged_pair(probe, model)
    with monkeypatch.context() as m:
        faults = CommitFaults(m, probe)
        writer.commit()
    trace = faults.trace
    assert trace.count("replace") == 3 and "fsync" in trace
    last_rename = len(trace) - 1 - trace[::-1].index("replace")
    for step, call in enumerate(trace):
        d = tmp_path / f"step{step}"
        d.mkdir()
        formats.save(rbff_network(), d / "m.nsm")
        writer = _staged_pair(d, d / "m.nsm")
        before = files(d)
        with monkeypatch.context() as m:
            CommitFaults(m, d, fail_at=step, code=code)
            with pytest.raises(FormatError) as err:
                writer.commit()
        text = str(err.value)
        assert "\n" not in text and os.strerror(code)[1:].lower() in text, (step, call)
        assert temps(d) == [], (step, call, temps(d))
        if step <= last_rename:
            assert files(d) == before, (step, call)
            assert "nothing was written" in text
        else:  # syncing directories once every file is in place
            assert (d / "c.txt").read_text() == "dump" and "syncing directory" in text


def test_rollback_restores_the_previous_file_and_removes_new_ones(model, tmp_path, monkeypatch):
    writer = _staged_pair(tmp_path, model)
    replaced = []
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst).name == "c.txt":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        replaced.append(Path(dst).name)
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(FormatError, match=r"c.txt: read-only file system; nothing was written"):
        writer.commit()
    assert replaced[:2] == ["a.nsm", "b.nsm"]  # both were in place, then rolled back
    assert (tmp_path / "a.nsm").read_bytes() == b"old a" and not (tmp_path / "b.nsm").exists()
    assert temps(tmp_path) == []


def test_ctrl_c_during_the_renames_rolls_back(model, tmp_path, monkeypatch):
    writer = _staged_pair(tmp_path, model)
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst).name == "b.nsm":
            raise KeyboardInterrupt
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        writer.commit()
    assert (tmp_path / "a.nsm").read_bytes() == b"old a" and not (tmp_path / "b.nsm").exists()
    assert temps(tmp_path) == []


def test_without_hard_links_the_previous_file_is_copied_for_the_rollback(model, tmp_path,
                                                                         monkeypatch):
    writer = _staged_pair(tmp_path, model)
    real_replace = os.replace

    def no_link(*a, **k):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    def replace(src, dst, *a, **k):
        if Path(dst).name == "c.txt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(FormatError, match="no space left on device; nothing was written"):
        writer.commit()
    assert (tmp_path / "a.nsm").read_bytes() == b"old a" and temps(tmp_path) == []


def test_a_rollback_that_fails_says_where_the_previous_file_is(model, tmp_path, monkeypatch):
    writer = _staged_pair(tmp_path, model)
    real_replace = os.replace
    calls = []

    def replace(src, dst, *a, **k):
        calls.append(Path(dst).name)
        if Path(dst).name == "c.txt" or (len(calls) > 3 and Path(dst).name == "a.nsm"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(FormatError, match="could not restore .*a.nsm.*previous file is kept as"
                       ) as err:
        writer.commit()
    kept = str(err.value).split("kept as ")[1].rstrip(")").split(")")[0]
    assert Path(kept).read_bytes() == b"old a"  # nothing lost: the old bytes are still there


# ---- modes, links, repeated saves, kill -9 -------------------------------------------------
def test_mel_save_modes(model, tmp_path):
    (tmp_path / "a.nsm").write_bytes(b"old")
    (tmp_path / "a.nsm").chmod(0o640)
    old = os.umask(0o027)
    try:
        go(TWO_SAVES, tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.nsm").stat().st_mode) == 0o640  # kept
    assert stat.S_IMODE((tmp_path / "b.nsm").stat().st_mode) == 0o640  # 0666 & ~027


def test_mel_save_through_a_symlink_and_read_back_staged(model, tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "real.nsm").write_bytes(b"old")
    (tmp_path / "link.nsm").symlink_to("store/real.nsm")
    r = go('m = LoadModel("$D/m.nsm")\nSaveModel(m, "$D/link.nsm")\n'
           'n = LoadModel("$D/store/real.nsm")\nk = LoadModel("$D/link.nsm")', tmp_path)
    assert (tmp_path / "link.nsm").is_symlink()
    assert len(formats.load(tmp_path / "store" / "real.nsm")) == len(r["n"]) == len(r["k"])
    assert r.written == [str(tmp_path / "link.nsm")]
    assert temps(tmp_path) == [] and temps(tmp_path / "store") == []


def test_saving_a_target_twice_keeps_one_staged_file(model, tmp_path):
    writer = StagedWriter()
    net = formats.load(model)
    target = str(tmp_path / "a.txt")
    writer.write(target, lambda real: Path(real).write_text("first"))
    writer.write(target, lambda real: Path(real).write_text("second"))
    assert len(temps(tmp_path)) == 1 and Path(writer.resolve(target)).read_text() == "second"
    assert writer.commit() == [target] and Path(target).read_text() == "second"
    del net


_KILLED_MEL = """
import sys, time
from pathlib import Path
from netsurgeon.lang.mel._writes import StagedWriter
w = StagedWriter()
w.write(sys.argv[1], lambda real: Path(real).write_bytes(b"x" * 1000))
print("staged", flush=True)
time.sleep(600)
"""


def test_kill_9_during_a_script_leaves_only_cleanable_files(tmp_path):
    target = tmp_path / "out.nsm"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_MEL, str(target)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "staged"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    (left,) = temps(tmp_path)
    assert is_stale(tmp_path / left) and not target.exists()
    formats.save(rbff_network(), target)  # the next save of that target removes it
    assert temps(tmp_path) == []


def test_failing_statement_after_saves_removes_staged_files(model, tmp_path):
    with pytest.raises(NetsurgeonError, match=":4:"):
        go(TWO_SAVES + "Remove(nope)", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nsm"]


def test_python_editor_save_errors_are_one_line(model, tmp_path):
    from netsurgeon.lang.mel import Editor

    ed = Editor()
    ed.load(str(model), "m")
    with pytest.raises(FormatError, match="directory .*nope does not exist"):
        ed.save(str(tmp_path / "nope" / "x.nsm"))
    ed.save(str(tmp_path / "x.nsm"))
    assert np.array_equal(formats.load(tmp_path / "x.nsm").node("L1.BFF.W").value,
                          formats.load(model).node("L1.BFF.W").value)
