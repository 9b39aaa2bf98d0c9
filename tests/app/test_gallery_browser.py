"""The gallery browser over a real index: search, sort, stars, the large view and its actions,
the trash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPixmap

from app.gallery_browser import GalleryBrowser
from app.gallery_grid_model import STARRED_ROLE
from app.picture_view import INPAINT_TOOLTIP
from app.thumbnails import ThumbnailCache
from engine.parameters import parse_parameters
from tests.app.gallery_browser_helpers import PARAMS, IndexService, record, write_png

DAY = 86_400.0
# (file, grey value, record fields): dated one day apart, the first oldest.
PICTURES = [
    ("a.png", 40, dict(prompt="a red harbour at dawn", model="dreamy-v2", seed=7)),
    ("b.png", 90, dict(prompt="boats in a harbour", model="alpha", seed=1234)),
    ("c.png", 140, dict(prompt="castle on a hill", negative_prompt="fog", model="dreamy-v2")),
    ("d.png", 190, dict(prompt="a lighthouse at dusk", model="tiny", seed=99)),
]


@pytest.fixture
def service(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    records = []
    for n, (name, value, fields) in enumerate(PICTURES):
        path = write_png(folder / name, value)
        mtime = 1_700_000_000 + n * DAY
        os.utime(path, (mtime, mtime))
        records.append(record(path, mtime, **fields))
    s = IndexService(tmp_path / "gallery.sqlite3")
    s.add(records)
    yield s
    s.close()


@pytest.fixture
def revealed():
    return []


@pytest.fixture
def browser(qtbot, tmp_path, service, revealed):
    def reveal(folder: Path) -> bool:
        revealed.append(folder)
        return True

    b = GalleryBrowser(service, reveal, ThumbnailCache(tmp_path / "thumbnails"))
    qtbot.addWidget(b)
    b.show()
    qtbot.wait_exposed(b)
    yield b
    b.close()


def names(browser) -> list[str]:
    model = browser.model
    return [model.picture(row).path.name for row in range(model.rowCount())]


def search(browser, text: str) -> list[str]:
    browser.search.setText(text)
    browser.apply_search()
    return names(browser)


def test_search_narrows_the_grid_as_the_person_types(qtbot, browser):
    assert browser.count_label.text() == "4 pictures"
    qtbot.keyClicks(browser.search, "harb")
    qtbot.wait_until(lambda: browser.count_label.text() == "2 pictures")  # after the pause
    assert names(browser) == ["b.png", "a.png"]
    assert search(browser, "harbour model:dreamy") == ["a.png"]
    assert browser.count_label.text() == "1 picture"
    assert search(browser, "seed:1234") == ["b.png"]
    assert search(browser, "-harbour") == ["d.png", "c.png"]
    assert search(browser, "fog") == ["c.png"]  # the negative prompt is searched too
    assert search(browser, "nothing-like-this") == []
    assert browser.count_label.text() == "0 pictures"
    assert "seed:" in browser.search.placeholderText() and "model:" in browser.search.toolTip()


def test_sort_orders_the_grid(browser):
    sorts = {browser.sort.itemData(i): i for i in range(browser.sort.count())}
    assert names(browser) == ["d.png", "c.png", "b.png", "a.png"]  # newest first
    browser.sort.setCurrentIndex(sorts["oldest"])
    assert names(browser) == ["a.png", "b.png", "c.png", "d.png"]
    browser.sort.setCurrentIndex(sorts["prompt"])
    assert names(browser) == ["d.png", "a.png", "b.png", "c.png"]
    browser.sort.setCurrentIndex(sorts["model"])
    assert [browser.model.picture(r).model for r in range(4)][:2] == ["alpha", "dreamy-v2"]


def test_star_shows_at_once_and_survives(qtbot, tmp_path, browser, service):
    browser.open_row(1)  # c.png
    assert browser.view.picture().path.name == "c.png"
    qtbot.mouseClick(browser.view.star_button, Qt.MouseButton.LeftButton)
    assert browser.view.star_button.isChecked() and "Starred" in browser.view.star_button.text()
    assert browser.model.index(1).data(STARRED_ROLE) is True
    browser.starred_only.setChecked(True)
    assert names(browser) == ["c.png"]
    # Written to the index: a new index on the same file has it, and a new browser shows it.
    again = IndexService(tmp_path / "gallery.sqlite3")
    assert again.reader().get(tmp_path / "pictures" / "c.png").starred
    other = GalleryBrowser(again, thumbnails=ThumbnailCache(tmp_path / "thumbnails"))
    qtbot.addWidget(other)
    assert search(other, "starred") == ["c.png"]
    other.close()
    again.close()


def test_large_view_shows_the_parameters_and_steps_with_the_keys(qtbot, browser):
    grid = browser.grid
    centre = grid.visualRect(browser.model.index(2)).center()
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=centre)  # a double click:
    qtbot.mouseDClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=centre)  # two presses
    view = browser.view
    assert browser.pages.currentWidget() is view
    text = view.parameters.text()
    for wanted in ("boats in a harbour", "1234", "Euler a", "64 × 48", "alpha", "Latentdesk"):
        assert wanted in text, wanted
    assert "Negative prompt" not in text  # none stored: no empty row
    assert view.inpaint_button.isEnabled()  # "Inpaint this": tests/app/test_inpaint_sources.py
    assert view.inpaint_button.toolTip() == INPAINT_TOOLTIP
    qtbot.wait_until(lambda: view.image_pane.image() is not None)
    assert view.image_pane.image().pixelColor(5, 5).red() == 90  # the picture itself

    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.picture().path.name == "a.png"
    assert not view.next_button.isEnabled()  # the last one
    qtbot.keyClick(view, Qt.Key.Key_Left)
    qtbot.keyClick(view, Qt.Key.Key_Left)
    assert view.picture().path.name == "c.png" and "fog" in view.parameters.text()
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert browser.pages.currentWidget() is grid
    assert grid.currentIndex().row() == 1  # the grid stays on the picture last seen


def test_view_actions_go_to_the_window_and_the_clipboard(qtbot, browser, revealed):
    browser.open_row(0)  # d.png: its file carries PARAMS
    view = browser.view
    with qtbot.wait_signal(browser.parameters_chosen, timeout=5000) as chosen:
        qtbot.mouseClick(view.use_parameters_button, Qt.MouseButton.LeftButton)
    assert chosen.args == [PARAMS]
    with qtbot.wait_signal(browser.sketch_chosen, timeout=5000) as sketch:
        qtbot.mouseClick(view.use_sketch_button, Qt.MouseButton.LeftButton)
    assert (sketch.args[0].width(), sketch.args[0].height()) == (64, 48)
    clipboard = QGuiApplication.clipboard()
    qtbot.mouseClick(view.copy_parameters_button, Qt.MouseButton.LeftButton)
    assert clipboard.text() == PARAMS and browser.status.text() == "Parameters copied."
    qtbot.mouseClick(view.copy_image_button, Qt.MouseButton.LeftButton)
    assert clipboard.image().pixelColor(1, 1).red() == 190
    qtbot.mouseClick(view.open_folder_button, Qt.MouseButton.LeftButton)
    assert revealed == [view.picture().path.parent]
    assert not browser.path_notice.isVisible()


def test_open_folder_without_a_file_manager_shows_the_path(qtbot, browser, monkeypatch):
    browser.reveal = lambda folder: False
    browser.open_row(0)
    qtbot.mouseClick(browser.view.open_folder_button, Qt.MouseButton.LeftButton)
    assert browser.path_notice.isVisible()
    assert browser.path_notice.path == str(browser.view.picture().path.parent)


def test_a_file_without_a1111_text_gives_the_records_parameters(qtbot, tmp_path, service):
    plain = tmp_path / "pictures" / "comfy.png"
    image = QImage(32, 32, QImage.Format.Format_RGB32)
    image.fill(0x202020)
    assert image.save(str(plain), "PNG")  # no parameters chunk: another tool's file
    fields = dict(prompt="a fox", seed=2**40, steps=30, sampler="DPM++ 2M", cfg_scale=6.0)
    service.add([record(plain, 1_800_000_000, tool="ComfyUI", width=32, height=32, **fields)])
    b = GalleryBrowser(service, thumbnails=ThumbnailCache(tmp_path / "thumbnails"))
    qtbot.addWidget(b)
    assert search(b, "fox") == ["comfy.png"]
    b.open_row(0)
    with qtbot.wait_signal(b.parameters_chosen, timeout=5000) as chosen:
        b.view.use_parameters()
    parsed = parse_parameters(chosen.args[0])
    assert parsed.prompt == "a fox"
    settings = parsed.settings
    assert (settings["Seed"], settings["Steps"], settings["Size"]) == (str(2**40), "30", "32x32")
    assert settings["Sampler"] == "DPM++ 2M" and settings["CFG scale"] == "6"
    b.close()


def test_trash_asks_first_then_moves_the_file_to_the_trash(qtbot, browser, service):
    trash = Path(os.environ["XDG_DATA_HOME"]) / "Trash" / "files"
    trash.parent.parent.mkdir(parents=True, exist_ok=True)  # as on a desktop; Qt needs it
    browser.open_row(1)
    path = browser.view.picture().path
    answers = iter([False, True])
    questions = []
    browser.confirm = lambda question: questions.append(question) or next(answers)
    qtbot.mouseClick(browser.view.trash_button, Qt.MouseButton.LeftButton)
    assert path.exists() and browser.count_label.text() == "4 pictures"
    qtbot.mouseClick(browser.view.trash_button, Qt.MouseButton.LeftButton)
    assert questions == [f"Move {path.name} to the trash?"] * 2
    assert not path.exists()
    assert (trash / path.name).is_file()  # in the trash, where the person can restore it
    assert service.trashed == [path]
    assert browser.count_label.text() == "3 pictures"
    assert browser.view.picture().path.name == "b.png"  # the next picture took its place
    assert browser.status.text() == f"Moved {path.name} to the trash."


def test_trash_that_fails_says_so_and_deletes_nothing(qtbot, browser, service, monkeypatch):
    browser.open_row(0)
    path = browser.view.picture().path
    browser.confirm = lambda question: True
    monkeypatch.setattr(service, "trash", lambda p: False)  # a file system without a trash
    qtbot.mouseClick(browser.view.trash_button, Qt.MouseButton.LeftButton)
    assert path.exists() and "was not deleted" in browser.status.text()
    assert browser.count_label.text() == "4 pictures"


def test_unreadable_file_gets_a_broken_tile_and_a_message(qtbot, tmp_path, service):
    broken = tmp_path / "pictures" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    service.add([record(broken, 1_800_000_000, prompt="lost")])
    cache = ThumbnailCache(tmp_path / "thumbnails")
    b = GalleryBrowser(service, thumbnails=cache)
    qtbot.addWidget(b)
    b.show()
    assert search(b, "lost") == ["broken.png"]
    index = b.model.index(0)
    qtbot.wait_until(lambda: cache.failures == 1)
    tile = index.data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(tile, QPixmap) and tile.toImage() == cache.broken_tile().toImage()
    b.open_row(0)
    qtbot.wait_until(lambda: "broken.png" in b.view.image_pane.placeholder)
    b.view.use_as_sketch()  # no picture to give: a message, not a crash
    assert "broken.png" in b.status.text()
    b.close()


def test_refresh_keeps_the_scroll_position(qtbot, tmp_path, service):
    source = tmp_path / "pictures" / "a.png"
    extra = [record(tmp_path / f"x{n}.png", 1_600_000_000 + n, f"extra {n}") for n in range(600)]
    service.add(extra)
    b = GalleryBrowser(service, thumbnails=ThumbnailCache(tmp_path / "thumbnails"))
    qtbot.addWidget(b)
    b.resize(800, 600)
    b.show()
    qtbot.wait_exposed(b)
    bar = b.grid.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    value = bar.value()
    assert value > 0 and b.count_label.text() == "604 pictures"
    service.add([record(source.with_name(f"new{n}.png"), 1_900_000_000 + n) for n in range(5)])
    assert b.count_label.text() == "609 pictures"
    assert bar.value() == value
    assert b.model.picture(0).path.name == "new4.png"  # newest first, at the top
    b.close()


def test_every_control_is_named_and_reachable_with_tab(browser):
    from PySide6.QtWidgets import QWidget

    from app.accessibility import is_interactive

    for page in (browser.grid, browser.view):
        browser.pages.setCurrentWidget(page)
        if page is browser.view:
            browser.open_row(0)
        controls = [w for w in browser.findChildren(QWidget) if is_interactive(w) and w.isVisible()]
        assert len(controls) >= (3 if page is browser.grid else 13)
        for widget in controls:
            label = f"{type(widget).__name__} {widget.objectName()!r}"
            assert widget.objectName(), f"{label} has no objectName"
            assert widget.accessibleName().strip(), f"{label} has no accessible name"
            assert widget.focusPolicy() & Qt.FocusPolicy.TabFocus, f"{label} takes no Tab"
    assert browser.grid.accessibleName() == "Pictures" and browser.grid.objectName()


def test_keyboard_and_menu_on_the_grid(qtbot, browser):
    grid = browser.grid
    grid.setFocus()
    grid.setCurrentIndex(browser.model.index(1))
    qtbot.keyClick(grid, Qt.Key.Key_Return)
    assert browser.pages.currentWidget() is browser.view
    assert browser.view.picture().path.name == "c.png"
    qtbot.keyClick(browser.view, Qt.Key.Key_Escape)
    asked = []
    browser.confirm = lambda question: asked.append(question) or False
    qtbot.keyClick(grid, Qt.Key.Key_Delete)
    assert asked == ["Move c.png to the trash?"]
    menu = browser.build_menu(browser.model.index(1))
    texts = [a.text() for a in menu.actions() if a.text()]
    assert texts == ["Open", "Star", "Open folder", "Move to trash…"]
    next(a for a in menu.actions() if a.text() == "Star").trigger()
    assert browser.model.index(1).data(STARRED_ROLE) is True
    qtbot.keyClick(browser, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.wait_until(browser.search.hasFocus)
