"""Prompt syntax in the window: the token counter, the library's names, Ctrl+L, job notes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import Qt
from safetensors.numpy import save_file

from app.controls import token_label_text
from app.services import Services
from app.settings import Settings
from app.window import MainWindow
from engine.prompts.tokens import TokenCount
from tests.app.fake_engine import FakeEngine, MemorySaver, write_fake_checkpoint
from tests.app.fake_library import FakeLibrary, entry

NOTE = "film-grain: 40 of 64 layers matched"


class NotingEngine(FakeEngine):
    """Reports what a LoRA-using engine reports about a partly matching LoRA."""

    def generate(self, request, **kwargs):
        result = super().generate(request, **kwargs)
        return dataclasses.replace(result, notes=(NOTE,))


@pytest.fixture
def window(qtbot, tmp_path):
    embedding = tmp_path / "easyneg.safetensors"
    save_file({"emb_params": np.zeros((3, 768), dtype=np.float16)}, str(embedding))
    entries = [
        entry(tmp_path / "film-grain.safetensors", kind="lora"),
        entry(embedding, kind="embedding"),
    ]
    services = Services(NotingEngine, MemorySaver(), library_factory=lambda: FakeLibrary(entries))
    w = MainWindow(Settings(), tmp_path / "g", services, tmp_path / "s.json")
    qtbot.addWidget(w)
    w.show()
    qtbot.wait_until(lambda: w.library_state.scanned, timeout=10000)
    yield w
    w.close()


def _type(qtbot, window: MainWindow, text: str) -> str:
    """Set the prompt and wait for the counter (it recounts 150 ms after typing stops)."""
    window.controls.prompt.setPlainText(text)
    qtbot.wait(200)
    qtbot.wait_until(lambda: not window.controls._token_timer.isActive(), timeout=2000)
    return window.controls.prompt_tokens.text()


def test_counter_counts_what_is_encoded(qtbot, window) -> None:
    assert _type(qtbot, window, "(word:1.3)") == "1/75"  # brackets and weight count nothing
    assert _type(qtbot, window, "word") == "1/75"
    assert _type(qtbot, window, "a BREAK b") == "76/150"  # BREAK fills the first chunk
    assert _type(qtbot, window, "cat <lora:film-grain:0.8>") == "1/75"
    # The embedding counts its 3 vectors, read from the file's header off the GUI thread.
    qtbot.wait_until(lambda: _type(qtbot, window, "easyneg") == "3/75", timeout=5000)
    assert "BREAK ends a chunk" in window.controls.prompt_tokens.toolTip()


def test_token_label_text() -> None:
    assert token_label_text(TokenCount(12, 1)) == "12/75"
    assert token_label_text(TokenCount(80, 2)) == "80/150"


def test_the_library_names_reach_the_highlighter(qtbot, window) -> None:
    edit = window.controls.prompt
    edit.setPlainText("<lora:film-grain:1> <lora:missing:1> easyneg")
    assert edit.highlighter.problems() == [
        "No LoRA named “missing” in the model library. Put the file in one of the library's "
        "folders (File › Models…) or pick a name from the LoRA browser."
    ]
    at = len("<lora:film-grain:1> <lora:missing:1> e")
    qtbot.wait_until(  # once the header is read: its vector count
        lambda: edit.highlighter.span_at(at).tip == "Embedding “easyneg”: 3 vectors", timeout=5000
    )


def test_ctrl_l_opens_the_browser_and_it_inserts(qtbot, window) -> None:
    window.activateWindow()
    window.controls.prompt.setFocus()
    qtbot.wait_until(window.controls.prompt.hasFocus, timeout=2000)
    window.controls.prompt.setPlainText("a cat")
    window.controls.prompt.moveCursor(window.controls.prompt.textCursor().MoveOperation.End)
    qtbot.keyClick(window.controls.prompt, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    dialog = window.networks_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.list.count() == 2
    qtbot.keyClick(dialog.list, Qt.Key.Key_Return)  # the first line: the LoRA
    assert window.controls.prompt.toPlainText() == "a cat, <lora:film-grain:1>"


def test_button_beside_the_prompt_opens_it_too(qtbot, window) -> None:
    window.controls.networks_button.click()
    assert window.networks_dialog is not None and window.networks_dialog.isVisible()
    assert window.controls.networks_button.accessibleName()


def test_a_finished_jobs_notes_reach_the_status_bar(qtbot, window, tmp_path) -> None:
    with qtbot.wait_signal(window.controller.model_loaded, timeout=5000):
        window.load_model(str(write_fake_checkpoint(tmp_path / "tiny.safetensors")))
    window.params.steps = 2
    with qtbot.wait_signal(window.controller.notes, timeout=5000) as noted:
        window.generate()
    assert noted.args[1] == (NOTE,)
    assert window.statusBar().currentMessage() == f"Note: {NOTE}"
