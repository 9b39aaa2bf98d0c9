"""The window's layout at its minimum size: icons, full tooltips, nothing squeezed or elided."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QAbstractButton, QSlider, QToolButton

from app.pictures import SIDE_BY_SIDE_MIN
from app.services import Services
from app.settings import Settings, load_settings
from app.size_presets import ordered_presets
from app.window import MIN_WINDOW, MainWindow
from tests.app.fake_engine import FakeEngine, MemorySaver, write_fake_checkpoint

ICON_ONLY = Qt.ToolButtonStyle.ToolButtonIconOnly
TOOL_SHORTCUTS = {
    "brushTool": "(B)",
    "eraserTool": "(E)",
    "eyedropperTool": "(I)",
    "fillTool": "(F)",
}


def _window(qtbot, tmp_path, settings: Settings | None = None) -> MainWindow:
    services = Services(lambda: FakeEngine(step_seconds=0.0), MemorySaver())
    w = MainWindow(settings or Settings(), tmp_path / "gallery", services, tmp_path / "s.json")
    qtbot.addWidget(w)
    w.show()
    return w


@pytest.fixture
def small(qtbot, tmp_path):
    w = _window(qtbot, tmp_path)
    w.resize(MIN_WINDOW)
    qtbot.wait_until(lambda: w.size() == MIN_WINDOW)
    yield w
    w.close()


def test_the_window_cannot_be_made_smaller_than_its_minimum(qtbot, small):
    small.resize(500, 300)
    assert small.size() == MIN_WINDOW
    # ... and at the minimum its contents need no more room than they get.
    needed = small.centralWidget().minimumSizeHint()
    central = small.centralWidget().size()
    assert needed.width() <= central.width() and needed.height() <= central.height()


def test_sketch_tools_show_icons_and_tooltips_with_their_shortcuts(qtbot, small):
    small.pictures.show_sketch()
    qtbot.wait_until(small.sketch.isVisible)
    buttons = small.sketch.findChildren(QToolButton)
    icon_only = [b for b in buttons if b.toolButtonStyle() == ICON_ONLY]
    assert len(icon_only) >= 9  # four tools, undo, redo, clear, load, use result
    for button in icon_only:
        assert not button.icon().isNull(), button.text()
        assert button.icon().actualSize(QSize(24, 24)).width() >= 16
        assert button.width() >= button.sizeHint().width(), button.text()
        assert button.toolTip() and button.accessibleName(), button.text()
    for name, keys in TOOL_SHORTCUTS.items():
        assert small.sketch.findChild(QToolButton, name).toolTip().endswith(keys)
    for slider in small.sketch.findChildren(QSlider):
        assert slider.width() >= 90, slider.objectName()  # a control, not a stub


def test_no_button_text_is_elided_at_the_minimum_size(qtbot, small):
    for page in (small.pictures.show_sketch, small.pictures.show_preview):
        page()
        for button in small.findChildren(QAbstractButton):
            if not button.isVisible() or not button.text():
                continue
            if isinstance(button, QToolButton) and button.toolButtonStyle() == ICON_ONLY:
                continue  # the text is for tooltips and screen readers
            text = button.text().replace("&", "")
            metrics = QFontMetrics(button.font())
            assert button.width() >= button.sizeHint().width(), text
            elided = metrics.elidedText(text, Qt.TextElideMode.ElideRight, button.width())
            assert elided == text


def test_narrow_the_toggle_switches_sketch_and_preview_wide_both_show(qtbot, small):
    pictures = small.pictures
    assert pictures.width() < SIDE_BY_SIDE_MIN and not pictures.side_by_side
    assert pictures.switch.isVisible()
    pictures.sketch_tab.click()
    assert small.sketch.isVisible() and not small.preview_stack.isVisible()
    pictures.preview_tab.click()
    assert small.preview_stack.isVisible() and not small.sketch.isVisible()
    small.resize(1800, 900)
    qtbot.wait_until(lambda: pictures.side_by_side)
    assert small.sketch.isVisible() and small.preview_stack.isVisible()
    assert not pictures.switch.isVisible()


def test_a_generation_brings_the_preview_to_the_front(qtbot, small, tmp_path):
    with qtbot.wait_signal(small.controller.model_loaded, timeout=5000):
        small.load_model(str(write_fake_checkpoint(tmp_path / "tiny.safetensors")))
    small.pictures.show_sketch()
    with qtbot.wait_signal(small.controller.image_ready, timeout=5000):
        small.generate()
    assert small.preview_stack.isVisible() and not small.sketch.isVisible()


def test_the_advanced_section_folds_and_remembers(qtbot, tmp_path):
    w = _window(qtbot, tmp_path)
    advanced = w.controls.advanced
    assert not advanced.is_open() and not w.controls.sampler.isVisible()  # folded at first
    advanced.header.click()
    assert w.controls.sampler.isVisible() and w.controls.batch_count.isVisible()
    w.close()
    saved = load_settings(tmp_path / "s.json").settings
    assert saved.advanced_open
    again = _window(qtbot, tmp_path, saved)
    assert again.controls.advanced.is_open() and again.controls.sampler.isVisible()
    again.controls.advanced.header.click()
    again.close()
    assert not load_settings(tmp_path / "s.json").settings.advanced_open


def test_presets_run_by_area_squares_first_with_the_native_size_on_top():
    by_area = ordered_presets()
    assert by_area[0] == (128, 128)
    areas = [w * h for w, h in by_area]
    assert areas == sorted(areas)
    assert by_area.index((512, 512)) < by_area.index((512, 768))  # a square before its peers
    assert ordered_presets(512)[0] == (512, 512)
    assert sorted(ordered_presets(512)) == sorted(by_area)  # moved, not repeated


def test_the_loaded_models_native_size_is_the_first_preset(qtbot, tmp_path):
    w = _window(qtbot, tmp_path)
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        w.load_model(str(write_fake_checkpoint(tmp_path / "tiny.safetensors")))
    preset = w.controls.preset
    assert preset.itemData(1) == "512x512" and "native" in preset.itemText(1)
    sizes = [preset.itemData(i) for i in range(preset.count())]
    assert "128x128" in sizes and sizes.count("512x512") == 1
    preset.setCurrentIndex(sizes.index("128x128"))
    preset.activated.emit(preset.currentIndex())
    assert (w.params.width, w.params.height) == (128, 128)
    w.close()


def test_the_prompt_placeholders_fit_their_boxes(qtbot, small):
    for edit in (small.controls.prompt, small.controls.negative):
        metrics = QFontMetrics(edit.font())
        room = edit.viewport().width() - 2 * edit.document().documentMargin()
        assert metrics.horizontalAdvance(edit.placeholderText()) <= room


@pytest.mark.parametrize("advanced", [False, True])
def test_the_controls_never_need_a_sideways_scrollbar(qtbot, small, advanced):
    """Every mode's rows (Inpaint adds four, Advanced the sampler and hires rows) fit the
    left column at the minimum window size: a longer label once pushed the seed buttons out."""
    from PySide6.QtWidgets import QScrollArea

    from app.viewmodel import MODES

    scroll = small.controls.parentWidget().parentWidget()
    assert isinstance(scroll, QScrollArea)
    small.controls.advanced.set_open(advanced)
    for mode in MODES:
        small.params.mode = mode
        qtbot.wait(20)  # let the layout settle
        needed = small.controls.minimumSizeHint().width()
        assert needed <= scroll.viewport().width(), (mode, needed, scroll.viewport().width())
        assert not scroll.horizontalScrollBar().isVisible(), mode
