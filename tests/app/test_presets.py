"""Sampling presets in the window: one choice sets sampler, schedule, steps and guidance."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.controls import ControlsPanel
from app.preset_combo import CUSTOM
from app.presets import PRESETS, preset_of
from app.settings import Settings, load_settings, save_settings
from app.viewmodel import GenerationParams, JobsState
from engine.api import GenerationRequest
from engine.parameters import parse_parameters, request_from_parameters
from engine.validate import validate_request

BY_ID = {preset.id: preset for preset in PRESETS}


def _panel(qtbot, params: GenerationParams | None = None) -> ControlsPanel:
    panel = ControlsPanel(params or GenerationParams(), JobsState())
    qtbot.addWidget(panel)
    return panel


def _shown(panel: ControlsPanel) -> str | None:
    return panel.sampling_preset.currentData()


def _choose(qtbot, panel: ControlsPanel, preset_id: str | None) -> None:
    """As a person does: arrow keys on the focused picker until the preset is chosen."""
    combo = panel.sampling_preset
    target = combo.findData(preset_id)
    key = Qt.Key.Key_Down if target > combo.currentIndex() else Qt.Key.Key_Up
    while combo.currentIndex() != target:
        qtbot.keyClick(combo, key)


def test_the_presets_are_the_three_named_in_the_window():
    assert [p.label for p in PRESETS] == [
        "Quality (DPM++ 2M Karras, 25 steps, guidance 7)",
        "Fast: LCM (LCM, 6 steps, guidance 1.5)",
        "Turbo (Euler a, SGM Uniform, 4 steps, guidance 1)",
    ]
    for preset in PRESETS:  # values the engine takes, and the app's own defaults are one
        validate_request(GenerationRequest("x", **preset.values()))  # type: ignore[arg-type]
    assert preset_of("dpmpp_2m", "karras", 25, 7.0) == "quality"
    assert preset_of("lcm", "lcm", 6, 1.5) == "lcm"
    assert preset_of("lcm", "lcm", 6, 2.0) is None
    assert preset_of("lcm", "sgm_uniform", 6, 1.5) is None


def test_defaults_show_quality_and_choosing_a_preset_sets_all_four(qtbot):
    panel = _panel(qtbot)
    params = panel.params
    assert _shown(panel) == "quality"
    _choose(qtbot, panel, "lcm")
    assert (params.sampler, params.schedule, params.steps, params.guidance_scale) == (
        "lcm",
        "lcm",
        6,
        1.5,
    )
    # The controls follow, and so does the request.
    assert panel.sampler.currentText() == "LCM" and panel.schedule.currentText() == "LCM"
    assert (panel.steps.value(), panel.guidance.value()) == (6, 1.5)
    request = params.make_request()
    assert (request.sampler, request.schedule, request.steps) == ("lcm", "lcm", 6)
    assert request.guidance_scale == 1.5
    _choose(qtbot, panel, "turbo")
    assert params.make_request().guidance_scale == 1.0  # guidance 1: no negative pass
    assert (params.sampler, params.schedule, params.steps) == ("euler_a", "sgm_uniform", 4)


@pytest.mark.parametrize(
    "change",
    [
        lambda panel: panel.steps.spin.setValue(7),
        lambda panel: panel.guidance.spin.setValue(2.0),
        lambda panel: panel.sampler.setCurrentIndex(panel.sampler.findData("euler")),
        lambda panel: panel.schedule.setCurrentIndex(panel.schedule.findData("simple")),
    ],
)
def test_changing_any_of_the_four_shows_custom(qtbot, change):
    panel = _panel(qtbot)
    _choose(qtbot, panel, "lcm")
    change(panel)
    assert _shown(panel) is None and panel.sampling_preset.currentText() == CUSTOM
    # The other values stay as the preset set them.
    assert panel.params.sampler in ("lcm", "euler")


def test_values_that_match_again_show_the_preset_and_custom_changes_nothing(qtbot):
    panel = _panel(qtbot)
    _choose(qtbot, panel, "lcm")
    panel.steps.spin.setValue(8)
    assert _shown(panel) is None
    _choose(qtbot, panel, None)  # "Custom" keeps the person's values
    assert panel.params.steps == 8 and panel.params.sampler == "lcm"
    panel.steps.spin.setValue(6)
    assert _shown(panel) == "lcm"


def test_the_preset_survives_a_restart_through_the_saved_parameters(qtbot, tmp_path):
    panel = _panel(qtbot)
    _choose(qtbot, panel, "turbo")
    path = tmp_path / "settings.json"
    save_settings(Settings(parameters=panel.params.to_dict()), path)
    restored = GenerationParams()
    restored.update(load_settings(path).settings.parameters)
    again = _panel(qtbot, restored)
    assert _shown(again) == "turbo"
    assert again.sampling_preset.currentText() == BY_ID["turbo"].label


def test_a_restored_lcm_picture_shows_the_lcm_preset(qtbot):
    panel = _panel(qtbot)
    text = (
        "a fox\nSteps: 6, Sampler: LCM, Schedule type: LCM, CFG scale: 1.5, Seed: 3, Size: 512x512"
    )
    panel.params.update(request_from_parameters(parse_parameters(text)))
    assert _shown(panel) == "lcm"


def test_the_picker_sits_in_the_advanced_section_with_the_sampler(qtbot):
    panel = _panel(qtbot)
    combo = panel.sampling_preset
    assert combo.objectName() == "samplingPresetCombo"
    assert panel.advanced.isAncestorOf(combo) and panel.advanced.isAncestorOf(panel.sampler)
    tips = [combo.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(combo.count())]
    assert "LCM-LoRA" in tips[combo.findData("lcm")]
