"""MEL editing speed: one copy-and-rewire, and a whole 100-command script (no file I/O).

Models (weights are np.zeros, so untouched pages cost no memory):
  * "rbff200": 200 RBFF layers of width 1024 (L{i}.BFF.W/B, .BFF.FF.T/P, .RL): 1,004 nodes;
  * "graph4k": 800 RBFF layers of width 64: 4,004 nodes.

Measured, each the median of --repeat runs (the edit is undone, untimed, between runs):
  * copy+rewire via the Python API: Copy(L100.*, L200x.*), SetInput(L200x.*.T, 1, L100.RL),
    SetInput(L101.*.T, 1, L200x.RL);
  * the same three statements as MEL text through the interpreter (parsing included);
  * a 100-command MEL script (Copy/SetInput/SetProperty/Rename/Remove mix), parsing included;
  * baseline in the same run: the same edit with torch.fx (deepcopy the layer's Linear module,
    insert call_module + relu nodes, rewire, recompile), on a 200-layer Linear+ReLU chain.
Goal: one copy-and-rewire <= 2 ms; weights of copied nodes are copied exactly once (checked).

Run: .venv/bin/python bench/bench_mel.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from netsurgeon.graph import Network
from netsurgeon.lang.mel import Editor, Interpreter


def rbff(layers: int, width: int) -> Network:
    net = Network("m")
    prev = net.add("features", "InputValue", shape=(width,))
    net.add_to_group("feature", prev)
    for i in range(1, layers + 1):
        w = net.add_parameter(f"L{i}.BFF.W", np.zeros((width, width), np.float32))
        b = net.add_parameter(f"L{i}.BFF.B", np.zeros((width,), np.float32))
        t = net.add(f"L{i}.BFF.FF.T", "Times", (w, prev))
        p = net.add(f"L{i}.BFF.FF.P", "Plus", (t, b))
        prev = net.add(f"L{i}.RL", "RectifiedLinear", (p,))
    net.add_to_group("output", prev)
    return net


EDIT = "Copy(L100.*, L200x.*)\nSetInput(L200x.*.T, 1, L100.RL)\nSetInput(L101.*.T, 1, L200x.RL)\n"


def undo(ed: Editor) -> None:
    ed.set_input("L101.*.T", 1, "L100.RL")
    ed.remove("L200x.*")


def median_ms(fn, setup, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        setup()
    return statistics.median(times) * 1e3


def script_100() -> str:
    lines = []
    for k in range(20):
        a, b = 10 + k, 40 + k
        lines += [
            f"Copy(L{a}.*, X{k}.*)",
            f"SetInput(X{k}.*.T, 1, L{a}.RL)",
            f"SetInput(L{a + 1}.*.T, 1, X{k}.RL)",
            f"SetProperty(L{b}.BFF.W, learningRateMultiplier, 0.5)",
            f"Rename(X{k}.*, Y{k}.*)",
        ]
    return "\n".join(lines) + "\n"


def count_copies(ed: Editor) -> int:
    """How many ndarray.copy calls one Copy(L100.*, L200x.*) makes on the source values."""
    calls = []

    class Counting(np.ndarray):
        def copy(self, *a, **k):
            calls.append(1)
            return np.asarray(self).copy(*a, **k)

    net = ed.model()
    saved = {n: n.value for n in net.match("L100.*") if n.value is not None}
    for n, v in saved.items():
        net.update(n, value=v.view(Counting))
    ed.copy("L100.*", "L200x.*")
    for n, v in saved.items():
        net.update(n, value=v)
    ed.remove("L200x.*")
    return len(calls)


def bench_model(label: str, layers: int, width: int, repeat: int) -> dict[str, float]:
    ed = Editor()
    ed.add_model("m", rbff(layers, width))
    nodes = len(ed.model())
    copies = count_copies(ed)
    assert copies == 2, f"weights copied {copies} times for 2 parameters"

    def api():
        ed.copy("L100.*", "L200x.*")
        ed.set_input("L200x.*.T", 1, "L100.RL")
        ed.set_input("L101.*.T", 1, "L200x.RL")

    interp = Interpreter(ed)
    api_ms = median_ms(api, lambda: undo(ed), repeat)
    mel_ms = median_ms(lambda: interp.execute(EDIT), lambda: undo(ed), repeat)
    text = script_100()
    fresh = {}

    def reset():
        fresh["ed"] = Editor()
        fresh["ed"].add_model("m", rbff(layers, width))
        fresh["i"] = Interpreter(fresh["ed"])

    reset()
    script_ms = median_ms(lambda: fresh["i"].execute(text), reset, max(3, repeat // 5))
    print(f"{label:9s} {nodes:5d} nodes  copy+2xSetInput: API {api_ms:6.2f} ms  "
          f"MEL {mel_ms:6.2f} ms  | 100-command script {script_ms:7.2f} ms  "
          f"| weight copies per Copy: {copies} (2 params)")
    return {"api": api_ms, "mel": mel_ms, "script": script_ms}


def bench_fx(layers: int, width: int, repeat: int) -> float | None:
    try:
        import copy

        import torch
        import torch.fx as fx
    except ImportError:
        return None

    class Chain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(
                torch.nn.Linear(width, width, device="cpu") for _ in range(layers))

        def forward(self, x):
            for layer in self.layers:
                x = torch.relu(layer(x))
            return x

    with torch.no_grad():
        model = Chain()
    gm = fx.symbolic_trace(model)

    def edit(g: fx.GraphModule) -> None:
        src = g.get_submodule("layers.99")
        g.add_submodule("extra", copy.deepcopy(src))
        relu99 = next(n for n in g.graph.nodes if n.op == "call_function" and
                      n.args and getattr(n.args[0], "target", None) == "layers.99")
        with g.graph.inserting_after(relu99):
            lin = g.graph.call_module("extra", (relu99,))
        with g.graph.inserting_after(lin):
            act = g.graph.call_function(torch.relu, (lin,))
        nxt = next(n for n in g.graph.nodes if n.op == "call_module" and n.target == "layers.100")
        nxt.args = (act,)
        g.recompile()

    times = []
    for _ in range(max(3, repeat // 3)):
        g = fx.GraphModule(gm, copy.copy(gm.graph))
        g.graph = copy.deepcopy(gm.graph)
        t0 = time.perf_counter()
        edit(g)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    a = bench_model("rbff200", 200, 1024, args.repeat)
    bench_model("graph4k", 800, 64, args.repeat)
    fx_ms = bench_fx(200, 1024, args.repeat)
    if fx_ms is not None:
        print(f"baseline torch.fx, same edit on a 200x1024 Linear+ReLU chain: {fx_ms:6.2f} ms "
              f"-> netsurgeon API is {fx_ms / a['api']:.1f}x faster")
    met = "met" if a["api"] <= 2.0 else "NOT met"
    print(f"goal: copy+rewire <= 2 ms: {met} ({a['api']:.2f} ms)")


if __name__ == "__main__":
    main()
