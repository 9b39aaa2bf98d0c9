"""Light and dark themes: a Fusion palette per scheme plus ``resources/style.qss`` filled in.

"System" follows the desktop's colour scheme (Qt 6.5+ reports it and signals changes); the
person can pin Light or Dark in View › Theme, kept in ``Settings.theme``. The palette is ours,
not the platform's, so both themes look the same on every desktop and the contrast checks in
the tests hold everywhere.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app.settings import Settings

SYSTEM, LIGHT, DARK = "system", "light", "dark"
THEME_CHOICES = {SYSTEM: "&System", LIGHT: "&Light", DARK: "&Dark"}

Role = QPalette.ColorRole
# Text colours are chosen for a WCAG contrast of at least 4.5 on their backgrounds.
_COLOURS = {
    LIGHT: {
        Role.Window: "#efefef",
        Role.WindowText: "#1e1e1e",
        Role.Base: "#ffffff",
        Role.AlternateBase: "#f5f5f5",
        Role.Text: "#1e1e1e",
        Role.Button: "#e8e8e8",
        Role.ButtonText: "#1e1e1e",
        Role.BrightText: "#ffffff",
        Role.Highlight: "#2f6fb3",
        Role.HighlightedText: "#ffffff",
        Role.PlaceholderText: "#666666",
        Role.Link: "#1f5fa8",
        Role.ToolTipBase: "#ffffe8",
        Role.ToolTipText: "#1e1e1e",
        Role.Light: "#ffffff",
        Role.Midlight: "#f4f4f4",
        Role.Mid: "#b4b4b4",
        Role.Dark: "#9a9a9a",
        Role.Shadow: "#6a6a6a",
    },
    DARK: {
        Role.Window: "#2b2b2b",
        Role.WindowText: "#e6e6e6",
        Role.Base: "#1e1e1e",
        Role.AlternateBase: "#262626",
        Role.Text: "#e6e6e6",
        Role.Button: "#373737",
        Role.ButtonText: "#e6e6e6",
        Role.BrightText: "#ffffff",
        Role.Highlight: "#3a6ea5",
        Role.HighlightedText: "#ffffff",
        Role.PlaceholderText: "#9a9a9a",
        Role.Link: "#8ab8f0",
        Role.ToolTipBase: "#3a3a3a",
        Role.ToolTipText: "#e6e6e6",
        Role.Light: "#4a4a4a",
        Role.Midlight: "#3c3c3c",
        Role.Mid: "#5e5e5e",
        Role.Dark: "#191919",
        Role.Shadow: "#0c0c0c",
    },
}
_DISABLED_TEXT = {LIGHT: "#8c8c8c", DARK: "#7c7c7c"}
# How much of the highlight colour tints the progress bar's filled part: light enough that the
# bar's one text colour reads on both the filled and the unfilled part.
_CHUNK_TINT = {LIGHT: 0.3, DARK: 0.45}


def make_palette(scheme: str) -> QPalette:
    palette = QPalette()
    for role, colour in _COLOURS[scheme].items():
        palette.setColor(role, QColor(colour))
    disabled = QColor(_DISABLED_TEXT[scheme])
    for role in (Role.WindowText, Role.Text, Role.ButtonText, Role.PlaceholderText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return palette


def blend(top: QColor, bottom: QColor, alpha: float) -> QColor:
    """``top`` over ``bottom`` at ``alpha`` opacity, as an opaque colour."""

    def mix(t: int, u: int) -> int:
        return round(t * alpha + u * (1 - alpha))

    return QColor(
        mix(top.red(), bottom.red()),
        mix(top.green(), bottom.green()),
        mix(top.blue(), bottom.blue()),
    )


def style_sheet(template: str, scheme: str) -> str:
    """The QSS with its ``@token@``s filled in; everything else in it uses ``palette(...)``."""
    palette = make_palette(scheme)
    chunk = blend(palette.color(Role.Highlight), palette.color(Role.Base), _CHUNK_TINT[scheme])
    return template.replace("@progress-chunk@", chunk.name())


def load_style_template() -> str:
    style = Path(__file__).resolve().parents[1] / "resources" / "style.qss"
    try:
        from importlib.resources import files

        return files("latentdesk_resources").joinpath("style.qss").read_text()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return style.read_text() if style.exists() else ""


def system_scheme() -> str:
    scheme = QGuiApplication.styleHints().colorScheme()
    return DARK if scheme == Qt.ColorScheme.Dark else LIGHT  # Unknown: light, as Qt's default


class ThemeController(QObject):
    """Applies the chosen theme to the application and follows the system while on "System"."""

    applied = Signal(str)  # the scheme now shown: "light" | "dark"

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.scheme = ""  # none applied yet
        self._template: str | None = None
        self._following = False

    @property
    def choice(self) -> str:
        # A hand-edited or future value falls back to following the system.
        return self.settings.theme if self.settings.theme in THEME_CHOICES else SYSTEM

    def set_choice(self, choice: str) -> None:
        if choice not in THEME_CHOICES:
            raise ValueError(f"unknown theme {choice!r}")
        self.settings.theme = choice
        self.apply()

    def apply(self) -> None:
        app = QApplication.instance()
        assert isinstance(app, QApplication), "a theme needs the QApplication"
        scheme = system_scheme() if self.choice == SYSTEM else self.choice
        if self._template is None:
            self._template = load_style_template()
        if not self._following:
            self._following = True
            app.styleHints().colorSchemeChanged.connect(self._on_system_changed)
            # Once: the platform style may ignore parts of our palette. (Later its name reads
            # "" behind the style sheet's proxy style, so it cannot be checked each time.)
            app.setStyle("Fusion")
        app.setPalette(make_palette(scheme))
        app.setStyleSheet(style_sheet(self._template, scheme))
        self.scheme = scheme
        self.applied.emit(scheme)

    def _on_system_changed(self, _: Qt.ColorScheme) -> None:
        if self.choice == SYSTEM:
            self.apply()
