"""Keyboard order and screen-reader names for the main window's controls.

Kept apart from the layout code so the layout can change without losing either: the tab order
follows the order a person fills the form in (prompt, negative, mode, sliders, seed, size, the
advanced settings, then Generate), and every control a person can operate gets a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollBar,
    QTextEdit,
    QWidget,
)

# Names for the controls whose visible label is a form row's, a unit or an icon.
NAMES = {
    "promptEdit": "Prompt",
    "negativePromptEdit": "Negative prompt",
    "networksButton": "Insert a LoRA or an embedding",
    "modeCombo": "Mode",
    "guidanceSlider": "Guidance",
    "guidanceSpin": "Guidance value",
    "stepsSlider": "Steps",
    "stepsSpin": "Steps value",
    "strengthSlider": "Strength",
    "strengthSpin": "Strength value",
    "maskBlurSpin": "Mask blur in pixels",
    "maskedContentCombo": "Masked content",
    "inpaintAreaCombo": "Inpaint area",
    "inpaintPaddingSpin": "Masked area padding in pixels",
    "seedSpin": "Seed",
    "randomSeedButton": "Random seed",
    "reuseSeedButton": "Reuse the last seed",
    "sizePresetCombo": "Size preset",
    "widthSpin": "Width in pixels",
    "heightSpin": "Height in pixels",
    "samplerCombo": "Sampler",
    "scheduleCombo": "Schedule",
    "sgmNoiseCheck": "Full start noise (SGM)",
    "batchCountSpin": "Batch count",
    "batchSizeSpin": "Images per batch",
    "hiresCheck": "Hires fix",
    "hiresScaleSpin": "Hires upscale factor",
    "hiresStepsSpin": "Hires steps",
    "hiresDenoiseSpin": "Hires denoising strength",
    "hiresUpscalerCombo": "Hires upscaler",
    "generateButton": "Generate",
    "cancelButton": "Cancel",
    "clearQueueButton": "Clear queue",
    "progressBar": "Progress",
    "modelPicker": "Model",
}
# The controls panel's widgets in the order a person sets them; the panel's other controls
# (the advanced settings) follow in their own order, then the Generate button.
FORM_ORDER = [
    "promptEdit",
    "negativePromptEdit",
    "networksButton",
    "modeCombo",
    "guidanceSlider",
    "guidanceSpin",
    "stepsSlider",
    "stepsSpin",
    "strengthSlider",
    "strengthSpin",
    "maskBlurSpin",  # Inpaint mode's rows
    "maskedContentCombo",
    "inpaintAreaCombo",
    "inpaintPaddingSpin",
    "seedSpin",
    "randomSeedButton",
    "reuseSeedButton",
    "sizePresetCombo",
    "widthSpin",
    "heightSpin",
]
INTERACTIVE = (QAbstractButton, QComboBox, QAbstractSpinBox, QAbstractSlider, QPlainTextEdit,
               QTextEdit, QLineEdit)  # fmt: skip


def is_interactive(widget: QWidget) -> bool:
    """A control a person operates; not scroll bars, nor the editors inside spin/combo boxes."""
    if not isinstance(widget, INTERACTIVE) or isinstance(widget, QScrollBar):
        return False
    return not isinstance(widget.parentWidget(), QAbstractSpinBox | QComboBox)


def interactive_children(root: QWidget) -> Iterator[QWidget]:
    return (w for w in root.findChildren(QWidget) if is_interactive(w))


def name_controls(root: QWidget) -> None:
    """Give every control under ``root`` an accessible name and a place in the Tab chain."""
    labels = {id(label.buddy()): label.text() for label in root.findChildren(QLabel)}
    for widget in interactive_children(root):
        if not widget.accessibleName():
            name = NAMES.get(widget.objectName()) or _derived_name(widget, labels)
            widget.setAccessibleName(name)
        if not widget.focusPolicy() & Qt.FocusPolicy.TabFocus:
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # reachable without a mouse


def set_tab_order(panel: QWidget, after: Iterable[QWidget]) -> None:
    """The panel's form order first, then the rest of the panel, then ``after``."""
    by_name = {w.objectName(): w for w in interactive_children(panel)}
    first = [by_name[name] for name in FORM_ORDER if name in by_name]
    rest = [w for w in _focus_chain(panel) if is_interactive(w) and w not in first]
    chain = first + rest + list(after)
    for a, b in zip(chain, chain[1:], strict=False):
        QWidget.setTabOrder(a, b)


def _focus_chain(panel: QWidget) -> list[QWidget]:
    chain: list[QWidget] = []
    widget = panel.nextInFocusChain()
    while widget is not None and widget is not panel and widget not in chain:
        if panel.isAncestorOf(widget):
            chain.append(widget)
        widget = widget.nextInFocusChain()
    return chain


def _derived_name(widget: QWidget, labels: dict[int, str]) -> str:
    text = widget.text() if isinstance(widget, QAbstractButton) else ""
    for candidate in (labels.get(id(widget), ""), text, widget.toolTip()):
        plain = _plain(candidate)
        if plain:
            return plain
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", widget.objectName() or type(widget).__name__)
    return re.sub(r" (Button|Combo|Spin|Slider|Edit|Check)$", "", words).capitalize()


def _plain(text: str) -> str:
    """The first line of a label, tooltip or button text, without markup and mnemonics."""
    line = re.sub(r"<[^>]+>", "", text).split("\n")[0].replace("&", "").strip()
    return line.split(" (")[0] if len(line) > 40 else line
