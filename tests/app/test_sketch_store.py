"""The sketch outlives the window: kept in the data folder, restored at start, never a crash."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QObject, QPointF, Signal
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QMessageBox

from app.qimages import qimage_to_array
from app.services import Services
from app.settings import load_settings
from app.sketch_store import SketchStore, sketch_dir, write_png_atomic
from app.window import MainWindow
from tests.app.fake_engine import FakeEngine, MemorySaver
from tests.app.test_canvas import drag


class Layer(QObject):
    changed = Signal()

    def __init__(self, colour: str) -> None:
        super().__init__()
        self.image = QImage(32, 24, QImage.Format.Format_RGB32)
        self.image.fill(QColor(colour))


def make_window(qtbot, tmp_path):
    """A window as the app starts one: with the settings the last one saved."""
    services = Services(lambda: FakeEngine(), MemorySaver())
    settings_file = tmp_path / "settings.json"
    settings = load_settings(settings_file).settings
    w = MainWindow(settings, tmp_path / "gallery", services, settings_file)
    qtbot.addWidget(w)
    w.show()
    return w


def test_layers_are_saved_after_a_change_and_restored(qtbot, tmp_path):
    store = SketchStore(tmp_path / "sketch", delay_ms=20)
    sketch, mask = Layer("red"), Layer("black")
    store.track("sketch", lambda: sketch.image, sketch.changed)
    store.track("mask", lambda: mask.image, mask.changed)
    sketch.changed.emit()
    qtbot.wait_until(lambda: store.path("sketch").exists(), timeout=3000)
    assert not store.path("mask").exists()  # only what changed is written
    mask.changed.emit()
    store.flush()
    assert store.path("mask").exists()
    assert not list((tmp_path / "sketch").glob("*.tmp"))  # no temporary files left behind
    restored: dict[str, QImage] = {}
    again = SketchStore(tmp_path / "sketch")
    again.restored.connect(lambda layer, image: restored.__setitem__(layer, image))
    again.restore(["sketch", "mask", "missing"])
    qtbot.wait_until(lambda: len(restored) == 2, timeout=3000)
    assert (qimage_to_array(restored["sketch"]) == [255, 0, 0]).all()
    assert (qimage_to_array(restored["mask"]) == 0).all()


def test_a_long_stroke_is_saved_while_it_goes_on(qtbot, tmp_path):
    store = SketchStore(tmp_path, delay_ms=50)
    layer = Layer("white")
    store.track("sketch", lambda: layer.image, layer.changed)
    # Changes every 10 ms for longer than the delay: a debounce would never save.
    for _ in range(15):
        layer.changed.emit()
        qtbot.wait(10)
    assert store.path("sketch").exists()
    store.flush()


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sketch" / "sketch.png"
    path.parent.mkdir()
    path.write_bytes(b"old")
    image = QImage(8, 8, QImage.Format.Format_RGB32)
    image.fill(QColor("blue"))
    write_png_atomic(path, image)
    assert (qimage_to_array(QImage(str(path))) == [0, 0, 255]).all()
    assert [p.name for p in path.parent.iterdir()] == ["sketch.png"]


def test_a_sketch_survives_closing_the_window(qtbot, tmp_path):
    first = make_window(qtbot, tmp_path)
    first.params.update({"width": 64, "height": 64})
    first.canvas.resize(192, 192)
    drag(first.canvas, [QPointF(x, 96) for x in range(30, 165, 9)])
    drawn = first.canvas.to_array()
    assert (drawn != 255).any()
    first.close()
    assert (sketch_dir() / "sketch.png").exists()
    second = make_window(qtbot, tmp_path)
    qtbot.wait_until(lambda: np.array_equal(second.canvas.to_array(), drawn), timeout=3000)
    assert not second.canvas.can_undo()  # restoring is not an edit
    second.close()


@pytest.mark.parametrize("content", [b"not a png at all", b""])
def test_a_damaged_sketch_starts_blank_with_a_message(qtbot, tmp_path, content):
    folder = sketch_dir()
    folder.mkdir(parents=True)
    (folder / "sketch.png").write_bytes(content)
    window = make_window(qtbot, tmp_path)
    qtbot.wait_until(lambda: "could not be read" in window.statusBar().currentMessage())
    assert "sketch" in window.statusBar().currentMessage()
    assert (window.canvas.to_array() == 255).all()
    assert not [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert (folder / "sketch.damaged.png").read_bytes() == content  # kept for the person
    window.close()
