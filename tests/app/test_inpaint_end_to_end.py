"""The real engine inpaints what the brush masked: a tiny random checkpoint, the window driven
with the mouse. Outside the mask the result is the input, pixel for pixel (the paste-back);
inside it is repainted."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from app.qimages import array_to_qimage
from app.settings import Settings
from app.viewmodel import INPAINT
from app.window import MainWindow
from engine.image_metadata import read_png_parameters
from tests.app.test_inpaint_mask import drag

factories = pytest.importorskip("tests.factories")

SLOW = 120_000  # ms: the test machine is shared


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


def on_screen(canvas, x: float, y: float) -> QPoint:
    """Where picture pixel (x, y) is on the canvas widget."""
    rect = canvas.target_rect()
    scale = rect.width() / canvas.picture_size().width()
    return (rect.topLeft() + QPointF(x, y) * scale).toPoint()


def test_paint_a_mask_with_the_brush_and_inpaint(qtbot, window):
    rng = np.random.default_rng(3)
    picture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # detail the VAE would blur
    window.inpaint.inpaint(array_to_qimage(picture))
    assert window.params.mode == INPAINT
    canvas = window.canvas
    canvas.hardness, canvas.brush_size = 1.0, 12
    drag(qtbot, canvas, [on_screen(canvas, 20, 32), on_screen(canvas, 44, 32)])
    mask = canvas.mask_array()
    assert mask[32, 32] == 255 and mask[5, 5] == 0
    window.controls.inpaint.blur.setValue(0)
    window.controls.strength.set_value(0.75)
    window.params.update({"prompt": "a red square", "steps": 2, "seed": 11})
    images = []
    window.controller.image_ready.connect(lambda job, image: images.append(image))
    with qtbot.wait_signal(window.controller.job_done, timeout=SLOW) as done:
        qtbot.keyClick(
            window.controls.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
        )
    assert done.args[1] == "finished", window.last_error
    result = images[0].array
    assert result.shape == picture.shape
    outside, inside = mask == 0, mask == 255
    assert (result[outside] == picture[outside]).all()  # pasted back exactly
    changed = np.abs(result[inside].astype(int) - picture[inside]).mean()
    assert changed > 20, changed  # repainted
    text = read_png_parameters(images[0].path)
    assert "Mask blur: 0" in text and "Denoising strength: 0.75" in text
    window.restore_parameters(text)  # the picture's parameters bring Inpaint back
    assert window.params.mode == INPAINT and window.params.mask_blur == 0
