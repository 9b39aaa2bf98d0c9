"""Help › Keyboard shortcuts: keys and what they do, in two columns of a table."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.widgets import named

SHORTCUTS = [
    ("Ctrl+Enter", "Generate (again while one runs: queue another)"),
    ("Esc", "Cancel the running picture"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo in the sketch and the mask"),
    ("B, E, I, F", "Brush, eraser, colour picker, fill (in Inpaint mode: on the mask)"),
    ("Ctrl+Shift+I", "Inpaint mode: invert the mask"),
    ("Ctrl+Up / Ctrl+Down", "In a prompt: more / less weight for the word or selection"),
    ("Ctrl+L", "Insert a LoRA or an embedding into the prompt"),
    ("Ctrl+O", "Open a checkpoint"),
    ("Ctrl+Shift+M", "Models: folders, downloads"),
    ("Ctrl+Shift+O", "Open an image into the sketch"),
    ("Ctrl+V", "Outside a text field: paste a picture and see its parameters"),
    ("Ctrl+Shift+V", "Paste an image into the sketch"),
    ("Ctrl+S", "Save the sketch"),
    ("Ctrl+G", "Gallery: search every picture, star, reuse"),
    ("F1", "This list"),
]


class ShortcutsDialog(QDialog):
    """A real table rather than rich text in a message box, whose cells ran into each other."""

    def __init__(self, shortcuts: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.table = named(QTableWidget(len(shortcuts), 2), "shortcutsTable")
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Keys", "Action"])
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for row, (keys, action) in enumerate(shortcuts):
            key_item = QTableWidgetItem(keys)
            font = key_item.font()
            font.setBold(True)
            key_item.setFont(font)
            self.table.setItem(row, 0, key_item)
            self.table.setItem(row, 1, QTableWidgetItem(action))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.resizeColumnsToContents()
        self.table.resizeRowsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, 360)
