"""The inpaint options, as rows of the controls' form shown only in Inpaint mode: mask blur,
masked content, inpaint area and its padding (A1111's names, ranges and defaults). The
denoising strength is the form's Strength slider, shared with Sketch to image.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QSpinBox, QWidget

from app.viewmodel import INPAINT, GenerationParams
from app.widgets import named
from engine.inpaint.settings import MAX_MASK_BLUR, MAX_PADDING

# What each engine choice is called here (A1111's words), and what it does.
MASKED_CONTENT_TEXT = {
    "original": ("Original", "Start from the picture under the mask: change it, keep its look"),
    "fill": ("Fill", "Start from the mask's surroundings blurred in: remove something"),
    "latent_noise": ("Latent noise", "Start from noise: something new, unlike what was there"),
    "latent_nothing": ("Latent nothing", "Start from an empty latent: a flat new area"),
}
INPAINT_AREA_TEXT = {
    "whole": ("Whole picture", "Repaint the masked area at the picture's size"),
    "masked": (
        "Only masked",
        "Repaint just the masked area, scaled up to the generation size: more detail in "
        "small areas",
    ),
}


class InpaintOptions:
    """Adds its rows to ``form`` and binds them both ways to ``params``."""

    def __init__(self, params: GenerationParams, form: QFormLayout) -> None:
        self.params, self.form = params, form
        self.blur = _spin("maskBlurSpin", MAX_MASK_BLUR, "Pixels over which the mask's edge "
                          "fades into the picture, so no seam shows")  # fmt: skip
        self.content = _combo("maskedContentCombo", MASKED_CONTENT_TEXT)
        self.content.setToolTip("Masked content: what the masked area starts from")
        self.area = _combo("inpaintAreaCombo", INPAINT_AREA_TEXT)
        self.area.setToolTip("Inpaint area: the whole picture, or only the masked part")
        self.padding = _spin("inpaintPaddingSpin", MAX_PADDING,
                             "Only masked: pixels of context around the mask")  # fmt: skip
        self.rows: list[QWidget] = [self.blur, self.content, self.area, self.padding]
        for label, widget in zip(
            # Short labels: the form's label column is shared with Guidance, Seed... and a
            # longer one pushes the seed buttons out of the panel (seen under Xvfb).
            ("Mask blur", "Content", "Area", "Padding"),
            self.rows,
            strict=True,
        ):
            form.addRow(label, widget)
        self._bind()
        self.sync_mode(params.mode)

    def _bind(self) -> None:
        p = self.params
        for spin, name in ((self.blur, "mask_blur"), (self.padding, "inpaint_padding")):
            spin.setValue(getattr(p, name))
            spin.valueChanged.connect(lambda v, n=name: setattr(p, n, v))
            getattr(p, name + "_changed").connect(spin.setValue)
        for combo, name in ((self.content, "masked_content"), (self.area, "inpaint_area")):
            _select(combo, getattr(p, name))
            combo.currentIndexChanged.connect(
                lambda _, c=combo, n=name: setattr(p, n, c.currentData())
            )
            getattr(p, name + "_changed").connect(lambda v, c=combo: _select(c, v))
        p.mode_changed.connect(self.sync_mode)
        p.inpaint_area_changed.connect(self._sync_padding)
        self._sync_padding(p.inpaint_area)

    def sync_mode(self, mode: str) -> None:
        for widget in self.rows:
            self.form.setRowVisible(widget, mode == INPAINT)

    def _sync_padding(self, area: str) -> None:
        self.padding.setEnabled(area == "masked")


def _spin(name: str, maximum: int, tip: str) -> QSpinBox:
    spin = named(QSpinBox(minimum=0, maximum=maximum), name)
    spin.setSuffix(" px")
    spin.setToolTip(tip)
    return spin


def _combo(name: str, choices: dict[str, tuple[str, str]]) -> QComboBox:
    combo = named(QComboBox(), name)
    for value, (text, tip) in choices.items():
        combo.addItem(text, value)
        combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
    return combo


def _select(combo: QComboBox, value: str) -> None:
    index = combo.findData(value)
    if index >= 0 and index != combo.currentIndex():
        combo.setCurrentIndex(index)
