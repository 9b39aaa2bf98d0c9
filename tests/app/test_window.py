"""The window driven like a person would, with the fake engine where timing matters."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QPlainTextEdit, QProgressBar, QPushButton

from app.services import Services
from app.settings import Settings
from app.viewmodel import SKETCH
from app.window import MainWindow
from tests.app.fake_engine import FakeEngine, MemorySaver, PauseAtBatch, write_fake_checkpoint
from tests.app.qt_helpers import dismiss_messages


@pytest.fixture
def fake():
    return FakeEngine(step_seconds=0.03)


@pytest.fixture
def window(qtbot, fake, tmp_path):
    saver = MemorySaver()
    settings_file = tmp_path / "settings.json"
    w = MainWindow(Settings(), tmp_path / "gallery", Services(lambda: fake, saver), settings_file)
    w.saver = saver
    qtbot.addWidget(w)
    w.show()
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        w.load_model(str(write_fake_checkpoint(tmp_path / "tiny.safetensors")))
    yield w
    w.close()


def test_named_widgets_exist_and_prompt_has_focus(qtbot, window):
    names = (
        "promptEdit negativePromptEdit guidanceSlider stepsSlider seedSpin strengthSlider "
        "widthSpin heightSpin samplerCombo modeCombo sketchCanvas previewPane generateButton "
        "cancelButton galleryView progressBar"
    ).split()
    for name in names:
        assert window.findChild(object, name) is not None, name
    qtbot.wait_until(lambda: window.controls.prompt.hasFocus() or not window.isActiveWindow())
    assert window.focusWidget() is window.controls.prompt
    assert "tiny" in window.model_label.text() and "cpu" in window.model_label.text()


def test_controls_drive_the_request(qtbot, window):
    window.findChild(QPlainTextEdit, "promptEdit").setPlainText("a red boat")
    window.controls.steps.slider.setValue(7)
    window.controls.guidance.spin.setValue(4.5)
    window.controls.width_spin.setValue(64)
    window.controls.height_spin.setValue(96)
    window.controls.mode.setCurrentIndex(1)
    request = window.params.make_request(init_image=window.canvas.to_array())
    assert (request.prompt, request.steps, request.guidance_scale) == ("a red boat", 7, 4.5)
    assert (request.width, request.height) == (64, 96)
    assert window.canvas.to_array().shape == (96, 64, 3)  # the canvas follows the size
    assert request.init_image is not None and window.controls.strength.isEnabled()


def test_ctrl_enter_generates_and_the_result_lands_in_the_gallery(qtbot, window):
    window.params.update({"prompt": "boat", "steps": 4, "width": 64, "height": 64, "seed": 3})
    with qtbot.wait_signal(window.controller.job_done, timeout=5000):
        qtbot.keyClick(
            window.controls.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
        )
    assert window.controls.prompt.toPlainText() == "boat"  # no new line was typed
    assert window.gallery.count() == 1
    assert window.gallery.entries()[0].path == window.saver.saved[0][0]
    assert window.preview.image() is not None
    assert window.controls.reuse.isEnabled()
    window.params.seed = -1
    window.controls.reuse.click()
    assert window.params.seed == 3


def test_cancel_with_esc_stops_and_ui_is_idle_at_once(qtbot, window, fake):
    window.params.update({"prompt": "slow", "steps": 150, "width": 64, "height": 64})
    generate = window.findChild(QPushButton, "generateButton")
    cancel = window.findChild(QPushButton, "cancelButton")
    generate.click()
    qtbot.wait_until(lambda: window.preview.updates >= 2, timeout=5000)
    assert cancel.isEnabled()
    assert window.findChild(QProgressBar, "progressBar").value() > 0
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not cancel.isEnabled() and generate.text() == "Generate"
    shown = window.preview.updates
    qtbot.wait(200)
    assert window.preview.updates == shown  # the cancelled job sends nothing more
    assert not window.saver.saved


def test_generate_while_running_queues_and_queue_clears(qtbot, window):
    window.params.update({"prompt": "q", "steps": 20, "width": 64, "height": 64})
    window.generate_button.click()
    window.generate_button.click()
    window.generate_button.click()
    assert window.queue_label.text() == "2 queued"
    assert window.clear_queue_button.isVisibleTo(window)
    window.clear_queue_button.click()
    assert window.queue_label.text() == ""
    qtbot.wait_until(lambda: not window.jobs.running, timeout=5000)
    assert len(window.saver.saved) == 1


def test_gui_stays_responsive_while_generating(qtbot, window, fake):
    fake.step_seconds = 0.01
    window.params.update({"prompt": "r", "steps": 60, "width": 512, "height": 512})
    worst = [0.0]
    clock = QElapsedTimer()
    timer = QTimer(interval=10)

    def tick():
        worst[0] = max(worst[0], clock.restart() - 10)

    timer.timeout.connect(tick)
    window.generate()
    clock.start()
    timer.start()
    qtbot.wait_until(lambda: not window.jobs.running, timeout=10000)
    timer.stop()
    assert window.preview.updates >= 3
    assert worst[0] < 100, f"the GUI thread stalled for {worst[0]} ms"


def test_sketch_mode_sends_the_canvas(qtbot, window, fake):
    sent = []
    original = fake.generate
    fake.generate = lambda request, **kw: sent.append(request) or original(request, **kw)
    window.params.update({"prompt": "s", "steps": 2, "width": 64, "height": 64, "mode": SKETCH})
    window.canvas.fill_background()  # black
    with qtbot.wait_signal(window.controller.job_done, timeout=5000):
        window.generate()
    assert sent[0].init_image.shape == (64, 64, 3) and sent[0].init_image.max() == 0


def test_bad_model_gives_a_message_and_the_app_stays_usable(qtbot, window, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 10)
    with qtbot.wait_signal(window.controller.error, timeout=5000):
        window.load_model(str(bad))
    assert "broken.safetensors" in window.last_error
    window.params.update({"prompt": "still works", "steps": 2, "width": 64, "height": 64})
    dismiss_messages(qtbot, window)
    with qtbot.wait_signal(window.controller.image_ready, timeout=5000):
        qtbot.keyClick(
            window.controls.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
        )


def test_generate_without_model_explains(qtbot, fake, tmp_path):
    w = MainWindow(
        Settings(), tmp_path / "g", Services(lambda: fake, MemorySaver()), tmp_path / "s.json"
    )
    qtbot.addWidget(w)
    assert w.generate() is None
    assert "Open a model first" in w.last_error
    w.close()


def test_settings_persist_on_close(qtbot, fake, tmp_path):
    from app.settings import load_settings

    path = tmp_path / "s.json"
    w = MainWindow(Settings(), tmp_path / "g", Services(lambda: fake, MemorySaver()), path)
    qtbot.addWidget(w)
    w.params.update({"prompt": "remember me", "steps": 9})
    w.close()
    saved = load_settings(path).settings
    assert saved.parameters["prompt"] == "remember me" and saved.parameters["steps"] == 9
    assert saved.geometry
    start = time.monotonic()
    w2 = MainWindow(saved, tmp_path / "g", Services(lambda: fake, MemorySaver()), path)
    qtbot.addWidget(w2)
    assert w2.controls.prompt.toPlainText() == "remember me"
    assert w2.controls.steps.value() == 9
    w2.close()
    assert time.monotonic() - start < 5


def test_a_seed_above_two_to_the_31_comes_back_as_the_last_seed(qtbot, window):
    seeds = []
    window.jobs.last_seed_changed.connect(seeds.append)
    big = 3_000_000_000  # a C int would turn it into -1294967296
    window.params.update({"prompt": "big", "steps": 2, "width": 64, "height": 64, "seed": big})
    with qtbot.wait_signal(window.controller.job_done, timeout=5000):
        window.generate()
    assert seeds == [big] and window.jobs.last_seed == big
    assert window.controls.reuse.isEnabled()
    window.controls.dice.click()
    assert window.controls.seed.specialValueText() == window.controls.seed.text()  # "Random"
    window.controls.reuse.click()
    assert window.params.seed == big and window.controls.seed.value() == big
    assert window.controls.seed.text() == "3000000000"


def test_images_reach_the_gallery_as_they_finish_and_survive_a_cancel(qtbot, fake, tmp_path):
    """Esc during batch 3 of 4: batches 1 and 2 are already in the strip and stay there."""
    reached = threading.Event()
    saver = MemorySaver()
    services = Services(lambda: PauseAtBatch(fake, 2, reached), saver)
    w = MainWindow(Settings(), tmp_path / "gallery", services, tmp_path / "s.json")
    qtbot.addWidget(w)
    w.show()
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        w.load_model(str(write_fake_checkpoint(tmp_path / "tiny.safetensors")))
    w.params.update(
        {"prompt": "b", "steps": 3, "width": 64, "height": 64, "seed": 20}
        | {"batch_size": 2, "batch_count": 4}
    )
    w.generate()
    qtbot.wait_until(reached.is_set, timeout=5000)
    qtbot.wait_until(lambda: w.gallery.count() == 4, timeout=5000)  # before the job ends
    assert w.jobs.running
    with qtbot.wait_signal(w.controller.job_done, timeout=5000) as done:
        qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert done.args[1] == "cancelled"
    assert [e.path for e in w.gallery.entries()] == [p for p, _ in reversed(saver.saved)]
    assert [p.name.split("-")[1] for p, _ in saver.saved] == [
        "20.png",
        "21.png",
        "22.png",
        "23.png",
    ]
    w.close()
