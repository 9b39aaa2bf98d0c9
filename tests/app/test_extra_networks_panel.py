"""The LoRA and embedding browser: what it lists, the filter, and where a choice goes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QListWidgetItem

from app.controls import ControlsPanel
from app.extra_networks import insert_into, network_items
from app.extra_networks_panel import ExtraNetworksDialog
from app.library import LibraryState
from app.viewmodel import GenerationParams, JobsState
from engine.library.records import Place
from tests.app.fake_library import entry

ENTRIES = (
    entry("/m/Lora/film-grain.safetensors", kind="lora"),
    entry("/m/Lora/xl-detail.safetensors", kind="lora", family="sdxl"),
    entry("/m/embeddings/easyneg.pt", kind="embedding"),
    entry("/m/v1-5.safetensors"),  # a checkpoint: not listed
)


@pytest.fixture
def panel(qtbot):
    controls = ControlsPanel(GenerationParams(), JobsState())
    qtbot.addWidget(controls)
    controls.show()
    return controls


@pytest.fixture
def dialog(qtbot, panel):
    library = LibraryState()
    library.entries = ENTRIES
    window = ExtraNetworksDialog(library)
    window.insert_requested.connect(panel.insert_network)
    qtbot.addWidget(window)
    window.show()
    return window


def _lines(dialog: ExtraNetworksDialog) -> list[QListWidgetItem]:
    return [dialog.list.item(row) for row in range(dialog.list.count())]


def _click(qtbot, dialog: ExtraNetworksDialog, name: str) -> None:
    line = next(item for item in _lines(dialog) if item.text().startswith(name))
    rect = dialog.list.visualItemRect(line)
    qtbot.mouseClick(dialog.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _cursor_at(qtbot, edit, position: int) -> None:
    """As a click into the field: its window active, the field focused, the cursor placed."""
    edit.window().activateWindow()
    edit.setFocus()
    qtbot.wait_until(edit.hasFocus, timeout=2000)
    cursor = edit.textCursor()
    cursor.setPosition(position)
    edit.setTextCursor(cursor)


def test_lists_loras_then_embeddings_with_family_foreign_ones_greyed(dialog) -> None:
    lines = _lines(dialog)
    assert [line.text() for line in lines] == [
        "film-grain  ·  LoRA  ·  Stable Diffusion 1.x",
        "xl-detail  ·  LoRA  —  made for Stable Diffusion XL, not for Stable Diffusion 1.x models",
        "easyneg  ·  Embedding  ·  Stable Diffusion 1.x",
    ]
    assert lines[0].flags() & Qt.ItemFlag.ItemIsEnabled
    assert not lines[1].flags() & Qt.ItemFlag.ItemIsEnabled  # greyed, with the reason
    assert dialog.list.currentItem() is lines[0]


def test_filter_hides_what_does_not_match(qtbot, dialog) -> None:
    qtbot.keyClicks(dialog.filter, "NEG")
    assert [line.isHidden() for line in _lines(dialog)] == [True, True, False]
    dialog.filter.setText("zzz")
    assert dialog.list.isHidden() and "Nothing matches “zzz”" in dialog.empty.text()


def test_click_inserts_at_the_cursor_of_the_prompt_used_last(qtbot, panel, dialog) -> None:
    panel.prompt.setPlainText("a cat")
    panel.negative.setPlainText("blurry")
    _cursor_at(qtbot, panel.prompt, 5)
    _cursor_at(qtbot, panel.negative, 0)  # the negative prompt had the focus last
    _click(qtbot, dialog, "easyneg")
    assert panel.negative.toPlainText() == "easyneg, blurry"
    assert panel.prompt.toPlainText() == "a cat"
    _cursor_at(qtbot, panel.prompt, 2)
    _click(qtbot, dialog, "film-grain")
    assert panel.prompt.toPlainText() == "a, <lora:film-grain:1>, cat"
    assert dialog.feedback.text() == "Inserted <lora:film-grain:1>"
    panel.prompt.undo()  # one undo step per insertion
    assert panel.prompt.toPlainText() == "a cat"


def test_enter_inserts_and_greyed_lines_cannot_be_picked(qtbot, panel, dialog) -> None:
    panel.prompt.setPlainText("a cat")
    _cursor_at(qtbot, panel.prompt, 5)
    dialog.filter.setFocus()
    qtbot.keyClicks(dialog.filter, "film")
    qtbot.keyClick(dialog.filter, Qt.Key.Key_Return)
    assert panel.prompt.toPlainText() == "a cat, <lora:film-grain:1>"
    _click(qtbot, dialog, "xl-detail")  # hidden by the filter, and greyed
    dialog.filter.clear()
    _click(qtbot, dialog, "xl-detail")
    assert panel.prompt.toPlainText() == "a cat, <lora:film-grain:1>"


def test_empty_library_says_where_the_files_go(qtbot) -> None:
    library = LibraryState()
    library.places = (Place(Path("/srv/models"), "app"), Place(Path("/data/sd"), "user"))
    window = ExtraNetworksDialog(library)
    qtbot.addWidget(window)
    window.show()
    assert window.list.isHidden() and window.empty.isVisible()
    assert "No LoRAs or embeddings found" in window.empty.text()
    assert "/srv/models" in window.empty.text() and "/data/sd" in window.empty.text()
    library.entries = ENTRIES  # a scan finds some: listed at once
    assert window.list.count() == 3 and window.empty.isHidden()


@pytest.mark.parametrize(
    ("marked", "after"),
    [
        ("|", "<x>|"),
        ("a cat|", "a cat, <x>|"),
        ("a cat |", "a cat, <x>|"),
        ("a cat,|", "a cat, <x>|"),
        ("a cat, |", "a cat, <x>|"),
        ("|a cat", "<x>|, a cat"),
        ("a c|at, dog", "a cat, <x>|, dog"),  # inside a word: after it
        ("a, |, b", "a, <x>|, b"),
        ("(|)", "(<x>|)"),
        ("one\n|", "one\n<x>|"),
    ],
)
def test_insertion_spacing(marked: str, after: str) -> None:
    cursor = marked.index("|")
    text, at = insert_into(marked.replace("|", ""), cursor, "<x>")
    assert text[:at] + "|" + text[at:] == after


def test_names_judged_as_the_engine_finds_them() -> None:
    items = network_items(
        [
            entry("/b/Grain.safetensors", kind="lora"),
            entry("/a/grain.safetensors", kind="lora"),
            entry("/c/bad:name.safetensors", kind="lora"),
            entry("/d/odd.safetensors", kind="lora", family=None),
            entry("/z/neg.pt", kind="embedding", family="sd2"),
            entry("/y/neg.pt", kind="embedding"),
        ]
    )
    assert [(i.path, i.usable) for i in items] == [
        ("/d/odd.safetensors", True),  # family unknown: the engine tries it
        ("/c/bad:name.safetensors", False),  # ":" would end the tag
        ("/a/grain.safetensors", False),  # two LoRAs of one name (case ignored): both refused
        ("/b/Grain.safetensors", False),
        ("/y/neg.pt", True),  # of two embeddings of one name, the first by path is used
    ]
    assert "2 LoRA files have this name" in items[2].reason


def test_insert_keeps_text_cursor_selection_free(qtbot, panel) -> None:
    panel.prompt.setPlainText("sky")
    cursor = panel.prompt.textCursor()
    cursor.setPosition(0)
    cursor.setPosition(3, QTextCursor.MoveMode.KeepAnchor)
    panel.prompt.setTextCursor(cursor)
    panel.insert_network("<lora:a:1>")
    assert panel.prompt.toPlainText() == "sky, <lora:a:1>"
    assert not panel.prompt.textCursor().hasSelection()
