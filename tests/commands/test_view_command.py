"""``netsurgeon view``: the model served by Netron (``--no-browser`` on a free port), fetched
with urllib; a native model is exported to ONNX first; a missing netron is one line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from tests.commands.helpers import one_error

from netsurgeon.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _serve(model: Path) -> tuple[subprocess.Popen, str, str]:
    """Start ``netsurgeon view MODEL --no-browser``; returns the process, the URL and the
    name of the file served."""
    pytest.importorskip("netron", reason="netsurgeon view needs netron")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "netsurgeon", "view", str(model),
                             "--no-browser", "--port", str(_free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    m = re.search(r"in Netron at (http://\S+) \(Ctrl-C to stop\)", line)
    if not m:
        proc.kill()
        pytest.fail(f"no address printed: {line!r} {proc.stderr.read()}")
    page = urllib.request.urlopen(m[1] + "/", timeout=10).read().decode()
    served = re.search(r'<meta name="file" content="/data/([^"]+)">', page)[1]
    return proc, m[1], served


def _stop(proc: subprocess.Popen, sig=signal.SIGINT) -> None:
    proc.send_signal(sig)
    assert proc.wait(timeout=10) == 0
    assert "stopped" in proc.stderr.read()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_cntk_file_is_served_as_it_is(cntk_dir, sig):
    model = cntk_dir / "models" / "MC.dnn"
    proc, url, served = _serve(model)
    try:
        assert served == "MC.dnn"
        data = urllib.request.urlopen(f"{url}/data/{served}", timeout=10).read()
        assert data == model.read_bytes()
        assert b"netron" in urllib.request.urlopen(url + "/index.html", timeout=10).read()
    finally:
        _stop(proc, sig)


def test_a_native_model_is_exported_to_onnx(cntk_dir, tmp_path):
    import onnx

    assert main(["convert", str(cntk_dir / "models" / "MC.dnn"), str(tmp_path / "mc.nsm")]) == 0
    proc, url, served = _serve(tmp_path / "mc.nsm")
    try:
        assert served == "mc.onnx"
        data = urllib.request.urlopen(f"{url}/data/{served}", timeout=10).read()
        names = {n.name for n in onnx.load_from_string(data).graph.output}
        assert "z" in names
    finally:
        _stop(proc)


def test_netron_missing_is_one_line(cntk_dir, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "netron", None)  # import netron raises ImportError
    assert main(["view", str(cntk_dir / "models" / "MC.dnn"), "--no-browser"]) == 1
    assert one_error(capsys.readouterr().err) == (
        "netsurgeon view needs Netron: pip install 'netsurgeon[view]' (or pip install netron)")


def test_netron_file_copies_a_wrong_extension_and_falls_back_to_cntk(cntk_dir, tmp_path):
    from netsurgeon.commands.view import netron_file

    odd = tmp_path / "mc.bin"
    odd.write_bytes((cntk_dir / "models" / "MC.dnn").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    assert netron_file(str(odd), str(out)) == str(out / "mc.dnn")
    # an NDL network whose Mean/InvStdDev have no values yet cannot go to ONNX: CNTK v1
    ndl = tmp_path / "mvn.ndl"
    ndl.write_text("f = InputValue(3, tag=\"feature\")\nm = Mean(f)\ns = InvStdDev(f)\n"
                   "n = PerDimMeanVarNormalization(f, m, s)\nOutputNodes = (n)\n")
    assert netron_file(str(ndl), str(out)) == str(out / "mvn.dnn")
