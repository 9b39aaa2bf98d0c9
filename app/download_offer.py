"""A download button that becomes a progress bar with Cancel: the welcome panel's and the Models
dialog's way to get Stable Diffusion 1.5. It shows the newest download of its file, so both
places show the same download, whichever started it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from app.downloads import CANCELLED, DONE, RUNNING, DownloadItem, Downloads
from app.library import LibraryState
from app.library_model import format_size, short_path
from app.widgets import named


class DownloadOffer(QWidget):
    def __init__(
        self,
        downloads: Downloads,
        library: LibraryState,
        prefix: str,  # of the objectNames: "welcome", "models"
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.downloads = downloads
        self.library = library
        self.button = named(QPushButton("Download"), f"{prefix}DownloadButton")
        self.caption = named(QLabel(""), f"{prefix}DownloadCaption")
        self.caption.setWordWrap(True)
        self.bar = named(QProgressBar(), f"{prefix}DownloadProgress")
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cancel_button = named(QPushButton("Cancel"), f"{prefix}DownloadCancel")
        self.status = named(QLabel(""), f"{prefix}DownloadStatus")
        self.status.setWordWrap(True)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.button, 0, 0)
        grid.addWidget(self.caption, 0, 1, 1, 2)
        grid.addWidget(self.bar, 1, 0, 1, 2)
        grid.addWidget(self.cancel_button, 1, 2)
        grid.addWidget(self.status, 2, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        self.button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        downloads.changed.connect(self._sync)
        downloads.starter_changed.connect(self._sync)
        library.models_dir_changed.connect(self._sync)
        self._sync()

    def item(self) -> DownloadItem | None:
        spec = self.downloads.starter
        return None if spec is None else self.downloads.latest(spec)

    def start(self) -> None:
        spec = self.downloads.starter
        if spec is not None and self.library.models_dir:
            self.downloads.start(spec, Path(self.library.models_dir))

    def cancel(self) -> None:
        item = self.item()
        if item is not None and item.state == RUNNING:
            self.downloads.cancel(item.id)

    def _sync(self, *_: object) -> None:
        spec = self.downloads.starter
        item = self.item()
        running = item is not None and item.state == RUNNING
        self.setVisible(spec is not None)
        if spec is None:
            return
        # A cancelled download kept its data; a failed one may have been deleted (damaged).
        resume = item is not None and item.state == CANCELLED
        verb = "Downloading" if running else "Resume downloading" if resume else "Download"
        self.button.setText(f"{verb} {spec.label}{'…' if running else ''}")
        self.button.setEnabled(bool(self.library.models_dir) and not running)
        self.button.setVisible(item is None or item.state != DONE)
        folder = short_path(self.library.models_dir) if self.library.models_dir else "…"
        self.caption.setText(f"{format_size(spec.size)}, saved in {folder}")
        self.caption.setToolTip(self.library.models_dir)
        self.bar.setVisible(running)
        self.cancel_button.setVisible(running)
        if item is not None:
            self.bar.setValue(round(item.fraction * 1000))
            self.bar.setFormat(item.text)
        self.status.setText(self._status_text(item))
        self.status.setVisible(bool(self.status.text()))

    @staticmethod
    def _status_text(item: DownloadItem | None) -> str:
        if item is None or item.state == RUNNING:
            return ""
        if item.state == DONE:
            return f"Downloaded: {short_path(item.path)}"
        return item.text
