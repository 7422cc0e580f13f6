"""Issue 15 trap: a misspelled NDL parameter name (``initt=``, ``outputRnk=``, ``tagg=``) is
an error at its place saying 'did you mean', not silently ignored; an option with no close
match is still ignored, as CNTK ignored options a function does not know."""

from __future__ import annotations

import pytest

from netsurgeon.errors import ParseError
from netsurgeon.lang.ndl import build_network

HEAD = 'features = InputValue(2, tag="feature")\n'


@pytest.mark.parametrize("line, wrong, right", [
    ("W = LearnableParameter(3, 2, initt=uniform)", "initt", "init"),
    ("W = Parameter(3, 2, learningRateMultipler=0)", "learningRateMultipler",
     "learningRateMultiplier"),
    ("W = Parameter(3, 2)\nz = Times(W, features, outputRnk=1)", "outputRnk", "outputRank"),
    ('W = Parameter(3, 2, tagg="output")', "tagg", "tag"),
])
def test_a_misspelled_parameter_says_did_you_mean(line, wrong, right):
    with pytest.raises(ParseError) as err:
        build_network(HEAD + line + "\n", source="net.ndl")
    msg = str(err.value)
    assert f"no parameter '{wrong}'" in msg and f"did you mean: {right}?" in msg
    last = line.splitlines()[-1]
    assert msg.startswith(f"net.ndl:{1 + len(line.splitlines())}:{last.index(wrong) + 1}: ")


def test_an_unrelated_unknown_option_is_still_ignored():
    net = build_network(HEAD + "W = Parameter(3, 2, somethingElse=1)\n"
                        'z = Times(W, features, tag="output")\n', source="net.ndl")
    assert [n.name for n in net.group("output")] == ["z"]
