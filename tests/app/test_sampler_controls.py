"""The sampler and schedule pickers follow the engine's sampler catalogue."""

from __future__ import annotations

from app.controls import ControlsPanel
from app.viewmodel import GenerationParams, JobsState
from engine.samplers import CATALOGUE


def test_sampler_picker_lists_the_catalogue_and_schedule_follows_it(qtbot):
    params = GenerationParams()
    panel = ControlsPanel(params, JobsState())
    qtbot.addWidget(panel)
    combo = panel.sampler
    listed = [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]
    assert listed == [(info.display_name, info.id) for info in CATALOGUE]
    for info in CATALOGUE:
        params.sampler = info.id
        # DDIM and PLMS ignore the schedule: the picker says so by being disabled.
        assert panel.schedule.isEnabled() == info.uses_schedule, info.id


A1111_TEXT = (
    "a red barn\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, "
    "Seed: 5, Size: 512x512, Version: v1.10.1"
)


def test_restored_pictures_set_the_start_noise_so_they_reproduce(qtbot):
    from engine.parameters import parse_parameters, request_from_parameters

    params = GenerationParams()
    panel = ControlsPanel(params, JobsState())
    qtbot.addWidget(panel)
    assert panel.sgm_noise.isChecked() and params.make_request().sgm_noise
    # A1111 without its "SGM noise multiplier" option: its picture needs the plain start.
    params.update(request_from_parameters(parse_parameters(A1111_TEXT)))
    assert not panel.sgm_noise.isChecked()
    assert params.make_request().sgm_noise is False
    # One of ours (or A1111 with the option) turns it back on, through the same path.
    params.update(
        request_from_parameters(parse_parameters(A1111_TEXT + ", SGM noise multiplier: True"))
    )
    assert panel.sgm_noise.isChecked() and params.make_request().sgm_noise is True
    # The person can change it; DDIM ignores it, so the box is disabled there.
    panel.sgm_noise.setChecked(False)
    assert params.sgm_noise is False
    params.sampler = "ddim"
    assert not panel.sgm_noise.isEnabled()
    params.sampler = "euler"
    assert panel.sgm_noise.isEnabled()
    # Settings files hold JSON: only real booleans are taken.
    params.sgm_noise = True
    params.update({"sgm_noise": "false"})
    assert params.sgm_noise is True and panel.sgm_noise.isChecked()


def test_clip_skip_is_an_advanced_control_restored_from_pictures(qtbot):
    from engine.parameters import parse_parameters, request_from_parameters

    params = GenerationParams()
    panel = ControlsPanel(params, JobsState())
    qtbot.addWidget(panel)
    assert panel.clip_skip.value() == 1 and params.make_request().clip_skip == 1
    panel.clip_skip.setValue(2)
    assert params.make_request().clip_skip == 2
    params.update(request_from_parameters(parse_parameters(A1111_TEXT + ", Clip skip: 3")))
    assert panel.clip_skip.value() == 3 and params.make_request().clip_skip == 3
    # It folds away with the other advanced settings.
    assert panel.advanced.isAncestorOf(panel.clip_skip)
    params.update({"clip_skip": 40})  # a hand-edited settings file: out of range, ignored
    assert params.clip_skip == 3
