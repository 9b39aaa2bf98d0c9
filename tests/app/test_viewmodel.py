"""View-models emit only on real changes; emitting never corrupts the interpreter."""

from __future__ import annotations

import sys

from app.jobs import PreviewThrottle, progress_text
from app.signals import emit
from app.viewmodel import SKETCH, GenerationParams, JobsState
from engine import GenerationRequest


def test_changed_signal_fires_only_on_real_change(qtbot):
    params = GenerationParams()
    seen = []
    params.steps_changed.connect(seen.append)
    params.steps = 30
    params.steps = 30
    params.steps = 31
    assert seen == [30, 31]


def test_update_ignores_unknown_and_invalid_values():
    params = GenerationParams()
    params.update({"steps": "12", "sampler": "no-such", "colour": 3, "width": "wide"})
    assert params.steps == 12
    assert params.sampler == "dpmpp_2m" and params.width == 512


def test_make_request_uses_sketch_only_in_sketch_mode():
    params = GenerationParams()
    params.update({"prompt": "a cat", "seed": 5, "steps": 4})
    assert params.make_request(init_image=object()).init_image is None
    params.mode = SKETCH
    sketch = object()
    request = params.make_request(init_image=sketch)
    assert request.init_image is sketch and request.seed == 5 and request.prompt == "a cat"
    params.seed = -1
    assert params.make_request().seed is None  # random


def test_apply_request_restores_controls():
    params = GenerationParams()
    request = GenerationRequest("dog", "blurry", 64, 128, 9, 4.5, 77, "euler", "normal")
    params.apply_request(request)
    assert params.to_dict() | {"mode": "x"} == params.to_dict() | {
        "prompt": "dog",
        "negative_prompt": "blurry",
        "width": 64,
        "height": 128,
        "steps": 9,
        "guidance_scale": 4.5,
        "seed": 77,
        "sampler": "euler",
        "schedule": "normal",
        "mode": "x",
    }


def test_many_emits_leave_true_alone(qtbot):
    jobs = JobsState()
    before = sys.getrefcount(True)
    for i in range(2000):
        emit(jobs.queued_changed, i)
        jobs.running = i % 2 == 0
    assert abs(sys.getrefcount(True) - before) < 50


def test_throttle_lets_through_at_most_one_per_interval_and_the_last():
    now = [0.0]
    throttle = PreviewThrottle(0.1, clock=lambda: now[0])
    passed = []
    for step in range(1, 101):
        now[0] = step * 0.01  # 100 steps per second
        passed.append(throttle.ready(final=step == 100))
    assert 9 <= sum(passed) <= 11
    assert passed[-1]


def test_progress_text_reports_rate_and_time_left():
    text, fraction = progress_text(10, 20, 5.0)
    assert text == "Step 10/20 · 2.0 it/s · 5 s left"
    assert fraction == 0.5
    text, fraction = progress_text(5, 10, 5.0, batch_index=1, batch_count=2)
    assert text.startswith("Batch 2/2 · Step 5/10") and fraction == 0.75


def test_seeds_above_two_to_the_31_cross_signals(qtbot):
    params = GenerationParams()
    seen = []
    params.seed_changed.connect(seen.append)
    params.seed = 2**32 - 1
    assert seen == [2**32 - 1]


def test_last_seed_above_two_to_the_31_reaches_the_seed_box(qtbot):
    from app.controls import ControlsPanel

    params, jobs = GenerationParams(), JobsState()
    panel = ControlsPanel(params, jobs)
    qtbot.addWidget(panel)
    with qtbot.wait_signal(jobs.last_seed_changed) as changed:
        jobs.last_seed = 3_000_000_000
    assert changed.args == [3_000_000_000]
    assert panel.reuse.isEnabled()
    panel.reuse.click()
    assert params.seed == 3_000_000_000
    assert panel.seed.value() == 3_000_000_000 and panel.seed.text() == "3000000000"


def test_update_ignores_values_outside_the_limits():
    params = GenerationParams()
    params.update(
        {"steps": 3_000_000_000, "width": 10**12, "batch_size": 0, "seed": 2**32}
        | {"guidance_scale": float("nan"), "batch_count": float("inf"), "strength": 1.5}
    )
    assert params.to_dict() == GenerationParams().to_dict()
    params.update({"steps": 150, "width": 2048, "seed": 2**32 - 1, "strength": 1.0})
    assert (params.steps, params.width, params.seed, params.strength) == (150, 2048, 2**32 - 1, 1)


def test_other_threads_touching_true_cannot_fool_the_emit_guard():
    """The guard decides at import, before threads exist: a thread that takes thousands of
    references to True while the app emits (a JSON scan, say) must not change its answer."""
    import subprocess
    import textwrap

    code = textwrap.dedent(
        """
        import sys, threading
        from PySide6.QtCore import QObject, Signal
        from app.signals import emit

        class Jobs(QObject):
            queued = Signal(int)

        jobs = Jobs()
        start = threading.Event()
        done = threading.Event()

        def hold_many_trues():
            held = []
            while not done.is_set():
                held.append([True] * 10_000)  # swings True's refcount while we emit
                if len(held) > 5:
                    held.clear()
                start.set()
            held.clear()

        before = sys.getrefcount(True)
        worker = threading.Thread(target=hold_many_trues)
        worker.start()
        start.wait()
        for i in range(4000):
            emit(jobs.queued, i)
        done.set()
        worker.join()
        print(before - sys.getrefcount(True))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert abs(int(out.stdout.split()[-1])) < 50, out.stdout + out.stderr
