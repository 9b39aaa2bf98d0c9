"""The preset picker: choosing a preset sets sampler, schedule, steps and guidance together."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QWidget

from app.presets import PRESETS, preset_of
from app.viewmodel import GenerationParams
from app.widgets import named

CUSTOM = "Custom"


class PresetCombo(QComboBox):
    """Shows the preset the parameters hold ("Custom" when none); choosing one applies it."""

    def __init__(self, params: GenerationParams, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "samplingPresetCombo")
        self.params = params
        self.setToolTip("Sampler, schedule, steps and guidance that work well together")
        # The labels are long; the panel may be narrow: let the box be narrower than they are.
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self.addItem(CUSTOM, None)
        self.setItemData(0, "Your own choice of the values below", Qt.ItemDataRole.ToolTipRole)
        for preset in PRESETS:
            self.addItem(preset.label, preset.id)
            self.setItemData(self.count() - 1, preset.tip, Qt.ItemDataRole.ToolTipRole)
        self._applying = False
        self.activated.connect(self._apply)
        for name in ("sampler", "schedule", "steps", "guidance_scale"):
            getattr(params, name + "_changed").connect(self._sync)
        self._sync()

    def _apply(self, index: int) -> None:
        preset_id = self.itemData(index)
        preset = next((p for p in PRESETS if p.id == preset_id), None)
        if preset is None:  # "Custom": keep the values as they are
            self._sync()
            return
        self._applying = True  # the four changes pass through mixed states: show the end
        try:
            self.params.update(preset.values())
        finally:
            self._applying = False
        self._sync()

    def _sync(self, *_: object) -> None:
        if self._applying:
            return
        p = self.params
        found = preset_of(p.sampler, p.schedule, p.steps, p.guidance_scale)
        self.setCurrentIndex(max(0, self.findData(found)) if found else 0)
