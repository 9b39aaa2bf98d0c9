"""The welcome panel: shown in place of the empty preview while no model is loaded.

It offers the three ways to a first picture: a model already on this computer (one click loads
it), downloading Stable Diffusion 1.5, or opening a checkpoint file from anywhere.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from app.download_offer import DownloadOffer
from app.downloads import Downloads
from app.library import LibraryState
from app.library_model import BUILT_IN, ModelChoice, model_choices, short_path
from app.signals import emit
from app.viewmodel import ModelState
from app.widgets import named

PATH_ROLE = Qt.ItemDataRole.UserRole
DETAIL_ROLE = Qt.ItemDataRole.UserRole + 1  # "2.13 GB · AUTOMATIC1111", under the name
BADGE_ROLE = Qt.ItemDataRole.UserRole + 2  # "inpainting", drawn as a badge after the name
PADDING = 6


class WelcomePanel(QScrollArea):
    model_chosen = Signal(str)  # a path to load
    open_file_requested = Signal()

    def __init__(
        self,
        library: LibraryState,
        model: ModelState,
        downloads: Downloads,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePanel")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.library = library
        self.model = model
        self.models = named(QListWidget(), "welcomeModels")
        self.models.setItemDelegate(_ModelLine(self.models))
        self.models.setAlternatingRowColors(True)
        self.models.setCursor(Qt.CursorShape.PointingHandCursor)
        self.hint = named(QLabel(""), "welcomeModelsHint")
        self.hint.setWordWrap(True)
        self.loading = named(QLabel(""), "welcomeLoading")
        self.offer = DownloadOffer(downloads, library, "welcome")
        self.open_button = named(QPushButton("Open a file…"), "welcomeOpenButton")
        self.setWidget(self._content())
        self.models.itemClicked.connect(self._choose)
        self.models.itemActivated.connect(self._choose)  # Enter on the keyboard
        self.open_button.clicked.connect(lambda: emit(self.open_file_requested))
        library.entries_changed.connect(self._sync_models)
        library.scanning_changed.connect(self._sync_models)
        model.loading_changed.connect(self._sync_loading)
        model.message_changed.connect(self._sync_loading)
        self._sync_models()
        self._sync_loading()

    def _content(self) -> QWidget:
        column = QWidget()
        column.setMaximumWidth(620)
        layout = QVBoxLayout(column)
        layout.addStretch(1)  # centred while the list is short; the list takes the height
        layout.addWidget(named(QLabel("Welcome to Latentdesk"), "welcomeTitle"))
        layout.addWidget(_wrapped("Choose a Stable Diffusion 1.x model to start."))
        layout.addSpacing(14)
        layout.addWidget(_heading("Models on this computer"))
        layout.addWidget(self.models, 10)
        layout.addWidget(self.hint)
        layout.addWidget(self.loading)
        layout.addSpacing(14)
        layout.addWidget(_heading("Download a model"))
        layout.addWidget(self.offer)
        layout.addSpacing(14)
        layout.addWidget(_heading("Or use a checkpoint file you have"))
        layout.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        outer = QWidget()
        centred = QVBoxLayout(outer)
        centred.addWidget(column, 1, Qt.AlignmentFlag.AlignHCenter)
        return outer

    def choices(self) -> list[ModelChoice]:
        return [c for c in model_choices(self.library.entries) if c.usable]

    def _sync_models(self, *_: object) -> None:
        usable = self.choices()
        self.models.clear()
        for choice in usable:
            item = QListWidgetItem(choice.name)
            item.setData(DETAIL_ROLE, f"{choice.size} · {choice.source}")
            item.setData(BADGE_ROLE, "inpainting" if choice.inpainting else "")
            item.setData(PATH_ROLE, choice.path)
            item.setToolTip(choice.path)
            self.models.addItem(item)
        self.models.setVisible(bool(usable))
        self.hint.setText(self._hint(len(usable)))
        self.hint.setVisible(bool(self.hint.text()))

    def _hint(self, usable: int) -> str:
        if self.library.scanning and not usable:
            return "Looking for models on this computer…"
        others = len(model_choices(self.library.entries)) - usable
        more = (
            f"{others} more {'was' if others == 1 else 'were'} found that Latentdesk cannot use "
            "yet (see File › Models…)."
            if others
            else ""
        )
        if not usable:
            where = "AUTOMATIC1111, ComfyUI, InvokeAI, the Hugging Face cache, "
            where += f"{short_path(self.library.models_dir)}" if self.library.models_dir else ""
            return f"No Stable Diffusion 1.x model was found ({where.rstrip(', ')}). {more}"
        if all(c.group == BUILT_IN for c in self.choices()):
            return (
                "The built-in demo draws simple coloured shapes within seconds; real pictures "
                f"need a real model: download Stable Diffusion 1.5 below. {more}"
            ).strip()
        return f"Click one to load it. {more}".strip()

    def _sync_loading(self, *_: object) -> None:
        self.models.setEnabled(not self.model.loading)
        self.loading.setText(self.model.message if self.model.loading else "")
        self.loading.setVisible(self.model.loading)

    def _choose(self, item: QListWidgetItem) -> None:
        if not self.model.loading:
            emit(self.model_chosen, item.data(PATH_ROLE))


def _heading(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    return label


def _wrapped(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


class _ModelLine(QStyledItemDelegate):
    """The name in bold, size and place below it in a quieter colour."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        self.initStyleOption(option, index)
        detail = str(index.data(DETAIL_ROLE) or "")
        option.text = ""
        style = option.widget.style() if option.widget else None
        if style is not None:  # background, selection and hover, as the platform draws them
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        text = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        box = option.rect.adjusted(PADDING * 2, PADDING, -PADDING, -PADDING)
        line = option.fontMetrics.height()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        name, bold = str(index.data()), _bold(option.font)
        painter.setFont(bold)
        painter.setPen(option.palette.color(text))
        painter.drawText(QRect(box.left(), box.top(), box.width(), line), 0, name)
        badge = str(index.data(BADGE_ROLE) or "")
        if badge:
            left = box.left() + QFontMetrics(bold).horizontalAdvance(name) + PADDING
            _draw_badge(painter, option, QPoint(left, box.top()), badge)
        painter.setFont(option.font)
        if not selected:
            painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRect(box.left(), box.top() + line + 2, box.width(), line), 0, detail)
        painter.restore()

    def sizeHint(  # noqa: N802 (Qt name)
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        return QSize(200, 2 * option.fontMetrics.height() + 2 + 2 * PADDING)


def _draw_badge(painter: QPainter, option: QStyleOptionViewItem, at: QPoint, text: str) -> None:
    metrics = option.fontMetrics
    rect = QRect(at, QSize(metrics.horizontalAdvance(text) + 2 * PADDING, metrics.height()))
    colour = QColor(option.palette.color(QPalette.ColorRole.Highlight))
    painter.setPen(colour)
    colour.setAlpha(40)
    painter.setBrush(colour)
    painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
    painter.setFont(option.font)
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)


def _bold(font: QFont) -> QFont:
    bold = QFont(font)
    bold.setBold(True)
    return bold
