"""The worker thread and its GUI-side controller, driven by the fake engine."""

from __future__ import annotations

import inspect
import threading

import pytest

from app.controller import EngineController
from app.jobs import FinishedImage
from app.services import Services
from app.viewmodel import JobsState, ModelState
from engine import Backend, GenerationRequest, OutOfMemoryError
from tests.app.fake_engine import FakeEngine, MemorySaver, PauseAtBatch, write_fake_checkpoint


@pytest.fixture
def fake():
    return FakeEngine(step_seconds=0.02)


def _start(qtbot, tmp_path, backend: Backend, saver: MemorySaver) -> EngineController:
    c = EngineController(JobsState(), ModelState(), Services(lambda: backend, saver), 0)
    c.start()
    with qtbot.wait_signal(c.model_loaded, timeout=5000):
        c.load_model(str(write_fake_checkpoint(tmp_path / "m.safetensors")))
    return c


@pytest.fixture
def controller(qtbot, fake, tmp_path):
    saver = MemorySaver()
    c = _start(qtbot, tmp_path, fake, saver)
    c.saver = saver
    yield c
    c.shutdown()


def _run(qtbot, controller, request, folder) -> tuple[list[FinishedImage], str]:
    """Generate and wait for the job's end: (its images as they arrived, how it ended)."""
    images: list[FinishedImage] = []
    controller.image_ready.connect(lambda job, image: images.append(image))
    with qtbot.wait_signal(controller.job_done, timeout=5000) as done:
        controller.generate(request, folder)
    return images, done.args[1]


def test_fake_engine_is_a_full_backend(fake):
    assert isinstance(fake, Backend)
    for name in ("list_models", "load_model", "generate"):
        wanted = inspect.signature(getattr(Backend, name)).parameters.values()
        got = inspect.signature(getattr(FakeEngine, name)).parameters.values()
        assert [(p.name, p.kind, p.default) for p in got] == [
            (p.name, p.kind, p.default) for p in wanted
        ], name


def test_fake_engine_lists_its_models(fake, tmp_path):
    fake.model_folder = tmp_path
    b = write_fake_checkpoint(tmp_path / "b.safetensors")
    a = write_fake_checkpoint(tmp_path / "A.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"nonsense")
    assert [r.name for r in fake.list_models()] == ["A", "b"]
    fake.load_model(str(b))
    assert fake.model_info.path == str(b) and len(fake.list_models()) == 2
    assert [r.id for r in fake.list_models()] == [str(a), str(b)]


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
    request = GenerationRequest("x", steps=2, width=64, height=64)
    images, how = _run(qtbot, controller, request, tmp_path)
    assert how == "finished" and len(images) == 1


def test_steps_arrive_then_images_are_saved(qtbot, controller, tmp_path):
    steps = []
    controller.preview_ready.connect(lambda job, image: steps.append((job, image.width())))
    request = GenerationRequest("cat", steps=5, width=64, height=64, seed=7)
    images, how = _run(qtbot, controller, request, tmp_path)
    assert how == "finished"
    assert steps and steps[-1][1] == 8  # 64 / 8
    assert images[0].seed == 7 and images[0].path is not None
    assert controller.saver.saved[0][1].startswith("cat")
    assert controller.jobs.last_seed == 7
    assert not controller.jobs.running


def test_each_image_arrives_before_the_job_ends(qtbot, controller, tmp_path):
    events = []
    controller.image_ready.connect(lambda job, image: events.append(("image", image.seed)))
    controller.job_done.connect(lambda job, how: events.append(("done", how)))
    request = GenerationRequest("b", steps=2, width=64, height=64, seed=40, batch_size=2)
    with qtbot.wait_signal(controller.job_done, timeout=5000):
        controller.generate(request, tmp_path)
    assert events == [("image", 40), ("image", 41), ("done", "finished")]
    assert controller.jobs.last_seed == 40  # the job's seed: "reuse" makes the batch again


def test_cancel_during_batch_3_of_4_keeps_batches_1_and_2(qtbot, fake, tmp_path):
    reached = threading.Event()
    saver = MemorySaver()
    c = _start(qtbot, tmp_path, PauseAtBatch(fake, 2, reached), saver)
    try:
        images = []
        c.image_ready.connect(lambda job, image: images.append(image))
        request = GenerationRequest(
            "b", steps=3, width=64, height=64, seed=10, batch_size=2, batch_count=4
        )
        job = c.generate(request, tmp_path)
        # What the person sees when batch 3 has begun, and then presses Esc.
        qtbot.wait_until(lambda: c.jobs.progress.startswith("Batch 3/4 · Step 1/3"), timeout=5000)
        assert reached.is_set()
        with qtbot.wait_signal(c.job_done, timeout=5000) as done:
            c.cancel()
        assert done.args == [job, "cancelled"]
        assert [i.seed for i in images] == [10, 11, 12, 13]
        assert [i.index for i in images] == [0, 1, 2, 3]
        assert [path.name for path, _ in saver.saved] == [
            f"{n:05d}-{seed}.png" for n, seed in enumerate([10, 11, 12, 13])
        ]
    finally:
        c.shutdown()


class FailsInBatch2(FakeEngine):
    """Runs out of memory when the second batch begins, as a too-large batch can."""

    def generate(self, request, *, on_step=None, **kwargs):
        def step(event):
            if event.batch_index == 1:
                raise OutOfMemoryError("Out of memory at batch size 2. Try batch size 1.")
            if on_step is not None:
                on_step(event)

        return super().generate(request, on_step=step, **kwargs)


def test_a_job_failing_in_batch_2_keeps_batch_1(qtbot, tmp_path):
    saver = MemorySaver()
    c = _start(qtbot, tmp_path, FailsInBatch2(step_seconds=0.01), saver)
    try:
        errors = []
        c.error.connect(errors.append)
        request = GenerationRequest(
            "f", steps=2, width=64, height=64, seed=50, batch_size=2, batch_count=3
        )
        images, how = _run(qtbot, c, request, tmp_path)
        assert how == "failed" and errors == ["Out of memory at batch size 2. Try batch size 1."]
        assert [i.seed for i in images] == [50, 51] and all(i.path for i in images)
        assert len(saver.saved) == 2
    finally:
        c.shutdown()


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
    ended = []
    controller.job_done.connect(lambda job, how: ended.append((job, how)))
    with qtbot.wait_signal(
        controller.job_done, timeout=5000, check_params_cb=lambda job, how: job == first
    ):
        controller.clear_queue()
        assert controller.jobs.queued == 0
    qtbot.wait_until(lambda: len(ended) == 3, timeout=5000)
    assert sorted(ended) == [(first, "finished"), (second, "cancelled"), (third, "cancelled")]
    fourth = controller.generate(request, tmp_path)
    qtbot.wait_until(lambda: not controller.jobs.running, timeout=5000)
    assert fake.started == [first, fourth]
    assert second not in fake.started and third not in fake.started
    assert len(controller.saver.saved) == 2


def test_queued_job_runs_after_the_first(qtbot, controller, fake, tmp_path):
    request = GenerationRequest("q", steps=3, width=64, height=64)
    done = []
    controller.job_done.connect(lambda job, how: done.append((job, how)))
    a = controller.generate(request, tmp_path)
    b = controller.generate(request, tmp_path)
    assert controller.jobs.queued == 1
    qtbot.wait_until(lambda: len(done) == 2, timeout=5000)
    assert done == [(a, "finished"), (b, "finished")]
    assert controller.jobs.queued == 0 and not controller.jobs.running


def test_unsaved_images_are_kept_with_one_message_per_job(qtbot, fake, tmp_path):
    c = _start(qtbot, tmp_path, fake, MemorySaver(fail=True))
    try:
        errors = []
        c.error.connect(errors.append)
        request = GenerationRequest("x", steps=2, width=64, height=64, batch_size=3)
        images, how = _run(qtbot, c, request, tmp_path)
        assert how == "finished" and len(images) == 3
        assert all(i.path is None and "cannot be written" in i.save_error for i in images)
        assert images[0].array.shape == (64, 64, 3)
        assert len(errors) == 1 and "Save as" in errors[0]
    finally:
        c.shutdown()
