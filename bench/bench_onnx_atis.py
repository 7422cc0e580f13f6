"""The ATIS slot tagger exported to ONNX, on the whole ATIS test set in onnxruntime.

``slu.forward.nobn.cmf`` (embedding + LSTM: the recurrent loop is one ONNX ``Scan``) exported
with ``netsurgeon.formats.onnx.save(net, path, keep_criteria=True)`` (outputs ``z``, ``ce``,
``errs``) and run in onnxruntime on all 893 sequences (10,984 words) of ``atis.test.ctf``, in
minibatches of many variable-length sequences: the CTF reader's minibatches of up to
``--minibatch`` words (default 2000: 6 minibatches of 69-188 sequences), fed as padded
``(batch, time, 943)`` one-hot ``query`` (stream S0), ``(batch, time, 129)`` ``slotLabels``
(S2) and ``lengths``.

Slot errors are counted two ways: the sum of the exported ``errs`` node (CNTK's
ErrorPrediction summed over the real words of the minibatch, as netsurgeon's evaluation and
CNTK count it) and the words whose argmax of ``z`` differs from the label's. CNTK 2.7: 321
of 10,984 (2.92 %). The same minibatches also run in netsurgeon's own runtime (``Evaluator``,
sparse inputs as the reader gives them) for the time ratio. Inputs are prepared before
timing; times are the best of ``--repeat`` passes over the whole set, onnxruntime with
``--threads`` intra-op threads and torch with as many.

Run: .venv/bin/python bench/bench_onnx_atis.py [--minibatch 2000] [--threads 2] [--repeat 3]
     [--cntk DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from netsurgeon import formats
from netsurgeon.runtime import Evaluator
from netsurgeon.runtime.readers import CTFReader, streams_for

ROOT = Path(__file__).resolve().parents[1]
CNTK = ROOT.parent / "shared" / "cntk"
MAPPING = {"query": "S0", "slotLabels": "S2"}


def feeds(mb) -> dict[str, np.ndarray]:
    """onnxruntime inputs of one minibatch: padded dense one-hots plus ``lengths``."""
    out = {k: v.to_dense().reshape(mb.batch, mb.steps, -1) for k, v in mb.streams.items()}
    out["lengths"] = mb.lengths.astype(np.int64)
    return out


def count_errors(sess: ort.InferenceSession, batches: list) -> tuple[int, int, int]:
    """(sum of ``errs``, words whose argmax of ``z`` is not the label, words)."""
    errs = argmax = words = 0
    for mb, f in batches:
        z, e = sess.run(["z", "errs"], f)
        real = np.arange(mb.steps)[None, :] < mb.lengths[:, None]
        errs += int(round(float(e[0])))
        argmax += int((z.argmax(-1) != f["slotLabels"].argmax(-1))[real].sum())
        words += int(real.sum())
    return errs, argmax, words


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minibatch", type=int, default=2000, help="words per minibatch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cntk", type=Path, default=CNTK)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = formats.load(args.cntk / "models/slu.forward.nobn.cmf")
    specs = streams_for(net, MAPPING, list(MAPPING))
    mbs = list(CTFReader(args.cntk / "data/atis.test.ctf", specs, args.minibatch))
    batches = [(mb, feeds(mb)) for mb in mbs]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slu.onnx"
        t0 = time.perf_counter()
        formats.onnx.save(net, path, keep_criteria=True)
        t_export = time.perf_counter() - t0
        sess = session(path, args.threads)
        errs, argmax, words = count_errors(sess, batches)
        t_ort = _best(lambda: [sess.run(["z", "errs"], f) for _, f in batches], args.repeat)
    ev = Evaluator(net, ["z", "errs"])
    ours = sum(int(round(float(ev.run(mb)["errs"].sum()))) for mb in mbs)  # also warms up
    t_ours = _best(lambda: [ev.run(mb) for mb in mbs], args.repeat)
    sizes = [mb.batch for mb in mbs]
    print(f"atis.test.ctf: {sum(sizes)} sequences, {words} words, {len(mbs)} minibatches of "
          f"{min(sizes)}-{max(sizes)} sequences (up to {args.minibatch} words); "
          f"export {t_export:.2f} s")
    print(f"onnxruntime: errs {errs}, argmax errors {argmax} / {words} "
          f"({100 * errs / words:.2f} %)   CNTK 2.7: 321 / 10984   "
          f"{'OK' if errs == argmax == 321 else 'MISMATCH'}")
    print(f"netsurgeon runtime: errs {ours}")
    print(f"time for the whole set ({args.threads} threads): onnxruntime {t_ort:.3f} s   "
          f"netsurgeon {t_ours:.3f} s   ratio netsurgeon/onnxruntime {t_ours / t_ort:.2f}")


if __name__ == "__main__":
    main()
