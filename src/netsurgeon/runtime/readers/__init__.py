"""Data readers that produce :class:`~netsurgeon.runtime.batch.Minibatch` objects, and the
checked ``.npy`` loader of ``eval --input``."""

from netsurgeon.runtime.readers.ctf import CTFReader, StreamSpec, streams_for
from netsurgeon.runtime.readers.npy import load_npy

__all__ = ["CTFReader", "StreamSpec", "streams_for", "load_npy"]
