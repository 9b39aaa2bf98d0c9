"""File › Models…: folders added and removed (saved by the real library), what was found, what
was skipped, and "Show in file manager"."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel, QListWidget, QPushButton, QTableWidget

from app.services import Services
from app.settings import Settings
from app.window import MainWindow
from engine.library import ModelLibrary, load_config
from engine.library.download import PRESETS
from engine.library.records import Skipped
from tests.app.fake_engine import FakeEngine, MemorySaver
from tests.app.fake_library import FakeLibrary, entry

factories = pytest.importorskip("tests.factories")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return factories.write_checkpoint(factories.tiny_sd1_state_dict(), path).read_bytes()


@pytest.fixture
def make_window(qtbot, tmp_path):
    def make(library_factory=None, reveal=None) -> MainWindow:
        services = Services(
            lambda: FakeEngine(),
            MemorySaver(),
            starter_model=lambda: PRESETS["stable-diffusion-1.5"],
            **({"library_factory": library_factory} if library_factory else {}),
            **({"reveal": reveal} if reveal else {}),
        )
        w = MainWindow(Settings(), tmp_path / "g", services, tmp_path / "s.json")
        qtbot.addWidget(w)
        w.show()
        qtbot.wait_until(lambda: w.library_state.scanned, timeout=10000)
        return w

    return make


def _open_dialog(w: MainWindow):
    action = next(a for a in w.menuBar().actions()[0].menu().actions() if a.text() == "&Models…")
    action.trigger()
    dialog = w.models_dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def _found(dialog) -> list[list[str]]:
    table = dialog.findChild(QTableWidget, "foundTable")
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def _select_folder(dialog, path: Path) -> None:
    folders = dialog.findChild(QListWidget, "folderList")
    rows = [i for i in range(folders.count()) if folders.item(i).text().startswith(str(path))]
    assert rows, [folders.item(i).text() for i in range(folders.count())]
    folders.setCurrentRow(rows[0])


def test_the_dialog_shows_what_the_library_found_in_an_a1111_folder(
    qtbot, make_window, isolated_home, tiny_checkpoint
):
    webui = isolated_home / "stable-diffusion-webui" / "models" / "Stable-diffusion"
    webui.mkdir(parents=True)
    (webui / "tiny-sd1.safetensors").write_bytes(tiny_checkpoint)
    w = make_window()
    dialog = _open_dialog(w)
    rows = _found(dialog)
    assert rows == [
        [
            "tiny-sd1",
            "checkpoint",
            "SD 1.x",
            f"{len(tiny_checkpoint) / 1e6:.1f} MB",
            "AUTOMATIC1111",
            "",
            "~/stable-diffusion-webui/models/Stable-diffusion/tiny-sd1.safetensors",
        ]
    ]
    folders = dialog.findChild(QListWidget, "folderList")
    assert folders.item(0).text() == f"{webui}  (AUTOMATIC1111)"
    status = dialog.findChild(QLabel, "modelsStatus").text()
    assert status.startswith("1 file found in 1 folder (1 usable checkpoint) in ")
    assert [c.name for c in w.picker.choices()] == ["tiny-sd1"]
    assert w.welcome.models.count() == 1


def test_adding_and_removing_a_folder_is_saved_and_rescanned(
    qtbot, make_window, tmp_path, tiny_checkpoint
):
    mine = tmp_path / "my models"
    mine.mkdir()
    (mine / "mine.safetensors").write_bytes(tiny_checkpoint)
    w = make_window()
    dialog = _open_dialog(w)
    assert _found(dialog) == []
    remove = dialog.findChild(QPushButton, "removeFolderButton")
    dialog.add_folder(str(mine))
    qtbot.wait_until(lambda: len(_found(dialog)) == 1, timeout=10000)
    assert _found(dialog)[0][:2] == ["mine", "checkpoint"] and _found(dialog)[0][4] == "your folder"
    assert load_config().folders == [str(mine)]  # saved where the CLI reads it too
    assert ModelLibrary().places()[-1].path == mine
    _select_folder(dialog, mine)
    assert remove.isEnabled()
    remove.click()
    qtbot.wait_until(lambda: _found(dialog) == [], timeout=10000)
    assert load_config().folders == []
    assert mine.exists() and (mine / "mine.safetensors").exists()  # nothing on disk touched


def test_an_added_folder_that_is_gone_can_still_be_removed(qtbot, make_window, tmp_path):
    gone = tmp_path / "usb-stick"
    gone.mkdir()
    ModelLibrary().add_folder(gone)  # perhaps with latentdesk-cli models add-folder
    gone.rmdir()  # the stick was unplugged
    w = make_window()
    dialog = _open_dialog(w)
    skipped = dialog.findChild(QListWidget, "skippedList")
    assert skipped.item(0).text() == f"{gone}: folder not found"
    _select_folder(dialog, gone)
    assert dialog.folders.currentItem().text() == f"{gone}  (not found)"
    dialog.findChild(QPushButton, "removeFolderButton").click()
    qtbot.wait_until(lambda: skipped.count() == 0, timeout=10000)
    assert load_config().folders == []


def test_a_folder_that_cannot_be_added_says_why(qtbot, make_window, tmp_path):
    w = make_window()
    dialog = _open_dialog(w)
    with qtbot.wait_signal(w.library.message, timeout=5000) as said:
        dialog.add_folder(str(tmp_path / "not-there"))
    assert "is not a folder" in said.args[0]
    assert load_config().folders == []


def test_skipped_places_are_listed_with_their_reason(qtbot, make_window, tmp_path):
    library = FakeLibrary(
        [entry(tmp_path / "a.safetensors"), entry(tmp_path / "xl.safetensors", family="sdxl")],
        [Skipped("/mnt/nas/models", "not responding"), Skipped("/m/x.ckpt", "permission denied")],
    )
    w = make_window(lambda: library)
    dialog = _open_dialog(w)
    skipped = dialog.findChild(QListWidget, "skippedList")
    assert [skipped.item(i).text() for i in range(skipped.count())] == [
        "/mnt/nas/models: not responding",
        "/m/x.ckpt: permission denied",
    ]
    assert skipped.isVisibleTo(dialog)
    table = dialog.findChild(QTableWidget, "foundTable")
    xl = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "xl")
    assert "not supported yet" in table.item(xl, 0).toolTip()
    assert "not supported yet" in table.item(xl, 5).text()  # the Note column


def test_only_added_folders_can_be_removed(qtbot, make_window, tmp_path):
    w = make_window(lambda: FakeLibrary(models_dir=tmp_path))
    dialog = _open_dialog(w)
    _select_folder(dialog, tmp_path)  # the app's own folder
    assert not dialog.findChild(QPushButton, "removeFolderButton").isEnabled()
    assert dialog.findChild(QPushButton, "revealFolderButton").isEnabled()


def test_show_in_file_manager_and_what_happens_when_there_is_none(qtbot, make_window, tmp_path):
    opened: list[Path] = []
    answer = [True]

    def reveal(folder: Path) -> bool:
        opened.append(folder)
        return answer[0]

    model = tmp_path / "webui" / "dreamy.safetensors"
    w = make_window(lambda: FakeLibrary([entry(model)]), reveal)
    dialog = _open_dialog(w)
    reveal_button = dialog.findChild(QPushButton, "revealButton")
    assert not reveal_button.isEnabled()
    dialog.findChild(QTableWidget, "foundTable").selectRow(0)
    reveal_button.click()
    assert opened == [model.parent]
    answer[0] = False
    reveal_button.click()
    assert w.statusBar().currentMessage() == f"No file manager could be opened for {model.parent}"
    assert str(model.parent) in dialog.findChild(QLabel, "modelsStatus").text()


def test_a_first_start_says_where_models_go_and_that_none_were_found(qtbot, make_window):
    w = make_window()
    dialog = _open_dialog(w)
    own = w.library_state.models_dir
    assert own.endswith("latentdesk/models")
    folders = dialog.findChild(QListWidget, "folderList")
    assert [folders.item(i).text() for i in range(folders.count())] == [
        f"{own}  (Latentdesk; not made yet)"
    ]
    status = dialog.findChild(QLabel, "modelsStatus").text()
    assert status == "No model files were found in these folders yet."
