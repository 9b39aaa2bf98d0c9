"""The gallery browser's large view: one picture scaled to fit, its parameters beside it, and
what can be done with it.

The file is read off the GUI thread (``PictureLoader``); actions that need its pixels or its
parameters text wait for that read and then run, so a click right after stepping is never lost.
What the window does with a picture (restore the controls, load the sketch) goes out as signals,
the same ones the session strip emits; star, trash and "open folder" go to the browser, which
owns the gallery service.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage, QKeyEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.picture_loader import PictureLoader
from app.preview import PreviewPane
from app.signals import emit
from app.widgets import named
from engine.gallery.index import IndexedPicture
from engine.units import human_size

INPAINT_TOOLTIP = "Load this picture to paint a mask over it and repaint that part"
LOADING = "Loading…"


def record_parameters(picture: IndexedPicture) -> str:
    """A1111 text made from the index's record, for files whose own text is not A1111's
    (ComfyUI, InvokeAI…): what the window's controls can take back from them."""
    from engine.parameters import format_parameters

    size = f"{picture.width}x{picture.height}" if picture.width and picture.height else None
    settings: dict[str, object] = {
        "Steps": picture.steps,
        "Sampler": picture.sampler,
        "Schedule type": picture.schedule,
        "CFG scale": picture.cfg_scale,
        "Seed": picture.seed,
        "Size": size,
        "Model": picture.model,
    }
    return format_parameters(picture.prompt, picture.negative_prompt, settings)


def readable_parameters(picture: IndexedPicture) -> list[tuple[str, str]]:
    """(label, value) rows for a person: the prompt always, other fields when known."""
    p = picture
    size = f"{p.width} × {p.height}" if p.width and p.height else None
    rows: list[tuple[str, object]] = [
        ("Prompt", p.prompt or "(none)"),
        ("Negative prompt", p.negative_prompt or None),
        ("Seed", p.seed),
        ("Steps", p.steps),
        ("CFG scale", p.cfg_scale),
        ("Sampler", p.sampler),
        ("Schedule", p.schedule),
        ("Size", size),
        ("Model", p.model),
        ("Made with", p.tool),
        ("File", p.path.name),
        ("Date", datetime.fromtimestamp(p.mtime).strftime("%Y-%m-%d %H:%M")),
        ("File size", human_size(p.size_bytes)),
    ]
    return [(label, _text(value)) for label, value in rows if value is not None]


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class PictureView(QWidget):
    parameters_chosen = Signal(str)  # "Use these parameters": the window restores its controls
    sketch_chosen = Signal(QImage)  # "Use as sketch"
    inpaint_chosen = Signal(QImage)  # "Inpaint this"
    star_requested = Signal(object, bool)  # Path, starred
    trash_requested = Signal(object)  # Path
    folder_requested = Signal(object)  # Path: show the file's folder
    step_requested = Signal(int)  # -1 previous, +1 next
    back_requested = Signal()  # back to the grid
    notice = Signal(str)  # a confirmation for the status line

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pictureView")
        self._picture: IndexedPicture | None = None
        self._image = QImage()
        self._text = ""
        self._loaded = False
        self._waiting: list[Callable[[], None]] = []  # actions asked for before the read ended
        self._loader = PictureLoader(self)
        self._loader.loaded.connect(self._on_loaded)
        self._build()
        self._connect()

    # -- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        self.image_pane = named(PreviewPane(), "pictureImage")
        self.image_pane.placeholder = LOADING
        self.title = named(QLabel(), "pictureTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.parameters = named(QLabel(), "pictureParameters")
        self.parameters.setWordWrap(True)
        self.parameters.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.parameters.setTextFormat(Qt.TextFormat.RichText)
        self.parameters.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.parameters.setAccessibleName("Picture parameters")
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.parameters)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(6, 0, 0, 0)
        column.addWidget(scroll, 1)
        column.addLayout(self._buttons())
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.image_pane)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([700, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._top_row())
        layout.addWidget(split, 1)

    def _top_row(self) -> QHBoxLayout:
        self.back_button = _button("backButton", "◂ All pictures", "Back to the grid (Esc)")
        self.back_button.setAccessibleName("Back to all pictures")
        self.previous_button = _button("previousButton", "Previous", "The picture before (←)")
        self.next_button = _button("nextButton", "Next", "The picture after (→)")
        row = QHBoxLayout()
        row.addWidget(self.back_button)
        row.addWidget(self.previous_button)
        row.addWidget(self.next_button)
        row.addWidget(self.title, 1)
        return row

    def _buttons(self) -> QGridLayout:
        self.use_parameters_button = _button(
            "useParametersButton",
            "Use these parameters",
            "Put this picture's settings into the controls",
        )
        self.use_sketch_button = _button(
            "useSketchButton", "Use as sketch", "Load this picture into the sketch"
        )
        self.inpaint_button = _button("inpaintButton", "Inpaint this", INPAINT_TOOLTIP)
        self.open_folder_button = _button(
            "openFolderButton", "Open folder", "Show the file in its folder"
        )
        self.copy_image_button = _button("copyImageButton", "Copy image", "Copy the picture")
        self.copy_parameters_button = _button(
            "copyParametersButton", "Copy parameters", "Copy the settings as text"
        )
        self.star_button = _button("starButton", "☆ Star", "Star or unstar this picture")
        self.star_button.setCheckable(True)
        self.star_button.setAccessibleName("Star")  # checked: starred; the text has a symbol
        self.trash_button = _button(
            "trashButton", "Move to trash…", "Move the file to the system trash (asks first)"
        )
        grid = QGridLayout()
        buttons = [self.use_parameters_button, self.use_sketch_button, self.inpaint_button,
                   self.open_folder_button, self.copy_image_button, self.copy_parameters_button,
                   self.star_button, self.trash_button]  # fmt: skip
        for i, button in enumerate(buttons):
            grid.addWidget(button, i // 2, i % 2)
        return grid

    def _connect(self) -> None:
        self.back_button.clicked.connect(self.back_requested)
        self.previous_button.clicked.connect(lambda: emit(self.step_requested, -1))
        self.next_button.clicked.connect(lambda: emit(self.step_requested, 1))
        self.use_parameters_button.clicked.connect(self.use_parameters)
        self.use_sketch_button.clicked.connect(self.use_as_sketch)
        self.inpaint_button.clicked.connect(self.inpaint_this)
        self.copy_image_button.clicked.connect(self.copy_image)
        self.copy_parameters_button.clicked.connect(self.copy_parameters)
        self.open_folder_button.clicked.connect(self._open_folder)
        self.star_button.clicked.connect(self._star_clicked)
        self.trash_button.clicked.connect(self._trash_clicked)

    # -- contents ---------------------------------------------------------------------------

    def picture(self) -> IndexedPicture | None:
        return self._picture

    def show_picture(self, picture: IndexedPicture) -> None:
        """Show ``picture``; its file is read in the background (the same one: not again)."""
        same_file = self._picture is not None and _same_file(self._picture, picture)
        self._picture = picture
        self._fill_text(picture)
        self.set_starred(picture.starred)
        if same_file:
            return
        self._image, self._text, self._loaded = QImage(), "", False
        self._waiting.clear()
        self.image_pane.placeholder = LOADING
        self.image_pane.clear()
        self._loader.load(picture, picture.path)

    def set_starred(self, starred: bool) -> None:
        self.star_button.setChecked(starred)
        self.star_button.setText("★ Starred" if starred else "☆ Star")

    def set_step_enabled(self, previous: bool, following: bool) -> None:
        self.previous_button.setEnabled(previous)
        self.next_button.setEnabled(following)

    def wait_idle(self) -> None:
        self._loader.wait_idle()

    def _fill_text(self, picture: IndexedPicture) -> None:
        self.title.setText(f"<b>{html.escape(picture.path.name)}</b>")
        rows = "".join(
            f"<p style='margin:0 0 6px 0'><b>{label}</b><br>{_html_lines(value)}</p>"
            for label, value in readable_parameters(picture)
        )
        self.parameters.setText(rows)

    def _on_loaded(self, tag: object, image: QImage, text: str, error: str) -> None:
        if self._picture is None or not _same_file(tag, self._picture):  # type: ignore[arg-type]
            return  # a picture stepped past
        self._image, self._text, self._loaded = image, text, True
        if image.isNull():
            self.image_pane.placeholder = error
            self.image_pane.clear()
        else:
            self.image_pane.set_image(image)
        waiting, self._waiting = self._waiting, []
        for action in waiting:
            action()

    def _when_loaded(self, action: Callable[[], None]) -> None:
        if self._loaded:
            action()
        else:
            self._waiting.append(action)

    # -- actions ----------------------------------------------------------------------------

    def parameters_text(self) -> str:
        """The file's own A1111 text, else one made from the index's record."""
        if self._text:
            return self._text
        return record_parameters(self._picture) if self._picture is not None else ""

    def use_parameters(self) -> None:
        self._when_loaded(lambda: emit(self.parameters_chosen, self.parameters_text()))

    def use_as_sketch(self) -> None:
        self._when_loaded(lambda: self._with_image(lambda i: emit(self.sketch_chosen, i)))

    def inpaint_this(self) -> None:
        self._when_loaded(lambda: self._with_image(lambda i: emit(self.inpaint_chosen, i)))

    def copy_image(self) -> None:
        def copy(image: QImage) -> None:
            QGuiApplication.clipboard().setImage(image)
            emit(self.notice, "Image copied.")

        self._when_loaded(lambda: self._with_image(copy))

    def copy_parameters(self) -> None:
        def copy() -> None:
            QGuiApplication.clipboard().setText(self.parameters_text())
            emit(self.notice, "Parameters copied.")

        self._when_loaded(copy)

    def _with_image(self, use: Callable[[QImage], None]) -> None:
        if self._image.isNull():
            emit(self.notice, self.image_pane.placeholder or "The picture could not be read.")
        else:
            use(self._image)

    def _open_folder(self) -> None:
        if self._picture is not None:
            emit(self.folder_requested, self._picture.path)

    def _star_clicked(self, checked: bool) -> None:
        self.set_starred(checked)
        if self._picture is not None:
            emit(self.star_requested, self._picture.path, checked)

    def _trash_clicked(self) -> None:
        if self._picture is not None:
            emit(self.trash_requested, self._picture.path)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt name)
        key = event.key()
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Up, Qt.Key.Key_PageUp):
            emit(self.step_requested, -1)
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_PageDown):
            emit(self.step_requested, 1)
        elif key == Qt.Key.Key_Escape:
            emit(self.back_requested)
        else:
            super().keyPressEvent(event)


def _same_file(a: IndexedPicture, b: IndexedPicture) -> bool:
    return (a.path, a.mtime, a.size_bytes) == (b.path, b.mtime, b.size_bytes)


def _html_lines(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _button(name: str, text: str, tip: str) -> QPushButton:
    button = named(QPushButton(text), name)
    button.setToolTip(tip)
    button.setAutoDefault(False)  # Enter belongs to the grid, not to the first button
    return button
