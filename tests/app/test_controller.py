"""The worker thread and its GUI-side controller, driven by the fake engine."""

from __future__ import annotations

import threading

import pytest

from app.controller import EngineController
from app.viewmodel import JobsState, ModelState
from engine import GenerationRequest
from tests.app.fake_engine import FakeEngine, MemorySaver, write_fake_checkpoint


@pytest.fixture
def fake():
    return FakeEngine(step_seconds=0.02)


@pytest.fixture
def controller(qtbot, fake, tmp_path):
    saver = MemorySaver()
    c = EngineController(JobsState(), ModelState(), lambda: fake, saver, preview_interval=0)
    c.saver = saver
    c.start()
    with qtbot.wait_signal(c.model_loaded, timeout=5000):
        c.load_model(str(write_fake_checkpoint(tmp_path / "m.safetensors")))
    yield c
    c.shutdown()


def test_model_loads_on_the_worker_thread(controller, fake):
    assert fake.thread_names and fake.thread_names[0] != threading.main_thread().name
    assert controller.model.name == "m"
    assert controller.model.device == "cpu · float32"
    assert not controller.model.loading


def test_bad_model_reports_an_error_and_stays_usable(qtbot, controller, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nonsense")
    with qtbot.wait_signal(controller.error, timeout=5000) as blocker:
        controller.load_model(str(bad))
    assert "bad.safetensors" in blocker.args[0]
    assert "not a checkpoint" in blocker.args[0]
    assert controller.model.name == "m"  # the old model is still there
    with qtbot.wait_signal(controller.images_finished, timeout=5000):
        controller.generate(GenerationRequest("x", steps=2, width=64, height=64), tmp_path)


def test_steps_arrive_then_images_are_saved(qtbot, controller, tmp_path):
    steps = []
    controller.preview_ready.connect(lambda job, image: steps.append((job, image.width())))
    with qtbot.wait_signal(controller.images_finished, timeout=5000) as blocker:
        job = controller.generate(
            GenerationRequest("cat", steps=5, width=64, height=64, seed=7), tmp_path
        )
    assert steps and all(j == job for j, _ in steps)
    assert steps[-1][1] == 8  # 64 / 8
    images = blocker.args[1]
    assert images[0].seed == 7 and images[0].path is not None
    assert controller.saver.saved[0][1].startswith("cat")
    assert controller.jobs.last_seed == 7
    assert not controller.jobs.running


def test_cancel_is_immediate_and_drops_stale_events(qtbot, controller, fake, tmp_path):
    fake.step_seconds = 0.05
    seen = []
    controller.preview_ready.connect(lambda job, image: seen.append(job))
    job = controller.generate(GenerationRequest("slow", steps=100, width=64, height=64), tmp_path)
    qtbot.wait_until(lambda: len(seen) >= 2, timeout=5000)
    with qtbot.wait_signal(controller.job_done, timeout=5000) as blocker:
        controller.cancel()
        assert not controller.jobs.running  # idle at once, before the worker answers
        count = len(seen)
    assert blocker.args == [job, "cancelled"]
    qtbot.wait(100)
    assert len(seen) == count  # nothing of the cancelled job arrived afterwards
    assert not controller.saver.saved


def test_second_generate_is_queued_and_queue_can_be_cleared(qtbot, controller, fake, tmp_path):
    request = GenerationRequest("q", steps=6, width=64, height=64)
    first = controller.generate(request, tmp_path)
    second = controller.generate(request, tmp_path)
    third = controller.generate(request, tmp_path)
    assert controller.jobs.queued == 2
    controller.clear_queue()
    assert controller.jobs.queued == 0
    with qtbot.wait_signal(controller.images_finished, timeout=5000) as blocker:
        pass
    assert blocker.args[0] == first
    fourth = controller.generate(request, tmp_path)
    qtbot.wait_until(lambda: not controller.jobs.running, timeout=5000)
    assert fake.started == [first, fourth]
    assert second not in fake.started and third not in fake.started
    assert len(controller.saver.saved) == 2


def test_queued_job_runs_after_the_first(qtbot, controller, fake, tmp_path):
    request = GenerationRequest("q", steps=3, width=64, height=64)
    done = []
    controller.images_finished.connect(lambda job, images: done.append(job))
    a = controller.generate(request, tmp_path)
    b = controller.generate(request, tmp_path)
    assert controller.jobs.queued == 1
    qtbot.wait_until(lambda: len(done) == 2, timeout=5000)
    assert done == [a, b]
    assert controller.jobs.queued == 0 and not controller.jobs.running


def test_unsaved_images_are_kept_with_a_message(qtbot, fake, tmp_path):
    c = EngineController(JobsState(), ModelState(), lambda: fake, MemorySaver(fail=True), 0)
    c.start()
    try:
        with qtbot.wait_signal(c.model_loaded, timeout=5000):
            c.load_model(str(write_fake_checkpoint(tmp_path / "m.safetensors")))
        errors = []
        c.error.connect(errors.append)
        with qtbot.wait_signal(c.images_finished, timeout=5000) as blocker:
            c.generate(GenerationRequest("x", steps=2, width=64, height=64), tmp_path)
        image = blocker.args[1][0]
        assert image.path is None and "cannot be written" in image.save_error
        assert image.array.shape == (64, 64, 3)
        assert errors and "Save as" in errors[0]
    finally:
        c.shutdown()
