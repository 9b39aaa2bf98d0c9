"""The hires fix's rows in the Advanced section (A1111's "Hires. fix"): on/off, upscale factor,
hires steps, denoising strength and upscaler, with the size the picture will have.

Text to image only, as in A1111 (``engine.hires``): in the other modes the rows are disabled
and the request has no hires pass.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from app.viewmodel import TXT2IMG, GenerationParams
from app.widgets import named
from engine.api import MAX_HIRES_SCALE, MAX_SIZE, MAX_STEPS
from engine.hires import target_size

# What each upscaler is called here (A1111's names), and what it does.
UPSCALER_TEXT = {
    "latent": (
        "Latent",
        "Interpolate the latents: fast; the hires pass needs a strength of "
        "about 0.5 or more to sharpen the picture",
    ),
    "lanczos": (
        "Lanczos",
        "Decode, resize the picture with Lanczos, encode again: keeps the picture at low strengths",
    ),
}


class HiresOptions:
    """Adds its rows to ``form`` and binds them both ways to ``params``."""

    def __init__(self, params: GenerationParams, form: QFormLayout) -> None:
        self.params = params
        self.enabled = named(QCheckBox("Upscale and refine"), "hiresCheck")
        self.enabled.setToolTip(
            "Hires fix: make the picture at the size above, upscale it, then refine it at the "
            "larger size with its own steps (text to image only)"
        )
        self.target = named(QLabel(), "hiresTargetLabel")
        self.scale = _double_spin(
            "hiresScaleSpin",
            1.0,
            MAX_HIRES_SCALE,
            0.05,
            "Upscale factor: the final picture's size over the size above",
        )
        self.steps = named(QSpinBox(minimum=0, maximum=MAX_STEPS), "hiresStepsSpin")
        self.steps.setSpecialValueText("Same as steps")
        self.steps.setToolTip("Steps of the refining pass (0: as many as Steps)")
        self.denoise = _double_spin(
            "hiresDenoiseSpin",
            0.0,
            1.0,
            0.05,
            "How much the refining pass changes: 0 keeps the upscaled picture, 1 redraws it",
        )
        self.upscaler = named(QComboBox(), "hiresUpscalerCombo")
        for value, (text, tip) in UPSCALER_TEXT.items():
            self.upscaler.addItem(text, value)
            self.upscaler.setItemData(self.upscaler.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.upscaler.setToolTip("How the picture is upscaled before it is refined")
        row = QHBoxLayout()
        row.addWidget(self.enabled)
        row.addStretch(1)
        row.addWidget(self.target)
        form.addRow("Hires fix", row)
        self.rows: list[QWidget] = [self.scale, self.steps, self.denoise, self.upscaler]
        for label, widget in zip(
            ("Upscale by", "Hires steps", "Denoising", "Upscaler"), self.rows, strict=True
        ):
            form.addRow(label, widget)
        self._bind()

    def _bind(self) -> None:
        p = self.params
        self.enabled.setChecked(p.hires_fix)
        self.enabled.toggled.connect(lambda on: setattr(p, "hires_fix", on))
        p.hires_fix_changed.connect(self.enabled.setChecked)
        for spin, name in (
            (self.scale, "hires_scale"),
            (self.steps, "hires_steps"),
            (self.denoise, "hires_denoise"),
        ):
            spin.setValue(getattr(p, name))
            spin.valueChanged.connect(lambda v, n=name: setattr(p, n, v))
            getattr(p, name + "_changed").connect(spin.setValue)
        _select(self.upscaler, p.hires_upscaler)
        self.upscaler.currentIndexChanged.connect(
            lambda: setattr(p, "hires_upscaler", self.upscaler.currentData())
        )
        p.hires_upscaler_changed.connect(lambda v: _select(self.upscaler, v))
        for signal in (p.hires_fix_changed, p.mode_changed):
            signal.connect(self._sync_enabled)
        for signal in (
            p.hires_fix_changed,
            p.hires_scale_changed,
            p.width_changed,
            p.height_changed,
        ):
            signal.connect(self._sync_target)
        self._sync_enabled()
        self._sync_target()

    def _sync_enabled(self, *_: object) -> None:
        txt2img = self.params.mode == TXT2IMG
        self.enabled.setEnabled(txt2img)
        for widget in self.rows:
            widget.setEnabled(txt2img and self.params.hires_fix)

    def _sync_target(self, *_: object) -> None:
        """ "→ 1024×1024", the size the picture will have; said too when it is too large."""
        p = self.params
        width, height = target_size(p.width, p.height, p.hires_scale)
        too_large = max(width, height) > MAX_SIZE
        self.target.setText(f"→ {width}×{height}" + (" (too large)" if too_large else ""))
        self.target.setToolTip(
            f"Sides go up to {MAX_SIZE} pixels: lower the factor or the size"
            if too_large
            else "The final picture's size: the size above times the factor, in multiples of 8"
        )
        self.target.setEnabled(p.hires_fix)


def _double_spin(name: str, low: float, high: float, step: float, tip: str) -> QDoubleSpinBox:
    spin = named(QDoubleSpinBox(decimals=2), name)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setToolTip(tip)
    return spin


def _select(combo: QComboBox, value: str) -> None:
    index = combo.findData(value)
    if index >= 0 and index != combo.currentIndex():
        combo.setCurrentIndex(index)
