"""netsurgeon: open, edit, evaluate, train and save trained neural networks.

Importing this package never imports torch; the runtime loads it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    "clone_function": "netsurgeon.lang.brainscript",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from netsurgeon.graph import Network, Node  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netsurgeon' has no attribute {name!r}")
    import importlib

    mod = importlib.import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value
