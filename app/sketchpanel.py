"""The sketch canvas with its tool bar: tools, brush size and hardness, colour, history; in
Inpaint mode the brush and eraser paint the mask, and the mask's own row shows."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
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
from app.flow_layout import FlowLayout
from app.icons import tinted_icon
from app.mask_bar import MaskBar
from app.widgets import named

TOOLS = (
    (BRUSH, "Brush", "B", "Paint with the chosen colour"),
    (ERASER, "Eraser", "E", "Paint the background colour back"),
    (EYEDROPPER, "Pick", "I", "Pick a colour from the sketch"),
    (FILL, "Fill", "F", "Fill the whole sketch with the colour: a quick background"),
)
# The same tools in Inpaint mode, where they act on the mask.
MASK_TIPS = {
    BRUSH: "Paint the mask: where the picture is repainted",
    ERASER: "Erase the mask: keep the picture there",
    EYEDROPPER: "Pick a colour (not in Inpaint mode: the mask has none)",
    FILL: "Mask the whole picture",
}


class SketchPanel(QWidget):
    def __init__(self, canvas: SketchCanvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._icons: list[tuple[QToolButton, str]] = []  # re-tinted when the palette changes
        # The tool and brush rows wrap under each other when the column is narrow.
        bar = FlowLayout()
        bar.addWidget(_wrapped(self._tool_row()))
        bar.addWidget(_wrapped(self._brush_row()))
        layout.addLayout(bar)
        self.mask_bar = MaskBar(canvas)
        self.mask_bar.hide()  # Inpaint mode only
        layout.addWidget(self.mask_bar)
        layout.addWidget(canvas, 1)
        canvas.colour_picked.connect(self._show_colour)
        canvas.history_changed.connect(self._sync_history)
        self._sync_history()

    def _tool_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.tools = QButtonGroup(self)
        for tool, label, key, tip in TOOLS:
            button = self._button(row, label, f"{tip} ({key})", tool)
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
        row.addSpacing(8)
        self.undo_button = self._button(row, "Undo", "Undo the last stroke (Ctrl+Z)", "undo")
        self.redo_button = self._button(row, "Redo", "Redo the stroke (Ctrl+Shift+Z)", "redo")
        self.clear_button = self._button(row, "Clear", "Start over with a white sketch", "clear")
        self.undo_button.clicked.connect(self.canvas.undo)
        self.redo_button.clicked.connect(self.canvas.redo)
        self.clear_button.clicked.connect(self.canvas.clear)
        return row

    def _brush_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.size_slider = named(QSlider(Qt.Orientation.Horizontal), "brushSizeSlider")
        self.size_slider.setRange(1, 128)
        self.size_slider.setValue(round(self.canvas.brush_size))
        self.size_slider.setToolTip("Brush size, in pixels of the picture")
        self.size_slider.valueChanged.connect(self._set_brush_size)
        # The number beside the slider: image pixels, the unit the engine sees.
        self.size_label = named(QLabel(), "brushSizeLabel")
        self.size_label.setMinimumWidth(self.size_label.fontMetrics().horizontalAdvance("128 px"))
        self.size_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._set_brush_size(self.size_slider.value())
        self.hardness_slider = named(QSlider(Qt.Orientation.Horizontal), "hardnessSlider")
        self.hardness_slider.setRange(0, 100)
        self.hardness_slider.setValue(round(self.canvas.hardness * 100))
        self.hardness_slider.valueChanged.connect(
            lambda v: setattr(self.canvas, "hardness", v / 100)
        )
        row.addWidget(QLabel("Size"))
        row.addWidget(self.size_slider, 1)
        row.addWidget(self.size_label)
        row.addWidget(QLabel("Hardness"))
        row.addWidget(self.hardness_slider, 1)
        self.load_button = self._button(
            row, "Load…", "Load an image into the sketch (Ctrl+Shift+O)", "open-image"
        )
        self.use_result_button = self._button(
            row, "Use result", "Use the shown result as the sketch", "use-result"
        )
        for slider in (self.size_slider, self.hardness_slider):
            slider.setMinimumWidth(90)  # a slider narrower than this is a stub, not a control
        return row

    def _button(self, row: QHBoxLayout, text: str, tip: str, icon: str) -> QToolButton:
        # Icon only, so the row fits a narrow column; the name stays for tooltips and readers.
        button = QToolButton()
        button.setText(text)
        button.setToolTip(f"<b>{text.rstrip('…')}</b>: {tip}")
        button.setAccessibleName(text.rstrip("…"))
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self._icons.append((button, icon))
        self._tint(button, icon)
        row.addWidget(button)
        return button

    def _tint(self, button: QToolButton, icon: str) -> None:
        button.setIcon(tinted_icon(icon, self.palette().buttonText().color()))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Type.PaletteChange:  # e.g. the dark theme switched on
            for button, icon in self._icons:
                self._tint(button, icon)
        super().changeEvent(event)

    def _set_brush_size(self, size: int) -> None:
        self.canvas.brush_size = size
        self.size_label.setText(f"{size} px")

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

    def set_inpainting(self, on: bool) -> None:
        """Inpaint mode: the tools paint the mask, shown over the picture, and its row shows."""
        self.canvas.editing_mask = on
        self.mask_bar.setVisible(on)
        for button in self.tools.buttons():
            tool = button.objectName().removesuffix("Tool")
            key, tip = next((t[2], t[3]) for t in TOOLS if t[0] == tool)
            label = button.text()
            button.setToolTip(f"<b>{label}</b>: {MASK_TIPS[tool] if on else tip} ({key})")
            if tool == EYEDROPPER:
                button.setEnabled(not on)
        if on and self.canvas.tool == EYEDROPPER:
            self.canvas.tool = BRUSH
            self.tools.buttons()[0].setChecked(True)

    def _sync_history(self) -> None:
        self.undo_button.setEnabled(self.canvas.can_undo())
        self.redo_button.setEnabled(self.canvas.can_redo())


def _wrapped(row: QHBoxLayout) -> QWidget:
    row.setContentsMargins(0, 0, 0, 0)
    box = QWidget()
    box.setLayout(row)
    return box
