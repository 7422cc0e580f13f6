"""Hand-written torch modules of the three real models, with the model's own weights, and the
alternating-rounds timer the runtime benchmarks share.

``hand_module(net)`` picks the module for 01_OneHidden, cifar10.pretrained or cifar10.ResNet;
each computes what the model computes (the benchmarks check it before timing).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F


def _t(net, name):
    return torch.tensor(np.asarray(net.node(name).value))


class OneHidden(torch.nn.Module):
    """z = W2ᵀ·sigmoid(W1ᵀ·(s·x) + b1) + b2 as a hand-written torch module."""

    def __init__(self, net):
        super().__init__()
        self.s = torch.nn.Parameter(_t(net, "featScaled.ElementTimesArgs[0]").reshape(()).clone(),
                                    requires_grad=False)
        self.l1 = torch.nn.Linear(784, 200)
        self.l2 = torch.nn.Linear(200, 10)
        with torch.no_grad():
            self.l1.weight.copy_(_t(net, "h1._.W").t())
            self.l1.bias.copy_(_t(net, "h1._.b").reshape(-1))
            self.l2.weight.copy_(_t(net, "z.W").t())
            self.l2.bias.copy_(_t(net, "z.b").reshape(-1))

    def forward(self, x):
        return self.l2(torch.sigmoid(self.l1(x * self.s)))


class CifarConvNet(torch.nn.Module):
    """cifar10.pretrained by hand: 3 conv 5x5 + ReLU + maxpool 3/2, dense 64 ReLU, dense 10."""

    def __init__(self, net):
        super().__init__()
        self.register_buffer("mean", _t(net, "_z.featNorm").clone())
        self.convs = torch.nn.ModuleList()
        for layer in ("l1", "l2", "l3"):
            w = _t(net, f"z.{layer}.W")
            conv = torch.nn.Conv2d(w.shape[1], w.shape[0], 5, padding=2)
            with torch.no_grad():
                conv.weight.copy_(w)
                conv.bias.copy_(_t(net, f"z.{layer}.b").reshape(-1))
            self.convs.append(conv)
        self.d1 = torch.nn.Linear(576, 64)
        self.d2 = torch.nn.Linear(64, 10)
        with torch.no_grad():
            self.d1.weight.copy_(_t(net, "z.d1.arrayOfFunctions[0].W").reshape(576, 64).t())
            self.d1.bias.copy_(_t(net, "z.d1.arrayOfFunctions[0].b"))
            self.d2.weight.copy_(_t(net, "z.z.W").t())
            self.d2.bias.copy_(_t(net, "z.z.b"))

    def forward(self, x):
        x = x - self.mean
        for conv in self.convs:
            x = F.max_pool2d(torch.relu(conv(x)), 3, 2)
        return self.d2(torch.relu(self.d1(x.flatten(1))))


def _conv(net, prefix: str, stride: int = 1) -> torch.nn.Conv2d:
    """A 3x3 conv (no bias) holding ``<prefix>.c.W`` (CNTK [out x in·3·3]: its bytes are torch's
    (out, in, 3, 3) weight)."""
    w = _t(net, f"{prefix}.c.W")
    out = w.shape[1]
    conv = torch.nn.Conv2d(w.shape[0] // 9, out, 3, stride=stride, padding=0 if stride > 1 else 1,
                           bias=False)
    with torch.no_grad():
        conv.weight.copy_(w.reshape(conv.weight.shape))
    return conv


def _bn(net, prefix: str) -> torch.nn.BatchNorm2d:
    """BatchNorm2d from ``<prefix>.scale/bias/runMean/runInvStdDev`` (CNTK's v1 layout stores
    the inverse standard deviation: var = 1/isd² − ε gives torch the same scale)."""
    scale = _t(net, f"{prefix}.scale").reshape(-1)
    bn = torch.nn.BatchNorm2d(scale.numel(), eps=1e-5)
    isd = _t(net, f"{prefix}.runInvStdDev").reshape(-1).double()
    with torch.no_grad():
        bn.weight.copy_(scale)
        bn.bias.copy_(_t(net, f"{prefix}.bias").reshape(-1))
        bn.running_mean.copy_(_t(net, f"{prefix}.runMean").reshape(-1))
        bn.running_var.copy_((1.0 / (isd * isd) - 1e-5).float())
    return bn


class _Block(torch.nn.Module):
    """relu(x + bn(conv(relu(bn(conv(x)))))), with a projection shortcut when it halves the
    image: bn(cat(x[::2, ::2], zeros)) (CNTK's ResNet sample), main path strided 2."""

    def __init__(self, net, prefix: str, project: bool = False):
        super().__init__()
        self.project = project
        self.c1 = _conv(net, f"{prefix}.c1", 2 if project else 1)
        self.b1 = _bn(net, f"{prefix}.c1.b")
        self.c2 = _conv(net, f"{prefix}.c2")
        self.b2 = _bn(net, f"{prefix}.c2.b")
        if project:
            self.bs = _bn(net, f"{prefix}.b")

    def forward(self, x):
        if self.project:
            half = x[:, :, ::2, ::2]
            short = self.bs(torch.cat([half, torch.zeros_like(half)], 1))
            x = F.pad(x, (1, 0, 1, 0))  # CNTK's auto-padding of an even image, stride 2
        else:
            short = x
        y = torch.relu(self.b1(self.c1(x)))
        return torch.relu(short + self.b2(self.c2(y)))


class ResNet(torch.nn.Module):
    """cifar10.ResNet by hand: conv 16 + 3 blocks of 16, 32 (first projecting), 64 (first
    projecting), 8x8 average pool, dense 10."""

    def __init__(self, net):
        super().__init__()
        self.c = _conv(net, "z.conv1")
        self.b = _bn(net, "z.conv1.b")
        names = [("z.rn1.r.x.r.x.r", False), ("z.rn1.r.x.r", False), ("z.rn1.r", False),
                 ("z.rn2_1", True), ("z.rn2.r.x.r", False), ("z.rn2.r", False),
                 ("z.rn3_1", True), ("z.rn3.r.x.r", False), ("z.rn3.r", False)]
        self.blocks = torch.nn.ModuleList(_Block(net, p, project) for p, project in names)
        self.d = torch.nn.Linear(64, 10)
        with torch.no_grad():
            self.d.weight.copy_(_t(net, "z.z.W").reshape(64, 10).t())
            self.d.bias.copy_(_t(net, "z.z.b"))

    def forward(self, x):
        x = torch.relu(self.b(self.c(x)))
        for block in self.blocks:
            x = block(x)
        return self.d(F.avg_pool2d(x, 8).flatten(1))


def hand_module(net) -> torch.nn.Module:
    """The hand-written module of a network loaded from one of the three models."""
    if net.get("z.rn1.r.c1.c.W") is not None:
        return ResNet(net)
    if net.get("z.l1.W") is not None:
        return CifarConvNet(net)
    return OneHidden(net)


def alternate(fns: dict[str, Callable[[], object]], seconds: float, rounds: int = 7
              ) -> dict[str, tuple[float, float]]:
    """Seconds per call of each function, measured in alternating rounds (load changes hit all
    alike): {name: (best round, median round)}, each round the mean of its calls."""
    for fn in fns.values():
        fn()
    per_round = seconds / rounds / len(fns)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n, start = 0, time.perf_counter()
            while True:
                fn()
                n += 1
                elapsed = time.perf_counter() - start
                if elapsed >= per_round and n >= 2:
                    break
            times[name].append(elapsed / n)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}
