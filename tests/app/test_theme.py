"""Both themes: the palette applied, the system followed, the progress text readable."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QProgressBar

from app.settings import Settings, load_settings, save_settings
from app.theme import DARK, LIGHT, SYSTEM, ThemeController, load_style_template, make_palette
from tests.app.theme_helpers import contrast, text_contrast

FRACTIONS = (0.05, 0.3, 0.5, 0.7, 0.95)


@pytest.fixture
def app_state(qapp):
    """Whatever a test applies, the next test gets the application as it was."""
    style, palette, sheet = qapp.style().name(), QPalette(qapp.palette()), qapp.styleSheet()
    yield qapp
    qapp.setStyleSheet(sheet)
    if style:
        qapp.setStyle(style)
    qapp.setPalette(palette)


def _bar(qtbot, fraction: float) -> QProgressBar:
    bar = QProgressBar(objectName="progressBar")
    bar.setRange(0, 1000)
    bar.setValue(round(fraction * 1000))
    bar.setFormat("Step 2/5 · 3.1 it/s · 4 s left")
    bar.resize(600, 26)
    qtbot.addWidget(bar)
    return bar


@pytest.mark.parametrize("scheme", [LIGHT, DARK])
def test_progress_text_is_readable_at_every_fraction(qtbot, app_state, scheme):
    ThemeController(Settings(theme=scheme)).apply()
    for fraction in FRACTIONS:
        bar = _bar(qtbot, fraction)
        measured = text_contrast(
            bar, lambda b=bar: b.setTextVisible(True), lambda b=bar: b.setTextVisible(False)
        )
        assert measured, f"no text found at {fraction}"
        # WCAG AA for normal text: 4.5; on the filled and the unfilled part alike.
        worst = min(measured.values())
        assert worst >= 4.5, f"{scheme} at {fraction}: {measured}"
        if fraction == 0.5:  # the centred text straddles the fill's edge: both measured
            assert len(measured) == 2, measured
        print(scheme, fraction, {k: round(v, 1) for k, v in measured.items()})


@pytest.mark.parametrize("scheme", [LIGHT, DARK])
def test_palette_text_colours_meet_wcag_aa(scheme):
    p = make_palette(scheme)
    r = QPalette.ColorRole
    for text, back in (
        (r.WindowText, r.Window),
        (r.Text, r.Base),
        (r.ButtonText, r.Button),
        (r.HighlightedText, r.Highlight),
        (r.PlaceholderText, r.Base),
        (r.ToolTipText, r.ToolTipBase),
    ):
        assert contrast(p.color(text), p.color(back)) >= 4.5, (scheme, text, back)


def test_style_sheet_has_no_fixed_colours():
    """Every colour comes from the palette or a token, so the file serves both themes."""
    import re

    template = load_style_template()
    assert "@progress-chunk@" in template
    assert not re.search(r"#[0-9a-fA-F]{3,8}\b|rgba?\(|\b(white|black)\b", template)


def test_system_choice_follows_the_desktop_scheme(app_state, monkeypatch):
    # The offscreen platform has no colour scheme to switch: play the desktop's part.
    desktop = {"scheme": Qt.ColorScheme.Light}
    monkeypatch.setattr(app_state.styleHints(), "colorScheme", lambda: desktop["scheme"])
    theme = ThemeController(Settings(theme=SYSTEM))
    theme.apply()
    assert theme.scheme == LIGHT

    def switch(scheme: Qt.ColorScheme) -> None:
        desktop["scheme"] = scheme
        app_state.styleHints().colorSchemeChanged.emit(scheme)

    switch(Qt.ColorScheme.Dark)
    assert theme.scheme == DARK
    assert app_state.palette().color(QPalette.ColorRole.Window).lightness() < 80
    theme.set_choice(LIGHT)  # the override wins over the system
    switch(Qt.ColorScheme.Dark)
    assert theme.scheme == LIGHT
    assert app_state.palette().color(QPalette.ColorRole.Window).lightness() > 200


def test_theme_menu_sets_and_persists_the_choice(qtbot, app_state, tmp_path):
    from app.services import Services
    from app.window import MainWindow
    from tests.app.fake_engine import FakeEngine, MemorySaver

    path = tmp_path / "s.json"
    save_settings(Settings(theme="dark"), path)
    settings = load_settings(path).settings
    w = MainWindow(settings, tmp_path / "g", Services(FakeEngine, MemorySaver()), path)
    qtbot.addWidget(w)
    assert w.findChild(object, "theme_dark").isChecked()
    w.findChild(object, "theme_light").trigger()
    assert w.theme.scheme == LIGHT and settings.theme == LIGHT
    w.close()
    assert load_settings(path).settings.theme == LIGHT


def test_unknown_theme_in_settings_follows_the_system():
    assert ThemeController(Settings(theme="sepia")).choice == SYSTEM
