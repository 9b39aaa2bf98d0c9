"""The Advanced section's hires fix rows: they build the request and are restored from pictures."""

from __future__ import annotations

import pytest

from app.controls import ControlsPanel
from app.services import Services
from app.settings import Settings
from app.viewmodel import SKETCH, TXT2IMG, GenerationParams, JobsState
from app.window import MainWindow
from engine.parameters import parse_parameters, request_from_parameters
from tests.app.fake_engine import FakeEngine, MemorySaver

HIRES_TEXT = (
    "a red barn\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x768, "
    "Denoising strength: 0.45, Hires upscale: 1.5, Hires steps: 12, Hires upscaler: Lanczos, "
    "Version: v1.10.1"
)
PLAIN_TEXT = "a red barn\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512"


@pytest.fixture
def panel(qtbot):
    panel = ControlsPanel(GenerationParams(), JobsState())
    qtbot.addWidget(panel)
    panel.advanced.set_open(True)
    panel.show()
    return panel


def test_the_rows_build_the_request(panel):
    hires, params = panel.hires, panel.params
    assert not hires.enabled.isChecked() and not hires.scale.isEnabled()
    assert params.make_request().hires_scale == 1.0  # off: no hires pass
    hires.enabled.setChecked(True)
    assert all(widget.isEnabled() for widget in hires.rows)
    hires.scale.setValue(1.5)
    hires.steps.setValue(12)
    hires.denoise.setValue(0.35)
    hires.upscaler.setCurrentIndex(hires.upscaler.findData("lanczos"))
    request = params.make_request()
    assert (request.hires_scale, request.hires_steps) == (1.5, 12)
    assert (request.hires_denoise, request.hires_upscaler) == (0.35, "lanczos")
    # Off again: no hires pass, and the values wait for the next time.
    hires.enabled.setChecked(False)
    assert params.make_request().hires_scale == 1.0 and hires.scale.value() == 1.5


def test_the_target_size_is_shown_and_a_too_large_one_said(panel):
    hires, params = panel.hires, panel.params
    params.width, params.height = 512, 768
    hires.enabled.setChecked(True)
    hires.scale.setValue(1.3)
    assert hires.target.text() == "→ 664×992"  # int(665.6), int(998.4), down to multiples of 8
    hires.scale.setValue(3.0)
    assert "too large" in hires.target.text()


def test_hires_fix_is_for_text_to_image_only(panel):
    hires, params = panel.hires, panel.params
    hires.enabled.setChecked(True)
    params.mode = SKETCH
    assert not hires.enabled.isEnabled() and not hires.scale.isEnabled()
    assert params.make_request(init_image=None).hires_scale == 1.0
    params.mode = TXT2IMG
    assert hires.scale.isEnabled() and params.make_request().hires_scale == 2.0


def test_settings_files_hold_the_values(panel):
    params = panel.params
    params.update({"hires_fix": True, "hires_scale": 2.5, "hires_upscaler": "lanczos"})
    assert panel.hires.enabled.isChecked() and panel.hires.scale.value() == 2.5
    assert panel.hires.upscaler.currentData() == "lanczos"
    # Only real booleans, known upscalers and factors in range are taken.
    params.update({"hires_fix": "false", "hires_upscaler": "esrgan", "hires_scale": 9})
    assert params.hires_fix is True and params.hires_upscaler == "lanczos"
    assert params.hires_scale == 2.5


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(Settings(), tmp_path / "g", Services(FakeEngine, MemorySaver()), tmp_path / "s")
    qtbot.addWidget(w)
    yield w
    w.close()


def test_a_hires_picture_restores_the_rows_and_a_plain_one_turns_them_off(window):
    params, hires = window.params, window.controls.hires
    params.mode = SKETCH
    window.restore_fields(request_from_parameters(parse_parameters(HIRES_TEXT)))
    assert params.mode == TXT2IMG  # its denoising strength was the hires pass's
    assert hires.enabled.isChecked()
    assert (hires.scale.value(), hires.steps.value(), hires.denoise.value()) == (1.5, 12, 0.45)
    assert hires.upscaler.currentData() == "lanczos"
    request = params.make_request()
    assert (request.width, request.height, request.hires_scale) == (512, 768, 1.5)
    window.restore_fields(request_from_parameters(parse_parameters(PLAIN_TEXT)))
    assert not hires.enabled.isChecked() and params.make_request().hires_scale == 1.0
    assert hires.scale.value() == 1.5  # kept for the next time it is turned on
