"""The pass interface: a pass takes a network, changes it in place, and says whether it did.

Passes compose with :class:`PassManager`, which can lint the network after each pass (the
habit torch.fx and onnx-ir share) and turns an unexpected exception inside a pass into a
:class:`PassError` that names the pass and the passes run before it. User errors
(:class:`~netsurgeon.errors.NetsurgeonError`) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netsurgeon.errors import NetsurgeonError

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network

__all__ = ["Pass", "PassResult", "PassManager", "PassError"]


@dataclass(frozen=True)
class PassResult:
    """What a pass reports: the network it worked on and whether it changed it."""

    network: Network
    modified: bool


class PassError(RuntimeError):
    """A pass failed for a reason that is not the user's (a bug): names the pass."""


class Pass:
    """A transformation or analysis that runs in place on a network.

    Subclasses implement :meth:`call`; calling the pass object runs it.
    """

    def call(self, net: Network) -> PassResult:
        raise NotImplementedError

    def __call__(self, net: Network) -> PassResult:
        return self.call(net)

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self.name}()"


class PassManager(Pass):
    """Runs passes in order; the result is modified if any pass modified the network.

    Args:
        passes: the passes, in order.
        lint_after_each: run ``net.lint()`` after every pass (tests turn it on).
    """

    def __init__(self, passes: Iterable[Pass], *, lint_after_each: bool = False) -> None:
        self.passes = list(passes)
        self.lint_after_each = lint_after_each

    def call(self, net: Network) -> PassResult:
        modified = False
        done: list[str] = []
        for p in self.passes:
            try:
                result = p(net)
                if self.lint_after_each:
                    net.lint()
            except NetsurgeonError:
                raise
            except Exception as exc:
                raise PassError(f"pass {p.name} failed after passes {done or 'none'}: "
                                f"{type(exc).__name__}: {exc}") from exc
            modified |= result.modified
            done.append(p.name)
        return PassResult(net, modified)

    def __repr__(self) -> str:
        return f"PassManager({', '.join(p.name for p in self.passes)})"
