"""Issue 10, BrainScript: nothing lost, nothing hung, nothing huge from a small file.

Each bad input gives one line ``file:line:col: message`` (a ParseError or EvaluationError),
never a RecursionError, a traceback or a multi-line text; memory and time grow linearly with
the nesting. Memory is measured in a subprocess (peak RSS growth, ``ru_maxrss``) under an
address-space cap (``RLIMIT_AS``), so a quadratic blow-up fails the test instead of the
machine. Deep nesting past the limits is tested at the real limits for one form each and, for
every form, on both sides of lowered limits (the same code path, at a fraction of the cost).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netsurgeon.errors import EvaluationError, NetsurgeonError, ParseError, ShapeError
from netsurgeon.lang.brainscript import build_from_file, build_from_text
from netsurgeon.lang.brainscript import nodes as bs_nodes
from netsurgeon.lang.brainscript import parser as bs_parser
from netsurgeon.lang.brainscript.evaluator import Evaluator

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "slu_lstm.bs"
X = "x = Input(2)\n"
LOCATED = re.compile(r"(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>[^\n]+)")
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and ru_maxrss in KB")


def where(exc: BaseException, file: str) -> tuple[int, int, str]:
    """(line, column, message) of a one-line error located in ``file``."""
    text = str(exc)
    assert isinstance(exc, NetsurgeonError), repr(exc)
    m = LOCATED.fullmatch(text)
    assert m is not None and m["file"] == file, text[:500]
    return int(m["line"]), int(m["col"]), m["msg"]


def k_value(net) -> float:
    """The number ``k`` of a program ending in ``z = x * k`` (the Constant ``_z``: an infix
    operator's constant is named like the operator, bs-library.md §1.2)."""
    return float(net.get("_z").value.flat[0])


# ---- memory and time: measured in a subprocess under an address-space cap -------------------
_MEASURE = r"""
import json, resource, sys, time, tracemalloc
from pathlib import Path
from netsurgeon.lang.brainscript import build_from_file, build_from_text
build_from_file(sys.argv[2])  # imports and the library's tokens, before the baseline
text = Path(sys.argv[1]).read_text()  # read_bytes allocates its cap (256 MiB) up front
with open("/proc/self/status") as f:
    vm = next(int(line.split()[1]) for line in f if line.startswith("VmSize:")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (int(sys.argv[3]) << 20),
                                        resource.getrlimit(resource.RLIMIT_AS)[1]))
trace = sys.argv[4] == "trace"
if trace:
    tracemalloc.start()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
net = build_from_text(text, sys.argv[1])
seconds = time.perf_counter() - start
grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
peak = tracemalloc.get_traced_memory()[1] / 2 ** 20 if trace else None
k = net.get("_z")
print(json.dumps({"nodes": len(net), "seconds": seconds, "grew_mb": grew, "peak_mb": peak,
                  "k": None if k is None else float(k.value.flat[0])}))
"""


def measure(tmp_path: Path, programs: dict[str, str], cap_mb: int = 1536,
            trace: bool = False) -> dict[str, dict]:
    """Build each program in its own subprocess (in parallel) under an address-space cap of
    ``cap_mb`` above its start; their node count, seconds, peak RSS growth (``grew_mb``) and,
    with ``trace``, the peak of Python allocations (``peak_mb``, tracemalloc: 3x slower)."""
    warm = tmp_path / "warm.bs"
    warm.write_text(X + "z = x * 2\n")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    procs = {}
    for name, text in programs.items():
        f = tmp_path / f"{name}.bs"
        f.write_text(text)
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", _MEASURE, str(f), str(warm), str(cap_mb),
             "trace" if trace else "rss"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)  # the hang guard
        assert proc.returncode == 0, stderr[-3000:]
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    return out


def _sum(n: int) -> str:
    return "k = " + "+".join(["1"] * n) + "\n" + X + "z = x * k\n"


@linux_only
def test_sum_of_20000_terms_uses_linear_memory(tmp_path):
    """The 40 KB file once took 4.75 GB (memory grew with the square of the nesting)."""
    r = measure(tmp_path, {"n20000": _sum(20_000), "n40000": _sum(40_000)}, trace=True)
    small, big = r["n20000"], r["n40000"]
    assert small["k"] == 20_000 and big["k"] == 40_000
    assert small["peak_mb"] < 300 and big["peak_mb"] < 600, r  # about 31 and 59
    # twice the terms: about twice the memory (the quadratic growth gave four times)
    assert 1.5 < big["peak_mb"] / small["peak_mb"] < 2.8, r


@linux_only
def test_recursion_10000_deep_builds_10001_nodes_in_bounded_time_and_memory(tmp_path):
    """113 bytes that once ran 74 s."""
    text = "f(n,y) = if n == 0 then y else f(n-1, Abs(y))\n" + X + "z = f(10000, x)\n"
    r = measure(tmp_path, {"rec": text})["rec"]
    assert r["nodes"] == 10_001
    assert r["seconds"] < 30 and r["grew_mb"] < 1000, r  # a hang / blow-up guard


# ---- deep nesting of every syntactic form ---------------------------------------------------
# form -> (program defining k (and maybe z) for nesting n, the value of k)
FORMS = {
    "parentheses": (lambda n: "k = " + "(" * n + "1" + ")" * n, lambda n: 1),
    "unary minus": (lambda n: "k = " + "-" * n + "1", lambda n: (-1) ** n),
    "not": (lambda n: "b = " + "!" * n + "true\nk = if b then 1 else 2",
            lambda n: 1 if n % 2 == 0 else 2),
    "if in then": (lambda n: "k = " + "if true then " * n + "1" + " else 2" * n, lambda n: 1),
    "else if": (lambda n: "k = " + "if false then 1 else " * n + "2", lambda n: 2),
    "records": (lambda n: "r = " + "[a = " * n + "1" + "]" * n + "\nk = r" + ".a" * n,
                lambda n: 1),
    "array literals": (lambda n: "a = " + "[|" * n + "7" + "|]" * n + "\nk = a" + "[0]" * n,
                       lambda n: 7),
    "array 1:1:...": (lambda n: "k = Length(" + ":".join(["1"] * n) + ")", lambda n: n),
    "function calls": (lambda n: "f(v) = v + 1\nk = " + "f(" * n + "0" + ")" * n, lambda n: n),
    "string concatenation": (
        lambda n: "s = " + "('a' + " * n + "'b'" + ")" * n + "\nk = if s == '" + "a" * n
        + "b' then 1 else 0", lambda n: 1),
    "string sum": (lambda n: "s = " + " + ".join(["'a'"] * n) + "\nk = if s == '" + "a" * n
                   + "' then 1 else 0", lambda n: 1),
}


def _program(form: str, n: int) -> str:
    return X + FORMS[form][0](n) + "\nz = x * k\n"


@pytest.mark.parametrize("form", sorted(FORMS))
def test_5000_deep_nesting_evaluates(form):
    """Five times deeper than Python's recursion limit: the value, on the work stack."""
    assert k_value(build_from_text(_program(form, 5_000), "deep.bs")) == FORMS[form][1](5_000)


@pytest.fixture
def low_limits(monkeypatch):
    """Parser and evaluator limits lowered to 1,000 levels / pending steps."""
    monkeypatch.setattr(bs_parser, "MAX_NESTING", 2_000)
    monkeypatch.setitem(Evaluator.__init__.__kwdefaults__, "max_depth", 1_000)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_nesting_below_and_beyond_the_limits(form, low_limits):
    """Below the limits the value; beyond, one line naming the user's file and line."""
    if form == "array 1:1:...":  # a flat list: no nesting at all
        assert k_value(build_from_text(_program(form, 3_000), "deep.bs")) == 3_000
        return
    assert k_value(build_from_text(_program(form, 150), "deep.bs")) == FORMS[form][1](150)
    text = _program(form, 3_000)
    with pytest.raises((ParseError, EvaluationError)) as info:
        build_from_text(text, "deep.bs")
    line, col, msg = where(info.value, "deep.bs")
    assert re.match(r"nesting deeper than 1,000 levels|BrainScript nesting too deep", msg), msg
    assert 2 <= line <= text.count("\n") and col <= len(text.split("\n")[line - 1]) + 1


@pytest.mark.slow  # 1.5 s; the same path is tested at lowered limits above
def test_parentheses_beyond_the_real_parser_limit():
    text = X + "k = " + "(" * 100_001 + "1" + ")" * 100_001 + "\nz = x * k\n"
    with pytest.raises(ParseError) as info:
        build_from_text(text, "deep.bs")
    line, col, msg = where(info.value, "deep.bs")
    assert (line, col) == (2, 100_002) and msg.startswith("nesting deeper than 100,000 levels")


def test_library_calls_below_and_beyond_the_limit(low_limits):
    """Abs(Abs(...x...)): library calls, several pending steps a level (at the real limit
    20,000 levels are refused the same way)."""
    assert len(build_from_text(X + "z = " + "Abs(" * 50 + "x" + ")" * 50 + "\n")) == 51
    text = X + "z = " + "Abs(" * 900 + "x" + ")" * 900 + "\n"  # parses: 900 < 1,000
    with pytest.raises(EvaluationError) as info:
        build_from_text(text, "deep.bs")
    line, _, msg = where(info.value, "deep.bs")
    assert line == 2 and msg.startswith("BrainScript nesting too deep (more than 1,000")


def test_node_names_past_the_cap_point_at_the_user_call(monkeypatch):
    """Library-made nodes of a deep call chain: CNTK's path names grow with the nesting."""
    monkeypatch.setattr(bs_nodes, "MAX_NAME_BYTES", 200_000)
    text = X + "z = " + "Abs(" * 1_000 + "x" + ")" * 1_000 + "\n"
    with pytest.raises(EvaluationError) as info:
        build_from_text(text, "deep.bs")
    line, _, msg = where(info.value, "deep.bs")  # not the library's new ComputationNode
    assert line == 2 and msg.startswith("the node names of this program exceed")


# ---- programs that do not terminate ---------------------------------------------------------
def test_endless_recursion_is_refused_quickly():
    """At the real limit (100,000 pending steps, about 1.5 s)."""
    definition = "f(n) = f(n+1)"
    start = time.perf_counter()
    with pytest.raises(EvaluationError) as info:
        build_from_text(X + definition + "\nz = x * f(0)\n", "loop.bs")
    assert time.perf_counter() - start < 15  # a hang guard; about 1.5 s
    line, _, msg = where(info.value, "loop.bs")
    assert line in (2, 3) and "nesting too deep" in msg and "endless recursion" in msg


def test_endless_recursion_without_arguments_changing(low_limits):
    with pytest.raises(EvaluationError) as info:
        build_from_text(X + "f(v) = f(v)\nz = x * f(0)\n", "loop.bs")
    line, _, msg = where(info.value, "loop.bs")
    assert line in (2, 3) and msg.startswith("BrainScript nesting too deep (more than 1,000")


def test_exponential_recursion_is_stopped_after_max_steps():
    text = X + "f(n) = if n == 0 then 1 else f(n-1) + f(n-1)\nz = x * f(60)\n"
    start = time.perf_counter()
    with pytest.raises(EvaluationError) as info:
        build_from_text(text, "exp.bs", max_steps=100_000)
    assert time.perf_counter() - start < 10
    line, _, msg = where(info.value, "exp.bs")
    assert line in (2, 3) and msg.startswith("evaluation stopped after 100,000 steps")
    assert "--max-steps" in msg
    assert k_value(build_from_text(text.replace("f(60)", "f(5)"), "exp.bs",
                                   max_steps=100_000)) == 32


# ---- the lexer: one line at the right column ------------------------------------------------
@pytest.mark.parametrize("data, line, col, needle", [
    ("x = ¹\n".encode(), 1, 5, "invalid character '¹' (U+00B9 SUPERSCRIPT ONE)"),
    ("x = ①\n".encode(), 1, 5, "invalid character '①' (U+2460 CIRCLED DIGIT ONE)"),
    ("x = Input(2)\nz = x\u200b\n".encode(), 2, 6, "U+200B ZERO WIDTH SPACE"),
    ("x = Input(2)\nz = \u200fx\n".encode(), 2, 5, "U+200F RIGHT-TO-LEFT MARK"),
    ("x = Input(2)\nz = \u2028x\n".encode(), 2, 5, "U+2028 LINE SEPARATOR"),
    (b"x = Input(2)\nz = x * \xa7\n", 2, 9, "invalid character '\u00a7'"),  # not UTF-8
    (b"x = Input(2)\nz = x * \x80\n", 2, 9, "invalid character '\\x80' (U+0080)"),
    ("\ufeffx = ¹\n".encode(), 1, 5, "U+00B9"),  # the BOM is dropped, not a column
    (b"x = Input(2)\nz = x\x00\n", 2, 6, "NUL byte"),
    (b"x = Input(2)\ny = 'abc\nz = x\n", 2, 5, "string literal is not closed"),
    (b"x = Input(2)\nz = x /* no end\n\n", 2, 7, "unterminated /* comment"),
    (b"x = Input(2)\nz = x /* a **/\n", 2, 7, "unterminated /* comment"),  # CNTK's quirk
])
def test_lexer_errors_are_one_line_at_the_column(tmp_path, data, line, col, needle):
    f = tmp_path / "lex.bs"
    f.write_bytes(data)
    with pytest.raises(ParseError) as info:
        build_from_file(f)
    got_line, got_col, msg = where(info.value, str(f))
    assert (got_line, got_col) == (line, col) and needle in msg, msg


def test_bom_at_the_start_is_fine(tmp_path):
    f = tmp_path / "bom.bs"
    f.write_bytes(b"\xef\xbb\xbf" + (X + "z = x * 3\n").encode())
    assert k_value(build_from_file(f)) == 3


def test_huge_number_literal_is_infinity_as_wcstod_reads_it(tmp_path):
    """CNTK reads numbers with wcstod (brainscript.md §1): 1e999999 is inf, a valid Double;
    used as a dimension it is a one-line error at the user's expression."""
    assert k_value(build_from_text(X + "z = x * 1e999999\n")) == float("inf")
    with pytest.raises(EvaluationError) as info:
        build_from_text("x = Input(1e999999)\nz = x\n", "num.bs")
    line, col, msg = where(info.value, "num.bs")
    assert (line, col) == (1, 10) and "dimension must be a non-negative integer" in msg


def test_ten_megabyte_identifier_is_one_short_line_quickly(tmp_path):
    f = tmp_path / "long.bs"
    f.write_text(X + "z = x * " + "a" * 10_000_000 + "\n")
    start = time.perf_counter()
    with pytest.raises(EvaluationError) as info:
        build_from_file(f)
    assert time.perf_counter() - start < 10
    line, col, msg = where(info.value, str(f))
    assert (line, col) == (2, 9) and "unknown identifier 'aaaa" in msg
    assert len(str(info.value)) < 3000


def test_file_above_the_text_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NETSURGEON_MAX_TEXT_BYTES", "1M")
    f = tmp_path / "big.bs"
    f.write_text(X + "z = x * " + "a" * 2_000_000 + "\n")
    with pytest.raises(ParseError) as info:
        build_from_file(f)
    assert str(info.value).startswith(f"{f}") and "\n" not in str(info.value)


# ---- syntax errors at the end of the user's file --------------------------------------------
@pytest.mark.parametrize("text, needle", [
    ("k = (\n", "expected an expression"),
    ("x = Abs(x\n", "expected ')' to close the argument list"),
    ("k = [ a = 1\n", "expected a member definition or ']'"),
    ("x = Input(2)\nz = if x then\n\n", "expected an expression"),
    ("x = Input(2)\nz = x .\n", "expected an identifier (member name after '.')"),
])
def test_syntax_error_at_end_of_file_names_the_users_file(tmp_path, text, needle):
    f = tmp_path / "eof.bs"
    f.write_text(text)
    with pytest.raises(ParseError) as info:
        build_from_file(f)
    line, col, msg = where(info.value, str(f))
    assert (line, col) == (text.count("\n") + 1, 1)
    assert msg == f"{needle}, found end of file"
    # without the final line break: just after the last character
    f.write_text(text.rstrip("\n"))
    line, col, _ = where(pytest.raises(ParseError, build_from_file, f).value, str(f))
    last = text.rstrip("\n").split("\n")
    assert (line, col) == (len(last), len(last[-1]) + 1)


# ---- fuzzing: in a subprocess under an address-space cap ------------------------------------
TOKENS = ["x", "y", "f", "k", "a", "Input", "Abs", "Times", "Plus", "Parameter", "Length",
          "Sequential", "DenseLayer", "BS", "new", "ComputationNode", "array", "if", "then",
          "else", "true", "false", "include", "with", "=", "==", "!=", "+", "-", "*", "/", "**",
          ".*", "%", "&&", "||", "!", "<", ">", ">>", "<<", ":", ",", ";", ".", "..", "=>",
          "(", ")", "[", "]", "{", "}", "[|", "|]", "0", "1", "2", "1e999999", "0x1F", ".5",
          "'s'", '"t"', "'", "/*", "*/", "//", "#", "\n", " ", "¹", "\u200b", "$v$",
          "operation = 'Abs'", "inputs = x", "f(v) = ", "Input(2)", "x = Input(2)\n"]


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_an_include_that_is_not_a_regular_file_is_named(tmp_path, kind):
    target = tmp_path / "lib.bs"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    main = tmp_path / "main.bs"
    main.write_text('include "lib.bs"\nx = Input(3)\n')
    start = time.monotonic()
    with pytest.raises(NetsurgeonError) as err:
        build_from_file(main)
    assert time.monotonic() - start < 5  # a FIFO is never opened
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{target}: cannot read the include file")
    assert {"fifo": "FIFO", "directory": "directory"}[kind] in text


def _small_example() -> str:
    text = EXAMPLE.read_text()
    for big, small in (("943", "7"), ("129", "5"), ("150", "3"), ("300", "2")):
        text = text.replace(big, small)
    return text


def run_fuzz(examples: int, seed: int, cap_mb: int) -> None:
    """Subprocess entry: random token soup and mutations of examples/slu_lstm.bs through the
    parser and the evaluator; only one-line located NetsurgeonErrors or success."""
    import resource

    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    from netsurgeon.lang.brainscript.parser import parse

    base = _small_example()
    build_from_text(base, "fuzz.bs")  # it builds as it is
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) for line in f if line.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (cap_mb << 20),
                                            resource.getrlimit(resource.RLIMIT_AS)[1]))
    soup = st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join)
    piece = st.one_of(st.sampled_from(TOKENS), st.text(max_size=3))

    @st.composite
    def mutated(draw) -> str:
        text = base
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(text)))
            j = draw(st.integers(i, min(len(text), i + 12)))
            how = draw(st.sampled_from(["delete", "insert", "replace", "repeat"]))
            if how == "delete":
                text = text[:i] + text[j:]
            elif how == "insert":
                text = text[:i] + draw(piece) + text[i:]
            elif how == "replace":
                text = text[:i] + draw(piece) + text[j:]
            else:
                text = text[:i] + text[i:j] * draw(st.integers(2, 50)) + text[j:]
        return text

    counts = {"ok": 0, "error": 0}
    slowest = [0.0]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(soup, mutated(), (soup | mutated()).map(lambda t: X + t + "\nz = x\n")))
    def prop(text: str) -> None:
        start = time.perf_counter()
        try:
            parse(text, "fuzz.bs")
            build_from_text(text, "fuzz.bs", max_steps=200_000)
            counts["ok"] += 1
        except NetsurgeonError as exc:
            assert LOCATED.fullmatch(str(exc)), repr(str(exc)[:500])
            counts["error"] += 1
        slowest[0] = max(slowest[0], time.perf_counter() - start)

    hseed(seed)(prop)()
    print(json.dumps({**counts, "slowest_s": slowest[0]}))


def _fuzz_in_subprocess(examples: int, timeout: int) -> dict:
    code = ("from tests.lang.brainscript.test_hardening import run_fuzz; "
            f"run_fuzz({examples}, {int(time.time()) % 10_000}, 2048)")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)  # the hang guard
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] + summary["error"] >= examples * 0.9 and summary["error"] > 0, summary
    assert summary["slowest_s"] < 20, summary
    return summary


@linux_only
def test_fuzzed_programs_give_one_line_errors_or_networks():
    print(_fuzz_in_subprocess(200, timeout=120))


@pytest.mark.slow
@linux_only
def test_fuzzed_programs_give_one_line_errors_or_networks_many():
    print(_fuzz_in_subprocess(5_000, timeout=1800))


# ---- the command line: exit 1, one line on stderr, no output file ---------------------------
CLI_CASES = {
    "invalid character": ("x = Input(2)\nz = x * ¹\n".encode(), [], 2, 9,
                          "invalid character '¹'"),
    "not UTF-8": (b"x = Input(2)\nz = x * \xa7\n", [], 2, 9, "invalid character"),
    "NUL byte": (b"x = Input(2)\nz = x\x00\n", [], 2, 6, "NUL byte"),
    "open string": (b"x = Input(2)\nz = 'x\n", [], 2, 5, "string literal is not closed"),
    "open comment": (b"x = Input(2)\n/* z = x\n", [], 2, 1, "unterminated /* comment"),
    "end of file": (b"x = Input(2)\nz = Abs(x\n", [], 3, 1, "found end of file"),
    "unknown identifier": (b"x = Input(2)\nz = Abs(y)\n", [], 2, 9,
                           "unknown identifier 'y'"),
    "library node input": (b"x = Input(2)\nz = Abs('a')\n", [], 2, 8,
                           "expected a node or a number, got a String"),
    "shape": (b"x = Input(2)\nW = Parameter(3, 4)\nz = Times(W, x)\n", [], 3, 10, "Times:"),
    "dimension": (b"x = Input(-1)\nz = x\n", [], 1, 10, "dimension must be a non-negative"),
    "nesting too deep": (b"x = Input(2)\nf(v) = f(v)\nz = x * f(0)\n", [], None, None,
                         "nesting too deep"),
    "parse nesting": (b"x = Input(2)\nz = x * " + b"(" * 1_500 + b"1" + b")" * 1_500 + b"\n",
                      [], None, None, "nesting deeper than 1,000 levels"),
    "max steps": (b"x = Input(2)\nf(n) = if n == 0 then 1 else f(n-1) + f(n-1)\n"
                  b"z = x * f(60)\n", ["--max-steps", "10000"], None, None,
                  "evaluation stopped after 10,000 steps"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_failure_is_one_line_and_writes_nothing(case, tmp_path, capsys, low_limits):
    from netsurgeon.cli import main

    data, extra, line, col, needle = CLI_CASES[case]
    f = tmp_path / "bad.bs"
    f.write_bytes(data)
    out = tmp_path / "out.nsm"
    assert main(["bs", str(f), "-o", str(out), *extra]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and not out.exists() and os.listdir(tmp_path) == ["bad.bs"]
    lines = captured.err.split("\n")
    assert len(lines) == 2 and lines[1] == "", captured.err
    assert lines[0].startswith("netsurgeon: error: ")
    got_line, got_col, msg = where(ParseError(lines[0][len("netsurgeon: error: "):]), str(f))
    assert needle in msg and (line is None or (got_line, got_col) == (line, col)), lines[0]
    assert 1 <= got_line <= data.count(b"\n") + 1


def test_cli_show_source_adds_the_line_and_a_caret(tmp_path, capsys):
    from netsurgeon.cli import main

    f = tmp_path / "bad.bs"
    f.write_text("x = Input(2)\nz = x * ¹\n")
    assert main(["bs", "--show-source", str(f), "-o", str(tmp_path / "o.nsm")]) == 1
    err = capsys.readouterr().err
    assert err.split("\n") == [f"netsurgeon: error: {f}:2:9: invalid character '¹' (U+00B9 "
                               "SUPERSCRIPT ONE) (numbers are written with the digits 0-9)",
                               "    z = x * ¹", "            ^", ""]


def test_cli_max_steps_is_enough_for_a_finite_program(tmp_path, capsys):
    from netsurgeon.cli import main

    f = tmp_path / "ok.bs"
    f.write_text(X + "f(n) = if n == 0 then 1 else f(n-1) + f(n-1)\nz = x * f(4)\n")
    out = tmp_path / "ok.nsm"
    assert main(["bs", str(f), "-o", str(out), "--max-steps", "100000"]) == 0
    assert out.exists() and "saved 3 nodes" in capsys.readouterr().out


def test_shape_errors_of_library_nodes_point_at_the_user_call():
    with pytest.raises(ShapeError) as info:
        build_from_text(X + "z = Plus(x, Input(3))\n", "shape.bs")
    line, col, _ = where(info.value, "shape.bs")
    assert (line, col) == (2, 9)
