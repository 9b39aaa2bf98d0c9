"""A section with a header button that folds its contents away (e.g. the advanced parameters)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLayout, QToolButton, QVBoxLayout, QWidget

from app.signals import emit
from app.widgets import named


class CollapsibleSection(QWidget):
    toggled = Signal(bool)  # open

    def __init__(self, name: str, title: str, body: QLayout, parent: QWidget | None = None):
        super().__init__(parent)
        self.header = named(QToolButton(), name + "Header")
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        font = self.header.font()
        font.setBold(True)  # a font, not a style sheet: the theme's style sheet stays in charge
        self.header.setFont(font)
        self.body = named(QWidget(), name + "Body")
        self.body.setLayout(body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.body)
        self.header.toggled.connect(self._sync)
        self._sync(False)

    def is_open(self) -> bool:
        return self.header.isChecked()

    def set_open(self, open_: bool) -> None:
        self.header.setChecked(open_)

    def _sync(self, open_: bool) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)
        self.header.setToolTip("Hide these settings" if open_ else "Show these settings")
        self.body.setVisible(open_)
        emit(self.toggled, open_)
