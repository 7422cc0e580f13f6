"""netsurgeon.progress: the bar's text (fake terminal, fake clock), silence off a terminal, one
bar line at a time, and other output (warnings, errors) on lines of their own."""

from __future__ import annotations

import io
import sys
import time
import warnings

import pytest

from netsurgeon import progress
from netsurgeon.progress import (
    NullProgress,
    Progress,
    bar,
    close_all,
    format_count,
    format_duration,
)


class TTY(io.StringIO):
    """A terminal: what was written, and isatty() true."""

    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def screen(text: str) -> list[str]:
    """The lines a terminal shows after ``text`` (``\\r`` returns to column 0, characters
    overwrite), trailing blanks dropped."""
    lines = []
    for raw in text.split("\n"):
        row: list[str] = []
        col = 0
        for ch in raw:
            if ch == "\r":
                col = 0
                continue
            if col < len(row):
                row[col] = ch
            else:
                row.append(ch)
            col += 1
        lines.append("".join(row).rstrip())
    return lines


@pytest.fixture(autouse=True)
def no_bar_left():
    yield
    close_all()
    assert not progress._screen.stack


def test_durations_and_counts():
    assert format_duration(0) == "0:00"
    assert format_duration(5.4) == "0:05"
    assert format_duration(754) == "12:34"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(float("nan")) == "?"
    assert format_duration(float("inf")) == "?"
    assert format_count(10984) == "10,984"
    assert format_count(512, "B") == "512 B"
    assert format_count(3 * 1024 * 1024, "B") == "3.0 MiB"


def test_total_percentage_rate_elapsed_and_eta():
    clock, out = Clock(), TTY()
    with Progress("eval", 10_000, "samples", stream=out, clock=clock, width=200) as b:
        clock.now += 2.0
        b.update(2_500)  # 1,250 samples/s: 6 s left
        line = b.format()
    assert line == ("eval [#####---------------] 2,500/10,000 samples 25% 1,250 samples/s "
                    "0:02 ETA 0:06")
    assert "\r" + line in out.getvalue()  # drawn at the update
    assert screen(out.getvalue()) == [""]  # and cleared on close


def test_unknown_total_shows_the_count_without_eta():
    clock = Clock()
    b = Progress("build", None, "nodes", stream=TTY(), clock=clock)
    clock.now += 4
    b.update(200)
    assert b.format() == "build 200 nodes 50 nodes/s 0:04"
    b.close()


def test_before_any_progress_rate_and_eta_are_unknown():
    b = Progress("eval", 100, "samples", stream=TTY(), clock=Clock())
    assert b.format().endswith("0/100 samples 0% ? samples/s 0:00 ETA ?")
    b.close()


def test_bytes_and_postfix():
    clock = Clock()
    b = Progress("write m.dnn", 4 * 1024 * 1024, "B", stream=TTY(), clock=clock, width=200)
    clock.now += 1
    b.update(1024 * 1024)
    b.set_postfix_str("loss 0.2500")
    assert b.format() == ("write m.dnn [#####---------------] 1.0/4.0 MiB 25% 1.0 MiB/s 0:01 "
                          "ETA 0:03 loss 0.2500")
    b.close()


def test_a_narrow_terminal_drops_the_graphic_first():
    clock = Clock()
    b = Progress("eval", 100, "samples", stream=TTY(), clock=clock, width=50)
    clock.now += 1
    b.update(50)
    assert b.format(width=50) == "eval 50/100 samples 50% 50 samples/s 0:01 ETA 0:01"[:50]
    assert "[" not in b.format(width=50)
    b.close()


def test_redraws_are_throttled_to_ten_a_second():
    clock, out = Clock(), TTY()
    with Progress("x", 1000, stream=out, clock=clock) as b:
        for _ in range(1000):
            b.update(1)
            clock.now += 0.001  # 1 s in all
    draws = out.getvalue().count("\r") - 2  # a draw writes one \r, the clear on close two
    assert 9 <= draws <= 12


def test_silent_when_the_stream_is_not_a_terminal():
    out = io.StringIO()
    with Progress("eval", 10, stream=out) as b:
        b.update(5)
    assert out.getvalue() == "" and not b.enabled
    with Progress("eval", 10, stream=TTY(), enabled=False) as b:
        b.update(5)
    assert not progress._screen.stack


def test_the_library_shows_nothing_unless_asked():
    assert isinstance(bar(None, "eval"), NullProgress)
    assert isinstance(bar(False, "eval"), NullProgress)
    made = []

    def factory(label, total=None, unit=""):
        made.append((label, total, unit))
        return NullProgress()

    bar(factory, "eval", 5, "samples")
    assert made == [("eval", 5, "samples")]


def test_a_nested_bar_takes_the_line_and_gives_it_back():
    clock, out = Clock(), TTY()
    outer = Progress("outer", 10, stream=out, clock=clock, width=200)
    outer.update(1)
    inner = Progress("inner", 5, stream=out, clock=clock, width=200)
    clock.now += 1
    inner.update(1)
    outer.update(1)  # not drawn: the inner bar owns the line
    assert screen(out.getvalue()) == [inner.format()]
    inner.close()
    assert screen(out.getvalue()) == [outer.format()]  # drawn again
    outer.close()
    assert screen(out.getvalue()) == [""]


def test_a_warning_during_a_bar_starts_on_its_own_line(monkeypatch):
    out = TTY()
    monkeypatch.setattr(sys, "stderr", out)
    clock = Clock()
    with Progress("eval", 10, "samples", clock=clock, width=200, leave=True) as b:
        b.update(3)
        # what warnings.showwarning does outside pytest (which records warnings instead)
        sys.stderr.write(warnings.formatwarning("careful", UserWarning, __file__, 7))
        clock.now += 1
        b.update(3)
        drawn = b.format()
    assert sys.stderr is out  # the guard is gone with the bar
    lines = screen(out.getvalue())
    warning = next(i for i, line in enumerate(lines) if "careful" in line)
    assert lines[warning].endswith(":7: UserWarning: careful")
    assert lines[warning].startswith(__file__)  # not glued to the bar
    assert lines[-2:] == [drawn, ""]  # the bar goes on below the warning


def test_printing_while_a_bar_is_drawn_clears_its_line_first(monkeypatch):
    out = TTY()
    monkeypatch.setattr(sys, "stderr", out)
    with Progress("eval", 10, width=200) as b:
        b.update(3)
        print("netsurgeon: note", file=sys.stderr)
    assert "netsurgeon: note" in screen(out.getvalue())


def test_an_error_leaves_the_bar_line_ended():
    out = TTY()
    with pytest.raises(RuntimeError), Progress("eval", 10, stream=out, width=200) as b:
        b.update(3)
        raise RuntimeError("boom")
    assert out.getvalue().endswith("\n")
    assert "3/10" in screen(out.getvalue())[0]


def test_close_all_ends_every_open_bar():
    out = TTY()
    a = Progress("a", 10, stream=out, width=200)
    a.update(1)
    b = Progress("b", 10, stream=out, width=200)
    b.update(1)
    close_all()
    assert a.closed and b.closed and out.getvalue().endswith("\n")


def test_a_hot_loop_pays_little_for_the_bar():
    """Not a timing test: a million updates must not redraw more than the clock allows."""
    out = TTY()
    with Progress("hot", 10**6, stream=out, clock=time.monotonic) as b:
        start = time.monotonic()
        for _ in range(10**6):
            b.update(1)
        spent = time.monotonic() - start
    assert out.getvalue().count("\r") <= 2 * (spent / progress.INTERVAL + 2) + 2
