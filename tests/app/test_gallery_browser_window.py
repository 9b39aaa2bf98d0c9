"""View › Gallery… in the real window, over the real gallery service: a picture saved in the
gallery folder shows in the browser, and its actions reach the window's controls."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from app.services import Services
from app.settings import Settings
from app.viewmodel import SKETCH
from app.window import MainWindow
from tests.app.fake_engine import FakeEngine, MemorySaver
from tests.app.gallery_browser_helpers import PARAMS, write_png


def test_gallery_menu_opens_the_browser_and_its_actions_reach_the_window(qtbot, tmp_path):
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    write_png(gallery / "lighthouse.png", 120)  # carries PARAMS
    window = MainWindow(Settings(), gallery, Services(FakeEngine, MemorySaver()), tmp_path / "s")
    qtbot.addWidget(window)
    window.show()
    action = next(a for a in window.findChildren(QAction) if a.text() == "&Gallery…")
    assert action.shortcut() == QKeySequence("Ctrl+G")
    action.trigger()
    browser = window.gallery_browser
    assert browser is not None and browser.isVisible()
    assert browser.isWindow() and not browser.isModal()
    # The service indexes the folder on its own thread; the grid follows its ``changed``.
    qtbot.wait_until(lambda: browser.count_label.text() == "1 picture", timeout=10_000)

    browser.open_row(0)
    assert "a lighthouse at dusk" in browser.view.parameters.text()
    qtbot.mouseClick(browser.view.use_parameters_button, Qt.MouseButton.LeftButton)
    qtbot.wait_until(lambda: window.params.prompt == "a lighthouse at dusk", timeout=5000)
    assert (window.params.seed, window.params.steps, window.params.negative_prompt) == (
        99, 12, "blurry"
    )  # fmt: skip
    assert PARAMS.startswith(window.params.prompt)
    qtbot.mouseClick(browser.view.use_sketch_button, Qt.MouseButton.LeftButton)
    qtbot.wait_until(lambda: window.params.mode == SKETCH, timeout=5000)
    assert window.canvas.image().pixelColor(5, 5).red() == 120

    browser.close()
    action.trigger()  # again: the same window, where the person left it
    assert window.gallery_browser is browser and browser.isVisible()
    window.close()
    assert not browser.isVisible()
