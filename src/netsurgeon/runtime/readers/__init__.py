"""Data readers that produce :class:`~netsurgeon.runtime.batch.Minibatch` objects."""

from netsurgeon.runtime.readers.ctf import CTFReader, StreamSpec, streams_for

__all__ = ["CTFReader", "StreamSpec", "streams_for"]
