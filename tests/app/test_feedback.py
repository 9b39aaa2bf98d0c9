"""Feedback for every action: cancelled runs say so, confirmations go to the status bar,
a folder that cannot be opened shows its path, the shortcuts list is a table."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QMessageBox, QTableWidget

from app.jobs import FinishedImage
from app.services import Services
from app.settings import Settings
from app.shortcuts_dialog import SHORTCUTS
from app.window import MainWindow
from tests.app.fake_engine import FakeEngine, MemorySaver, write_fake_checkpoint


@pytest.fixture
def make_window(qtbot, tmp_path):
    def make(reveal=None):
        services = Services(
            lambda: FakeEngine(step_seconds=0.03),
            MemorySaver(),
            **({"reveal": reveal} if reveal else {}),
        )
        w = MainWindow(Settings(), tmp_path / "gallery", services, tmp_path / "s.json")
        qtbot.addWidget(w)
        w.show()
        return w

    return make


def _dialogs(window) -> list[QMessageBox]:
    return [b for b in window.findChildren(QMessageBox) if b.isVisible()]


def test_esc_says_cancelled_and_badges_the_preview(qtbot, make_window, tmp_path):
    w = make_window()
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        w.load_model(str(write_fake_checkpoint(tmp_path / "tiny.safetensors")))
    w.params.update({"prompt": "slow", "steps": 150, "width": 64, "height": 64})
    w.generate()
    qtbot.wait_until(lambda: w.preview.updates >= 2, timeout=5000)
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert w.progress.format() == "Cancelled"
    assert w.statusBar().currentMessage().startswith("Cancelled")
    assert w.preview.cancelled
    shown = w.preview.grab().toImage()
    w.preview.cancelled = False
    assert w.preview.grab().toImage() != shown  # the badge is drawn
    w.preview.cancelled = True
    w.params.steps = 2
    w.generate()  # the next run's pictures replace the badge and the word
    assert w.progress.format() != "Cancelled"
    qtbot.wait_until(lambda: not w.jobs.running, timeout=5000)
    assert not w.preview.cancelled and w.progress.format() == "Idle"
    w.close()


def test_cancel_with_nothing_running_says_nothing(make_window):
    w = make_window()
    w.cancel()
    assert w.progress.format() == "Idle" and not w.preview.cancelled


def test_copy_and_save_confirmations_go_to_the_status_bar(qtbot, make_window, tmp_path):
    w = make_window()
    image = FinishedImage(np.full((8, 8, 3), 200, np.uint8), 1, "", None)
    w.gallery.add_image(image)
    w.gallery.build_menu(w.gallery.item(0))  # as a right-click would
    actions = {a.text(): a for a in w.gallery.build_menu(w.gallery.item(0)).actions()}
    actions["Copy image"].trigger()
    assert w.statusBar().currentMessage() == "Image copied."
    assert not QGuiApplication.clipboard().image().isNull()
    w.gallery.save_as(w.gallery.item(0), str(tmp_path / "kept.png"))
    assert w.statusBar().currentMessage() == "Saved kept.png."
    actions["Use settings"].trigger()  # an image without settings: said, not a dialog
    assert "no generation settings" in w.statusBar().currentMessage()
    assert not _dialogs(w)


def test_errors_still_open_a_dialog(make_window):
    w = make_window()
    w.paste_image() if QGuiApplication.clipboard().image().isNull() else w.show_error("x")
    assert len(_dialogs(w)) == 1
    for box in _dialogs(w):
        box.accept()


def test_gallery_folder_that_cannot_be_opened_shows_its_path(qtbot, make_window):
    tried = []
    w = make_window(reveal=lambda folder: tried.append(folder) or False)
    w.open_gallery_folder()
    assert tried == [w.gallery_dir]
    notice = w.path_notice
    assert notice.isVisible() and "No file manager" in notice.label.text()
    assert str(w.gallery_dir) in notice.label.text()
    assert notice.label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    notice.copy_button.click()
    assert QGuiApplication.clipboard().text() == str(w.gallery_dir)
    notice.close_button.click()
    assert not notice.isVisible()
    assert not _dialogs(w)


def test_gallery_folder_that_opens_shows_no_notice(make_window):
    w = make_window(reveal=lambda folder: True)
    w.open_gallery_folder()
    assert not w.path_notice.isVisible()


def test_shortcuts_are_a_table_with_room_between_keys_and_actions(qtbot, make_window):
    w = make_window()
    w.show_shortcuts()
    table = w.findChild(QTableWidget, "shortcutsTable")
    qtbot.wait_until(table.isVisible)
    assert table.rowCount() == len(SHORTCUTS) and table.columnCount() == 2
    metrics = table.fontMetrics()
    widest_key = max(metrics.horizontalAdvance(keys) for keys, _ in SHORTCUTS)
    # Keys in a column of their own, wider than the widest key: nothing runs together.
    assert table.columnWidth(0) >= widest_key + metrics.averageCharWidth()
    assert table.item(3, 0).text() == "B, E, I, F"
    assert "Brush" in table.item(3, 1).text()
    assert not any(isinstance(c, QLabel) and "<table>" in c.text() for c in w.findChildren(QLabel))
    table.window().close()
