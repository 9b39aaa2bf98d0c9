"""The model picker: every checkpoint the library found, grouped by family, the loaded one shown.

Files this version cannot use (other families, damaged files) are listed greyed out, with the
reason as their tooltip, so a person sees that their SDXL model was found rather than missed.
Picking a model asks for it to be loaded; until it is, the picker waits, and if loading fails it
shows the model that is still loaded.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication, QPalette, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QWidget

from app.library import LibraryState
from app.library_model import ModelChoice, grouped, model_choices
from app.signals import emit
from app.viewmodel import ModelState

PATH_ROLE = Qt.ItemDataRole.UserRole
OPENED = "Opened from a file"


class ModelPicker(QComboBox):
    model_chosen = Signal(str)  # a path to load

    def __init__(
        self, library: LibraryState, model: ModelState, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("modelPicker")
        self.library_state = library
        self.model_state = model
        self.items = QStandardItemModel(self)
        self.setModel(self.items)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(20)
        self.activated.connect(self._activated)
        library.entries_changed.connect(self._rebuild)
        library.scanning_changed.connect(self._sync_placeholder)
        model.path_changed.connect(self._rebuild)  # a file opened from elsewhere gets a line
        model.loading_changed.connect(self._sync_loading)
        self._rebuild()
        self._sync_loading()

    def choices(self) -> list[ModelChoice]:
        """The lines under the headings, in order (tests and the Models dialog read them)."""
        return [c for _, group in self._groups() for c in group]

    def _groups(self) -> list[tuple[str, list[ModelChoice]]]:
        choices = model_choices(self.library_state.entries)
        groups = grouped(choices)
        loaded = self.model_state.path
        if loaded and all(c.path != loaded for c in choices):
            name = self.model_state.name or Path(loaded).stem
            groups.insert(0, (OPENED, [ModelChoice(loaded, name, OPENED, "", False, "")]))
        return groups

    def _rebuild(self, *_: object) -> None:
        self.items.clear()
        groups = self._groups()
        names = Counter(c.name for _, group in groups for c in group)
        for title, group in groups:
            self.items.appendRow(_heading(title))
            for choice in group:
                self.items.appendRow(_line(choice, names[choice.name] > 1))
        self._select()
        self._sync_placeholder()

    def _select(self) -> None:
        index = self.findData(self.model_state.path, PATH_ROLE) if self.model_state.path else -1
        self.setCurrentIndex(index)
        self.setToolTip(self.model_state.path or "Choose the model that makes the pictures")

    def _sync_placeholder(self, *_: object) -> None:
        if self.library_state.scanning and not self.library_state.entries:
            text = "Looking for models…"
        elif self.count() == 0:
            text = "No model found: File › Models…"
        else:
            text = "Choose a model…"
        self.setPlaceholderText(text)

    def _sync_loading(self, *_: object) -> None:
        self.setEnabled(not self.model_state.loading)
        if not self.model_state.loading:
            self._select()  # the new model, or the old one still loaded after a failure

    def _activated(self, index: int) -> None:
        path = self.itemData(index, PATH_ROLE)
        if not path or path == self.model_state.path:
            return
        emit(self.model_chosen, path)


def _heading(title: str) -> QStandardItem:
    item = QStandardItem(title)
    item.setFlags(Qt.ItemFlag.NoItemFlags)  # a heading, not a choice
    font = QFont()
    font.setBold(True)
    item.setFont(font)
    # Drawn in the normal text colour: greyed lines are the files that cannot be used.
    item.setForeground(QGuiApplication.palette().brush(QPalette.ColorRole.WindowText))
    return item


def _line(choice: ModelChoice, ambiguous: bool) -> QStandardItem:
    parts = [choice.label, choice.size] + ([choice.source] if ambiguous else [])
    item = QStandardItem(" · ".join(p for p in parts if p))
    item.setData(choice.path, PATH_ROLE)
    item.setToolTip(choice.reason or choice.path)
    if not choice.usable:
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled & ~Qt.ItemFlag.ItemIsSelectable)
    return item
