"""A status-bar note that carries a path, for when the desktop cannot open a folder for us."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from app.widgets import named


class PathNotice(QWidget):
    """A note with a path the person can select, or copy with a button, until closed.

    A plain ``showMessage`` would vanish after a few seconds and cannot be selected, and the
    path is the one thing the person needs to go there by hand; so this stays until closed.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pathNotice")
        self.path = ""
        self.label = named(QLabel(), "pathNoticeLabel")
        self.label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.label.setAccessibleName("Folder that could not be opened")
        self.copy_button = named(QToolButton(), "copyPathButton")
        self.copy_button.setText("Copy path")
        self.copy_button.setAccessibleName("Copy the folder path")
        self.close_button = named(QToolButton(), "closeNoticeButton")
        self.close_button.setText("✕")
        self.close_button.setToolTip("Close this note")
        self.close_button.setAccessibleName("Close the note")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.copy_button)
        layout.addWidget(self.close_button)
        self.copy_button.clicked.connect(self.copy_path)
        self.close_button.clicked.connect(self.hide)
        self.hide()

    def show_path(self, text: str, path: Path) -> None:
        self.path = str(path)
        self.label.setText(f"{text} {self.path}")
        self.show()

    def copy_path(self) -> None:
        QGuiApplication.clipboard().setText(self.path)
