"""The offer shown for a dropped or pasted picture: what its metadata gave back, field by field,
what is missing, and what cannot be used as is; then "Use these parameters", "Use as sketch",
"Inpaint this" or Cancel. Nothing changes in the window until the person picks one.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.signals import emit
from app.widgets import named
from engine.gallery.recovered import RecoveredParameters

THUMB = 192
MAX_SETTINGS_TEXT = 600  # other settings beyond this are cut: the file has them all
# How each field of RecoveredParameters is called here (the window's own words).
LABELS = {
    "prompt": "Prompt",
    "negative_prompt": "Negative prompt",
    "seed": "Seed",
    "steps": "Steps",
    "cfg_scale": "Guidance (CFG scale)",
    "sampler": "Sampler",
    "schedule": "Schedule",
    "width": "Width",
    "height": "Height",
    "model": "Model",
    "model_hash": "Model hash",
    "strength": "Denoising strength",
}
NO_PARAMETERS = "No parameters found in this picture."
# A1111 settings only an inpainted picture's text holds.
INPAINT_SETTINGS = ("Mask blur", "Masked content", "Inpaint area", "Masked area padding")
# A1111 settings shown as fields above: not repeated under "Other settings".
SHOWN_SETTINGS = frozenset(
    {"Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model", "Model hash"}
    | {"Denoising strength"}
)


class ParametersDialog(QDialog):
    use_parameters = Signal()
    use_sketch = Signal()
    use_inpaint = Signal()

    def __init__(
        self,
        name: str,
        recovered: RecoveredParameters | None,
        image: QImage,
        dropped: tuple[str, ...],
        usable: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("parametersDialog")
        self.setWindowTitle(f"Parameters in {name}")
        self.recovered = recovered
        column = QVBoxLayout(self)
        top = QHBoxLayout()
        column.addLayout(top, 1)
        if not image.isNull():
            top.addWidget(_thumbnail(image), 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self._details(recovered, dropped), 1)
        column.addWidget(self._buttons(recovered is not None and usable, not image.isNull()))
        self.resize(680, 500)

    def _details(self, recovered: RecoveredParameters | None, dropped: tuple[str, ...]) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel(NO_PARAMETERS if recovered is None else f"Written by {recovered.tool}")
        layout.addWidget(named(heading, "offerHeading"))
        if recovered is None:
            layout.addWidget(QLabel("You can still use the picture as the starting sketch."))
            layout.addStretch(1)
            return box
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for label, value in field_rows(recovered):
            form.addRow(f"{label}:", _value_label(value))
        fields = QWidget()
        fields.setLayout(form)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(fields)
        layout.addWidget(scroll, 1)
        for name, text in (
            ("offerMissing", missing_text(recovered)),
            ("offerNotes", notes_text(recovered.notes)),
            ("offerLeftOut", left_out_text(dropped)),
            ("offerSettings", settings_text(recovered)),
        ):
            if text:
                layout.addWidget(named(_value_label(text), name))
        return box

    def _buttons(self, parameters: bool, sketch: bool) -> QDialogButtonBox:
        buttons = QDialogButtonBox()
        self.use_button = named(QPushButton("Use these parameters"), "useParametersButton")
        self.sketch_button = named(QPushButton("Use as sketch"), "useSketchButton")
        self.use_button.setEnabled(parameters)
        self.inpaint_button = named(QPushButton("Inpaint this"), "inpaintButton")
        self.inpaint_button.setToolTip("Load the picture to paint a mask and repaint that part")
        self.sketch_button.setEnabled(sketch)
        self.inpaint_button.setEnabled(sketch)
        buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.sketch_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.inpaint_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.use_button.setDefault(parameters)
        self.use_button.clicked.connect(lambda: self._chosen(self.use_parameters))
        self.sketch_button.clicked.connect(lambda: self._chosen(self.use_sketch))
        self.inpaint_button.clicked.connect(lambda: self._chosen(self.use_inpaint))
        buttons.rejected.connect(self.reject)
        return buttons

    def _chosen(self, signal: SignalInstance) -> None:
        self.accept()
        emit(signal)


def field_rows(recovered: RecoveredParameters) -> list[tuple[str, str]]:
    """(label, value) for each field the file gave, in the order people read them."""
    rows: list[tuple[str, str]] = []
    for name, label in LABELS.items():
        value = getattr(recovered, name)
        if name == "width" and (recovered.width or recovered.height):
            rows.append(("Size", f"{recovered.width or '?'} × {recovered.height or '?'}"))
        elif name not in ("width", "height") and value not in (None, ""):
            rows.append((label, _shown(value)))
    if any(key in recovered.settings for key in INPAINT_SETTINGS):
        rows.append(("Mode", "Inpaint (it was inpainted)"))
    elif recovered.strength is not None:
        rows.append(("Mode", "Sketch to image (it was made from another picture)"))
    else:
        rows.append(("Mode", "Text to image"))
    return rows


def missing_text(recovered: RecoveredParameters) -> str:
    missing = [LABELS[name].lower() for name in recovered.missing if name in LABELS]
    return "Not in this file: " + ", ".join(missing) if missing else ""


def notes_text(notes: tuple[str, ...]) -> str:
    """What the reader found but could not take as is (a damaged chunk, a seed too large)."""
    return "Notes:\n" + "\n".join(f"• {note}" for note in notes) if notes else ""


def left_out_text(dropped: tuple[str, ...]) -> str:
    """What "Use these parameters" leaves as it is, and why."""
    if not dropped:
        return ""
    return "Left as they are when used:\n" + "\n".join(f"• {why}" for why in dropped)


def settings_text(recovered: RecoveredParameters) -> str:
    others = [f"{k}: {v}" for k, v in recovered.settings.items() if k not in SHOWN_SETTINGS]
    if not others:
        return ""
    text = "Other settings: " + ", ".join(others)
    return text if len(text) <= MAX_SETTINGS_TEXT else text[: MAX_SETTINGS_TEXT - 1] + "…"


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _value_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)  # a prompt with "<b>" is text, not markup
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _thumbnail(image: QImage) -> QLabel:
    scaled = image.scaled(
        THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    label = named(QLabel(), "offerThumbnail")
    label.setPixmap(QPixmap.fromImage(scaled))
    return label
