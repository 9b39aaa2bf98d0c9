"""The session strip (the view): this session's pictures, clicks, menus and dialogs over a
GalleryModel."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.jobs import FinishedImage
from engine.image_metadata import read_png_parameters
from engine.output import save_png

PARAMS = (
    "a quiet harbour\nNegative prompt: fog\n"
    "Steps: 12, Sampler: Euler a, CFG scale: 5.5, Seed: 99, Size: 64x96"
)


def _png(folder: Path, value: int, parameters: str, mtime: float) -> Path:
    image = np.full((96, 64, 3), value, np.uint8)
    path = save_png(folder, image, parameters)
    os.utime(path, (mtime, mtime))
    return path


def _made(strip, folder: Path, value: int, parameters: str) -> Path:
    """A picture finished in this session and saved: what the window hands the strip."""
    path = _png(folder, value, parameters, 1_000_000)
    strip.add_image(FinishedImage(np.full((96, 64, 3), value, np.uint8), 1, parameters, path))
    return path


def test_shows_this_sessions_pictures_newest_first_not_the_folder(qtbot, strip, tmp_path):
    _png(tmp_path, 90, "made yesterday", 1_000_000)  # in the folder, not from this session
    old = _made(strip, tmp_path, 10, "old")
    new = _made(strip, tmp_path, 200, "new")
    assert [e.path for e in strip.entries()] == [new, old]
    assert "session" in strip.accessibleName() and "session" in strip.toolTip()

    def centre_red(row):
        icon = strip.item(row).icon().pixmap(96).toImage()
        return icon.pixelColor(icon.width() // 2, icon.height() // 2).red()

    assert centre_red(0) > 150 and centre_red(1) < 50  # drawn from memory, at once


def test_double_click_gives_parameters_and_click_the_full_image(qtbot, strip, tmp_path):
    _made(strip, tmp_path, 30, PARAMS)
    item = strip.item(0)
    with qtbot.wait_signal(strip.parameters_chosen) as restored:
        strip.itemDoubleClicked.emit(item)
    assert restored.args[0] == PARAMS
    with qtbot.wait_signal(strip.image_chosen, timeout=5000) as shown:
        strip.itemClicked.emit(item)
    assert (shown.args[0].width(), shown.args[0].height()) == (64, 96)


def test_pictures_whose_file_is_gone_are_taken_out(qtbot, strip, tmp_path):
    first = _made(strip, tmp_path, 10, "first")
    second = _made(strip, tmp_path, 20, "second")
    strip.add_image(FinishedImage(np.zeros((8, 8, 3), np.uint8), 5, PARAMS, None, "disk full"))
    first.unlink()  # moved to the trash in the gallery browser, say
    strip.forget_missing()
    assert [e.path for e in strip.entries()] == [None, second]
    assert strip.count() == 2


def test_delete_asks_first(qtbot, strip, tmp_path, monkeypatch):
    path = _made(strip, tmp_path, 30, PARAMS)
    answers = iter([False, True])
    monkeypatch.setattr(strip, "confirm", lambda question: next(answers))
    strip.delete(strip.item(0))
    assert path.exists() and strip.count() == 1
    strip.delete(strip.item(0))
    assert not path.exists() and strip.count() == 0


def test_unsaved_image_stays_and_can_be_saved_as(qtbot, strip, tmp_path):
    array = np.full((64, 64, 3), 77, np.uint8)
    strip.add_image(FinishedImage(array, 5, PARAMS, None, "disk full"))
    assert strip.entries()[0].path is None
    strip.forget_missing()  # a refresh must not lose it
    assert strip.count() == 1
    target = tmp_path / "kept.png"
    strip.save_as(strip.item(0), str(target))
    assert strip.entries()[0].path == target
    assert read_png_parameters(target) == PARAMS


def test_menu_offers_save_as_only_for_unsaved(qtbot, strip, tmp_path):
    _made(strip, tmp_path, 30, PARAMS)
    array = np.zeros((64, 64, 3), np.uint8)
    strip.add_image(FinishedImage(array, 5, PARAMS, None, "disk full"))
    unsaved_menu = [a.text() for a in strip.build_menu(strip.item(0)).actions()]
    saved_menu = [a.text() for a in strip.build_menu(strip.item(1)).actions()]
    assert "Save as…" in unsaved_menu and "Save as…" not in saved_menu
    for wanted in ("Open file location", "Copy image", "Copy parameters", "Use as sketch"):
        assert wanted in saved_menu
    assert "Delete…" in saved_menu


def test_delete_that_fails_says_why_and_keeps_the_image(qtbot, strip, tmp_path, monkeypatch):
    stuck = tmp_path / "stuck.png"
    stuck.mkdir()  # a file the strip cannot unlink, even as root
    strip.add_image(FinishedImage(np.zeros((8, 8, 3), np.uint8), 1, "", stuck))
    monkeypatch.setattr(strip, "confirm", lambda question: True)
    with qtbot.wait_signal(strip.message) as said:
        strip.delete(strip.item(0))
    assert "Could not delete stuck.png" in said.args[0]
    assert strip.count() == 1 and stuck.exists()
