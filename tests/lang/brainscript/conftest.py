"""Helpers for the BrainScript tests.

Every network a BrainScript edit produces or touches is linted (``net.lint()``: name index,
users maps, groups, attributes against the registry) by an autouse hook: each network
assembly (``new ComputationNetwork``, ``BS.Network.Edit``), each ``BS.Network.Load``, and each
CloneFunction call (the target network, and the networks the section and the arguments
belong to, which a call must leave intact).
"""

from __future__ import annotations

import pytest

from netsurgeon.graph import Network, Node
from netsurgeon.lang.brainscript import build_from_text
from netsurgeon.lang.brainscript import network as bs_network
from netsurgeon.lang.brainscript.clone import CloneFunction


class LintLog:
    """How many networks the hook linted in this test."""

    def __init__(self) -> None:
        self.count = 0

    def lint(self, *nets: Network | None) -> None:
        for net in dict.fromkeys(n for n in nets if n is not None):
            net.lint()
            self.count += 1


def _networks(nodes) -> list[Network | None]:
    return [n.network for n in nodes if isinstance(n, Node)]


@pytest.fixture(autouse=True)
def lint_every_edit(monkeypatch) -> LintLog:
    """Lint after every BrainScript edit (see the module docstring)."""
    log = LintLog()
    build_network, load_network = bs_network.build_network, bs_network.load_network
    call, call_detached = CloneFunction.__call__, CloneFunction.call_detached

    def linted_build(*args, **kwargs):
        net = build_network(*args, **kwargs)
        log.lint(net)
        return net

    def linted_load(*args, **kwargs):
        net = load_network(*args, **kwargs)
        log.lint(net)
        return net

    def touched(f: CloneFunction, args, result) -> list[Network | None]:
        outs = result.values() if isinstance(result, dict) else [result]
        return _networks(args) + _networks(f.order) + _networks(f.inputs) + _networks(outs)

    def linted_call(self, *args, **kwargs):
        result = call(self, *args, **kwargs)
        log.lint(*touched(self, args, result))
        return result

    def linted_call_detached(self, args, prefix):
        result = call_detached(self, args, prefix)
        log.lint(*touched(self, args, result))
        return result

    monkeypatch.setattr(bs_network, "build_network", linted_build)
    monkeypatch.setattr(bs_network, "load_network", linted_load)
    monkeypatch.setattr(CloneFunction, "__call__", linted_call)
    monkeypatch.setattr(CloneFunction, "call_detached", linted_call_detached)
    return log


@pytest.fixture
def build():
    """build(text) -> Network, the members of a BrainScriptNetworkBuilder block."""
    return build_from_text


@pytest.fixture(scope="session")
def mc_path(cntk_dir):
    return str(cntk_dir / "models" / "MC.dnn")


@pytest.fixture(scope="session")
def slu_path(cntk_dir):
    return str(cntk_dir / "models" / "slu.forward.nobn.cmf")
