"""A model dropped on the window is loaded; an image dropped on the sketch still goes into it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QMessageBox

from app.services import Services
from app.settings import Settings
from app.window import MainWindow
from tests.app.fake_engine import FakeEngine, MemorySaver, write_fake_checkpoint


def files(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def drop(widget, mime: QMimeData) -> QDropEvent:
    """What Qt sends the widget under the cursor when a file manager's drag is let go."""
    copy, no = Qt.DropAction.CopyAction, Qt.MouseButton.NoButton
    modifiers = Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPointF(20, 20), copy, mime, no, modifiers)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(20, 20), copy, mime, no, modifiers)
    QApplication.sendEvent(widget, event)
    return event


def said_not_an_image(window) -> bool:
    boxes = [b.text() for b in window.findChildren(QMessageBox) if b.isVisible()]
    texts = [window.last_error, window.statusBar().currentMessage(), *boxes]
    return any("not an image" in text for text in texts)


@pytest.fixture
def window(qtbot, tmp_path):
    services = Services(lambda: FakeEngine(), MemorySaver())
    w = MainWindow(Settings(), tmp_path / "gallery", services, tmp_path / "settings.json")
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


@pytest.mark.parametrize("name", ["tiny.safetensors", "old.CKPT"])
@pytest.mark.parametrize("target", ["canvas", "window"])
def test_a_dropped_checkpoint_is_loaded_as_the_model(qtbot, window, tmp_path, name, target):
    checkpoint = write_fake_checkpoint(tmp_path / name)
    widget = window.canvas if target == "canvas" else window
    with qtbot.wait_signal(window.controller.model_loaded, timeout=5000) as loaded:
        event = drop(widget, files(checkpoint))
        assert f"Loading {name}" in window.statusBar().currentMessage()  # said at once
    assert event.isAccepted()
    assert loaded.args[0].path == str(checkpoint)
    assert window.model.name == checkpoint.stem
    assert not said_not_an_image(window)
    assert (window.canvas.to_array() == 255).all()  # the sketch is untouched


def test_a_dropped_diffusers_folder_is_loaded_as_the_model(qtbot, window, tmp_path, monkeypatch):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    asked: list[str] = []
    monkeypatch.setattr(window, "load_model", asked.append)
    drop(window, files(folder))
    assert asked == [str(folder)]
    assert not said_not_an_image(window)


def test_a_dropped_image_still_goes_into_the_sketch(qtbot, window, tmp_path, monkeypatch):
    picture = tmp_path / "red.png"
    image = QImage(16, 16, QImage.Format.Format_RGB32)
    image.fill(QColor("red"))
    assert image.save(str(picture))
    asked: list[str] = []
    monkeypatch.setattr(window, "load_model", asked.append)
    # Onto the sketch; elsewhere on the window its parameters are offered (test_image_drop.py).
    drop(window.canvas, files(picture))
    qtbot.wait_until(lambda: (window.canvas.to_array() == [255, 0, 0]).all(), timeout=3000)
    assert asked == []
