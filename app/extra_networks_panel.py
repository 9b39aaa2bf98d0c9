"""The LoRA and embedding browser: the library's LoRAs and embeddings with a filter; a click or
Enter puts the choice into the prompt at the cursor (``insert_requested``).

It stays open beside the window, so several can be added one after another; files made for
other model families are listed greyed with the reason. With none found, it says where to put
the files: any folder of the model library, as files are recognised by their content.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.extra_networks import NetworkItem, network_items
from app.library import LibraryState
from app.library_model import short_path
from app.signals import emit
from app.widgets import named

ITEM_ROLE = Qt.ItemDataRole.UserRole


class ExtraNetworksDialog(QDialog):
    insert_requested = Signal(str)  # the text to put into the prompt

    def __init__(self, library: LibraryState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("extraNetworksDialog")
        self.setWindowTitle("LoRAs and embeddings")
        self.library = library
        self.filter = named(QLineEdit(), "networkFilter")
        self.filter.setPlaceholderText("Filter by name")
        self.filter.setAccessibleName("Filter LoRAs and embeddings by name")
        self.filter.setClearButtonEnabled(True)
        self.list = named(QListWidget(), "networkList")
        self.list.setAccessibleName("LoRAs and embeddings")
        self.list.setWordWrap(True)  # a greyed line's reason is read in full
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty = named(QLabel(), "networksEmptyLabel")
        self.empty.setWordWrap(True)
        self.empty.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.feedback = named(QLabel(), "networksFeedback")
        self.feedback.setAccessibleName("Last inserted")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.feedback)
        layout.addWidget(buttons)
        self.resize(460, 520)
        self.filter.textChanged.connect(self._apply_filter)
        self.list.itemClicked.connect(self._insert)
        self.list.installEventFilter(self)
        self.filter.installEventFilter(self)
        library.entries_changed.connect(self._fill)
        library.places_changed.connect(self._fill)
        self._fill()

    def _fill(self, *_: object) -> None:
        self.list.clear()
        for item in network_items(self.library.entries):
            line = QListWidgetItem(item.label)
            line.setData(ITEM_ROLE, item)
            line.setToolTip(item.reason or f"Insert {item.text}\n{item.path}")
            if not item.usable:
                line.setFlags(Qt.ItemFlag.NoItemFlags)  # greyed, and Enter cannot pick it
            self.list.addItem(line)
        self._apply_filter()

    def _apply_filter(self) -> None:
        words = self.filter.text()
        shown = 0
        for row in range(self.list.count()):
            line = self.list.item(row)
            hidden = not _item(line).matches(words)
            line.setHidden(hidden)
            shown += not hidden
        if self.list.count() == 0:
            self.empty.setText(self._where_to_put_files())
        elif shown == 0:
            self.empty.setText(f"Nothing matches “{words}”.")
        self.empty.setVisible(shown == 0)
        self.list.setVisible(shown > 0)
        current = self.list.currentItem()
        if current is None or current.isHidden() or not _item(current).usable:
            self._select_first_usable()

    def _where_to_put_files(self) -> str:
        places = [short_path(p.path) for p in self.library.places]
        folders = "\n".join(f"  • {p}" for p in places) or "  (the library has no folders yet)"
        return (
            "No LoRAs or embeddings found yet.\n\n"
            "Put LoRA files (.safetensors) and textual-inversion embeddings (.pt, "
            ".safetensors) in one of the model library's folders; files are recognised by "
            "their content, in any of them:\n"
            f"{folders}\n\nFile › Models… adds a folder of your own."
        )

    def _select_first_usable(self) -> None:
        for row in range(self.list.count()):
            line = self.list.item(row)
            if not line.isHidden() and _item(line).usable:
                self.list.setCurrentItem(line)
                return

    def _insert(self, line: QListWidgetItem | None) -> None:
        if line is None or line.isHidden() or not _item(line).usable:
            return
        text = _item(line).text
        emit(self.insert_requested, text)
        self.feedback.setText(f"Inserted {text}")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        # Enter in the list or the filter box inserts the chosen line; Down goes to the list.
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._insert(self.list.currentItem())
                return True
            if watched is self.filter and event.key() == Qt.Key.Key_Down:
                self.list.setFocus()
                return True
        return super().eventFilter(watched, event)


def _item(line: QListWidgetItem) -> NetworkItem:
    return line.data(ITEM_ROLE)
