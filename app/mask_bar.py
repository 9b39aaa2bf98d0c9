"""The mask's tool row, shown in Inpaint mode: invert, clear, grow, shrink, feather, colour.

Grow, shrink and feather use the engine's own mask functions (``engine.inpaint.masks``), so the
canvas shows what the engine will repaint. They take up to 200 ms on a 2048² mask, so they run
on a thread of their own; a result is applied only if the mask did not change meanwhile (a
stroke painted while it ran is never overwritten), and each is one undoable step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QWidget,
)

from app.canvas import SketchCanvas
from app.flow_layout import FlowLayout
from app.signals import emit
from app.widgets import named
from engine.inpaint.masks import feather, grow, invert, shrink

MaskFunction = Callable[[np.ndarray], np.ndarray]
DEFAULT_AMOUNT = 8  # pixels: one latent cell of SD


class _Run(QRunnable):
    def __init__(self, ops: MaskOps, revision: int, mask: np.ndarray, fn: MaskFunction) -> None:
        super().__init__()
        self.ops, self.revision, self.mask, self.fn = ops, revision, mask, fn

    def run(self) -> None:
        emit(self.ops._done, self.revision, self.fn(self.mask))


class MaskOps(QObject):
    """Runs a function over the canvas's mask off the GUI thread and applies its result."""

    finished = Signal()
    message = Signal(str)  # why a result was not applied
    _done = Signal(int, object)  # revision the result was made from, the new mask

    def __init__(self, canvas: SketchCanvas, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._done.connect(self._apply)
        self.running = 0

    def run(self, fn: MaskFunction) -> None:
        self.running += 1
        self._pool.start(_Run(self, self.canvas.mask_revision, self.canvas.mask_array(), fn))

    def wait(self) -> None:
        """For tests and shutdown: let a running function end (its result still queues)."""
        self._pool.waitForDone()

    def _apply(self, revision: int, mask: np.ndarray) -> None:
        self.running -= 1
        if revision != self.canvas.mask_revision:
            emit(self.message, "The mask changed while it was being worked on: try again.")
        else:
            self.canvas.set_mask_array(mask)
        emit(self.finished)


class MaskBar(QWidget):
    """Buttons for the whole mask; ``message`` carries what the status bar should say."""

    message = Signal(str)
    extend_requested = Signal()  # "Extend…": the window's outpaint dialog

    def __init__(self, canvas: SketchCanvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("maskBar")
        self.canvas = canvas
        self.ops = MaskOps(canvas, self)
        self.ops.message.connect(self.message)
        # Three groups that wrap under each other when the column is narrow.
        flow = FlowLayout(self)
        row = _group(flow)
        row.addWidget(QLabel("Mask"))
        self.invert_button = _button(
            row, "invertMaskButton", "Invert", "Repaint what is kept (Ctrl+Shift+I)"
        )
        self.invert_button.setShortcut("Ctrl+Shift+I")  # Krita's "invert selection"
        self.clear_button = _button(row, "clearMaskButton", "Clear", "Clear the mask")
        row = _group(flow)
        self.grow_button = _button(row, "growMaskButton", "Grow", "Widen the mask by the amount")
        self.shrink_button = _button(
            row, "shrinkMaskButton", "Shrink", "Narrow the mask by the amount"
        )
        self.feather_button = _button(
            row, "featherMaskButton", "Feather", "Soften the mask's edge over the amount"
        )
        self.amount = named(QSpinBox(minimum=1, maximum=128), "maskAmountSpin")
        self.amount.setValue(DEFAULT_AMOUNT)
        self.amount.setSuffix(" px")
        self.amount.setToolTip("Pixels of the picture to grow, shrink or feather by")
        self.amount.setAccessibleName("Mask amount")
        row.addWidget(self.amount)
        row = _group(flow)
        self.colour_button = _button(
            row, "maskColourButton", "Colour", "The colour the mask is shown in"
        )
        self.extend_button = _button(
            row,
            "extendButton",
            "Extend…",
            "Outpaint: extend the picture on any side and repaint the new area",
        )
        self.colour_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._show_colour(canvas.mask_colour)
        self.invert_button.clicked.connect(lambda: self.ops.run(invert))
        self.clear_button.clicked.connect(canvas.clear_mask)
        self.grow_button.clicked.connect(self.grow)
        self.shrink_button.clicked.connect(self.shrink)
        self.feather_button.clicked.connect(self.feather)
        self.colour_button.clicked.connect(self._choose_colour)
        self.extend_button.clicked.connect(self.extend_requested)

    # The amount is read here, on the GUI thread; the function runs on the mask's thread.
    def grow(self) -> None:
        pixels = self.amount.value()
        self.ops.run(lambda mask: grow(mask, pixels))

    def shrink(self) -> None:
        pixels = self.amount.value()
        self.ops.run(lambda mask: shrink(mask, pixels))

    def feather(self) -> None:
        sigma = self.amount.value() / 2  # a Gaussian fades over about 2 sigma each side
        self.ops.run(lambda mask: feather(mask, sigma))

    def _choose_colour(self) -> None:
        colour = QColorDialog.getColor(self.canvas.mask_colour, self, "Mask colour")
        if colour.isValid():
            self.canvas.set_mask_colour(colour)
            self._show_colour(colour)

    def _show_colour(self, colour: QColor) -> None:
        swatch = QPixmap(18, 18)
        swatch.fill(colour)
        self.colour_button.setIcon(QIcon(swatch))


def _group(flow: FlowLayout) -> QHBoxLayout:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    flow.addWidget(box)
    return row


def _button(row: QHBoxLayout, name: str, text: str, tip: str) -> QToolButton:
    button = named(QToolButton(), name)
    button.setText(text)
    button.setToolTip(tip)
    button.setAccessibleName(f"{text.rstrip('…')} mask" if name != "extendButton" else "Extend")
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    row.addWidget(button)
    return button
