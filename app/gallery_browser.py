"""The gallery browser: every indexed picture in a grid, searched, sorted, starred, and one at a
time in a large view with its parameters.

A non-modal window over the main one (View › Gallery…, Ctrl+G). It reads the gallery index
through the service's read-only index (app/gallery_service.py) and sends what changes (stars,
the trash) to the service, whose ``changed`` signal refreshes the grid in place. What the main
window does with a picture goes out as the same signals the session strip uses:
``parameters_chosen`` and ``sketch_chosen``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QModelIndex, QPoint, Qt, QTimer, Signal, SignalInstance
from PySide6.QtGui import QCloseEvent, QImage, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.accessibility import name_controls
from app.gallery_grid import EMPTY_TEXT, NO_MATCH_TEXT, GalleryGrid
from app.gallery_grid_model import PICTURE_ROLE, GalleryGridModel, PictureReader
from app.picture_view import PictureView
from app.services import reveal_in_file_manager
from app.signals import emit
from app.status import PathNotice
from app.thumbnails import ThumbnailCache
from app.widgets import named
from engine.gallery.index import IndexedPicture

SEARCH_DELAY_MS = 250  # typing pauses this long before the grid follows
SORT_LABELS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "prompt": "Prompt (A–Z)",
    "model": "Model",
}
SEARCH_PLACEHOLDER = 'Search: words, "a phrase", -word, model:, seed:, size:512x768, after:…'
SEARCH_HELP = (
    "<b>Search</b> (all terms must match)<br>"
    "<tt>red car</tt> words of the prompt or negative prompt (word starts)<br>"
    '<tt>"red car"</tt> a phrase · <tt>-blurry</tt> without this word<br>'
    "<tt>model:NAME</tt> · <tt>sampler:NAME</tt> · <tt>tool:ComfyUI</tt><br>"
    "<tt>seed:1234</tt> · <tt>size:512x768</tt><br>"
    "<tt>after:2026-01-31</tt> · <tt>before:2026-02-28</tt> (file dates)<br>"
    "<tt>starred</tt> only starred pictures"
)


class GalleryServiceApi(Protocol):
    """What the browser needs of ``app.gallery_service.GalleryService``."""

    @property
    def changed(self) -> SignalInstance: ...

    @property
    def notice(self) -> SignalInstance: ...

    def reader(self) -> PictureReader: ...

    def set_starred(self, path: Path, starred: bool) -> None: ...

    def trash(self, path: Path) -> bool: ...


def count_text(count: int) -> str:
    return "1 picture" if count == 1 else f"{count:,} pictures"


class GalleryBrowser(QWidget):
    parameters_chosen = Signal(str)  # "Use these parameters": the window restores its controls
    sketch_chosen = Signal(QImage)  # "Use as sketch"
    inpaint_chosen = Signal(QImage)  # "Inpaint this"

    def __init__(
        self,
        service: GalleryServiceApi,
        reveal: Callable[[Path], bool] = reveal_in_file_manager,
        thumbnails: ThumbnailCache | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)  # its own window, above the main one
        self.setObjectName("galleryBrowser")
        self.setWindowTitle("Gallery — Latentdesk")
        self.service = service
        self.reveal = reveal
        self.thumbnails = thumbnails or ThumbnailCache(parent=self)
        self.model = GalleryGridModel(service.reader, self.thumbnails, self)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._build()
        self._connect()
        name_controls(self)
        self.resize(1100, 760)
        self.apply_search()

    # -- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.search = named(QLineEdit(), "gallerySearch")
        self.search.setPlaceholderText(SEARCH_PLACEHOLDER)
        self.search.setToolTip(SEARCH_HELP)
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search pictures")
        self.sort = named(QComboBox(), "gallerySort")
        for key, label in SORT_LABELS.items():
            self.sort.addItem(label, key)
        self.sort.setAccessibleName("Sort pictures by")
        self.starred_only = named(QCheckBox("Starred only"), "starredOnly")
        self.count_label = named(QLabel(), "galleryCount")
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        sort_label = QLabel("&Sort:")
        sort_label.setBuddy(self.sort)
        top.addWidget(sort_label)
        top.addWidget(self.sort)
        top.addWidget(self.starred_only)
        top.addWidget(self.count_label)
        self.grid = GalleryGrid()
        self.grid.setModel(self.model)
        self.view = PictureView()
        self.pages = named(QStackedWidget(), "galleryPages")
        self.pages.addWidget(self.grid)
        self.pages.addWidget(self.view)
        self.status = named(QLabel(), "galleryStatus")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_notice = PathNotice()
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.path_notice)

    def _connect(self) -> None:
        self.search.textChanged.connect(lambda _: self._search_timer.start())
        self.search.returnPressed.connect(self.apply_search)
        self._search_timer.timeout.connect(self.apply_search)
        self.sort.currentIndexChanged.connect(lambda _: self.apply_search())
        self.starred_only.toggled.connect(lambda _: self.apply_search())
        self.grid.activated.connect(lambda index: self.open_row(index.row()))
        self.grid.customContextMenuRequested.connect(self._grid_menu)
        self.model.failed.connect(self.show_status)
        find = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self)  # Ctrl+F
        find.activated.connect(self.focus_search)
        self.service.changed.connect(self.refresh)
        self.service.notice.connect(self.show_status)
        v = self.view
        v.parameters_chosen.connect(lambda text: emit(self.parameters_chosen, text))
        v.sketch_chosen.connect(lambda image: emit(self.sketch_chosen, image))
        v.inpaint_chosen.connect(lambda image: emit(self.inpaint_chosen, image))
        v.star_requested.connect(self.set_starred)
        v.trash_requested.connect(self.trash)
        v.folder_requested.connect(self.open_folder)
        v.step_requested.connect(self.step)
        v.back_requested.connect(self.show_grid)
        v.notice.connect(self.show_status)

    # -- the search ---------------------------------------------------------------------------

    def query(self) -> str:
        text = self.search.text().strip()
        return f"{text} starred".strip() if self.starred_only.isChecked() else text

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def apply_search(self) -> None:
        self._search_timer.stop()
        self.model.set_search(self.query(), self.sort.currentData() or "newest")
        self.grid.empty_text = NO_MATCH_TEXT if self.query() else EMPTY_TEXT
        self._sync_count()
        if self.model.rowCount():
            self.grid.setCurrentIndex(self.model.index(0))
        self.grid.scrollToTop()
        self.show_grid()

    def refresh(self) -> None:
        """The index changed: the grid keeps its place; the large view its picture."""
        self.model.refresh()
        self._sync_count()
        shown = self.view.picture()
        if shown is None:
            return
        row = self.model.row_of(shown.path)
        picture = self.model.picture(row) if row is not None else None
        if picture is not None:
            self.view.show_picture(picture)  # the same file is not read again
            self._sync_steps(row)

    def _sync_count(self) -> None:
        self.count_label.setText(count_text(self.model.rowCount()))

    # -- the large view -----------------------------------------------------------------------

    def current_row(self) -> int:
        return self.grid.currentIndex().row()

    def open_row(self, row: int) -> None:
        picture = self.model.picture(row)
        if picture is None:
            return
        self.grid.setCurrentIndex(self.model.index(row))
        self.view.show_picture(picture)
        self._sync_steps(row)
        self.pages.setCurrentWidget(self.view)
        self.view.setFocus()

    def step(self, delta: int) -> None:
        row = self.current_row() + delta
        if 0 <= row < self.model.rowCount():
            self.open_row(row)

    def _sync_steps(self, row: int | None) -> None:
        if row is not None:
            self.view.set_step_enabled(row > 0, row + 1 < self.model.rowCount())

    def show_grid(self) -> None:
        if self.pages.currentWidget() is self.grid:
            return
        self.pages.setCurrentWidget(self.grid)
        if self.grid.currentIndex().isValid():
            self.grid.scrollTo(self.grid.currentIndex())
        self.grid.setFocus()

    # -- actions ------------------------------------------------------------------------------

    def set_starred(self, path: Path, starred: bool) -> None:
        self.service.set_starred(path, starred)
        self.model.set_starred_locally(path, starred)

    def confirm(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Latentdesk", question)
        return answer == QMessageBox.StandardButton.Yes

    def trash(self, path: Path) -> None:
        """Move the file to the system trash, after asking; never a permanent delete."""
        if not self.confirm(f"Move {path.name} to the trash?"):
            return
        if not self.service.trash(path):
            self.show_status(
                f"{path.name} could not be moved to the trash (the file system may have none). "
                "It was not deleted."
            )
            return
        self.show_status(f"Moved {path.name} to the trash.")
        row = self.current_row()
        in_view = self.pages.currentWidget() is self.view
        self.model.refresh()  # the service forgets it in the background; the grid follows now
        self._sync_count()
        count = self.model.rowCount()
        if count == 0:
            self.show_grid()
            return
        row = min(max(row, 0), count - 1)
        if in_view:
            self.open_row(row)  # the picture that took its place
        else:
            self.grid.setCurrentIndex(self.model.index(row))

    def open_folder(self, path: Path) -> None:
        folder = Path(path).parent
        if not self.reveal(folder):
            # Without a desktop launcher (xdg-open) Qt opens nothing and says nothing.
            self.path_notice.show_path("No file manager could be opened. The folder is", folder)

    def show_status(self, message: str) -> None:
        self.status.setText(message)

    def _grid_menu(self, pos: QPoint) -> None:
        index = self.grid.indexAt(pos)
        if index.isValid():
            self.build_menu(index).exec(self.grid.viewport().mapToGlobal(pos))

    def build_menu(self, index: QModelIndex) -> QMenu:
        picture: IndexedPicture = index.data(PICTURE_ROLE)
        row = index.row()
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_row(row))
        star = "Unstar" if picture.starred else "Star"
        menu.addAction(star, lambda: self.set_starred(picture.path, not picture.starred))
        menu.addAction("Open folder", lambda: self.open_folder(picture.path))
        menu.addSeparator()
        menu.addAction("Move to trash…", lambda: self.trash(picture.path))
        return menu

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt name)
        index = self.grid.currentIndex()
        on_grid = self.pages.currentWidget() is self.grid and index.isValid()
        if on_grid and event.key() == Qt.Key.Key_Delete:
            self.trash(index.data(PICTURE_ROLE).path)
        else:
            super().keyPressEvent(event)

    # -- lifetime -----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Let the pool threads finish their picture before the window goes away."""
        self.thumbnails.wait_idle()
        self.view.wait_idle()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        self.shutdown()
        super().closeEvent(event)
