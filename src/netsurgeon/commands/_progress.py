"""What the commands need for their progress bars: whether to show them, and totals."""

from __future__ import annotations

import argparse
from pathlib import Path

from netsurgeon.progress import wanted

__all__ = ["bars_for", "ctf_samples"]


def bars_for(args: argparse.Namespace) -> bool | None:
    """``True`` (terminal bars on stderr) when the command shows progress, else None."""
    return True if wanted(args) else None


def ctf_samples(path: str | Path, max_sequences: int | None = None) -> int | None:
    """The samples (lines) of a CTF file, as the reader will count them, in one fast pass
    over its bytes (the first ``max_sequences`` sequences only); None if it cannot be read
    (the reader then reports why)."""
    samples = sequences = 0
    current: bytes | None = None
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                bar = raw.find(b"|")
                if bar < 0:
                    if raw.strip():
                        return None  # a malformed line: the reader's error says which
                    continue
                if max_sequences is not None:
                    sid = raw[:bar].strip() or None
                    if current is None or sid is None or sid != current:
                        if sequences >= max_sequences:
                            break
                        sequences += 1
                    current = sid if sid is not None else b""
                samples += 1
    except (OSError, ValueError):
        return None
    return samples or None
