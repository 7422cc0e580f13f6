"""The ONNX backend test suite that ships inside the ``onnx`` package, run through netsurgeon.

Every case is imported with netsurgeon's ONNX reader and evaluated with the torch runtime
(``netsurgeon.runtime.onnx_backend``); the outputs are compared with the case's stored
outputs at the case's own tolerances (values only: the runtime computes in float32, so an
int64 or bool output that holds the right values counts as a pass). Kinds:
  * node: the cases ``onnx.backend.test.case.node`` generates (one per op variant);
  * simple, pytorch-converted, pytorch-operator: the small stored models;
  * light: the model-zoo networks with constant weights (AlexNet, DenseNet-121, Inception
    v1/v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512) on the runner's dummy input.
A case is *unsupported* when the import refuses it with a one-line error naming an op (or an
input/attribute form) it does not take, *failed* when it imports but computes other values or
raises anything else, and a *crash* when the exception is not a netsurgeon error.

Run: .venv/bin/python bench/onnx_backend_report.py [--kind node ...] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

KINDS = ("node", "simple", "pytorch-converted", "pytorch-operator", "light")
CASE_TIMEOUT_S = 60


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    unsupported: int = 0
    crashed: int = 0
    reasons: collections.Counter = field(default_factory=collections.Counter)

    def add(self, outcome: str, reason: str = "") -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if reason:
            self.reasons[reason] += 1

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.unsupported + self.crashed


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _cases(kind: str):
    """(name, op, model, [(inputs, outputs)], rtol, atol) for every case of ``kind``."""
    import onnx
    from onnx import numpy_helper
    from onnx.backend.test import loader

    if kind == "node":
        from onnx.backend.test.case import node

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cases = node.collect_testcases(None)
        single = {c.name: c.model.graph.node[0].op_type for c in cases
                  if len(c.model.graph.node) == 1}
        for c in cases:
            base = c.name.split("_expanded")[0]
            op = single.get(base) or (c.model.graph.node[0].op_type
                                      if len(c.model.graph.node) == 1 else base)
            sets = [([_array(x) for x in ins], [_array(y) for y in outs])
                    for ins, outs in c.data_sets]
            yield c.name, op, c.model, sets, c.rtol, c.atol
        return
    if kind == "light":
        from onnx.backend.test.runner import Runner

        root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
        for file in sorted(os.listdir(root)):
            if not file.endswith(".onnx"):
                continue
            model = onnx.load(os.path.join(root, file))
            inits = {i.name for i in model.graph.initializer}
            inputs = [Runner.generate_dummy_data(x, seed=0, name=file, random=False)
                      for x in model.graph.input if x.name not in inits]
            outputs = []
            for i in range(len(model.graph.output)):
                t = onnx.TensorProto()
                with open(os.path.join(root, f"{file[:-5]}_output_{i}.pb"), "rb") as f:
                    t.ParseFromString(f.read())
                outputs.append(numpy_helper.to_array(t))
            yield file[:-5], file[6:-5], model, [(inputs, outputs)], 1e-3, 1e-7
        return
    for case in loader.load_model_tests(kind=kind):
        model = onnx.load(os.path.join(case.model_dir, "model.onnx"))
        sets = []
        for d in sorted(os.listdir(case.model_dir)):
            if not d.startswith("test_data_set"):
                continue
            path = os.path.join(case.model_dir, d)
            ins = [_read_pb(os.path.join(path, f)) for f in sorted(os.listdir(path))
                   if f.startswith("input")]
            outs = [_read_pb(os.path.join(path, f)) for f in sorted(os.listdir(path))
                    if f.startswith("output")]
            sets.append((ins, outs))
        yield case.name, kind, model, sets, case.rtol, case.atol


def _array(value):
    """A case's input or output as numpy (some cases store TensorProtos)."""
    import onnx
    from onnx import numpy_helper

    return numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value


def _read_pb(path: str):
    import onnx
    from onnx import numpy_helper

    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def _same(got, want, rtol: float, atol: float) -> bool:
    want = np.asarray(want)
    got = np.asarray(got)
    if want.dtype.kind not in "biuf":
        return False
    if got.size != want.size:
        return False
    got = got.reshape(want.shape).astype(np.float64)
    return bool(np.allclose(got, want.astype(np.float64), rtol=max(rtol, 1e-4),
                            atol=max(atol, 1e-5), equal_nan=True))


def run_case(model, data_sets, rtol: float, atol: float) -> tuple[str, str]:
    """(outcome, reason) of one case."""
    from netsurgeon.errors import NetsurgeonError
    from netsurgeon.runtime.onnx_backend import NetsurgeonBackend

    signal.alarm(CASE_TIMEOUT_S)
    try:
        try:
            rep = NetsurgeonBackend.prepare(model)
        except NetsurgeonError as exc:
            text = str(exc)
            return "unsupported", _reason(text)
        for inputs, outputs in data_sets:
            got = rep.run(list(inputs))
            if len(got) != len(outputs):
                return "failed", "wrong number of outputs"
            for g, w in zip(got, outputs):
                if not _same(g, w, rtol, atol):
                    return "failed", "values differ"
        return "passed", ""
    except _Timeout:
        return "failed", f"over {CASE_TIMEOUT_S} s"
    except NetsurgeonError as exc:
        return "failed", _reason(str(exc))
    except Exception as exc:  # the report counts what escapes
        return "crashed", f"{type(exc).__name__}: {str(exc)[:80]}"
    finally:
        signal.alarm(0)


def _reason(text: str) -> str:
    """A short class of an error message (the part after the location)."""
    text = text.split(": ", 1)[-1] if text.startswith("<") else text
    return " ".join(text.split())[:90]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", action="append", choices=KINDS)
    parser.add_argument("--markdown", help="also write the per-op table here")
    parser.add_argument("--show", type=int, default=0, help="print N failure reasons per op")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    from netsurgeon.runtime import set_threads

    set_threads(1)
    per_kind: dict[str, Tally] = {}
    per_op: dict[str, Tally] = collections.defaultdict(Tally)
    t0 = time.perf_counter()
    for kind in args.kind or KINDS:
        tally = per_kind.setdefault(kind, Tally())
        for name, op, model, sets, rtol, atol in _cases(kind):
            outcome, reason = run_case(model, sets, rtol, atol)
            tally.add(outcome, reason)
            per_op[op if kind == "node" else f"{kind}: {name}"].add(outcome, reason)
    lines = ["| kind | cases | pass | fail | unsupported | crash |", "|---|---|---|---|---|---|"]
    for kind, t in per_kind.items():
        lines.append(f"| {kind} | {t.total} | {t.passed} | {t.failed} | {t.unsupported} | "
                     f"{t.crashed} |")
    lines += ["", "| op / model | cases | pass | fail | unsupported | crash | most common reason |",
              "|---|---|---|---|---|---|---|"]
    for op in sorted(per_op):
        t = per_op[op]
        common = t.reasons.most_common(1)[0][0] if t.reasons else ""
        lines.append(f"| {op} | {t.total} | {t.passed} | {t.failed} | {t.unsupported} | "
                     f"{t.crashed} | {common.replace('|', '/')} |")
    text = "\n".join(lines)
    print(text)
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
