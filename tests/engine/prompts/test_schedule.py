"""Prompt editing and alternation against A1111's own parser's answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.prompts.schedule import prompt_schedule, schedule_texts, switch_step, text_at_step

CASES = json.loads((Path(__file__).parent / "data" / "a1111_schedules.json").read_text())["cases"]


def g(prompt: str, steps: int = 10) -> list[list]:
    return [list(entry) for entry in prompt_schedule(prompt, steps)]


# A1111's doctests of get_learned_conditioning_prompt_schedules (10 steps).
DOCTESTS = [
    ("test", [[10, "test"]]),
    ("a [b:3]", [[3, "a "], [10, "a b"]]),
    ("a [b: 3]", [[3, "a "], [10, "a b"]]),
    ("a [[[b]]:2]", [[2, "a "], [10, "a [[b]]"]]),
    ("[(a:2):3]", [[3, ""], [10, "(a:2)"]]),
    ("a [b : c : 1] d", [[1, "a b  d"], [10, "a  c  d"]]),
    ("a[b:[c:d:2]:1]e", [[1, "abe"], [2, "ace"], [10, "ade"]]),
    ("a [unbalanced", [[10, "a [unbalanced"]]),
    ("a [b:.5] c", [[5, "a  c"], [10, "a b c"]]),
    ("((a][:b:c [d:3]", [[3, "((a][:b:c "], [10, "((a][:b:c d"]]),
    ("[a|(b:1.1)]", [[s, "a" if s % 2 else "(b:1.1)"] for s in range(1, 11)]),
    ("[fe|]male", [[s, "female" if s % 2 else "male"] for s in range(1, 11)]),
    ("[fe|||]male", [[s, "female" if s % 4 == 1 else "male"] for s in range(1, 11)]),
]


@pytest.mark.parametrize(("prompt", "expected"), DOCTESTS)
def test_a1111_doctests(prompt, expected):
    assert g(prompt) == expected


def test_a1111_comment_example_at_100_steps():
    prompt = (
        "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75]"
        "[ in foreground::0.6][ in background:0.25] [shoddy:masterful:0.5]"
    )
    assert g(prompt, 100) == [
        [25, "fantasy landscape with a mountain and an oak in foreground shoddy"],
        [50, "fantasy landscape with a lake and an oak in foreground in background shoddy"],
        [60, "fantasy landscape with a lake and an oak in foreground in background masterful"],
        [75, "fantasy landscape with a lake and an oak in background masterful"],
        [100, "fantasy landscape with a lake and a christmas tree in background masterful"],
    ]


def test_hundreds_of_prompts_as_a1111s_parser_reads_them():
    """800 cases (odd brackets, escapes, bars, stray colons, numbers) recorded from A1111's lark
    grammar: the same schedule for every one."""
    mismatches = [
        c for c in CASES if g(c["prompt"], c["steps"]) != [list(e) for e in c["schedule"]]
    ]
    assert not mismatches, mismatches[:5]
    assert len(CASES) == 800


@pytest.mark.parametrize(
    ("when", "steps", "expected"),
    [(0.25, 20, 5), (0.5, 7, 3), (3, 20, 3), (1, 20, 1), (1.5, 20, 1), (50, 20, 20), (0.01, 20, 0)],
)
def test_when_below_one_is_a_fraction_else_a_step(when, steps, expected):
    assert switch_step(when, steps) == expected


def test_malformed_prompts_are_used_whole():
    for prompt in ("a | b", "trailing \\", "[a|b", "[a:b:c]x|"):
        assert g(prompt) == [[10, prompt]]


def test_text_at_step_and_distinct_texts():
    schedule = prompt_schedule("[a|b] [c:d:0.5]", 4)
    assert [text_at_step(schedule, s) for s in (1, 2, 3, 4)] == ["a c", "b c", "a d", "b d"]
    assert text_at_step(schedule, 9) == "b d"
    assert schedule_texts("[a|b] x", 6) == ["a x", "b x"]
