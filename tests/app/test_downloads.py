"""Downloads in the window, through the real engine.library.download and a loopback Hugging Face
Hub (tests/engine/library/hf_server.py): progress, cancel, resume, a refused file; and pictures
keep being generated meanwhile."""

from __future__ import annotations

import hashlib
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import constants
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton

from app.services import Services
from app.settings import Settings
from app.window import MainWindow
from engine.library.download import STAGING_DIR, DownloadSpec
from tests.app.fake_engine import MAGIC, FakeEngine, MemorySaver, write_fake_checkpoint
from tests.app.fake_library import FakeLibrary
from tests.app.qt_helpers import dismiss_messages
from tests.engine.library.hf_server import FakeHub, HostedFile

pytestmark = pytest.mark.timeout(60)

REPO = "latentdesk-tests/tiny"
FILE = "tiny-fake.safetensors"
DATA = MAGIC + bytes(range(256)) * 6000  # about 1.5 MB the fake engine can load


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path, monkeypatch):
    """No token, endpoint, offline switch or proxy of this machine leaks into a test."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE",
                "HF_HUB_DOWNLOAD_TIMEOUT", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "http_proxy", "https_proxy", "all_proxy"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "10")  # a bug fails the test, not hangs it
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    huggingface_hub.close_session()
    yield
    huggingface_hub.close_session()


@pytest.fixture
def hub(monkeypatch):
    with FakeHub([HostedFile(REPO, FILE, DATA)]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)  # read by each download, as a mirror's
        yield server


@pytest.fixture
def spec():
    return DownloadSpec(
        REPO, FILE, sha256=hashlib.sha256(DATA).hexdigest(), size=len(DATA), name="Tiny model"
    )


@pytest.fixture
def fake():
    return FakeEngine(step_seconds=0.02)


@pytest.fixture
def models_dir(tmp_path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def window(qtbot, tmp_path, fake, spec, models_dir):
    library = FakeLibrary(models_dir=models_dir)
    services = Services(
        lambda: fake, MemorySaver(), library_factory=lambda: library, starter_model=lambda: spec
    )
    w = MainWindow(Settings(), tmp_path / "gallery", services, tmp_path / "settings.json")
    w.fake_library = library
    qtbot.addWidget(w)
    w.show()
    qtbot.wait_until(lambda: w.library_state.scanned and w.downloads.starter is not None)
    yield w
    w.close()


def test_download_shows_progress_and_cancels_while_a_picture_is_generated(
    qtbot, window, fake, hub, models_dir, tmp_path
):
    with qtbot.wait_signal(window.controller.model_loaded, timeout=5000):
        window.load_model(str(write_fake_checkpoint(tmp_path / "other.safetensors")))
    fake.step_seconds = 0.05
    window.params.update({"prompt": "meanwhile", "steps": 150, "width": 64, "height": 64})
    window.generate()  # about 7 s of steps on the engine's worker
    hub.bytes_per_second = len(DATA) / 4  # about 4 s of download on its own thread
    window.show_models()
    dialog = window.models_dialog
    button = dialog.findChild(QPushButton, "modelsDownloadButton")
    bar = dialog.findChild(QProgressBar, "modelsDownloadProgress")
    assert button.text() == "Download Tiny model" and not bar.isVisibleTo(dialog)
    button.click()
    assert bar.isVisibleTo(dialog) and not button.isEnabled()
    assert button.text() == "Downloading Tiny model…"
    qtbot.wait_until(lambda: bar.value() > 100, timeout=10000)
    steps_then, bytes_then = window.jobs.fraction, bar.value()
    qtbot.wait_until(
        lambda: window.jobs.fraction > steps_then and bar.value() > bytes_then, timeout=5000
    )  # both move on at the same time
    assert window.jobs.running
    assert " of 1.54 MB · " in bar.format() and " left" in bar.format()

    dialog.findChild(QPushButton, "modelsDownloadCancel").click()
    status = dialog.findChild(QLabel, "modelsDownloadStatus")
    qtbot.wait_until(lambda: status.isVisibleTo(dialog), timeout=5000)
    assert status.text().startswith("Download cancelled;") and "kept for later" in status.text()
    assert button.text() == "Resume downloading Tiny model" and button.isEnabled()
    assert not bar.isVisibleTo(dialog)
    (partial,) = (models_dir / STAGING_DIR).glob("*.incomplete")
    kept = partial.stat().st_size
    assert 0 < kept < len(DATA) and not (models_dir / FILE).exists()
    assert window.jobs.running  # the picture goes on

    hub.bytes_per_second = None
    with qtbot.wait_signal(window.downloads.finished, timeout=10000):
        button.click()
    assert (models_dir / FILE).read_bytes() == DATA
    assert hub.gets()[-1].headers["range"] == f"bytes={kept}-"  # resumed, not restarted
    assert hub.bytes_served < 1.6 * len(DATA)
    assert window.model.name == "other"  # the model in use is not swapped away
    assert "pick it in the Model list" in window.statusBar().currentMessage()
    qtbot.wait_until(lambda: window.fake_library.scans == 2, timeout=5000)  # found by a rescan
    assert window.jobs.running and window.jobs.fraction > steps_then  # the picture went on
    with qtbot.wait_signal(window.controller.job_done, timeout=5000):
        window.controller.cancel()


def test_the_welcome_download_loads_the_model_when_it_is_done(qtbot, window, hub, models_dir):
    assert window.preview_stack.currentWidget() is window.welcome
    caption = window.findChild(QLabel, "welcomeDownloadCaption")
    assert caption.text() == f"1.54 MB, saved in {models_dir}"
    with qtbot.wait_signal(window.controller.model_loaded, timeout=10000) as loaded:
        window.findChild(QPushButton, "welcomeDownloadButton").click()
    assert loaded.args[0].path == str(models_dir / FILE)
    assert window.preview_stack.currentWidget() is window.preview_page
    status = window.findChild(QLabel, "welcomeDownloadStatus")
    assert status.text() == f"Downloaded: {models_dir / FILE}"


def test_a_damaged_download_is_refused_and_says_so(qtbot, window, hub, models_dir, spec):
    hub.corrupt = True
    with qtbot.wait_signal(window.downloads.failed, timeout=10000):
        window.findChild(QPushButton, "welcomeDownloadButton").click()
    status = window.findChild(QLabel, "welcomeDownloadStatus").text()
    assert "is damaged" in status and spec.sha256 in status and "deleted" in status
    assert "is damaged" in window.last_error
    assert not (models_dir / FILE).exists() and not list(models_dir.rglob("*.incomplete"))
    assert window.findChild(QPushButton, "welcomeDownloadButton").text() == "Download Tiny model"
    assert window.model.name == ""
    dismiss_messages(qtbot, window)
