"""The sketch canvas with its tool bar: tools, brush size and hardness, colour, history."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QColorDialog,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.canvas import BRUSH, ERASER, EYEDROPPER, FILL, SketchCanvas
from app.widgets import named

TOOLS = (
    (BRUSH, "Brush", "B", "Paint with the chosen colour"),
    (ERASER, "Eraser", "E", "Paint the background colour back"),
    (EYEDROPPER, "Pick", "I", "Pick a colour from the sketch"),
    (FILL, "Fill", "F", "Fill the whole sketch with the colour: a quick background"),
)


class SketchPanel(QWidget):
    def __init__(self, canvas: SketchCanvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._tool_row())
        layout.addLayout(self._brush_row())
        layout.addWidget(canvas, 1)
        canvas.colour_picked.connect(self._show_colour)
        canvas.history_changed.connect(self._sync_history)
        self._sync_history()

    def _tool_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.tools = QButtonGroup(self)
        for tool, label, key, tip in TOOLS:
            button = self._button(row, label, f"{tip} ({key})")
            button.setObjectName(f"{tool}Tool")
            button.setCheckable(True)
            button.setShortcut(key)
            button.setChecked(tool == self.canvas.tool)
            button.clicked.connect(lambda _=False, t=tool: setattr(self.canvas, "tool", t))
            self.tools.addButton(button)
        self.colour_button = named(QToolButton(), "colourButton")
        self.colour_button.setToolTip("Brush colour")
        self.colour_button.clicked.connect(self._choose_colour)
        self._show_colour(self.canvas.colour)
        row.addWidget(self.colour_button)
        row.addStretch(1)
        self.undo_button = self._button(row, "Undo", "Undo the last stroke (Ctrl+Z)")
        self.redo_button = self._button(row, "Redo", "Redo (Ctrl+Shift+Z)")
        self.clear_button = self._button(row, "Clear", "Start over with a white sketch")
        self.undo_button.clicked.connect(self.canvas.undo)
        self.redo_button.clicked.connect(self.canvas.redo)
        self.clear_button.clicked.connect(self.canvas.clear)
        return row

    def _brush_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.size_slider = named(QSlider(Qt.Orientation.Horizontal), "brushSizeSlider")
        self.size_slider.setRange(1, 128)
        self.size_slider.setValue(round(self.canvas.brush_size))
        self.size_slider.valueChanged.connect(lambda v: setattr(self.canvas, "brush_size", v))
        self.hardness_slider = named(QSlider(Qt.Orientation.Horizontal), "hardnessSlider")
        self.hardness_slider.setRange(0, 100)
        self.hardness_slider.setValue(round(self.canvas.hardness * 100))
        self.hardness_slider.valueChanged.connect(
            lambda v: setattr(self.canvas, "hardness", v / 100)
        )
        row.addWidget(QLabel("Size"))
        row.addWidget(self.size_slider, 1)
        row.addWidget(QLabel("Hardness"))
        row.addWidget(self.hardness_slider, 1)
        self.load_button = self._button(row, "Load…", "Load an image into the sketch")
        self.use_result_button = self._button(row, "Use result", "Use the shown result as sketch")
        return row

    def _button(self, row: QHBoxLayout, text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        row.addWidget(button)
        return button

    def _choose_colour(self) -> None:
        colour = QColorDialog.getColor(self.canvas.colour, self, "Brush colour")
        if colour.isValid():
            self.canvas.colour = colour
            self._show_colour(colour)

    def _show_colour(self, colour: QColor) -> None:
        swatch = QPixmap(18, 18)
        swatch.fill(colour)
        self.colour_button.setIcon(QIcon(swatch))
        if self.canvas.tool == EYEDROPPER:  # picked: back to painting with it
            self.canvas.tool = BRUSH
            self.tools.buttons()[0].setChecked(True)

    def _sync_history(self) -> None:
        self.undo_button.setEnabled(self.canvas.can_undo())
        self.redo_button.setEnabled(self.canvas.can_redo())
