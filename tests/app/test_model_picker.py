"""The model picker: what it lists and how, switching models on the worker, a failed switch."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtWidgets import QComboBox

from app.library_model import format_size, grouped, model_choices
from app.services import Services
from app.settings import Settings
from app.window import MainWindow
from tests.app.fake_engine import FakeEngine, MemorySaver, write_fake_checkpoint
from tests.app.fake_library import FakeLibrary, entry
from tests.app.qt_helpers import dismiss_messages


@pytest.fixture
def models(tmp_path):
    """Two usable fake checkpoints, one that fails to load, and files that cannot be used."""
    folder = tmp_path / "webui"
    folder.mkdir()
    a = write_fake_checkpoint(folder / "dreamy.safetensors")
    b = write_fake_checkpoint(folder / "Anything-v3.safetensors")
    broken = folder / "broken-sd1.safetensors"
    broken.write_bytes(b"not a checkpoint at all")
    return {
        "a": a,
        "b": b,
        "broken": broken,
        "entries": [
            entry(a),
            entry(b, inpainting=True, size=4_265_437_280),
            entry(broken),
            entry(folder / "sdxl-base.safetensors", family="sdxl", size=6_938_078_334),
            entry(folder / "v2-1_768.safetensors", family="sd2"),
            entry(
                folder / "half.safetensors",
                kind="unknown",
                family=None,
                problem="Damaged: the header ends after 12 of 400 bytes.",
            ),  # fmt: skip
            entry(folder / "detail-lora.safetensors", kind="lora"),
        ],
    }


@pytest.fixture
def fake():
    return FakeEngine(step_seconds=0.02)


@pytest.fixture
def window(qtbot, tmp_path, fake, models):
    library = FakeLibrary(models["entries"])
    services = Services(lambda: fake, MemorySaver(), library_factory=lambda: library)
    w = MainWindow(Settings(), tmp_path / "gallery", services, tmp_path / "settings.json")
    w.fake_library = library
    qtbot.addWidget(w)
    w.show()
    qtbot.wait_until(lambda: w.library_state.scanned, timeout=5000)
    yield w
    w.close()


def _row(picker: QComboBox, name: str) -> int:
    rows = [i for i in range(picker.count()) if picker.itemText(i).strip().startswith(name + " ")]
    assert len(rows) == 1, (name, [picker.itemText(i) for i in range(picker.count())])
    return rows[0]


def _pick(qtbot, picker: QComboBox, name: str) -> None:
    """What the popup list does when a line is clicked (the offscreen platform cannot show a
    popup without warnings)."""
    row = _row(picker, name)
    assert picker.isEnabled() and picker.model().item(row).isEnabled()
    picker.setCurrentIndex(row)
    picker.activated.emit(row)


# -- without Qt --------------------------------------------------------------------------------


def test_sizes_read_as_the_hub_writes_them():
    assert format_size(4_265_146_304) == "4.27 GB"
    assert format_size(2_132_625_894) == "2.13 GB"
    assert format_size(812_000_000) == "812 MB"
    assert format_size(43_650_000) == "43.6 MB"
    assert format_size(999) == "999 bytes"
    assert format_size(None) == "unknown size"


def test_choices_put_usable_models_first_grouped_by_family(models):
    choices = model_choices(models["entries"])
    assert [c.name for c in choices] == [
        "Anything-v3",
        "broken-sd1",
        "dreamy",
        "v2-1_768",
        "sdxl-base",
        "half",
    ]  # the LoRA is no model to pick
    titles = [title for title, _ in grouped(choices)]
    assert titles == [
        "Stable Diffusion 1.x",
        "Stable Diffusion 2.x (not supported yet)",
        "Stable Diffusion XL (not supported yet)",
        "Cannot be read",
    ]
    by_name = {c.name: c for c in choices}
    assert by_name["Anything-v3"].label == "Anything-v3 · inpainting"
    assert "not supported yet" in by_name["sdxl-base"].reason
    assert by_name["half"].reason.startswith("Damaged")
    assert by_name["dreamy"].usable and not by_name["sdxl-base"].usable


# -- the picker in the window ------------------------------------------------------------------


def test_picker_greys_out_what_cannot_be_used_and_says_why(qtbot, window):
    picker = window.findChild(QComboBox, "modelPicker")
    assert picker.currentIndex() == -1 and picker.placeholderText() == "Choose a model…"
    texts = [picker.itemText(i).strip() for i in range(picker.count())]
    assert texts[0] == "Stable Diffusion 1.x"
    assert "Anything-v3 · inpainting · 4.27 GB" in texts
    model = picker.model()
    heading = model.item(0)
    assert not heading.isEnabled() and not heading.isSelectable()
    for name in ("sdxl-base", "v2-1_768", "half"):
        item = model.item(_row(picker, name))
        assert not item.isEnabled() and not item.isSelectable(), name
    sdxl = model.item(_row(picker, "sdxl-base"))
    assert sdxl.toolTip() == "Stable Diffusion XL models are not supported yet: only SD 1.x."
    assert model.item(_row(picker, "half")).toolTip().startswith("Damaged: the header ends")
    dreamy = model.item(_row(picker, "dreamy"))
    assert dreamy.isEnabled() and dreamy.toolTip().endswith("dreamy.safetensors")
    assert "detail-lora" not in " ".join(texts)


def test_picking_a_model_loads_it_on_the_worker(qtbot, window, fake, models):
    picker = window.picker
    bar = window.progress
    seen: list[tuple[int, str]] = []
    window.model.message_changed.connect(lambda _: seen.append((bar.value(), bar.format())))
    with qtbot.wait_signal(window.controller.model_loaded, timeout=5000):
        _pick(qtbot, picker, "dreamy")
    assert (500, "Reading the fake checkpoint…") in seen  # the load's progress, in the bar
    assert bar.format() == "Idle" and bar.value() == 0
    assert window.model.name == "dreamy" and picker.currentText().startswith("dreamy")
    with qtbot.wait_signal(window.controller.model_loaded, timeout=5000):
        _pick(qtbot, picker, "Anything-v3")
    assert window.model.path == str(models["b"])
    assert picker.currentIndex() == _row(picker, "Anything-v3")
    main = threading.main_thread().name
    assert len(fake.thread_names) == 2 and main not in fake.thread_names
    assert window.fake_library.threads and main not in window.fake_library.threads
    qtbot.wait_until(lambda: window.fake_library.last_model == str(models["b"]), timeout=5000)


def test_a_failed_switch_keeps_the_old_model(qtbot, window, fake, models):
    picker = window.picker
    with qtbot.wait_signal(window.controller.model_loaded, timeout=5000):
        _pick(qtbot, picker, "dreamy")
    with qtbot.wait_signal(window.controller.error, timeout=5000):
        _pick(qtbot, picker, "broken-sd1")
    assert "broken-sd1.safetensors" in window.last_error
    assert window.model.name == "dreamy" and fake.model_info.name == "dreamy"
    assert picker.currentIndex() == _row(picker, "dreamy") and picker.isEnabled()
    assert "dreamy" in window.model_label.text()
    assert window.preview_stack.currentWidget() is window.preview_page
    dismiss_messages(qtbot, window)
    window.params.update({"prompt": "still dreamy", "steps": 2, "width": 64, "height": 64})
    with qtbot.wait_signal(window.controller.job_done, timeout=5000) as done:
        window.generate()
    assert done.args[1] == "finished"


def test_picker_waits_while_a_model_loads(qtbot, window, models):
    window.load_model(str(models["a"]))
    assert not window.picker.isEnabled()  # one load at a time
    qtbot.wait_until(window.picker.isEnabled, timeout=5000)


def test_a_model_opened_from_a_file_gets_a_line_of_its_own(qtbot, window, tmp_path):
    elsewhere = write_fake_checkpoint(tmp_path / "from-a-usb-stick.safetensors")
    with qtbot.wait_signal(window.controller.model_loaded, timeout=5000):
        window.load_model(str(elsewhere))
    picker = window.picker
    assert picker.itemText(0) == "Opened from a file"
    assert picker.currentIndex() == 1 and "from-a-usb-stick" in picker.currentText()
