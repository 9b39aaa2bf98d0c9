"""Ctrl+Up / Ctrl+Down in the prompt: A1111's edit-attention, on text and on the widget."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from app.controls import PromptEdit
from app.prompt_weight import change_weight, format_weight, minimal_change

CTRL = Qt.KeyboardModifier.ControlModifier


def _marked(marked: str) -> tuple[str, int, int]:
    """ "a |cat|" -> ("a cat", 2, 5): the bars mark the selection, one bar a cursor."""
    start = marked.index("|")
    end = marked.rindex("|") - 1 if marked.count("|") == 2 else start
    return marked.replace("|", ""), start, end


def _press(marked: str, up: bool) -> str | None:
    text, start, end = _marked(marked)
    edit = change_weight(text, start, end, up)
    if edit is None:
        return None
    if edit.start == edit.end:
        return edit.text[: edit.start] + "|" + edit.text[edit.start :]
    return f"{edit.text[: edit.start]}|{edit.text[edit.start : edit.end]}|{edit.text[edit.end :]}"


@pytest.mark.parametrize(
    ("before", "up", "after"),
    [
        # the word under the cursor, A1111's delimiters
        ("a c|at, dog", True, "a (|cat|:1.1), dog"),
        ("a c|at, dog", False, "a (|cat|:0.9), dog"),
        ("|cat", True, "(|cat|:1.1)"),
        ("cat|", True, "(|cat|:1.1)"),
        ("red-ha|ired girl", True, "(|red-haired|:1.1) girl"),
        ("a.b|c", True, "a.(|bc|:1.1)"),
        ("line one\nt|wo", True, "line one\n(|two|:1.1)"),
        # a selection: wrapped, outer spaces left outside
        ("|big red| dog", True, "(|big red|:1.1) dog"),
        ("a| big red |dog", True, "a (|big red|:1.1) dog"),
        # an existing weight, cursor inside or its text selected (a repeated press)
        ("(c|at:1.1)", True, "(|cat|:1.2)"),
        ("(|cat|:1.2)", True, "(|cat|:1.3)"),
        ("(cat:1.3|)", False, "(|cat|:1.2)"),
        ("(c|at: 1.5 )", True, "(|cat|:1.6)"),
        ("(|cat|:0.95)", True, "(|cat|:1.05)"),
        # back to 1.0: the brackets go, as A1111
        ("a (c|at:1.1) b", False, "a |cat| b"),
        ("a (|cat|:0.9) b", True, "a |cat| b"),
        # below 1.0 and below 0
        ("(|cat|:0.1)", False, "(|cat|:0.0)"),
        ("(|cat|:0.0)", False, "(|cat|:-0.1)"),
        # nested: the innermost weighted bracket around the cursor
        ("((a|:1.2), b:1.1)", True, "((|a|:1.3), b:1.1)"),
        ("((a:1.2), |b:1.1)", True, "(|(a:1.2), b|:1.2)"),
        # a bracket without a weight: the word inside it
        ("(c|at)", True, "((|cat|:1.1))"),
        ("[c|at]", False, "(|[cat]|:0.9)"),  # "[" is no delimiter in A1111 either
        # escaped brackets are text, not emphasis
        (r"\(c|at\)", True, r"\((|cat|:1.1)\)"),
        # LoRA tags: A1111's 0.05 step, the selection on "lora:name"
        ("x <lora:gr|ain:0.8> y", True, "x <|lora:grain|:0.85> y"),
        ("x <|lora:grain|:0.85> y", False, "x <|lora:grain|:0.8> y"),
        ("<lora:grain:1|>", False, "<|lora:grain|:0.95>"),
        ("<lora:gr|ain>", True, "<|lora:grain|:1.05>"),
        ("<lora:g|:0.5:0.2>", True, "<|lora:g|:0.55:0.25>"),
        ("<lora:g|:te=0.5:unet=1>", False, "<|lora:g|:te=0.45:unet=0.95>"),
        ("<lora:grain:0.05|>", False, "<|lora:grain|:0.0>"),
        ("cat |<lora:grain:0.5>", True, "cat <|lora:grain|:0.55>"),  # just before the "<"
        ("|cat <lora:x:1>|", True, "(|cat <lora:x:1>|:1.1)"),  # whole tags may be wrapped
    ],
)
def test_weight_cases(before: str, up: bool, after: str) -> None:
    assert _press(before, up) == after


@pytest.mark.parametrize(
    "before",
    ["a, |, b", "|", "a (b:1.2)| c", "  |  ", "|cat <lora|:x:1>"],  # half a tag
)
def test_nothing_to_weigh(before: str) -> None:
    assert _press(before, True) is None


def test_repeated_presses_walk_the_weight_without_float_noise() -> None:
    text, start, end = "a cat", 3, 3
    seen = []
    for _ in range(12):
        edit = change_weight(text, start, end, True)
        assert edit is not None
        text, start, end = edit.text, edit.start, edit.end
        seen.append(text)
    assert seen[0] == "a (cat:1.1)" and seen[8] == "a (cat:1.9)" and seen[-1] == "a (cat:2.2)"
    assert all(len(t) <= len("a (cat:2.2)") for t in seen)  # never 1.2000000000000002
    for _ in range(12):
        edit = change_weight(text, start, end, False)
        assert edit is not None
        text, start, end = edit.text, edit.start, edit.end
    assert text == "a cat"


def test_format_weight_reads_like_a1111() -> None:
    assert format_weight(1.1 + 0.1) == "1.2"
    assert format_weight(2) == "2.0"
    assert format_weight(0.3 - 0.1 - 0.2) == "0.0"  # -2.8e-17, not "-0.0"


def test_minimal_change_replaces_only_what_differs() -> None:
    assert minimal_change("a cat, b", "a (cat:1.1), b") == (2, 5, "(cat:1.1)")
    assert minimal_change("(cat:1.2)", "(cat:1.3)") == (7, 8, "3")
    assert minimal_change("same", "same") == (4, 4, "")


# -- the widget: real key events ------------------------------------------------------------


@pytest.fixture
def edit(qtbot):
    widget = PromptEdit("promptEdit", "")
    qtbot.addWidget(widget)
    widget.show()
    return widget


def _set(edit: PromptEdit, marked: str) -> None:
    text, start, end = _marked(marked)
    edit.setPlainText(text)
    cursor = edit.textCursor()
    cursor.setPosition(start)
    cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
    edit.setTextCursor(cursor)


def _state(edit: PromptEdit) -> tuple[str, str]:
    return edit.toPlainText(), edit.textCursor().selectedText()


def test_ctrl_up_and_down_on_the_widget(qtbot, edit) -> None:
    _set(edit, "a c|at, dog")
    qtbot.keyClick(edit, Qt.Key.Key_Up, CTRL)
    assert _state(edit) == ("a (cat:1.1), dog", "cat")
    qtbot.keyClick(edit, Qt.Key.Key_Up, CTRL)  # the selection is kept: the same weight again
    assert _state(edit) == ("a (cat:1.2), dog", "cat")
    for _ in range(2):
        qtbot.keyClick(edit, Qt.Key.Key_Down, CTRL)
    assert _state(edit) == ("a cat, dog", "cat")  # at 1.0 the brackets are gone
    qtbot.keyClick(edit, Qt.Key.Key_Down, CTRL)
    assert _state(edit) == ("a (cat:0.9), dog", "cat")


def test_widget_selection_existing_weight_nested_and_lora(qtbot, edit) -> None:
    _set(edit, "|big red| dog")
    qtbot.keyClick(edit, Qt.Key.Key_Down, CTRL)
    assert _state(edit) == ("(big red:0.9) dog", "big red")
    _set(edit, "x, (sky:1.4|)")
    qtbot.keyClick(edit, Qt.Key.Key_Up, CTRL)
    assert _state(edit) == ("x, (sky:1.5)", "sky")
    _set(edit, "((a|:1.2), b:1.1)")
    qtbot.keyClick(edit, Qt.Key.Key_Down, CTRL)
    assert _state(edit) == ("((a:1.1), b:1.1)", "a")
    _set(edit, "cat <lora:fi|lm:0.8>")
    qtbot.keyClick(edit, Qt.Key.Key_Up, CTRL)
    qtbot.keyClick(edit, Qt.Key.Key_Up, CTRL)
    assert _state(edit) == ("cat <lora:film:0.9>", "lora:film")


def test_one_undo_step_per_press(qtbot, edit) -> None:
    _set(edit, "a c|at")
    qtbot.keyClick(edit, Qt.Key.Key_Up, CTRL)
    qtbot.keyClick(edit, Qt.Key.Key_Up, CTRL)
    assert edit.toPlainText() == "a (cat:1.2)"
    edit.undo()
    assert edit.toPlainText() == "a (cat:1.1)"
    edit.undo()
    assert edit.toPlainText() == "a cat"


def test_positions_after_characters_beyond_utf16(qtbot, edit) -> None:
    # Qt counts an emoji as two positions, Python as one character.
    _set(edit, "🐱 c|at")
    qtbot.keyClick(edit, Qt.Key.Key_Up, CTRL)
    assert _state(edit) == ("🐱 (cat:1.1)", "cat")


def test_plain_arrows_and_ctrl_enter_still_work(qtbot, edit) -> None:
    _set(edit, "one\ntw|o")
    qtbot.keyClick(edit, Qt.Key.Key_Up)
    assert edit.toPlainText() == "one\ntwo" and edit.textCursor().blockNumber() == 0
    qtbot.keyClick(edit, Qt.Key.Key_Return, CTRL)
    assert edit.toPlainText() == "one\ntwo"  # the window's Generate, not a new line
