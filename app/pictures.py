"""The sketch and the preview: side by side when there is room, one at a time when narrow.

When narrow a segmented "Sketch | Preview" switch picks the one shown; it switches to the
preview by itself when a generation starts (``show_preview``), so the result is never hidden.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QToolButton, QVBoxLayout, QWidget

from app.widgets import named

SIDE_BY_SIDE_MIN = 760  # each picture gets about 370 px: the sketch tools fit in two rows


class PicturesView(QWidget):
    def __init__(self, sketch: QWidget, preview: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sketch, self.preview = sketch, preview
        self.sketch_tab = _segment("sketchTab", "Sketch", "Show the sketch (Ctrl+1)", "Ctrl+1")
        self.preview_tab = _segment("previewTab", "Preview", "Show the result (Ctrl+2)", "Ctrl+2")
        group = QButtonGroup(self)
        group.addButton(self.sketch_tab)
        group.addButton(self.preview_tab)
        self.preview_tab.setChecked(True)
        self.switch = named(QWidget(), "picturesSwitch")
        switch_row = QHBoxLayout(self.switch)
        switch_row.setContentsMargins(4, 0, 4, 0)
        switch_row.setSpacing(0)  # the two buttons read as one segmented control
        switch_row.addWidget(self.sketch_tab)
        switch_row.addWidget(self.preview_tab)
        switch_row.addStretch(1)
        pictures = QHBoxLayout()
        pictures.setContentsMargins(0, 0, 0, 0)
        pictures.addWidget(sketch, 1)
        pictures.addWidget(preview, 1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.switch)
        column.addLayout(pictures, 1)
        self.sketch_tab.toggled.connect(self._sync)
        self._side_by_side = True
        self._sync()

    @property
    def side_by_side(self) -> bool:
        return self._side_by_side

    def show_sketch(self) -> None:
        self.sketch_tab.setChecked(True)

    def show_preview(self) -> None:
        self.preview_tab.setChecked(True)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt name)
        wide = event.size().width() >= SIDE_BY_SIDE_MIN
        if wide != self._side_by_side:
            self._side_by_side = wide
            self._sync()
        super().resizeEvent(event)

    def _sync(self, *_: object) -> None:
        both = self._side_by_side
        self.switch.setVisible(not both)
        self.sketch.setVisible(both or self.sketch_tab.isChecked())
        self.preview.setVisible(both or self.preview_tab.isChecked())


def _segment(name: str, text: str, tip: str, keys: str) -> QToolButton:
    button = named(QToolButton(), name)
    button.setText(text)
    button.setToolTip(tip)
    button.setCheckable(True)
    button.setShortcut(keys)
    button.setAutoRaise(False)
    button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    button.setAccessibleName(f"Show {text.lower()}")
    return button
