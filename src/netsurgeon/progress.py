"""Progress bars for long steps (evaluation, training, building, converting), on stderr.

One line, redrawn in place at most ten times a second::

    eval [######--------------] 3,328/10,984 samples 30% 1,390 samples/s 0:02 ETA 0:05

label, count/total (the count alone when the total is unknown), percentage, rate, elapsed
time and the estimated time left. A bar draws only on a terminal: on a stream that is not
one (a pipe, a file, a test's capture) it is silent, as it is when ``enabled=False``. The
library never shows one unless asked: its long functions take ``progress=None`` (nothing),
``True`` (a :class:`Progress` on stderr) or a factory called as ``factory(label, total=...,
unit=...)`` that returns an object with ``update(n)``, ``set_description(text)``,
``set_postfix_str(text)`` and ``close()`` (the same method names as tqdm's bars).

Only one bar line is on the terminal at a time: a bar opened while another is open takes the
line over until it closes (then the outer one is drawn again). While a bar is open, text
written to ``sys.stderr`` (a warning) or to ``sys.stdout`` on the same terminal first clears
the bar's line, so it starts on a line of its own; :func:`close_all` (what the command line
calls before printing an error) ends every open bar's line. The module imports only the
standard library.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

__all__ = ["Progress", "ProgressBar", "ProgressFactory", "NullProgress", "bar", "close_all",
           "format_duration", "format_count", "wanted"]

INTERVAL = 0.1  # seconds between redraws (at most ten a second)


class ProgressBar(Protocol):
    """What the library calls on a bar (tqdm's method names, so a tqdm bar fits too)."""

    def update(self, n: float = 1) -> Any: ...
    def set_description(self, desc: str) -> Any: ...
    def set_postfix_str(self, s: str) -> Any: ...
    def close(self) -> Any: ...


ProgressFactory = Callable[..., ProgressBar]


def format_duration(seconds: float) -> str:
    """``0:05``, ``12:34``, ``1:02:03``; ``?`` for an unknown or infinite time."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
        return "?"
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_count(value: float, unit: str = "") -> str:
    """A count with thousands separators; bytes (``unit="B"``) in B/KiB/MiB/GiB."""
    if unit == "B":
        v, i = float(value), 0
        while abs(v) >= 1024 and i < len(_BYTE_UNITS) - 1:
            v, i = v / 1024, i + 1
        return f"{int(v)} B" if i == 0 else f"{v:.1f} {_BYTE_UNITS[i]}"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _pair(n: float, total: float, unit: str) -> str:
    """``1,234/5,678 samples`` or ``1.2/3.4 MiB``."""
    if unit == "B":
        scaled = format_count(total, "B")
        number, _, suffix = scaled.partition(" ")
        factor = 1024 ** _BYTE_UNITS.index(suffix)
        done = f"{int(n)}" if factor == 1 else f"{n / factor:.1f}"
        return f"{done}/{number} {suffix}"
    return f"{format_count(n)}/{format_count(total)}" + (f" {unit}" if unit else "")


class _Screen:
    """The one terminal line the bars share: which bar owns it, what is drawn on it."""

    def __init__(self) -> None:
        self.stack: list[Progress] = []  # open, enabled bars; the last one draws
        self.stream: TextIO | None = None  # where the drawn line is
        self.width = 0  # characters of the drawn line (0: nothing drawn)
        self.at_line_start = True  # the cursor is at the start of a line (others' writes)
        self.saved: tuple[Any, Any] | None = None  # sys.stdout, sys.stderr before the guards

    def clear(self) -> None:
        """Erase the drawn bar line (the cursor goes back to its start)."""
        if self.width and self.stream is not None:
            _write(self.stream, "\r" + " " * self.width + "\r")
        self.width = 0

    def end_line(self) -> None:
        """Keep the drawn bar line and end it, so what follows starts on a line of its own."""
        if self.width and self.stream is not None:
            _write(self.stream, "\n")
        self.width = 0

    def push(self, bar: Progress) -> None:
        if not self.stack:
            self._guard()
        self.clear()
        self.stack.append(bar)

    def pop(self, bar: Progress) -> None:
        if bar in self.stack:
            self.stack.remove(bar)
        if not self.stack:
            self._unguard()
        elif self.at_line_start:
            self.stack[-1]._draw()

    def _guard(self) -> None:
        out, err = sys.stdout, sys.stderr
        self.saved = (out, err)
        if not isinstance(err, _Guard):
            sys.stderr = _Guard(err)  # type: ignore[assignment]
        if not isinstance(out, _Guard) and _isatty(out):
            sys.stdout = _Guard(out)  # type: ignore[assignment]

    def _unguard(self) -> None:
        if self.saved is None:
            return
        out, err = self.saved
        self.saved = None
        if isinstance(sys.stderr, _Guard) and sys.stderr is not err:
            sys.stderr = err
        if isinstance(sys.stdout, _Guard) and sys.stdout is not out:
            sys.stdout = out


_screen = _Screen()


class _Guard:
    """A text stream in front of sys.stderr/sys.stdout while a bar is drawn: a write first
    clears the bar's line (the bar draws again at its next update, once a line is ended)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        if text:
            _screen.clear()
            _screen.at_line_start = text.endswith("\n")
        return self._inner.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _unwrap(stream: Any) -> Any:
    while isinstance(stream, _Guard):
        stream = stream._inner
    return stream


def _write(stream: Any, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):  # a closed terminal must not stop the work
        pass


def _columns(stream: Any) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, TypeError):
        return 80
    return columns if columns > 0 else 80


class Progress:
    """A progress bar on a terminal stream (stderr by default); silent elsewhere.

    Args:
        label: what is being done (``eval``, ``epoch 1/3``).
        total: the count at the end, or None when unknown (the count alone is shown).
        unit: what is counted (``samples``, ``nodes``; ``B`` shows bytes as KiB/MiB/GiB).
        stream: where to draw (default ``sys.stderr``).
        enabled: False: draw nothing; None (default): draw only if ``stream`` is a terminal.
        leave: on close, keep the last state as a line (default: clear the line).
        clock: seconds, for tests (default ``time.monotonic``).
        interval: least time between redraws, in seconds.
        width: line width (default: the terminal's, less one column).

    Use as a context manager, or call :meth:`close`. A bar left by an exception keeps its
    line (ended), so the error prints below it.
    """

    def __init__(self, label: str = "", total: float | None = None, unit: str = "", *,
                 stream: TextIO | None = None, enabled: bool | None = None,
                 leave: bool = False, clock: Callable[[], float] = time.monotonic,
                 interval: float = INTERVAL, width: int | None = None) -> None:
        self.label = label
        self.total = total if total is None or total > 0 else None
        self.unit = unit
        self.n: float = 0
        self.postfix = ""
        self.leave = leave
        self._clock = clock
        self._interval = interval
        self._stream = _unwrap(stream if stream is not None else sys.stderr)
        self.enabled = _isatty(self._stream) if enabled is None else bool(enabled)
        self._width = width
        self.closed = False
        self.start = clock()
        self._next = self.start  # the first update draws
        if self.enabled:
            _screen.push(self)

    # ---- the tqdm-like interface -------------------------------------------------------------
    def update(self, n: float = 1) -> None:
        """Count ``n`` more; redraw if the last redraw is ``interval`` old."""
        self.n += n
        if self.total is not None and self.n > self.total:
            self.total = self.n  # the total was an estimate (a file's size from its values)
        if self.enabled:
            now = self._clock()
            if now >= self._next:
                self._next = now + self._interval
                self._draw(now)

    def set_description(self, desc: str) -> None:
        """A new label (shown at the next redraw)."""
        self.label = desc

    def set_postfix_str(self, s: str) -> None:
        """Text after the numbers (``loss 0.1234``), shown at the next redraw."""
        self.postfix = s

    def set_total(self, total: float | None) -> None:
        """Change the total (None: unknown)."""
        self.total = total if total is None or total > 0 else None

    def close(self, failed: bool = False) -> None:
        """End the bar: clear its line (or keep it, ended, with ``leave`` or ``failed``)."""
        if self.closed:
            return
        self.closed = True
        if not self.enabled:
            return
        if _screen.stack and _screen.stack[-1] is self:
            if self.leave or failed:
                if _screen.at_line_start:
                    self._draw()
                _screen.end_line()
            else:
                _screen.clear()
        _screen.pop(self)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        self.close(failed=kind is not None)

    # ---- drawing -------------------------------------------------------------------------------
    def format(self, now: float | None = None, width: int | None = None) -> str:
        """The bar's line as it would be drawn now; within ``width`` characters the
        ``[###---]`` graphic is left out first, then the end is cut."""
        elapsed = max((self._clock() if now is None else now) - self.start, 0.0)
        rate = self.n / elapsed if elapsed > 0 and self.n > 0 else None
        unit = self.unit
        per = f"{unit}/s" if unit else "/s"
        if rate is None:
            speed = f"? {per}"
        elif unit == "B":
            speed = f"{format_count(rate, 'B')}/s"
        else:
            speed = f"{rate:,.0f} {per}" if rate >= 10 else f"{rate:.2g} {per}"
        parts = [self.label] if self.label else []
        if self.total is not None:
            fraction = min(max(self.n / self.total, 0.0), 1.0)
            filled = int(fraction * 20)
            parts.append("[" + "#" * filled + "-" * (20 - filled) + "]")
            parts.append(_pair(self.n, self.total, unit))
            parts.append(f"{int(fraction * 100)}%")
        else:
            parts.append(format_count(self.n, unit) + (f" {unit}" if unit and unit != "B"
                                                         else ""))
        parts.append(speed)
        parts.append(format_duration(elapsed))
        if self.total is not None:
            left = (self.total - self.n) / rate if rate else float("nan")
            parts.append(f"ETA {format_duration(max(left, 0.0))}")
        if self.postfix:
            parts.append(self.postfix)
        text = " ".join(parts)
        if width is not None and len(text) > width and self.total is not None:
            text = " ".join(p for p in parts if not p.startswith("[") or not p.endswith("]"))
        return text if width is None else text[:width]

    def _draw(self, now: float | None = None) -> None:
        screen = _screen
        if not screen.stack or screen.stack[-1] is not self or not screen.at_line_start:
            return  # an inner bar owns the line, or someone else's line is not ended
        width = self._width or _columns(self._stream) - 1
        text = self.format(now, max(width, 10))
        pad = max(screen.width - len(text), 0) if screen.stream is self._stream else 0
        screen.stream = self._stream
        _write(self._stream, "\r" + text + " " * pad)
        screen.width = len(text) + pad


class NullProgress:
    """A bar that shows nothing (what the library uses when no progress is asked for)."""

    n: float = 0

    def update(self, n: float = 1) -> None:
        """Nothing."""

    def set_description(self, desc: str) -> None:
        """Nothing."""

    def set_postfix_str(self, s: str) -> None:
        """Nothing."""

    def set_total(self, total: float | None) -> None:
        """Nothing."""

    def close(self, failed: bool = False) -> None:
        """Nothing."""

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        pass


def bar(progress: bool | ProgressFactory | None, label: str, total: float | None = None,
        unit: str = "") -> Any:
    """The bar a library function shows for ``progress`` (None/False: a :class:`NullProgress`;
    True: a :class:`Progress` on stderr; else ``progress(label, total=total, unit=unit)``)."""
    if progress is None or progress is False:
        return NullProgress()
    if progress is True:
        return Progress(label, total, unit)
    return progress(label, total=total, unit=unit)


def close_all() -> None:
    """End every open bar's line (kept, so an error printed next starts on its own line)."""
    while _screen.stack:
        _screen.stack[-1].close(failed=True)


def wanted(args: Any) -> bool:
    """Whether a command shows bars: not with ``-q``/``--quiet``, ``--json`` or
    ``--no-progress``, and only when stderr is a terminal."""
    if getattr(args, "quiet", False) or getattr(args, "json", False) \
            or getattr(args, "no_progress", False):
        return False
    return _isatty(_unwrap(sys.stderr))
