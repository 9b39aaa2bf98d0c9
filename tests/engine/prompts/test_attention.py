"""Emphasis parsing: A1111's doctests, odd cases, and agreement with the A1111 oracle."""

from __future__ import annotations

import random

import pytest

from engine.prompts.attention import Fragment, has_emphasis, parse_attention
from tests.engine.prompts.a1111_reference import parse_prompt_attention


def pairs(text: str) -> list[list]:
    """Ours in A1111's shape: a BREAK is ["BREAK", -1]."""
    return [["BREAK", -1] if f.is_break else [f.text, f.weight] for f in parse_attention(text)]


# A1111's doctests of parse_prompt_attention, with its expected values.
DOCTESTS = [
    ("normal text", [["normal text", 1.0]]),
    ("an (important) word", [["an ", 1.0], ["important", 1.1], [" word", 1.0]]),
    ("(unbalanced", [["unbalanced", 1.1]]),
    ("\\(literal\\]", [["(literal]", 1.0]]),
    ("(unnecessary)(parens)", [["unnecessaryparens", 1.1]]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ["a ", 1.0],
            ["house", 1.5730000000000004],
            [" ", 1.1],
            ["on", 1.0],
            [" a ", 1.1],
            ["hill", 0.55],
            [", sun, ", 1.1],
            ["sky", 1.4641000000000006],
            [".", 1.1],
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), DOCTESTS)
def test_a1111_doctests(text, expected):
    assert pairs(text) == expected


ODD = [
    ("((x))", [["x", 1.2100000000000002]]),
    ("[x]", [["x", 1 / 1.1]]),
    ("[[x]]", [["x", 1 / 1.1 / 1.1]]),
    ("(x:1.5)", [["x", 1.5]]),
    ("((x:1.5))", [["x", 1.5 * 1.1]]),
    ("(a:b)", [["a:b", 1.1]]),  # not a number: the colon is text
    ("(:1.2)", [["", 1.0]]),  # nothing to weigh
    ("a (:1.2) b", [["a  b", 1.0]]),
    ("x:1.5)", [["x:1.5)", 1.0]]),  # a weight that closes nothing is text
    ("a) b]", [["a) b]", 1.0]]),
    ("[a (b] c)", [["a ", 1 / 1.1], ["b", 1.1 / 1.1], [" c", 1.1]]),
    ("\\\\ \\x", [["\\ x", 1.0]]),  # escaped backslash kept, a lone one dropped
    ("(x:-1)", [["x", -1.0]]),
    ("(cat: 1.5)", [["cat", 1.5]]),  # spaces around the weight are allowed
    ("(cat:1.5 )", [["cat", 1.5]]),
    ("(cat : 1.5)", [["cat ", 1.5]]),
    ("(x:+.5)", [["x", 0.5]]),
    ("", [["", 1.0]]),
    ("a BREAK b", [["a", 1.0], ["BREAK", -1], ["b", 1.0]]),
    ("aBREAK b", [["aBREAK b", 1.0]]),  # not a word of its own
    ("a break b", [["a break b", 1.0]]),  # upper case only
    ("BREAK", [["", 1.0], ["BREAK", -1], ["", 1.0]]),
    ("(a:1.2) BREAK (b:1.2)", [["a", 1.2], ["", 1.0], ["BREAK", -1], ["", 1.0], ["b", 1.2]]),
]


@pytest.mark.parametrize(("text", "expected"), ODD)
def test_odd_cases_as_a1111(text, expected):
    assert pairs(text) == expected
    assert parse_prompt_attention(text) == expected  # the oracle agrees: these are A1111's


def test_break_inside_brackets_still_breaks():
    """A1111 multiplies the BREAK marker and then encodes "break" at weight -1.1; we break."""
    assert parse_prompt_attention("(a BREAK b)") == [["a", 1.1], ["BREAK", -1.1], ["b", 1.1]]
    assert pairs("(a BREAK b)") == [["a", 1.1], ["BREAK", -1], ["b", 1.1]]


@pytest.mark.parametrize("text", ["(x:1.2.3)", "(x:.)", "(x:1..)"])
def test_a_weight_that_is_not_a_number_is_text(text):
    """A1111 raises ValueError (float("1.2.3")); we read the colon as text and close (x)."""
    with pytest.raises(ValueError):
        parse_prompt_attention(text)
    assert pairs(text) == [[text[1:-1], 1.1]]


def test_random_prompts_agree_with_the_a1111_oracle():
    rnd = random.Random(3)
    alphabet = [
        "a",
        "b ",
        "(",
        ")",
        "[",
        "]",
        ":",
        ":1.5)",
        ": 1.5 )",
        ":0.5",
        "\\",
        "\\(",
        " BREAK ",
        ",",
    ]
    checked = 0
    for _ in range(3000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12)))
        try:
            expected = parse_prompt_attention(text)
        except ValueError:
            continue  # a weight A1111 cannot read (see above)
        if any(w not in (-1, 1.0) and t == "BREAK" for t, w in expected) or any(
            w == -1 and t != "BREAK" for t, w in expected
        ):
            continue  # BREAK inside brackets (see above)
        assert pairs(text) == expected, text
        checked += 1
    assert checked > 2000


def test_fragments_are_text_weight_pairs():
    text, weight, is_break = parse_attention("(x)")[0]
    assert (text, weight, is_break) == ("x", 1.1, False)
    assert isinstance(parse_attention("x")[0], Fragment)
    assert has_emphasis(parse_attention("a (b)"))
    assert not has_emphasis(parse_attention("a b BREAK c (b:1.0)"))
