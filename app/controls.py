"""The generation controls, bound both ways to a GenerationParams view-model."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, QTimer, Signal
from PySide6.QtGui import QDropEvent, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.collapsible import CollapsibleSection
from app.embedding_vectors import EmbeddingVectors
from app.hires_panel import HiresOptions
from app.inpaint_panel import InpaintOptions
from app.picture_drop import is_picture_drop
from app.preset_combo import PresetCombo
from app.prompt_edit import PromptTextEdit
from app.prompt_spans import KnownNetworks
from app.signals import emit
from app.size_presets import ordered_presets, preset_label, size_for_model
from app.viewmodel import INPAINT, RANDOM_SEED, SKETCH, TXT2IMG, GenerationParams, JobsState
from app.widgets import named
from engine import SAMPLERS, SCHEDULES
from engine.api import (
    MAX_BATCH_COUNT,
    MAX_BATCH_SIZE,
    MAX_CLIP_SKIP,
    MAX_SEED,
    MAX_SIZE,
    MAX_STEPS,
    MIN_SIZE,
)
from engine.library.records import LibraryEntry
from engine.parameters import sampler_display_name, schedule_display_name
from engine.prompts.tokens import TokenCount, count_tokens
from engine.samplers import sampler_info
from engine.text.tokenizer import CHUNK_LEN

PROMPT_HINT = "Describe it: a lighthouse at dusk"
# The demo model knows only its shapes grammar: the empty field says what it can draw.
DEMO_PROMPT_HINT = "The demo draws shapes: a red circle on a white background"


class SliderSpin(QWidget):
    """A slider with a spin box beside it; ``value_changed`` carries the real (unscaled) value."""

    value_changed = Signal(float)

    def __init__(self, name: str, low: float, high: float, step: float, decimals: int) -> None:
        super().__init__()
        self._step = step
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName(name)
        self.slider.setRange(round(low / step), round(high / step))
        self.spin = QDoubleSpinBox()
        self.spin.setObjectName(name.replace("Slider", "Spin"))
        self.spin.setRange(low, high)
        self.spin.setSingleStep(step)
        self.spin.setDecimals(decimals)
        self.spin.setFixedWidth(72)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.slider.valueChanged.connect(lambda v: self.set_value(v * self._step))
        self.spin.valueChanged.connect(self.set_value)

    def value(self) -> float:
        return self.spin.value()

    def set_value(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value / self._step))
        self.slider.blockSignals(False)
        if self.spin.value() != value:
            self.spin.setValue(value)  # emits valueChanged -> set_value again, then stops
            return
        emit(self.value_changed, self.spin.value())


def token_label_text(count: TokenCount) -> str:
    """ "12/75", or "80/150" when the prompt spans two 75-token chunks (A1111's counter)."""
    return f"{count.used}/{count.limit}"


def token_tip_text(count: TokenCount) -> str:
    chunks = f"{count.chunks} chunks" if count.chunks > 1 else "1 chunk"
    return (
        f"Tokens the text encoder gets: {count.used}, in {chunks} of {CHUNK_LEN}. Brackets, "
        "weights and <lora:…> tags count nothing; BREAK ends a chunk; an embedding counts its "
        "vectors."
    )


class PromptEdit(PromptTextEdit):
    """Multi-line prompt; Ctrl+Enter belongs to the window (generate), not a new line.
    Ctrl+Up/Down weigh words, colours show the syntax (``app.prompt_edit``)."""

    # A file, picture or web address dropped or pasted; and what to call it, by which it was.
    picture_dropped = Signal(QMimeData, str)

    def __init__(self, name: str, placeholder: str) -> None:
        super().__init__()
        self.setObjectName(name)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self._dropping = False

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt name)
        is_enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if is_enter and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            event.ignore()  # let the window's shortcut have it
            return
        super().keyPressEvent(event)

    # A dropped or pasted file or picture is the window's (offered, or loaded as a model):
    # Qt would insert a file's URL as "file:///…" text. Plain text still goes in as text.
    def canInsertFromMimeData(self, source: QMimeData) -> bool:  # noqa: N802 (Qt name)
        return is_picture_drop(source) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:  # noqa: N802 (Qt name)
        if is_picture_drop(source):
            name = "the dropped picture" if self._dropping else "the pasted picture"
            emit(self.picture_dropped, source, name)
        else:
            super().insertFromMimeData(source)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt name)
        self._dropping = True  # insertFromMimeData serves both drops and pastes
        try:
            super().dropEvent(event)
        finally:
            self._dropping = False


class ControlsPanel(QWidget):
    def __init__(self, params: GenerationParams, jobs: JobsState, parent: QWidget | None = None):
        super().__init__(parent)
        self.params = params
        self.jobs = jobs
        self._native_size: int | None = None  # the loaded model's (set_native_size)
        self._build()
        self._bind()
        self.embedding_vectors = EmbeddingVectors(self)
        self._token_timer = QTimer(self, singleShot=True, interval=150)
        self._token_timer.timeout.connect(self._count_tokens)
        self.prompt.textChanged.connect(self._token_timer.start)
        self.negative.textChanged.connect(self._token_timer.start)
        self.embedding_vectors.changed.connect(self._token_timer.start)
        self.embedding_vectors.changed.connect(self._sync_known)
        self.params.steps_changed.connect(self._token_timer.start)  # [a:b:10] depends on them
        self._entries: tuple[LibraryEntry, ...] = ()
        self.last_prompt: PromptEdit = self.prompt  # where the LoRA browser inserts
        self.prompt.focused.connect(lambda: setattr(self, "last_prompt", self.prompt))
        self.negative.focused.connect(lambda: setattr(self, "last_prompt", self.negative))
        self._count_tokens()

    # -- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.prompt = PromptEdit("promptEdit", PROMPT_HINT)
        self.negative = PromptEdit("negativePromptEdit", "To avoid: blurry, text")
        self.prompt_tokens = named(QLabel(), "promptTokens")
        self.negative_tokens = named(QLabel(), "negativeTokens")
        self.networks_button = _tool_button("networksButton", "LoRA && embeddings…")
        self.networks_button.setToolTip(
            "Insert a LoRA or an embedding from the model library at the cursor (Ctrl+L)"
        )
        # On a tall screen the prompts take the spare height (4:2 against the empty space
        # below), so the lower left is room to write rather than a blank.
        for title, edit, counter, height, stretch in (
            ("Prompt", self.prompt, self.prompt_tokens, 96, 4),
            ("Negative prompt", self.negative, self.negative_tokens, 56, 2),
        ):
            header = QHBoxLayout()
            header.addWidget(QLabel(f"<b>{title}</b>"))
            header.addStretch(1)
            if edit is self.prompt:
                header.addWidget(self.networks_button)
            header.addWidget(counter)
            layout.addLayout(header)
            edit.setMinimumHeight(height)
            edit.setMaximumHeight(height * 4)
            layout.addWidget(edit, stretch)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.addLayout(form)
        self.mode = named(QComboBox(), "modeCombo")
        self.mode.addItem("Text to image", TXT2IMG)
        self.mode.addItem("Sketch to image", SKETCH)
        self.mode.addItem("Inpaint", INPAINT)
        self.mode.setItemData(2, "Repaint where the mask is painted", Qt.ItemDataRole.ToolTipRole)
        form.addRow("Mode", self.mode)
        self.guidance = SliderSpin("guidanceSlider", 1, 30, 0.5, 1)
        self.guidance.setToolTip("How closely to follow the prompt (7 is a good start)")
        form.addRow("Guidance", self.guidance)
        self.steps = SliderSpin("stepsSlider", 1, MAX_STEPS, 1, 0)
        self.steps.setToolTip("More steps: more detail, more time")
        form.addRow("Steps", self.steps)
        self.strength = SliderSpin("strengthSlider", 0, 1, 0.01, 2)
        self.strength.setToolTip("Sketch to image: 0 keeps your sketch, 1 ignores it")
        form.addRow("Strength", self.strength)
        self.inpaint = InpaintOptions(self.params, form)  # rows shown in Inpaint mode
        form.addRow("Seed", self._seed_row())
        form.addRow("Size", self._size_row())
        self.advanced = self._advanced_section()
        layout.addWidget(self.advanced)
        layout.addStretch(1)

    def _advanced_section(self) -> CollapsibleSection:
        # Sampler, schedule, start noise and batch: worth changing rarely, so they fold away.
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.sampler = named(QComboBox(), "samplerCombo")
        for name in SAMPLERS:
            self.sampler.addItem(sampler_display_name(name), name)
        self.schedule = named(QComboBox(), "scheduleCombo")
        for name in SCHEDULES:
            self.schedule.addItem(schedule_display_name(name), name)
        sampler_row = QHBoxLayout()
        sampler_row.addWidget(self.sampler, 1)
        sampler_row.addWidget(self.schedule)
        # Sampler, schedule, steps and guidance together (app.presets); "Custom" otherwise.
        self.sampling_preset = PresetCombo(self.params)
        form.addRow("Preset", self.sampling_preset)
        form.addRow("Sampler", sampler_row)
        self.sgm_noise = named(QCheckBox("Full start noise (SGM)"), "sgmNoiseCheck")
        self.sgm_noise.setToolTip(
            "Start text-to-image from noise scaled by √(1+σ²), as diffusers and ComfyUI do "
            "(A1111's “SGM noise multiplier”). Off: A1111's default start. Pictures restored "
            "from other tools set this so they come out the same."
        )
        form.addRow("", self.sgm_noise)
        self.batch_count = named(QSpinBox(minimum=1, maximum=MAX_BATCH_COUNT), "batchCountSpin")
        self.batch_size = named(QSpinBox(minimum=1, maximum=MAX_BATCH_SIZE), "batchSizeSpin")
        self.batch_count.setToolTip("Batches, run one after another")
        self.batch_size.setToolTip("Images per batch (uses more memory)")
        batch_row = QHBoxLayout()
        batch_row.addWidget(QLabel("count"))
        batch_row.addWidget(self.batch_count)
        batch_row.addWidget(QLabel("size"))
        batch_row.addWidget(self.batch_size)
        batch_row.addStretch(1)
        form.addRow("Batch", batch_row)
        self.clip_skip = named(QSpinBox(minimum=1, maximum=MAX_CLIP_SKIP), "clipSkipSpin")
        self.clip_skip.setToolTip(
            "Text-encoder layers to skip from the end: 1 uses the last layer; 2 the one before "
            "(what many anime-style models were trained with, “Clip skip” in A1111)"
        )
        clip_row = QHBoxLayout()  # a number of 1-12 needs no full-width box
        clip_row.addWidget(self.clip_skip)
        clip_row.addStretch(1)
        form.addRow("Clip skip", clip_row)
        self.hires = HiresOptions(self.params, form)  # text to image only
        return CollapsibleSection("advanced", "Advanced", form)

    def _seed_row(self) -> QHBoxLayout:
        # QSpinBox is 32-bit signed; seeds go to 2**32 - 1, so a 0-decimal double spin box.
        self.seed = named(QDoubleSpinBox(decimals=0), "seedSpin")
        self.seed.setRange(RANDOM_SEED, MAX_SEED)
        self.seed.setSpecialValueText("Random")
        self.dice = _tool_button("randomSeedButton", "Random")
        self.dice.setToolTip("A new random seed for every picture")
        self.reuse = _tool_button("reuseSeedButton", "Reuse last")
        self.reuse.setToolTip("Reuse the last picture's seed")
        self.reuse.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.seed, 1)
        row.addWidget(self.dice)
        row.addWidget(self.reuse)
        return row

    def _size_row(self) -> QHBoxLayout:
        self.preset = named(QComboBox(), "sizePresetCombo")
        self.set_native_size(None)
        self.width_spin = named(QSpinBox(minimum=MIN_SIZE, maximum=MAX_SIZE), "widthSpin")
        self.height_spin = named(QSpinBox(minimum=MIN_SIZE, maximum=MAX_SIZE), "heightSpin")
        for spin in (self.width_spin, self.height_spin):
            spin.setSingleStep(8)
            spin.setToolTip("A multiple of 8 pixels")
        row = QHBoxLayout()
        row.addWidget(self.preset, 1)
        row.addWidget(self.width_spin)
        row.addWidget(QLabel("×"))
        row.addWidget(self.height_spin)
        return row

    # -- binding ----------------------------------------------------------------------------

    def _bind(self) -> None:
        p = self.params
        self._sync_from_params()
        self.prompt.textChanged.connect(lambda: setattr(p, "prompt", self.prompt.toPlainText()))
        self.negative.textChanged.connect(
            lambda: setattr(p, "negative_prompt", self.negative.toPlainText())
        )
        p.prompt_changed.connect(lambda t: _set_text(self.prompt, t))
        p.negative_prompt_changed.connect(lambda t: _set_text(self.negative, t))
        for widget, name in ((self.guidance, "guidance_scale"), (self.strength, "strength")):
            widget.value_changed.connect(lambda v, n=name: setattr(p, n, v))
            getattr(p, name + "_changed").connect(widget.set_value)
        self.steps.value_changed.connect(lambda v: setattr(p, "steps", round(v)))
        p.steps_changed.connect(self.steps.set_value)
        self.seed.valueChanged.connect(lambda v: setattr(p, "seed", round(v)))
        p.seed_changed.connect(self.seed.setValue)
        self.dice.clicked.connect(lambda: setattr(p, "seed", RANDOM_SEED))
        self.reuse.clicked.connect(lambda: setattr(p, "seed", self.jobs.last_seed))
        self.jobs.last_seed_changed.connect(lambda s: self.reuse.setEnabled(s != RANDOM_SEED))
        for spin, name in ((self.width_spin, "width"), (self.height_spin, "height")):
            spin.editingFinished.connect(lambda s=spin, n=name: setattr(p, n, _multiple_of_8(s)))
            spin.valueChanged.connect(lambda v, n=name: _set_if_multiple_of_8(p, n, v))
            getattr(p, name + "_changed").connect(spin.setValue)
            getattr(p, name + "_changed").connect(self._sync_preset)
        self.preset.activated.connect(self._apply_preset)
        _bind_combo(self.sampler, p, "sampler")
        _bind_combo(self.schedule, p, "schedule")
        p.sampler_changed.connect(self._sync_schedule)
        self.sgm_noise.toggled.connect(lambda on: setattr(p, "sgm_noise", on))
        p.sgm_noise_changed.connect(self.sgm_noise.setChecked)
        _bind_combo(self.mode, p, "mode")
        p.mode_changed.connect(self._sync_mode)
        self.batch_count.valueChanged.connect(lambda v: setattr(p, "batch_count", v))
        self.batch_size.valueChanged.connect(lambda v: setattr(p, "batch_size", v))
        p.batch_count_changed.connect(self.batch_count.setValue)
        p.batch_size_changed.connect(self.batch_size.setValue)
        self.clip_skip.valueChanged.connect(lambda v: setattr(p, "clip_skip", v))
        p.clip_skip_changed.connect(self.clip_skip.setValue)

    def _sync_from_params(self) -> None:
        p = self.params
        self.prompt.setPlainText(p.prompt)
        self.negative.setPlainText(p.negative_prompt)
        self.guidance.set_value(p.guidance_scale)
        self.steps.set_value(p.steps)
        self.strength.set_value(p.strength)
        self.seed.setValue(p.seed)
        self.width_spin.setValue(p.width)
        self.height_spin.setValue(p.height)
        _select(self.sampler, p.sampler)
        _select(self.schedule, p.schedule)
        _select(self.mode, p.mode)
        self.batch_count.setValue(p.batch_count)
        self.batch_size.setValue(p.batch_size)
        self._sync_preset()
        self._sync_mode(p.mode)
        self._sync_schedule(p.sampler)
        self.sgm_noise.setChecked(p.sgm_noise)
        self.clip_skip.setValue(p.clip_skip)

    def _apply_preset(self) -> None:
        size = self.preset.currentData()
        if size:
            width, height = map(int, size.split("x"))
            self.params.width, self.params.height = width, height

    def set_native_size(self, native_size: int | None) -> None:
        """List the presets with the loaded model's native size first (None: not known), and
        take that size unless the person chose another (``size_for_model``)."""
        if native_size:
            current = (self.params.width, self.params.height)
            size = size_for_model(current, self._native_size, native_size)
            self.params.width, self.params.height = size
            self._native_size = native_size
        self.preset.blockSignals(True)  # refilling is not a choice of the person's
        self.preset.clear()
        self.preset.addItem("Custom", None)
        for w, h in ordered_presets(native_size):
            self.preset.addItem(preset_label((w, h), native_size), f"{w}x{h}")
        if native_size:
            self.preset.insertSeparator(2)  # between the native size and the rest
        self.preset.blockSignals(False)
        self._sync_preset()

    def _sync_preset(self, *_: object) -> None:
        index = self.preset.findData(f"{self.params.width}x{self.params.height}")
        self.preset.setCurrentIndex(max(0, index))  # 0: "Custom"

    def _sync_schedule(self, sampler: str) -> None:
        # DDIM and PLMS run on their own timesteps: a schedule choice would do nothing.
        uses_schedule = sampler_info(sampler).uses_schedule
        self.schedule.setEnabled(uses_schedule)
        # The start-noise choice only changes k-diffusion samplers' pictures (as in A1111).
        self.sgm_noise.setEnabled(uses_schedule)

    def _sync_mode(self, mode: str) -> None:
        self.strength.setEnabled(mode in (SKETCH, INPAINT))

    def set_library_entries(self, entries: tuple[LibraryEntry, ...]) -> None:
        """The library's LoRAs and embeddings: known names, colours, vector counts."""
        self._entries = entries
        self.embedding_vectors.set_entries(entries)  # emits changed: colours and count follow

    def _sync_known(self) -> None:
        known = KnownNetworks.from_entries(self._entries, self.embedding_vectors.counts())
        for edit in (self.prompt, self.negative):
            edit.set_known(known)

    def insert_network(self, text: str) -> None:
        """From the LoRA and embedding browser: at the cursor of the prompt used last."""
        self.last_prompt.insert_snippet(text)

    def _count_tokens(self) -> None:
        # Embeddings whose header is not read yet count 1 vector until it is (EmbeddingVectors).
        vectors = self.embedding_vectors.counts()
        for edit, label in (
            (self.prompt, self.prompt_tokens),
            (self.negative, self.negative_tokens),
        ):
            count = count_tokens(edit.toPlainText(), vectors, steps=self.params.steps)
            label.setText(token_label_text(count))
            label.setToolTip(token_tip_text(count))


def _tool_button(name: str, text: str) -> QToolButton:
    button = named(QToolButton(), name)
    button.setText(text)
    return button


def _set_if_multiple_of_8(params: GenerationParams, name: str, value: int) -> None:
    # While typing "512" the box passes 5 and 51: only a valid size reaches the view-model.
    if value % 8 == 0:
        setattr(params, name, value)


def _multiple_of_8(spin: QSpinBox) -> int:
    value = max(MIN_SIZE, min(MAX_SIZE, round(spin.value() / 8) * 8))
    spin.setValue(value)
    return value


def _set_text(edit: QPlainTextEdit, text: str) -> None:
    if edit.toPlainText() != text:
        edit.setPlainText(text)


def _select(combo: QComboBox, data: str) -> None:
    index = combo.findData(data)
    if index >= 0 and index != combo.currentIndex():
        combo.setCurrentIndex(index)


def _bind_combo(combo: QComboBox, params: GenerationParams, name: str) -> None:
    combo.currentIndexChanged.connect(lambda: setattr(params, name, combo.currentData()))
    getattr(params, name + "_changed").connect(lambda value: _select(combo, value))
