"""The first start: the welcome panel instead of an empty preview, and the last model remembered."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QLabel, QListWidget, QPushButton

from app.services import Services
from app.settings import Settings
from app.welcome import DETAIL_ROLE
from app.window import MainWindow
from engine.library.download import PRESETS
from tests.app.fake_engine import FakeEngine, MemorySaver, write_fake_checkpoint
from tests.app.fake_library import FakeLibrary, entry
from tests.app.qt_helpers import dismiss_messages


@pytest.fixture
def fake():
    return FakeEngine(step_seconds=0.02)


@pytest.fixture
def make_window(qtbot, tmp_path, fake):
    def make(library: FakeLibrary, settings: Settings | None = None, wait=True) -> MainWindow:
        services = Services(
            lambda: fake,
            MemorySaver(),
            library_factory=lambda: library,
            starter_model=lambda: PRESETS["stable-diffusion-1.5"],
        )
        w = MainWindow(settings or Settings(), tmp_path / "g", services, tmp_path / "s.json")
        qtbot.addWidget(w)
        w.show()
        if wait:
            qtbot.wait_until(lambda: w.library_state.scanned, timeout=5000)
        return w

    return make


def _click(qtbot, view: QListWidget, row: int) -> None:
    rect = view.visualItemRect(view.item(row))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_welcome_lists_the_models_found_and_a_click_loads_one(qtbot, make_window, tmp_path, fake):
    a = write_fake_checkpoint(tmp_path / "realistic-vision.safetensors")
    b = write_fake_checkpoint(tmp_path / "anything-v3.safetensors")
    library = FakeLibrary(
        [entry(a, source="comfyui"), entry(b), entry(tmp_path / "xl.safetensors", family="sdxl")]
    )
    w = make_window(library)
    assert w.preview_stack.currentWidget() is w.welcome and w.welcome.isVisible()
    models = w.findChild(QListWidget, "welcomeModels")
    lines = [(models.item(i).text(), models.item(i).data(DETAIL_ROLE)) for i in range(2)]
    assert models.count() == 2
    assert lines == [
        ("anything-v3", "2.13 GB · AUTOMATIC1111"),
        ("realistic-vision", "2.13 GB · ComfyUI"),
    ]
    hint = w.findChild(QLabel, "welcomeModelsHint").text()
    assert hint.startswith("Click one to load it.") and "1 more was found" in hint
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        _click(qtbot, models, 1)
    assert w.model.name == "realistic-vision" and fake.model_info.path == str(a)
    assert w.preview_stack.currentWidget() is w.preview_page  # the preview is back
    assert "realistic-vision" in w.picker.currentText()
    qtbot.wait_until(lambda: library.last_model == str(a), timeout=5000)  # shared with the CLI
    assert threading.main_thread().name not in library.threads  # scanned off the GUI thread


def test_welcome_without_models_offers_a_download_and_a_file(
    qtbot, make_window, tmp_path, monkeypatch
):
    w = make_window(FakeLibrary(models_dir=tmp_path / "models"))
    hint = w.findChild(QLabel, "welcomeModelsHint")
    assert hint.text().startswith("No Stable Diffusion 1.x model was found (AUTOMATIC1111, ")
    assert not w.findChild(QListWidget, "welcomeModels").isVisibleTo(w)
    download = w.findChild(QPushButton, "welcomeDownloadButton")
    qtbot.wait_until(lambda: download.text() == "Download Stable Diffusion 1.5", timeout=5000)
    caption = w.findChild(QLabel, "welcomeDownloadCaption").text()
    assert caption == f"4.27 GB, saved in {tmp_path / 'models'}"
    assert download.isEnabled()
    chosen = write_fake_checkpoint(tmp_path / "my-own.safetensors")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(chosen), ""))
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        w.findChild(QPushButton, "welcomeOpenButton").click()
    assert w.model.path == str(chosen) and w.preview_stack.currentWidget() is w.preview_page


def test_a_model_that_fails_to_load_leaves_the_welcome_panel(qtbot, make_window, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"nonsense")
    w = make_window(FakeLibrary([entry(broken)]))
    with qtbot.wait_signal(w.controller.error, timeout=5000):
        _click(qtbot, w.findChild(QListWidget, "welcomeModels"), 0)
    assert "broken.safetensors" in w.last_error
    assert w.preview_stack.currentWidget() is w.welcome and w.welcome.models.isEnabled()
    dismiss_messages(qtbot, w)


def test_the_last_model_of_the_library_loads_at_start(qtbot, make_window, tmp_path):
    last = write_fake_checkpoint(tmp_path / "used-yesterday.safetensors")
    library = FakeLibrary([entry(last)])
    library.last_model = str(last)  # perhaps by latentdesk-cli
    w = make_window(library, wait=False)
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        w.load_start_model(None)  # as main() does, before the library has answered
    assert w.model.path == str(last)


def test_the_last_model_of_old_settings_moves_to_the_library(qtbot, make_window, tmp_path):
    last = write_fake_checkpoint(tmp_path / "from-version-0.1.safetensors")
    library = FakeLibrary()
    settings = Settings(last_model=str(last))
    w = make_window(library, settings)  # the library has answered: none there
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        w.load_start_model(None)
    qtbot.wait_until(lambda: library.last_model == str(last), timeout=5000)
    assert settings.last_model == ""


def test_a_model_given_at_start_wins(qtbot, make_window, tmp_path):
    last = write_fake_checkpoint(tmp_path / "last.safetensors")
    given = write_fake_checkpoint(tmp_path / "given.safetensors")
    library = FakeLibrary([entry(last)])
    library.last_model = str(last)
    w = make_window(library, wait=False)
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        w.load_start_model(str(given))
    qtbot.wait_until(lambda: w.library_state.scanned, timeout=5000)
    qtbot.wait(50)
    assert w.model.path == str(given) and w.controller.model.loading is False


def test_a_library_that_cannot_be_read_leaves_the_app_usable(qtbot, tmp_path, fake):
    def broken_library():
        raise OSError("Input/output error")

    services = Services(lambda: fake, MemorySaver(), library_factory=broken_library)
    w = MainWindow(Settings(), tmp_path / "g", services, tmp_path / "s.json")
    qtbot.addWidget(w)
    w.show()
    qtbot.wait_until(lambda: w.library_state.opened and not w.library_state.scanning)
    assert "Input/output error" in w.statusBar().currentMessage()
    assert w.preview_stack.currentWidget() is w.welcome
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        w.load_model(str(write_fake_checkpoint(tmp_path / "still.safetensors")))
    w.close()
