"""NDL, CNTK's Network Description Language (ndl-mel.md §B).

Build a whole network::

    from netsurgeon.lang.ndl import build_network
    net = build_network(open("net.ndl").read(), source="net.ndl", variables={"HDim": "256"})

MEL builds on the incremental pieces: :class:`NdlScript` (in-line NDL bound to a loaded
model, evaluated pass by pass), :func:`evaluate_snippet` (``m = [ ... ]``), the global
:class:`MacroTable` (``MacroTable.standard()`` holds the shipped library) and the session's
:class:`NameCounter` (``unnamedN`` names and automatic seeds).
"""

from netsurgeon.lang.ndl._macros import MacroDef, MacroTable, NameCounter
from netsurgeon.lang.ndl._script import (
    PASSES,
    NdlScript,
    build_file,
    build_network,
    evaluate_snippet,
    file_blocks,
    variable_lookup,
)

build_ndl = build_network

__all__ = [
    "MacroDef",
    "MacroTable",
    "NameCounter",
    "NdlScript",
    "PASSES",
    "build_file",
    "build_ndl",
    "build_network",
    "evaluate_snippet",
    "file_blocks",
    "variable_lookup",
]
