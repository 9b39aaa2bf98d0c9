"""File › Models…: the folders the library searches, what it found there, what it could not
read, and the Stable Diffusion 1.5 download.

The dialog only shows ``LibraryState`` and asks the ``LibraryController`` for changes; adding or
removing a folder is saved by the library (shared with the CLI) and followed by a new scan.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.download_offer import DownloadOffer
from app.downloads import Downloads
from app.library import LibraryController, LibraryState
from app.library_model import (
    SOURCE_TITLES,
    choice_of,
    format_size,
    is_model_file,
    place_text,
    short_path,
)
from app.signals import emit
from app.widgets import named
from engine.library.records import LibraryEntry, Place

PATH_ROLE = Qt.ItemDataRole.UserRole
TEXT = QPalette.ColorRole.Text
COLUMNS = ("Name", "Kind", "Family", "Size", "Found in", "Note", "Path")
NOTE = COLUMNS.index("Note")
KIND_TITLES = {"lora": "LoRA", "vae": "VAE", "controlnet": "ControlNet"}
FAMILY_SHORT = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
NOT_REMOVABLE = {
    "env": "Set by LATENTDESK_MODEL_PATH: change that variable to remove it.",
    "app": "Latentdesk's own models folder, where downloads go.",
}


class ModelsDialog(QDialog):
    message = Signal(str)  # for the main window's status bar

    def __init__(
        self,
        state: LibraryState,
        library: LibraryController,
        downloads: Downloads,
        reveal: Callable[[Path], bool],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("modelsDialog")
        self.setWindowTitle("Models")
        self.state = state
        self.library = library
        self._reveal = reveal
        self.status = named(QLabel(""), "modelsStatus")
        self.status.setWordWrap(True)
        self.folders = named(QListWidget(), "folderList")
        self.found = named(QTableWidget(0, len(COLUMNS)), "foundTable")
        self.skipped = named(QListWidget(), "skippedList")
        self.offer = DownloadOffer(downloads, state, "models")
        self._build()
        state.places_changed.connect(self._sync_places)
        state.added_changed.connect(self._sync_places)
        state.entries_changed.connect(self._sync_found)
        state.skipped_changed.connect(self._sync_skipped)
        state.scanning_changed.connect(self._sync_status)
        self._sync_places()
        self._sync_found()
        self._sync_skipped()
        self.resize(1100, 680)

    # -- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self._folders_box(), 2)
        layout.addWidget(self._found_box(), 5)
        self.skipped_box = _box("Could not be read", self.skipped)
        layout.addWidget(self.skipped_box, 1)
        layout.addWidget(_box("Download", self.offer))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)

    def _folders_box(self) -> QGroupBox:
        self.add_button = named(QPushButton("Add folder…"), "addFolderButton")
        self.remove_button = named(QPushButton("Remove"), "removeFolderButton")
        self.reveal_folder_button = named(QPushButton("Show in file manager"), "revealFolderButton")
        self.rescan_button = named(QPushButton("Search again"), "rescanButton")
        self.add_button.clicked.connect(self.choose_folder)
        self.remove_button.clicked.connect(self.remove_selected_folder)
        self.reveal_folder_button.clicked.connect(self.reveal_selected_folder)
        self.rescan_button.clicked.connect(self.library.scan)
        self.folders.currentItemChanged.connect(self._sync_folder_buttons)
        buttons = QVBoxLayout()
        for button in (
            self.add_button,
            self.remove_button,
            self.reveal_folder_button,
            self.rescan_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.folders, 1)
        row.addLayout(buttons)
        return _box("Folders searched (nothing in them is changed)", row)

    def _found_box(self) -> QGroupBox:
        table = self.found
        table.setHorizontalHeaderLabels(COLUMNS)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # the tooltip has the whole text
        header = table.horizontalHeader()
        for column in range(NOTE):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(NOTE, 260)
        header.setStretchLastSection(True)
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.reveal_button = named(QPushButton("Show in file manager"), "revealButton")
        self.reveal_button.clicked.connect(self.reveal_selected_model)
        table.itemSelectionChanged.connect(
            lambda: self.reveal_button.setEnabled(bool(table.selectedItems()))
        )
        self.reveal_button.setEnabled(False)
        rows = QVBoxLayout()
        rows.addWidget(table, 1)
        rows.addWidget(self.reveal_button, 0, Qt.AlignmentFlag.AlignRight)
        return _box("Found", rows)

    # -- state to widgets -------------------------------------------------------------------

    def _sync_places(self, *_: object) -> None:
        self.folders.clear()
        places: tuple[Place, ...] = self.state.places
        for place in places:
            self._add_place_line(place, place_text(place))
        searched = {str(p.path) for p in places}
        own = self.state.models_dir
        if own and own not in searched:  # made by the first download; say where that goes
            self._add_place_line(Place(Path(own), "app"), f"{own}  (Latentdesk; not made yet)")
        for folder in self.state.added:  # gone (an unplugged disk): listed, so it can be removed
            if folder not in searched:
                self._add_place_line(Place(Path(folder), "user"), f"{folder}  (not found)")
        self._sync_folder_buttons()
        self._sync_status()

    def _add_place_line(self, place: Place, text: str) -> None:
        item = QListWidgetItem(text)
        item.setData(PATH_ROLE, place)
        item.setToolTip(NOT_REMOVABLE.get(place.source, "") or str(place.path))
        self.folders.addItem(item)

    def _sync_found(self, *_: object) -> None:
        table = self.found
        table.setSortingEnabled(False)  # rows keep their place while they are filled
        entries: tuple[LibraryEntry, ...] = self.state.entries
        table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            for column, item in enumerate(_row(entry)):
                table.setItem(row, column, item)
        table.setSortingEnabled(True)
        self._sync_status()

    def _sync_skipped(self, *_: object) -> None:
        self.skipped.clear()
        for skipped in self.state.skipped:
            item = QListWidgetItem(f"{skipped.path}: {skipped.reason}")
            item.setData(PATH_ROLE, skipped.path)
            self.skipped.addItem(item)
        self.skipped_box.setVisible(self.skipped.count() > 0)

    def _sync_status(self, *_: object) -> None:
        self.status.setText(self._status_text())

    def _status_text(self) -> str:
        state = self.state
        if state.scanning:
            return "Looking for models…"
        if not state.scanned:
            return ""
        if not state.entries:
            return "No model files were found in these folders yet."
        files = _count(len(state.entries), "file")
        folders = _count(len(state.places), "folder")
        usable = _count(sum(1 for e in state.entries if e.usable), "usable checkpoint")
        return f"{files} found in {folders} ({usable}) in {state.scan_seconds:.1f} s."

    def _sync_folder_buttons(self, *_: object) -> None:
        place = self.selected_place()
        self.remove_button.setEnabled(place is not None and place.source == "user")
        self.reveal_folder_button.setEnabled(place is not None)

    # -- actions ----------------------------------------------------------------------------

    def selected_place(self) -> Place | None:
        item = self.folders.currentItem()
        return None if item is None else item.data(PATH_ROLE)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of models")
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        self.library.add_folder(folder)

    def remove_selected_folder(self) -> None:
        place = self.selected_place()
        if place is not None and place.source == "user":
            self.library.remove_folder(str(place.path))

    def reveal_selected_folder(self) -> None:
        place = self.selected_place()
        if place is not None:
            self.reveal(Path(place.path))

    def reveal_selected_model(self) -> None:
        selected = self.found.selectedItems()
        if selected:
            self.reveal(Path(selected[0].data(PATH_ROLE)).parent)

    def reveal(self, folder: Path) -> None:
        if not self._reveal(folder):
            text = f"No file manager could be opened for {folder}"
            self.status.setText(text)
            emit(self.message, text)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _box(title: str, content: QWidget | QHBoxLayout | QVBoxLayout) -> QGroupBox:
    box = QGroupBox(title)
    if isinstance(content, QWidget):
        layout = QVBoxLayout(box)
        layout.addWidget(content)
    else:
        box.setLayout(content)
    return box


class _SizeItem(QTableWidgetItem):
    """Sorts by bytes, shows "4.27 GB"."""

    def __init__(self, size: int) -> None:
        super().__init__(format_size(size))
        self.size = size

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _SizeItem):
            return self.size < other.size
        return super().__lt__(other)


def _row(entry: LibraryEntry) -> list[QTableWidgetItem]:
    kind = KIND_TITLES.get(entry.kind, entry.kind)
    family = FAMILY_SHORT.get(entry.family or "", entry.family or "")
    if entry.inpainting:
        family += " inpainting"
    note = choice_of(entry).reason if is_model_file(entry) else ""
    cells = [
        QTableWidgetItem(entry.name),
        QTableWidgetItem(kind),
        QTableWidgetItem(family),
        _SizeItem(entry.size),
        QTableWidgetItem(SOURCE_TITLES.get(entry.source, entry.source)),
        QTableWidgetItem(note),
        QTableWidgetItem(short_path(entry.path)),
    ]
    for cell in cells:
        cell.setData(PATH_ROLE, entry.path)
        cell.setToolTip(note or entry.path)
        if note:
            cell.setForeground(QApplication.palette().brush(QPalette.ColorGroup.Disabled, TEXT))
    return cells
