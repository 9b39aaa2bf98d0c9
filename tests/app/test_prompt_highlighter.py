"""The prompt's colours: the spans and formats drawn in the block layouts, both themes."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette, QTextCharFormat

from app.controls import PromptEdit
from app.prompt_highlighter import COLOURS
from app.prompt_spans import (
    BREAK,
    DOWN,
    EDITING,
    EMBEDDING,
    LORA,
    PROBLEM,
    UP,
    KnownNetworks,
    prompt_spans,
)
from app.text_positions import from_utf16
from app.theme import DARK, LIGHT, make_palette
from tests.app.fake_library import entry
from tests.app.theme_helpers import contrast

WAVY = QTextCharFormat.UnderlineStyle.WaveUnderline
KNOWN = KnownNetworks.from_entries(
    [
        entry("/m/film.safetensors", kind="lora"),
        entry("/m/xl-detail.safetensors", kind="lora", family="sdxl"),
        entry("/m/easyneg.pt", kind="embedding"),
        entry("/m/sd2neg.pt", kind="embedding", family="sd2"),
    ],
    {"easyneg": 2},
)


@pytest.fixture
def edit(qtbot):
    widget = PromptEdit("promptEdit", "")
    widget.setPalette(make_palette(LIGHT))
    qtbot.addWidget(widget)
    widget.show()
    widget.set_known(KNOWN)
    return widget


def drawn(edit: PromptEdit) -> dict[str, tuple[str, bool]]:
    """Text of each formatted range -> (its colour, wavy underline), read from the layouts."""
    found: dict[str, tuple[str, bool]] = {}
    block = edit.document().firstBlock()
    while block.isValid():
        line = block.text()
        for r in block.layout().formats():  # Qt counts UTF-16 units
            text = line[from_utf16(line, r.start) : from_utf16(line, r.start + r.length)]
            fmt = r.format
            found[text] = (fmt.foreground().color().name(), fmt.underlineStyle() == WAVY)
        block = block.next()
    return found


def colour(kind: str, scheme: str = LIGHT) -> str:
    return QColor(COLOURS[scheme][kind]).name()


def test_emphasis_editing_break_and_names_get_their_formats(edit) -> None:
    edit.setPlainText("a (cat:1.3), [dog] BREAK [day:night:0.5] <lora:film:0.8>, easyneg")
    spans = drawn(edit)
    assert spans["("] == (colour(UP), False)
    assert spans[":1.3)"] == (colour(UP), False)
    assert spans["BREAK"] == (colour(BREAK), False)
    assert spans[":0.5]"] == (colour(EDITING), False)
    assert spans["<lora:film:0.8>"] == (colour(LORA), False)
    assert spans["easyneg"] == (colour(EMBEDDING), False)
    assert "cat" not in spans and "a " not in spans  # the words themselves stay plain


def test_down_weights_and_square_brackets(edit) -> None:
    edit.setPlainText("[dog] (fog:0.7)")
    spans = drawn(edit)
    assert spans["["] == spans["]"] == (colour(DOWN), False)
    assert spans[":0.7)"] == (colour(DOWN), False)


def test_unknown_and_foreign_names_are_flagged_with_a_tip(edit) -> None:
    edit.setPlainText("<lora:nope:1> <lora:xl-detail:1> sd2neg stray)")
    spans = drawn(edit)
    for text in ("<lora:nope:1>", "<lora:xl-detail:1>", "sd2neg", ")"):
        assert spans[text] == (colour(PROBLEM), True), text
    tips = edit.highlighter.problems()
    assert "No LoRA named “nope”" in tips[0]
    assert tips[1] == (
        "LoRA “xl-detail”: made for Stable Diffusion XL, not for Stable Diffusion 1.x models."
    )
    assert tips[2].startswith("Embedding “sd2neg”: made for Stable Diffusion 2.x")
    assert "No LoRA named “nope”" in edit.accessibleDescription()  # screen readers too


def test_tooltip_over_an_unknown_name(edit) -> None:
    edit.setPlainText("<lora:nope:1> cat")
    cursor = edit.textCursor()
    cursor.setPosition(3)
    on_tag = edit.cursorRect(cursor).center()
    assert "No LoRA named “nope”" in edit.tip_at(on_tag)
    cursor.setPosition(len("<lora:nope:1> c"))
    assert edit.tip_at(edit.cursorRect(cursor).center()) == ""  # plain words: no tip


def test_a_library_update_clears_the_flag(edit) -> None:
    edit.setPlainText("<lora:grain:0.5>")
    assert drawn(edit)["<lora:grain:0.5>"][1]
    edit.set_known(KnownNetworks.from_entries([entry("/x/grain.safetensors", kind="lora")]))
    assert drawn(edit)["<lora:grain:0.5>"] == (colour(LORA), False)
    assert edit.accessibleDescription() == ""


def test_a_bracket_closed_on_another_line_recolours_the_first(qtbot, edit) -> None:
    edit.setPlainText("(a,\nb:0.5)")
    assert drawn(edit)["("] == (colour(DOWN), False)
    cursor = edit.textCursor()
    cursor.setPosition(len("(a,\nb:"))
    cursor.deleteChar()
    cursor.insertText("1")  # now (a, b:1.5): line one's "(" weighs up
    qtbot.wait_until(lambda: drawn(edit)["("] == (colour(UP), False), timeout=2000)


def test_characters_beyond_utf16_do_not_shift_the_colours(edit) -> None:
    edit.setPlainText("🐱🐱 (cat:1.2)\n🐶 [dog] <lora:film:1>")
    spans = drawn(edit)
    assert spans["("] == spans[":1.2)"] == (colour(UP), False)
    assert spans["["] == spans["]"] == (colour(DOWN), False)
    assert spans["<lora:film:1>"] == (colour(LORA), False)


def test_theme_change_swaps_the_colours(qtbot, edit) -> None:
    edit.setPlainText("(cat:1.2)")
    assert drawn(edit)["("][0] == colour(UP, "light")
    edit.setPalette(make_palette(DARK))
    assert drawn(edit)["("][0] == colour(UP, "dark")


@pytest.mark.parametrize("scheme", [LIGHT, DARK])
def test_colours_are_readable_on_the_theme(scheme: str) -> None:
    base = make_palette(scheme).color(QPalette.ColorRole.Base)
    for kind, name in COLOURS[scheme].items():
        ratio = contrast(QColor(name), base)
        assert ratio >= 4.5, f"{scheme} {kind}: {ratio:.2f}"


def test_spans_follow_a1111_bracket_rules() -> None:
    kinds = {
        (s.kind, "(a [b) c]"[s.start : s.end]) for s in prompt_spans("(a [b) c]", KnownNetworks())
    }
    # round and square brackets are two stacks: "(" closes at ")" across the "[".
    assert kinds == {(UP, "("), (UP, ")"), (DOWN, "["), (DOWN, "]")}
    alternation = prompt_spans("[cat|dog|cow]", KnownNetworks())
    assert [s.kind for s in alternation] == [EDITING] * 4
    escaped = prompt_spans(r"\(not emphasis\) <lora:film:1>", KNOWN)
    assert [s.kind for s in escaped] == [LORA]
    unclosed = prompt_spans("(rest of it", KNOWN)
    assert [(s.kind, s.start) for s in unclosed] == [(UP, 0)]


def test_a_long_pasted_prompt_is_checked_once_not_per_line(qtbot, edit, monkeypatch) -> None:
    """Every highlighted line used to re-check every line (60 lines: ~0.6 s frozen on paste);
    the check now runs once per edit, so the work grows with the lines, not their square."""
    import app.prompt_highlighter as highlighter

    calls = 0
    real = highlighter._clip

    def counting(*args):
        nonlocal calls
        calls += 1
        return real(*args)

    monkeypatch.setattr(highlighter, "_clip", counting)
    lines = 60
    edit.setPlainText("a (red:1.2) circle, [blurry] BREAK ((sharp)) on white,\n" * lines)
    qtbot.wait(50)  # the check after the edit
    assert drawn(edit)["(("] == (colour(UP), False)  # still highlighted
    assert calls <= 6 * lines, calls  # was lines**2 = 3600 and more
