"""``netsurgeon view MODEL [--port N] [--host H] [--no-browser]``: the model in Netron.

Netron (the ``netron`` package, ``pip install 'netsurgeon[view]'``) reads CNTK v1 (``.dnn``,
``.cmf``), CNTK 2.x (``.model``) and ONNX files itself; they are served as they are (copied to
a temporary name with the extension Netron expects when theirs is another). A native
``.nsm`` model or an ``.ndl`` network is exported to ONNX in a temporary directory first
(criteria included when the exporter can, else without them, else as a CNTK v1 file). The
server runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netsurgeon.commands._common import add_format_option
from netsurgeon.errors import NetsurgeonError

__all__ = ["configure", "run", "netron_file"]

# what Netron recognises, by the format netsurgeon detects
_NETRON_SUFFIXES = {"cntk": (".dnn", ".cmf", ".model", ".cntk"),
                    "cntk-v2": (".model", ".cntk", ".dnn", ".cmf"), "onnx": (".onnx",)}


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (0 to 65535)")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon view``."""
    parser.add_argument("model", help="model file (native, CNTK v1/v2, ONNX) or an .ndl file")
    parser.add_argument("--port", type=_port, default=None,
                        help="port to serve on (default: 8080, 8081 or a free one)")
    parser.add_argument("--host", default="localhost",
                        help="address to serve on (default localhost)")
    parser.add_argument("--no-browser", action="store_true",
                        help="only serve the model; print the address to open")
    add_format_option(parser)


def netron_file(model: str, directory: str, fmt: str | None = None) -> str:
    """A file Netron can open for ``model``: the model itself, or a copy/ONNX export of it in
    ``directory``. Raises NetsurgeonError (one line) when no form can be made."""
    import shutil

    from netsurgeon.formats import detect_format

    path = Path(model)
    if path.suffix.lower() != ".ndl":
        kind = detect_format(path) if fmt is None else fmt
        suffixes = _NETRON_SUFFIXES.get(kind)
        if suffixes is not None:
            if path.suffix.lower() in suffixes:
                return str(path)
            copy = Path(directory) / (path.stem + suffixes[0])
            shutil.copyfile(path, copy)
            return str(copy)
    from netsurgeon.commands._model import load_model
    from netsurgeon.formats import save

    net = load_model(model, fmt)
    net.validate()
    target = Path(directory) / (path.stem + ".onnx")
    first: NetsurgeonError | None = None
    for keep in (True, False):
        try:
            save(net, target, format="onnx", keep_criteria=keep)
            return str(target)
        except NetsurgeonError as exc:
            first = first or exc
    try:
        dnn = Path(directory) / (path.stem + ".dnn")
        save(net, dnn, format="cntk")
        return str(dnn)
    except NetsurgeonError:
        pass
    raise NetsurgeonError(f"cannot show {model} in Netron: {first.message if first else ''}",
                          hint=f"netsurgeon plot {model} -o graph.svg draws it")


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon view``; returns the exit status (0 after Ctrl-C)."""
    import logging
    import tempfile
    import time

    try:
        import netron
    except ImportError:
        raise NetsurgeonError("netsurgeon view needs Netron: pip install 'netsurgeon[view]' "
                              "(or pip install netron)") from None
    logging.getLogger("netron").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="netsurgeon-view-") as tmp:
        served = netron_file(args.model, tmp, args.format)
        try:
            address = netron.start(served, address=(args.host, args.port),
                                   browse=not args.no_browser)
        except OSError as exc:
            raise NetsurgeonError(f"cannot serve on {args.host}:{args.port}: "
                                  f"{exc.strerror or exc}",
                                  hint="choose another --port") from None
        url = f"http://{address[0]}:{address[1]}"
        shown = "" if served == args.model else f" (as {Path(served).name})"
        print(f"serving {args.model}{shown} in Netron at {url} (Ctrl-C to stop)", flush=True)
        previous = _stop_on_sigterm()
        try:
            while netron.status(address):
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            netron.stop(address)
            if previous is not None:
                import signal

                signal.signal(signal.SIGTERM, previous)
    print("stopped", file=sys.stderr)
    return 0


def _stop_on_sigterm():
    """Make SIGTERM stop the server like Ctrl-C (so the temporary files go); returns the
    handler it replaced, or None when signals cannot be set here (not the main thread)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)
