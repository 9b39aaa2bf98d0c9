"""The built-in demo model in the window: listed as "Demo (shapes)", loaded at start when it is
the only model, its native size taken, never remembered as the last model; and, with the
shipped file, a stroke of colour drawn on the canvas comes out of Sketch to image in place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtWidgets import QApplication

from app.controls import DEMO_PROMPT_HINT, PROMPT_HINT
from app.library_model import (
    BUILT_IN,
    DEMO_NOTE,
    choice_of,
    demo_to_start,
    is_builtin,
    model_choices,
)
from app.services import Services
from app.settings import Settings
from app.size_presets import size_for_model
from app.viewmodel import SKETCH
from app.window import MainWindow
from engine.image_metadata import read_png_parameters
from engine.library import ModelLibrary
from engine.library.builtin import DEMO_ENV, shipped_models
from engine.loading.file_metadata import read_metadata
from engine.parameters import parse_parameters
from tests.app.fake_library import entry

SLOW = 120_000  # ms: a shared test machine


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from tests.demo_files import write_tiny_demo  # torch: only for the tests that run a model

    return write_tiny_demo(tmp_path_factory.mktemp("resources") / "demo")


def _demo_entry(path: Path | str = "/opt/latentdesk/resources/demo/demo-shapes.safetensors"):
    return entry(path, name="Demo (shapes)", source="built-in", size=17_400_000)


# -- without Qt ----------------------------------------------------------------------------------


def test_the_demo_starts_only_when_it_is_the_only_usable_model():
    demo, mine = _demo_entry(), entry("/models/mine.safetensors")
    sdxl = entry("/models/xl.safetensors", family="sdxl")
    assert demo_to_start([demo]) == demo.path
    assert demo_to_start([demo, sdxl]) == demo.path  # an SDXL file cannot be used
    assert demo_to_start([demo, mine]) is None and demo_to_start([mine]) is None
    assert demo_to_start([]) is None
    assert is_builtin([demo, mine], demo.path) and not is_builtin([demo, mine], mine.path)


def test_the_demo_has_a_heading_of_its_own_after_the_sd1_models():
    choices = model_choices([_demo_entry(), entry("/models/mine.safetensors")])
    assert [(c.name, c.group) for c in choices] == [
        ("mine", "Stable Diffusion 1.x"),
        ("Demo (shapes)", BUILT_IN),
    ]
    assert choice_of(_demo_entry()).source == "built into Latentdesk"


def test_the_size_follows_the_model_until_the_person_chooses_one():
    assert size_for_model((512, 512), None, 128) == (128, 128)  # first model: from the default
    assert size_for_model((128, 128), 128, 512) == (512, 512)  # demo, then SD 1.5
    assert size_for_model((768, 512), 512, 128) == (768, 512)  # chosen: kept
    assert size_for_model((256, 256), None, 128) == (256, 256)  # restored from the settings
    assert size_for_model((512, 512), 512, 512) == (512, 512)
    assert size_for_model((512, 512), None, None) == (512, 512)


# -- the window ----------------------------------------------------------------------------------


def _window(qtbot, tmp_path, services: Services | None = None) -> MainWindow:
    w = MainWindow(Settings(), tmp_path / "gallery", services, tmp_path / "settings.json")
    qtbot.addWidget(w)
    w.show()
    return w


def _library(tmp_path: Path, demo: Path, *others: Path) -> ModelLibrary:
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    for other in others:
        (models / other.name).hardlink_to(other)
    return ModelLibrary(
        home=tmp_path / "home",
        env={},
        cache_path=tmp_path / "cache.json",
        config_path=tmp_path / "library.json",
        models_dir=models,
        builtin_models=[demo],
    )


def test_a_fresh_computer_starts_with_the_demo_at_its_size(qtbot, tmp_path, demo):
    library = _library(tmp_path, demo)
    w = _window(qtbot, tmp_path, Services(library_factory=lambda: library))
    qtbot.wait_until(lambda: w.library_state.scanned, timeout=SLOW)
    assert [c.name for c in w.welcome.choices()] == ["Demo (shapes)"]
    assert "built-in demo" in w.welcome.hint.text()
    with qtbot.wait_signal(w.controller.model_loaded, timeout=SLOW) as loaded:
        w.load_start_model(None)
    assert loaded.args[0].name == "Demo (shapes)" and loaded.args[0].path == str(demo)
    assert w.picker.currentText().startswith("Demo (shapes)")
    assert (w.params.width, w.params.height) == (128, 128)
    assert w.controls.preset.currentText().startswith("128 × 128")
    qtbot.wait(100)  # a "remember" task would have run on the library's thread by now
    assert library.last_model == "" and w.settings.last_model == ""
    assert w.statusBar().currentMessage() == DEMO_NOTE  # and where real models come from
    assert w.controls.prompt.placeholderText() == DEMO_PROMPT_HINT  # what it can draw
    w.close()


def test_a_real_model_after_the_demo_gets_the_usual_prompt_hint(qtbot, tmp_path, demo):
    from tests.factories import tiny_sd1_state_dict, write_checkpoint

    mine = write_checkpoint(tiny_sd1_state_dict(seed=5), tmp_path / "mine.safetensors")
    library = _library(tmp_path, demo, mine)
    w = _window(qtbot, tmp_path, Services(library_factory=lambda: library))
    qtbot.wait_until(lambda: w.library_state.scanned, timeout=SLOW)
    for path, hint in ((demo, DEMO_PROMPT_HINT), (mine, PROMPT_HINT)):
        with qtbot.wait_signal(w.controller.model_loaded, timeout=SLOW):
            w.load_model(str(path))
        assert w.controls.prompt.placeholderText() == hint
    w.close()


def test_with_a_model_installed_the_demo_is_listed_but_not_loaded(qtbot, tmp_path, demo):
    from tests.factories import tiny_sd1_state_dict, write_checkpoint

    mine = write_checkpoint(tiny_sd1_state_dict(seed=5), tmp_path / "mine.safetensors")
    library = _library(tmp_path, demo, mine)
    w = _window(qtbot, tmp_path, Services(library_factory=lambda: library))
    w.load_start_model(None)
    qtbot.wait_until(lambda: w.library_state.scanned, timeout=SLOW)
    texts = [w.picker.itemText(i) for i in range(w.picker.count())]
    assert BUILT_IN in texts and any(t.startswith("Demo (shapes)") for t in texts)
    qtbot.wait(200)
    assert not w.model.loading and w.model.name == ""  # as before: the person chooses
    w.close()


# -- the shipped demo, end to end ----------------------------------------------------------------


@pytest.fixture
def shipped(monkeypatch) -> Path:
    monkeypatch.delenv(DEMO_ENV, raising=False)  # the real resources/demo file
    found = shipped_models()
    assert found, "resources/demo/demo-shapes.safetensors is missing: it ships with the app"
    return found[0]


def _drag(widget, points: list[QPointF]) -> None:
    """A real mouse drag: press, moves with the left button held, release."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    kinds = [QEvent.Type.MouseButtonPress] + [QEvent.Type.MouseMove] * (len(points) - 2)
    kinds.append(QEvent.Type.MouseButtonRelease)
    for kind, point in zip(kinds, points, strict=True):
        button = none if kind == QEvent.Type.MouseMove else left
        held = none if kind == QEvent.Type.MouseButtonRelease else left
        where = QPointF(widget.mapToGlobal(point.toPoint()))
        event = QMouseEvent(kind, point, where, button, held, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)


def _blob(canvas, centre: tuple[float, float], radius: float) -> None:
    """A filled disc (in fractions of the picture) painted with the brush by mouse strokes."""
    rect = canvas.target_rect()
    scale = rect.width()  # widget pixels per picture side
    cx, cy = rect.left() + centre[0] * scale, rect.top() + centre[1] * scale
    for r in np.linspace(0, radius * scale, 4):  # concentric rings, each one drag
        angles = np.linspace(0, 2 * np.pi, 24)
        _drag(canvas, [QPointF(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles])


def _mean(pixels: np.ndarray, centre: tuple[float, float], half: float) -> np.ndarray:
    h, w, _ = pixels.shape
    x0, x1 = int((centre[0] - half) * w), int((centre[0] + half) * w)
    y0, y1 = int((centre[1] - half) * h), int((centre[1] + half) * h)
    return pixels[y0:y1, x0:x1].reshape(-1, 3).astype(float).mean(axis=0)


def test_a_blue_stroke_comes_out_of_sketch_to_image_where_it_was_drawn(qtbot, tmp_path, shipped):
    w = _window(qtbot, tmp_path)  # the real library: only the shipped demo is there
    with qtbot.wait_signal(w.controller.model_loaded, timeout=SLOW) as loaded:
        w.load_start_model(None)
    assert loaded.args[0].name == "Demo (shapes)"
    native = read_metadata(shipped, 4).native_size
    assert (w.params.width, w.params.height) == (native, native)
    assert w.canvas.picture_size().width() == native

    canvas = w.canvas
    canvas.fill_background(QColor("white"))
    canvas.colour = QColor(30, 70, 220)  # the demo's blue
    canvas.brush_size = native / 8
    stroke = (0.3, 0.5)  # on the left
    _blob(canvas, stroke, 0.12)
    sketch = canvas.to_array()
    assert (_mean(sketch, stroke, 0.06) - [30, 70, 220]).__abs__().max() < 10  # painted

    w.controls.mode.setCurrentIndex(w.controls.mode.findData(SKETCH))
    w.controls.strength.set_value(0.6)
    w.params.update({"prompt": "a blue circle on the left on a white background", "seed": 1})
    w.params.update({"steps": 20})
    images = []
    w.controller.image_ready.connect(lambda job, image: images.append(image))
    with qtbot.wait_signal(w.controller.job_done, timeout=SLOW) as done:
        w.generate()
    assert done.args[1] == "finished"
    path = images[0].path
    result = np.asarray(Image.open(path).convert("RGB"))
    assert result.shape == (native, native, 3)
    r, g, b = _mean(result, stroke, 0.06)
    assert b > 120 and b > r + 60 and b > g + 40, (r, g, b)  # blue where it was drawn
    far_r, far_g, far_b = _mean(result, (0.75, 0.5), 0.08)  # the right: no stroke there
    assert min(far_r, far_g, far_b) > 150, (far_r, far_g, far_b)  # light, not blue
    settings = parse_parameters(read_png_parameters(path)).settings
    assert settings["Model"] == "Demo (shapes)" and settings["Size"] == f"{native}x{native}"
    w.close()
