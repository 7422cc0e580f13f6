"""netsurgeon: open, edit, evaluate, train and save trained neural networks.

Importing this package never imports torch; the runtime loads it on first use.
"""

from __future__ import annotations

import typing as _typing

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "Network": "netsurgeon.graph",
    "Node": "netsurgeon.graph",
    "OPS": "netsurgeon.ops",
    "NetsurgeonError": "netsurgeon.errors",
    "load": "netsurgeon.formats",
    "save": "netsurgeon.formats",
    "dump": "netsurgeon.formats.dump",
    "build_ndl": "netsurgeon.lang.ndl",
    "mel": "netsurgeon.lang.mel",
    "evaluate": "netsurgeon.runtime",
    "Trainer": "netsurgeon.runtime",
    "to_torch": "netsurgeon.runtime",
    "clone_function": "netsurgeon.lang.brainscript",
}

__all__ = [
    "Network",
    "Node",
    "OPS",
    "NetsurgeonError",
    "Trainer",
    "build_ndl",
    "clone_function",
    "dump",
    "evaluate",
    "load",
    "mel",
    "save",
    "to_torch",
]

# what tools and type checkers see; at run time each is loaded on first use
if _typing.TYPE_CHECKING:
    from netsurgeon.errors import NetsurgeonError
    from netsurgeon.formats import dump, load, save
    from netsurgeon.graph import Network, Node
    from netsurgeon.lang import mel
    from netsurgeon.lang.brainscript import clone_function
    from netsurgeon.lang.ndl import build_ndl
    from netsurgeon.ops import OPS
    from netsurgeon.runtime import Trainer, evaluate, to_torch


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netsurgeon' has no attribute {name!r}")
    import importlib

    mod = importlib.import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names (loaded or not yet), for ``dir(netsurgeon)`` and completion."""
    return sorted([*__all__, "__version__"])
