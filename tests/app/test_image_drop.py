"""Pictures dropped on the window or pasted: their parameters are offered (what was recovered,
what is missing), never inserted into the prompt as ``file://`` text; restoring sets the mode."""

from __future__ import annotations

import base64
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from app.parameters_dialog import NO_PARAMETERS, ParametersDialog
from app.services import Services
from app.settings import Settings
from app.viewmodel import SKETCH, TXT2IMG
from app.window import MainWindow
from engine.output import encode_png, save_png
from tests.app.fake_engine import FakeEngine, MemorySaver

FIXTURES = Path(__file__).parents[1] / "engine" / "gallery" / "fixtures"
OURS = (
    "a lighthouse at dusk\nNegative prompt: fog\n"
    "Steps: 12, Sampler: Euler a, CFG scale: 5.5, Seed: 4242, Size: 64x96, "
    "Denoising strength: 0.6, Version: latentdesk 0.1"
)


@pytest.fixture
def window(qtbot, tmp_path):
    services = Services(lambda: FakeEngine(), MemorySaver())
    w = MainWindow(Settings(), tmp_path / "gallery", services, tmp_path / "settings.json")
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def files(*paths: Path) -> QMimeData:
    """What a file manager (or our gallery) puts in a drag: URLs, and their text."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    mime.setText("\n".join(str(p) for p in paths))
    return mime


def drop(widget: QWidget, mime: QMimeData) -> QDropEvent:
    """What Qt sends the widget under the cursor when a drag is let go over it."""
    copy, no = Qt.DropAction.CopyAction, Qt.MouseButton.NoButton
    modifiers = Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPointF(10, 10), copy, mime, no, modifiers)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(10, 10), copy, mime, no, modifiers)
    QApplication.sendEvent(widget, event)
    return event


def offered(qtbot, window) -> ParametersDialog:
    qtbot.wait_until(lambda: window.picture_offers.dialog is not None, timeout=5000)
    dialog = window.picture_offers.dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def texts(dialog: ParametersDialog) -> str:
    return "\n".join(label.text() for label in dialog.findChildren(QLabel))


def our_png(folder: Path, parameters: str = OURS) -> Path:
    return save_png(folder, np.full((96, 64, 3), 40, np.uint8), parameters)


def test_our_png_is_offered_and_use_restores_it_with_its_mode(qtbot, window, tmp_path):
    path = our_png(tmp_path)
    assert drop(window, files(path)).isAccepted()
    dialog = offered(qtbot, window)
    shown = texts(dialog)
    assert "Written by Latentdesk" in shown and "a lighthouse at dusk" in shown
    assert "Sketch to image" in shown  # what "Use" will switch to
    assert "4242" in shown and "Not in this file: schedule, model, model hash" in shown
    other = dialog.findChild(QLabel, "offerSettings")
    assert other.text() == "Other settings: Version: latentdesk 0.1"  # the rest are fields
    assert window.params.mode == TXT2IMG
    dialog.use_button.click()
    p = window.params
    assert (p.prompt, p.negative_prompt, p.seed, p.steps) == (
        "a lighthouse at dusk",
        "fog",
        4242,
        12,
    )
    assert (p.width, p.height, p.strength) == (64, 96, 0.6)
    assert p.mode == SKETCH  # a denoising strength: made from another picture
    assert window.controls.mode.currentData() == SKETCH
    assert "file://" not in window.controls.prompt.toPlainText()


@pytest.mark.parametrize("field", ["prompt", "negative"])
def test_a_file_dropped_on_a_prompt_field_is_offered_not_typed(qtbot, window, tmp_path, field):
    edit = getattr(window.controls, field)
    edit.setPlainText("kept as it was")
    drop(edit.viewport(), files(our_png(tmp_path)))
    offered(qtbot, window)
    assert edit.toPlainText() == "kept as it was"  # no "file:///…" inserted
    text = QMimeData()
    text.setText(" and more")
    edit.moveCursor(edit.textCursor().MoveOperation.End)
    drop(edit.viewport(), text)  # plain text still drops in as text
    assert "and more" in edit.toPlainText() and "file://" not in edit.toPlainText()


def test_a_model_dropped_on_the_prompt_is_loaded_not_typed(qtbot, window, tmp_path, monkeypatch):
    asked: list[str] = []
    monkeypatch.setattr(window, "load_model", asked.append)
    model = tmp_path / "tiny.safetensors"
    model.write_bytes(b"not read")
    drop(window.controls.prompt.viewport(), files(model))
    assert asked == [str(model)] and window.controls.prompt.toPlainText() == ""


def test_another_tools_picture_shows_what_was_recovered_and_its_notes(qtbot, window):
    before = window.params.seed
    drop(window, files(FIXTURES / "comfyui_custom_big_seed.png"))
    dialog = offered(qtbot, window)
    shown = texts(dialog)
    assert "Written by ComfyUI" in shown
    notes = dialog.findChild(QLabel, "offerNotes")
    left_out = dialog.findChild(QLabel, "offerLeftOut")
    assert "seed" in notes.text().lower() and "Seed" in left_out.text()
    assert "Text to image" in shown
    dialog.use_button.click()
    assert window.params.seed == before  # beyond our range: left as it was, and said so
    assert window.params.mode == TXT2IMG


def test_a_jpeg_without_metadata_offers_the_sketch_only(qtbot, window, tmp_path):
    path = tmp_path / "photo.jpg"
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(QColor("blue"))
    assert image.save(str(path))
    drop(window, files(path))
    dialog = offered(qtbot, window)
    assert NO_PARAMETERS in texts(dialog)
    assert not dialog.use_button.isEnabled() and dialog.sketch_button.isEnabled()
    dialog.sketch_button.click()
    qtbot.wait_until(lambda: (window.canvas.to_array()[..., 2] > 200).all(), timeout=3000)
    assert window.params.mode == SKETCH


def _said(window, words: str) -> bool:
    return words in window.last_error


def test_a_file_that_is_no_image_says_so(qtbot, window, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("shopping list")
    drop(window, files(path))
    qtbot.wait_until(lambda: _said(window, "not an image"), timeout=5000)
    assert window.picture_offers.dialog is None


def _huge_png(path: Path, size: int) -> Path:
    """A PNG of 30000x30000 pixels whose image data is a sparse 200 MB of nothing."""
    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)
    start = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + b"IHDR" + header
    start += struct.pack(">I", zlib.crc32(b"IHDR" + header))
    with path.open("wb") as f:
        f.write(start + struct.pack(">I", size - len(start) - 12) + b"IDAT")
        f.truncate(size)
    return path


def test_a_huge_file_is_read_off_the_gui_thread(qtbot, window, tmp_path):
    path = _huge_png(tmp_path / "huge.png", 200 * 2**20)
    started = time.monotonic()
    drop(window, files(path))
    assert time.monotonic() - started < 0.5  # the window answers at once; reading goes on
    assert window.last_error == ""  # the answer comes from the reading thread, later
    qtbot.wait_until(lambda: _said(window, "too large"), timeout=10_000)


def test_picture_bytes_from_a_browser_are_offered(qtbot, window):
    mime = QMimeData()
    mime.setData("image/png", encode_png(np.zeros((96, 64, 3), np.uint8), OURS))
    mime.setHtml('<img src="https://example.com/lighthouse.png">')
    drop(window, mime)
    dialog = offered(qtbot, window)
    assert "Parameters in the dropped picture" == dialog.windowTitle()
    assert "a lighthouse at dusk" in texts(dialog)


def test_a_data_url_is_read_and_a_decoded_picture_offered_as_a_sketch(qtbot, window):
    data = encode_png(np.zeros((96, 64, 3), np.uint8), OURS)
    mime = QMimeData()
    mime.setUrls([QUrl("data:image/png;base64," + base64.b64encode(data).decode())])
    drop(window, mime)
    assert "a lighthouse at dusk" in texts(offered(qtbot, window))
    window.picture_offers.dialog.reject()
    qtbot.wait_until(lambda: window.picture_offers.dialog is None)
    decoded = QMimeData()
    image = QImage(32, 32, QImage.Format.Format_RGB32)
    image.fill(QColor("green"))
    decoded.setImageData(image)  # another Qt program's copy: pixels only
    drop(window, decoded)
    dialog = offered(qtbot, window)
    assert NO_PARAMETERS in texts(dialog) and dialog.sketch_button.isEnabled()


def test_a_web_address_is_not_fetched(qtbot, window):
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/lighthouse.png")])
    drop(window, mime)
    assert _said(window, "does not download pictures from the web")
    assert "Save the picture first" in window.last_error
    assert window.picture_offers.dialog is None


def test_paste_offers_the_clipboards_picture(qtbot, window):
    clipboard = QGuiApplication.clipboard()
    mime = QMimeData()
    mime.setData("image/png", encode_png(np.zeros((96, 64, 3), np.uint8), OURS))
    clipboard.setMimeData(mime)
    window.controls.prompt.setFocus()
    window.controls.prompt.paste()  # Ctrl+V in the prompt: a picture is not text
    dialog = offered(qtbot, window)
    assert dialog.windowTitle() == "Parameters in the pasted picture"
    assert window.controls.prompt.toPlainText() == ""
    dialog.reject()
    qtbot.wait_until(lambda: window.picture_offers.dialog is None)
    window.paste_picture()  # Edit › Paste elsewhere in the window
    offered(qtbot, window)
    clipboard.setText("just words")
    window.paste_picture()
    assert "no picture" in window.statusBar().currentMessage()


def test_restoring_parameters_text_sets_the_mode(qtbot, window):
    window.restore_parameters(OURS)
    assert window.params.mode == SKETCH and window.params.strength == 0.6
    window.restore_parameters("a meadow\nSteps: 20, Sampler: Euler, Seed: 7, Size: 64x64")
    assert window.params.mode == TXT2IMG and window.params.prompt == "a meadow"


def test_the_window_closes_cleanly_with_the_service_running(qtbot, tmp_path):
    gallery = tmp_path / "gallery"
    for i in range(50):
        our_png(gallery, f"picture {i}\nSteps: 3, Seed: {i}")
    w = MainWindow(Settings(), gallery, Services(lambda: FakeEngine(), MemorySaver()))
    qtbot.addWidget(w)
    w.show()
    started = time.monotonic()
    w.close()  # at once, with the first sync running: no thread warnings, no long wait
    assert time.monotonic() - started < 2.0
    assert w.gallery_service._pool.activeThreadCount() == 0  # the index thread has finished
