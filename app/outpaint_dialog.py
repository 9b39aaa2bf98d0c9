"""Outpainting's question: how many pixels to add on each side, and what to pre-fill them with.

The picture is then extended by ``engine.inpaint.outpaint.extend`` (new area and a seam into the
old one masked) and inpainted in one step. Sides go in steps of 8 pixels, so the new size is
still one the engine makes, and the dialog refuses a size beyond the engine's limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.widgets import named
from engine.api import MAX_SIZE

SIDES = ("left", "top", "right", "bottom")
FILL_TEXT = {
    "edge": ("Edge colours", "Repeat the picture's edge outwards: the new area continues it"),
    "noise": ("Noise", "Random colours: more freedom for what appears there"),
}
DEFAULT_SIDE = 64


@dataclass(frozen=True)
class Extension:
    left: int
    top: int
    right: int
    bottom: int
    fill: str  # engine.inpaint.outpaint.FILLS


class OutpaintDialog(QDialog):
    def __init__(self, width: int, height: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outpaintDialog")
        self.setWindowTitle("Extend the picture")
        self.picture_size = (width, height)
        form = QFormLayout()
        self.spins: dict[str, QSpinBox] = {}
        for side in SIDES:
            spin = named(QSpinBox(minimum=0, maximum=MAX_SIZE), f"extend_{side}")
            spin.setSingleStep(8)
            spin.setSuffix(" px")
            spin.setValue(DEFAULT_SIDE if side == "right" else 0)
            spin.setToolTip("Pixels to add on this side (a multiple of 8)")
            spin.valueChanged.connect(self._sync)
            form.addRow(f"Extend {side} by", spin)
            self.spins[side] = spin
        self.fill = named(QComboBox(), "extendFillCombo")
        for value, (text, tip) in FILL_TEXT.items():
            self.fill.addItem(text, value)
            self.fill.setItemData(self.fill.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        form.addRow("Fill the new area with", self.fill)
        self.summary = named(QLabel(), "extendSummary")
        self.summary.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Extend and mask")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addWidget(self.summary)
        column.addWidget(self.buttons)
        self._sync()

    def extension(self) -> Extension:
        """The sides as chosen, each rounded to a multiple of 8."""
        left, top, right, bottom = (round(self.spins[s].value() / 8) * 8 for s in SIDES)
        return Extension(left, top, right, bottom, str(self.fill.currentData()))

    def new_size(self) -> tuple[int, int]:
        e = self.extension()
        width, height = self.picture_size
        return width + e.left + e.right, height + e.top + e.bottom

    def problem(self) -> str:
        """Why the choice cannot be made; "" when it can."""
        width, height = self.new_size()
        if (width, height) == self.picture_size:
            return "Choose how many pixels to add on at least one side."
        if max(width, height) > MAX_SIZE:
            return (
                f"{width} × {height} is larger than the {MAX_SIZE} pixels a side this app "
                "makes: extend by less."
            )
        return ""

    def _sync(self) -> None:
        width, height = self.new_size()
        old_w, old_h = self.picture_size
        problem = self.problem()
        self.summary.setText(problem or f"{old_w} × {old_h} → {width} × {height}; the new area "
                             "is masked and repainted when you generate.")  # fmt: skip
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problem)
