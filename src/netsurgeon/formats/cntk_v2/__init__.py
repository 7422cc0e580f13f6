"""CNTK v2 model files (CNTK 2.x ``Function.save``): reading them as networks.

:mod:`.wire` is the protobuf codec (the schema written from cntk-v2-format.md, decoded with
the ``protobuf`` package), :mod:`.detect` tells the format from the first bytes,
:mod:`._layer` is the ``cntk_v2`` registry layer (each op's v2 code, operand order and
attributes) and :mod:`.reader` builds the network. Importing the package attaches the layer
to the registry; protobuf is imported only when a file is decoded.
"""

from netsurgeon.formats.cntk_v2._layer import install

install()

__all__: list[str] = []
