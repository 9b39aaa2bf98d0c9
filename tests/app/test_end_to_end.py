"""The real engine drives the window: a tiny random checkpoint, the same code path as real files."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from app.services import Services
from app.settings import Settings
from app.viewmodel import SKETCH
from app.window import MainWindow
from engine.image_metadata import read_png_parameters
from tests.app.fake_engine import PauseAtBatch
from tests.app.qt_helpers import dismiss_messages

factories = pytest.importorskip("tests.factories")

SLOW = 120_000  # ms; the test machine is shared, a tiny model still takes seconds per image


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny-sd1.safetensors"
    return factories.write_checkpoint(factories.tiny_sd1_state_dict(), path)


@pytest.fixture
def window(qtbot, tmp_path, checkpoint):
    w = MainWindow(Settings(), tmp_path / "gallery", settings_path=tmp_path / "settings.json")
    qtbot.addWidget(w)
    w.show()
    with qtbot.wait_signal(w.controller.model_loaded, timeout=SLOW):
        w.load_model(str(checkpoint))
    yield w
    w.close()


def _generate(qtbot, window, **values):
    window.params.update({"steps": 2, "width": 64, "height": 64, **values})
    previews, images = [], []
    window.controller.preview_ready.connect(lambda job, image: previews.append(image.size()))
    window.controller.image_ready.connect(lambda job, image: images.append(image))
    with qtbot.wait_signal(window.controller.job_done, timeout=SLOW) as done:
        qtbot.keyClick(
            window.controls.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
        )
    assert done.args[1] == "finished"
    return previews, images


def test_txt2img_saves_a_png_with_prompt_and_seed(qtbot, window, tmp_path):
    assert window.model.name == "tiny-sd1"
    previews, images = _generate(qtbot, window, prompt="a tiny red house", seed=1234)
    assert previews, "no preview arrived during sampling"
    path = images[0].path
    assert path is not None and path.parent == tmp_path / "gallery" and path.suffix == ".png"
    text = read_png_parameters(path)
    assert text.startswith("a tiny red house\n") and "Seed: 1234" in text
    assert window.gallery.entries()[0].path == path
    assert window.preview.image().size().width() == 64

    # Double-clicking it in the gallery restores its settings into the controls.
    window.params.update({"prompt": "something else", "seed": 5, "steps": 30})
    item = window.gallery.item(0)
    rect = window.gallery.visualItemRect(item)
    viewport = window.gallery.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.controls.prompt.toPlainText() == "a tiny red house"
    assert window.controls.seed.value() == 1234 and window.params.steps == 2


def test_sketch_to_image_uses_the_canvas(qtbot, window):
    window.canvas.set_canvas_size(64, 64)
    window.canvas.fill_background()
    window.controls.mode.setCurrentIndex(window.controls.mode.findData(SKETCH))
    window.controls.strength.set_value(0.5)
    previews, images = _generate(qtbot, window, prompt="a sketch of a tree", seed=7)
    assert previews
    text = read_png_parameters(images[0].path)
    assert "a sketch of a tree" in text and "Seed: 7" in text
    assert "Denoising strength: 0.5" in text


def test_bad_model_file_keeps_the_app_usable(qtbot, window, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with qtbot.wait_signal(window.controller.error, timeout=SLOW):
        window.load_model(str(bad))
    assert "broken.safetensors" in window.last_error
    assert window.model.name == "tiny-sd1" and not window.model.loading
    missing = tmp_path / "nowhere.safetensors"
    with qtbot.wait_signal(window.controller.error, timeout=SLOW):
        window.load_model(str(missing))
    assert "nowhere.safetensors" in window.last_error
    dismiss_messages(qtbot, window)
    _, images = _generate(qtbot, window, prompt="still fine", seed=1)
    assert images[0].path is not None


def test_gui_stays_responsive_with_the_real_engine(qtbot, window):
    """A QTimer on the GUI thread measures its own lateness while the real engine samples."""
    from PySide6.QtCore import QElapsedTimer, QTimer

    # A seed above 2**31 also checks that seeds survive Qt signals (C int overflow).
    window.params.update(
        {"prompt": "responsive", "steps": 8, "width": 128, "height": 128, "seed": 3_000_000_000}
    )
    worst = [0.0]
    clock = QElapsedTimer()
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: worst.__setitem__(0, max(worst[0], clock.restart() - 10)))
    with qtbot.wait_signal(window.controller.job_done, timeout=SLOW):
        window.generate()
        clock.start()
        timer.start()
    timer.stop()
    print(f"worst GUI stall while the real engine sampled: {worst[0]} ms")
    assert worst[0] < 100, f"the GUI thread stalled for {worst[0]} ms"


def test_cancel_mid_generation_with_the_real_engine(qtbot, window, tmp_path):
    window.params.update({"prompt": "cancel me", "steps": 40, "width": 64, "height": 64})
    previews, finished = [], []
    window.controller.preview_ready.connect(lambda job, image: previews.append(job))
    window.controller.image_ready.connect(lambda *args: finished.append(args))
    window.generate()
    qtbot.wait_until(lambda: len(previews) >= 2, timeout=SLOW)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.jobs.running  # idle at once, without waiting for the worker
    seen = len(previews)
    qtbot.wait(2000)  # the worker stops within a step; nothing of that job may arrive now
    assert len(previews) <= seen + 1 and finished == []
    assert list((tmp_path / "gallery").glob("*.png")) == []
    _, images = _generate(qtbot, window, prompt="after cancel", seed=3)
    assert images[0].path is not None


def test_cancel_during_batch_3_of_4_keeps_batches_1_and_2_on_disk(qtbot, tmp_path, checkpoint):
    """The issue's case, in the app: 4 batches of 2, Esc when batch 3 begins. The real engine
    makes the pictures; PauseAtBatch only holds batch 3 at its first step until the cancel, so
    the test does not depend on how fast this machine runs a step."""
    from engine import Engine

    reached = threading.Event()
    services = Services(backend_factory=lambda: PauseAtBatch(Engine(), 2, reached))
    gallery = tmp_path / "gallery"
    w = MainWindow(Settings(), gallery, services, tmp_path / "settings.json")
    qtbot.addWidget(w)
    w.show()
    with qtbot.wait_signal(w.controller.model_loaded, timeout=SLOW):
        w.load_model(str(checkpoint))
    seed = 4_000_000_000  # also above 2**31, through every signal on the way
    w.params.update({"prompt": "four batches", "steps": 2, "width": 64, "height": 64})
    w.params.update({"seed": seed, "batch_size": 2, "batch_count": 4})
    w.generate()
    qtbot.wait_until(reached.is_set, timeout=SLOW)
    with qtbot.wait_signal(w.controller.job_done, timeout=SLOW) as done:
        qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert done.args[1] == "cancelled"
    qtbot.wait(200)  # anything still in flight from the worker would land now

    files = sorted(gallery.glob("*.png"))  # names sort by time: the order they were made
    assert len(files) == 2 * 2
    seeds = [seed + i for i in range(4)]
    for path, expected in zip(files, seeds, strict=True):
        assert f"-{expected}-" in path.name  # the seed labels the file
        text = read_png_parameters(path)
        assert text.startswith("four batches\n") and f"Seed: {expected}," in text
    assert [e.path for e in w.gallery.entries()] == files[::-1]  # the strip, newest first
    assert w.jobs.last_seed == seed and not w.jobs.running
    w.close()
