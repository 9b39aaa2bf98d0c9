"""The main window: controls on the left, sketch and preview side by side, the gallery below."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from PySide6.QtCore import QByteArray, QMimeData, QSize, Qt
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.accessibility import name_controls, set_tab_order
from app.canvas import SketchCanvas
from app.controller import EngineController
from app.controls import DEMO_PROMPT_HINT, PROMPT_HINT, ControlsPanel
from app.doctor_dialog import open_system_report
from app.downloads import Downloads
from app.extra_networks_panel import ExtraNetworksDialog
from app.gallery import TITLE as SESSION_TITLE
from app.gallery import GalleryStrip
from app.gallery_browser import GalleryBrowser
from app.imageio import ImageLoader
from app.inpaint_actions import SKETCH_TITLE, InpaintActions
from app.jobs import FinishedImage
from app.library import LibraryController, LibraryState
from app.library_model import DEMO_NOTE, demo_to_start, is_builtin
from app.mask_layer import mask_from_picture
from app.model_picker import ModelPicker
from app.models_dialog import ModelsDialog
from app.picture_drop import PictureFile, dropped_item, may_hold_picture
from app.picture_offers import PictureOffers
from app.pictures import PicturesView
from app.preview import PreviewPane
from app.qimages import array_to_qimage
from app.services import Services
from app.settings import Settings, save_settings
from app.shortcuts_dialog import SHORTCUTS, ShortcutsDialog
from app.sketch_store import SketchStore
from app.sketchpanel import SketchPanel
from app.status import PathNotice
from app.theme import THEME_CHOICES, ThemeController
from app.viewmodel import INPAINT, SKETCH, TXT2IMG, GenerationParams, JobsState, ModelState
from app.welcome import WelcomePanel
from app.wheel_guard import guard_wheel
from app.widgets import named
from engine.library.classify import DIFFUSERS_INDEX
from engine.library.walk import MODEL_SUFFIXES

# Small enough for a 1024x640 laptop screen with room for panels; at this size every control
# keeps its full size (tests/app/test_layout.py checks).
MIN_WINDOW = QSize(800, 600)
CHECKPOINT_FILTER = "Stable Diffusion checkpoints (*.safetensors *.ckpt);;All files (*)"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp);;All files (*)"
# Request fields only an inpainted picture's parameters hold (A1111's "Mask blur", …).
INPAINT_FIELDS = ("mask_blur", "masked_content", "inpaint_area", "inpaint_padding")


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: Settings,
        gallery_dir: Path,
        services: Services | None = None,
        settings_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Latentdesk")
        self.settings = settings
        self.settings_path = settings_path
        self.gallery_dir = Path(gallery_dir)
        self.params = GenerationParams(self)
        self.params.update(settings.parameters)
        self.jobs = JobsState(self)
        self.model = ModelState(self)
        self.services = services or Services()
        self.controller = EngineController(self.jobs, self.model, self.services, parent=self)
        self.library_state = LibraryState(self)
        self.library = LibraryController(self.library_state, self.services.library_factory, self)
        self.downloads = Downloads(self.services.download, self.services.starter_model, self)
        self.models_dialog: ModelsDialog | None = None
        self.networks_dialog: ExtraNetworksDialog | None = None
        self.gallery_browser: GalleryBrowser | None = None  # View › Gallery…, made when opened
        self._load_last_model = False  # once the library is open
        self.last_error = ""
        self._loader = ImageLoader(self)
        self.theme = ThemeController(settings, self)  # applied by main(), chosen in View
        self.sketch_store = SketchStore(parent=self)
        # The gallery index, watched while the app runs; the gallery browser uses it.
        self.gallery_service = self.services.gallery(self.gallery_dir)
        self.gallery_service.setParent(self)
        self.picture_offers = PictureOffers(self)  # dropped or pasted pictures
        self.setAcceptDrops(True)  # files dropped anywhere: images to the sketch, models loaded
        self._build()
        self.inpaint = InpaintActions(self)  # pictures to inpaint, the mask, outpainting
        self._menus()
        self._connect()
        name_controls(self)
        set_tab_order(self.controls, [self.generate_button, self.cancel_button])
        self._restore_geometry()
        self.controller.start()
        self.library.open()
        self.gallery.save_folder = self.gallery_dir
        self.controls.prompt.setFocus()

    # -- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        self.controls = ControlsPanel(self.params, self.jobs)
        self.controls.advanced.set_open(self.settings.advanced_open)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.controls)
        scroll.setMinimumWidth(300)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.wheel_guard = guard_wheel(scroll)
        self.picker = ModelPicker(self.library_state, self.model)
        left = QWidget()
        left_column = QVBoxLayout(left)
        left_column.setContentsMargins(0, 0, 0, 0)
        left_column.addLayout(_labelled("Model", self.picker))
        left_column.addWidget(scroll, 1)
        self.canvas = SketchCanvas(self.params.width, self.params.height)
        self.sketch = SketchPanel(self.canvas)
        self.preview = PreviewPane()
        # No model yet: the welcome panel takes the empty preview's place.
        self.welcome = WelcomePanel(self.library_state, self.model, self.downloads)
        self.preview_page = _titled("Preview", self.preview)
        self.preview_stack = QStackedWidget()
        self.preview_stack.addWidget(self.preview_page)
        self.preview_stack.addWidget(self.welcome)
        sketch_page = _titled(SKETCH_TITLE, self.sketch)
        self.sketch_title = sketch_page.findChild(QLabel)  # says what the canvas is for
        self.pictures = PicturesView(sketch_page, self.preview_stack)
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.pictures, 1)
        column.addLayout(self._run_row())
        self.gallery = GalleryStrip()
        column.addWidget(_titled(SESSION_TITLE, self.gallery))
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([360, 1000])
        self.setCentralWidget(split)
        self.setMinimumSize(MIN_WINDOW)
        self.model_label = named(QLabel("No model loaded"), "modelLabel")
        self.statusBar().addPermanentWidget(self.model_label)
        self.path_notice = PathNotice()
        self.statusBar().addWidget(self.path_notice, 1)

    def _run_row(self) -> QHBoxLayout:
        self.progress = named(QProgressBar(), "progressBar")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)  # a reset bar (value -1) would hide its text
        self.progress.setFormat("Idle")
        self.progress.setTextVisible(True)
        self.generate_button = named(QPushButton("Generate"), "generateButton")
        self.generate_button.setToolTip("Generate (Ctrl+Enter); while one runs, queue another")
        self.generate_button.setDefault(True)
        self.cancel_button = named(QPushButton("Cancel"), "cancelButton")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip("Stop the running picture (Esc)")
        self.queue_label = named(QLabel(""), "queueLabel")
        self.clear_queue_button = named(QPushButton("Clear queue"), "clearQueueButton")
        self.clear_queue_button.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.queue_label)
        row.addWidget(self.clear_queue_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.generate_button)
        return row

    def _menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        self._action(file, "&Open checkpoint…", self.open_checkpoint, QKeySequence.StandardKey.Open)
        self._action(file, "&Models…", self.show_models, "Ctrl+Shift+M")
        self._action(file, "Open &image to sketch…", self.open_image, "Ctrl+Shift+O")
        self._action(file, "Open image to in&paint…", self.open_image_to_inpaint)
        self._action(file, "&Save sketch…", self.save_canvas, QKeySequence.StandardKey.Save)
        file.addSeparator()
        self._action(file, "Open &gallery folder", self.open_gallery_folder)
        self._action(file, "&Change gallery folder…", self.choose_gallery_folder)
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = self.menuBar().addMenu("&Edit")
        self.undo_action = self._action(edit, "&Undo stroke", self.canvas.undo, "Ctrl+Z")
        self.redo_action = self._action(edit, "&Redo stroke", self.canvas.redo, "Ctrl+Shift+Z")
        self._action(edit, "&Paste", self.paste_picture, QKeySequence.StandardKey.Paste)
        self._action(edit, "Paste image into s&ketch", self.paste_image, "Ctrl+Shift+V")
        self._action(edit, "&Clear sketch", self.canvas.clear)
        self._action(edit, "E&xtend picture (outpaint)…", self.inpaint.ask_outpaint)
        edit.addSeparator()
        self._action(edit, "Insert &LoRA or embedding…", self.show_networks, "Ctrl+L")
        view = self.menuBar().addMenu("&View")
        self._action(view, "&Gallery…", self.show_gallery_browser, "Ctrl+G")
        self._theme_menu(view.addMenu("&Theme"))
        help_ = self.menuBar().addMenu("&Help")
        self._action(help_, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(help_, "&System report…", lambda: open_system_report(self, self.gallery_dir))
        self._action(help_, "&About Latentdesk", self.show_about)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            self._action(self, "Generate", self.generate, keys)
        self._action(self, "Cancel", self.cancel, "Esc")

    def _choose_theme(self, choice: str) -> Callable[[], None]:
        return lambda: self.theme.set_choice(choice)

    def _theme_menu(self, menu: QWidget) -> None:
        group = QActionGroup(self)
        for choice, text in THEME_CHOICES.items():
            action = self._action(menu, text, self._choose_theme(choice))
            action.setObjectName(f"theme_{choice}")
            action.setCheckable(True)
            action.setChecked(choice == self.theme.choice)
            group.addAction(action)

    def _action(
        self,
        menu: QWidget,
        text: str,
        slot: Callable[[], object],
        keys: QKeySequence | QKeySequence.StandardKey | str | None = None,
    ) -> QAction:
        action = QAction(text, self)
        if keys is not None:
            action.setShortcut(QKeySequence(keys))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # -- wiring -----------------------------------------------------------------------------

    def _connect(self) -> None:
        c = self.controller
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.clear_queue_button.clicked.connect(c.clear_queue)
        c.preview_ready.connect(lambda _, image: self.preview.set_image(image))
        c.image_ready.connect(self._on_image)
        c.notes.connect(self._show_notes)
        c.error.connect(self.show_error)
        c.model_loaded.connect(lambda info: self._remember_model(info.path))
        self.picker.model_chosen.connect(self.load_model)
        c.model_loaded.connect(lambda info: self.controls.set_native_size(info.native_size))
        self.controls.advanced.toggled.connect(
            lambda on: setattr(self.settings, "advanced_open", on)
        )
        self.welcome.model_chosen.connect(self.load_model)
        self.welcome.open_file_requested.connect(self.open_checkpoint)
        self.library.message.connect(lambda m: self.statusBar().showMessage(m, 10000))
        self.library_state.entries_changed.connect(self.controls.set_library_entries)
        self.controls.networks_button.clicked.connect(self.show_networks)
        self.library_state.opened_changed.connect(self._load_last_model_once_known)
        self.library_state.scanned_changed.connect(self._load_last_model_once_known)
        self.downloads.finished.connect(self._on_downloaded)
        self.downloads.failed.connect(lambda _, message: self.show_error(message))
        self.model.name_changed.connect(self._sync_welcome)
        self.model.loading_changed.connect(self._sync_model_progress)
        self.model.fraction_changed.connect(self._sync_model_progress)
        self.model.message_changed.connect(self._sync_model_progress)
        self.jobs.running_changed.connect(self._sync_running)
        self.jobs.queued_changed.connect(self._sync_queue)
        self.jobs.progress_changed.connect(lambda text: self.progress.setFormat(text or "Idle"))
        self.jobs.fraction_changed.connect(lambda f: self.progress.setValue(round(f * 1000)))
        self.model.message_changed.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.model.name_changed.connect(self._sync_model_label)
        self.model.device_changed.connect(self._sync_model_label)
        self.model.loading_changed.connect(self._sync_model_label)
        self.params.width_changed.connect(self._sync_canvas_size)
        self.params.height_changed.connect(self._sync_canvas_size)
        self.gallery.image_chosen.connect(self.preview.set_image)
        self.gallery.parameters_chosen.connect(self.restore_parameters)
        self.gallery.sketch_chosen.connect(self.use_as_sketch)
        self.gallery.inpaint_chosen.connect(self.inpaint.inpaint)
        self.gallery.message.connect(self.show_error)
        self.gallery.notice.connect(lambda m: self.statusBar().showMessage(m, 5000))
        self.gallery.folder_not_opened.connect(self._folder_not_opened)
        self.sketch.load_button.clicked.connect(self.open_image)
        self.sketch.use_result_button.clicked.connect(self.use_result_as_sketch)
        self.canvas.file_dropped.connect(self.open_dropped)
        self._connect_pictures()
        self.sketch_store.track("sketch", self.canvas.image, self.canvas.changed)
        self.sketch_store.track("mask", self.canvas.mask_for_store, self.canvas.mask_changed)
        self.params.mode_changed.connect(self.inpaint.sync_mode)
        self.inpaint.sync_mode(self.params.mode)
        self.sketch.mask_bar.extend_requested.connect(self.inpaint.ask_outpaint)
        self.sketch.mask_bar.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.sketch_store.restored.connect(self._restore_layer)
        self.sketch_store.damaged.connect(lambda m: self.statusBar().showMessage(m, 15000))
        self.sketch_store.failed.connect(lambda m: self.statusBar().showMessage(m, 15000))
        self.sketch_store.restore()
        self.canvas.history_changed.connect(self._sync_history)
        self._loader.loaded.connect(self._on_image_loaded)
        self._loader.failed.connect(lambda _, message: self.show_error(message))
        self._sync_history()
        self._sync_welcome()

    def _connect_pictures(self) -> None:
        """Dropped and pasted pictures, and the gallery index."""
        for field in (self.controls.prompt, self.controls.negative):
            field.picture_dropped.connect(self.offer_dropped)
        offers = self.picture_offers
        offers.parameters_chosen.connect(self.restore_fields)
        offers.sketch_chosen.connect(self.use_as_sketch)
        offers.inpaint_chosen.connect(self.inpaint.inpaint)
        offers.message.connect(self.show_error)
        offers.notice.connect(lambda m: self.statusBar().showMessage(m, 5000))
        self.gallery_service.notice.connect(lambda m: self.statusBar().showMessage(m, 15000))
        self.gallery_service.changed.connect(self.gallery.forget_missing)

    def _sync_running(self, running: bool) -> None:
        if running:  # when narrow, bring the preview to the front: the person waits for it
            self.pictures.show_preview()
        self.cancel_button.setEnabled(running)
        self.generate_button.setText("Queue another" if running else "Generate")
        if not running:
            self.progress.setValue(0)
            self.progress.setFormat("Idle")

    def _sync_queue(self, queued: int) -> None:
        self.queue_label.setText(f"{queued} queued" if queued else "")
        self.clear_queue_button.setVisible(queued > 0)

    def _sync_model_label(self, *_: object) -> None:
        m = self.model
        if m.loading:
            text = "Loading model…"
        elif m.name:
            text = f"{m.name} · {m.device}"
        else:
            text = "No model loaded"
        self.model_label.setText(text)

    def _sync_model_progress(self, *_: object) -> None:
        if self.jobs.running:
            return  # the bar shows the picture; a load waits for it anyway
        loading = self.model.loading
        self.progress.setValue(round(self.model.fraction * 1000) if loading else 0)
        self.progress.setFormat(self.model.message if loading else "Idle")

    def _sync_welcome(self, *_: object) -> None:
        page = self.preview_page if self.model.name else self.welcome
        self.preview_stack.setCurrentWidget(page)

    def _sync_canvas_size(self, *_: object) -> None:
        if not self.inpaint.following:  # the size follows a picture taken in: not the reverse
            self.canvas.set_canvas_size(self.params.width, self.params.height)

    def _sync_history(self) -> None:
        self.undo_action.setEnabled(self.canvas.can_undo())
        self.redo_action.setEnabled(self.canvas.can_redo())

    # -- actions ----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the running picture and say so: the bar and status bar, and a badge on the
        half-finished preview (the controller leaves the bar idle, which read as "done")."""
        if self.controller.current is None:
            return
        self.controller.cancel()
        self.preview.mark_cancelled()
        if self.jobs.running:  # the next queued picture has started
            self.statusBar().showMessage("Cancelled; the next queued picture is running.", 8000)
        else:
            self.progress.setFormat("Cancelled")
            self.statusBar().showMessage("Cancelled.", 8000)

    def generate(self) -> int | None:
        if not self.model.name and not self.model.loading:
            self.show_error(
                "Open a model first: pick one in the Model list, or use File › Models… "
                "to find or download one."
            )
            return None
        sketch = self.canvas.to_array() if self.params.mode in (SKETCH, INPAINT) else None
        request = self.params.make_request(sketch, self.inpaint.request_mask())
        problem = self.inpaint.problem(request)  # e.g. an empty mask: nothing to repaint
        if problem:
            self.show_error(problem)
            return None
        return self.controller.generate(request, self.gallery_dir)

    def _on_image(self, job_id: int, image: FinishedImage) -> None:
        # A cancelled job's late image goes to the gallery only: the preview shows the new job.
        if self.controller.is_current(job_id):
            self.preview.set_image(array_to_qimage(image.array))
        if image.path is not None:
            self.statusBar().showMessage(f"Saved {image.path.name}", 8000)
            self.gallery_service.pictures_written([image.path])
        self.gallery.add_image(image)

    def _show_notes(self, _: int, notes: tuple[str, ...]) -> None:
        # Sent after the job's last "Saved …": e.g. "film-grain: 40 of 64 layers matched".
        self.statusBar().showMessage("Note: " + " · ".join(notes), 20000)

    def load_model(self, path: str) -> None:
        self.controller.load_model(path)

    def load_start_model(self, path: str | None) -> None:
        """``path`` if given, else the model used last (by the app or the CLI), once known."""
        if path:
            self.load_model(path)
        else:
            self._load_last_model = True
            self._load_last_model_once_known()

    def _load_last_model_once_known(self, *_: object) -> None:
        if not (self._load_last_model and self.library_state.opened):
            return
        # Settings of version 0.1 kept the last model; the library (shared with the CLI) now does.
        last_model = self.library_state.last_model or self.settings.last_model
        if not last_model:  # a fresh computer: the built-in demo, if it is the only model
            if not self.library_state.scanned:
                return  # the first scan tells
            last_model = demo_to_start(self.library_state.entries) or ""
        self._load_last_model = False
        if last_model and not (self.model.name or self.model.loading):
            self.load_model(last_model)

    def _remember_model(self, path: str) -> None:
        builtin = is_builtin(self.library_state.entries, path)
        self.controls.prompt.setPlaceholderText(DEMO_PROMPT_HINT if builtin else PROMPT_HINT)
        self.controls.prompt.viewport().update()  # Qt 6.12 repaints it only on focus otherwise
        if builtin:
            self.statusBar().showMessage(DEMO_NOTE, 30000)
            return  # not "the last model": one installed later must be the next default
        self.library.remember(path)
        self.settings.last_model = ""  # moved to the library

    def _on_downloaded(self, _: int, path: str) -> None:
        self.library.scan()
        if self.model.name or self.model.loading:
            text = f"Downloaded {Path(path).name}: pick it in the Model list"
            self.statusBar().showMessage(text, 15000)
        else:
            self.load_model(path)

    def show_models(self) -> None:
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(
                self.library_state, self.library, self.downloads, self.services.reveal, self
            )
            self.models_dialog.message.connect(lambda m: self.statusBar().showMessage(m, 10000))
        if self.models_dialog.isVisible():  # open behind the window: bring it to the front
            self.models_dialog.raise_()
            self.models_dialog.activateWindow()
        else:
            self.models_dialog.show()

    def show_gallery_browser(self) -> None:
        """Every picture of the gallery folders: search, stars, a large view (non-modal)."""
        if self.gallery_browser is None:
            browser = GalleryBrowser(self.gallery_service, self.services.reveal, parent=self)
            browser.parameters_chosen.connect(self.restore_parameters)
            browser.sketch_chosen.connect(self.use_as_sketch)
            browser.inpaint_chosen.connect(self.inpaint.inpaint)
            self.gallery_browser = browser
        if self.gallery_browser.isVisible():  # open behind the window: bring it to the front
            self.gallery_browser.raise_()
            self.gallery_browser.activateWindow()
        else:
            self.gallery_browser.show()

    def show_networks(self) -> None:
        """The LoRA and embedding browser; it inserts into the prompt field used last."""
        if self.networks_dialog is None:
            self.networks_dialog = ExtraNetworksDialog(self.library_state, self)
            self.networks_dialog.insert_requested.connect(self.controls.insert_network)
        if self.networks_dialog.isVisible():  # open behind the window: bring it to the front
            self.networks_dialog.raise_()
            self.networks_dialog.activateWindow()
        else:
            self.networks_dialog.show()
        self.networks_dialog.filter.setFocus()

    def open_checkpoint(self) -> None:
        start = str(Path(self.model.path).parent) if self.model.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", start, CHECKPOINT_FILTER)
        if path:
            self.load_model(path)

    def open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image to sketch", "", IMAGE_FILTER)
        if path:
            self.load_image_file(path)

    def open_image_to_inpaint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image to inpaint", "", IMAGE_FILTER)
        if path:
            self._loader.load("inpaint", path)

    def _on_image_loaded(self, purpose: object, image: QImage) -> None:
        # "sketch": Load…, File › Open, a drop on the canvas: for the mode the canvas is in.
        if purpose == "inpaint":
            self.inpaint.inpaint(image)
        else:
            self.inpaint.take(image)

    def open_dropped(self, path: str) -> None:
        """A dropped model is loaded at once: dropping it is a clear choice, and the model
        before is one pick away in the Model list; the status bar says "Loading …" at once.
        Anything else goes into the sketch."""
        if _is_model(Path(path)):
            self.load_model(path)
        else:
            self.load_image_file(path)

    def offer_dropped(self, mime: QMimeData, name: str = "the dropped picture") -> bool:
        """A drop or paste anywhere but the sketch: a model is loaded; a picture (a file, a
        browser's copy) has its parameters offered. False: it held nothing of these."""
        item = dropped_item(mime, name)
        if isinstance(item, PictureFile) and _is_model(item.path):
            self.load_model(str(item.path))
        elif item is not None:
            self.picture_offers.offer(item)
        return item is not None

    def paste_picture(self) -> None:
        """Edit › Paste where no text field takes it: a copied picture or file is offered."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None or not self.offer_dropped(mime, "the pasted picture"):
            self.statusBar().showMessage("The clipboard holds no picture to paste.", 5000)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        if may_hold_picture(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt name)
        if self.offer_dropped(event.mimeData()):
            event.acceptProposedAction()

    def _restore_layer(self, layer: str, image: QImage) -> None:
        # Not over a drawing begun in the moment the file took to read.
        if layer == "sketch" and not self.canvas.can_undo():
            self.canvas.restore(image)
        elif layer == "mask" and not self.canvas.can_undo():
            self.canvas.restore_mask(mask_from_picture(image))

    def load_image_file(self, path: str) -> None:
        self._loader.load("sketch", path)  # decoded off the GUI thread

    def paste_image(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.show_error("The clipboard holds no image to paste.")
        else:
            self.inpaint.take(image)  # the sketch, or the picture to inpaint in Inpaint mode

    def use_as_sketch(self, image: QImage) -> None:
        self.pictures.show_sketch()
        self.canvas.set_image(image)
        self.params.mode = SKETCH

    def use_result_as_sketch(self) -> None:
        image = self.preview.image()
        if image is None:
            self.show_error("There is no result yet to use as the sketch.")
        else:
            self.inpaint.take(image)  # in Inpaint mode: inpaint the result

    def save_canvas(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save sketch", "sketch.png", "PNG (*.png)")
        # The stubs want bytes for the format; PySide6 6.12 accepts only str at run time.
        if not path:
            return
        if self.canvas.image().save(path, "PNG"):  # type: ignore[call-overload]
            self.statusBar().showMessage(f"Sketch saved as {Path(path).name}.", 5000)
        else:
            self.show_error(f"The sketch could not be saved to {path}.")

    def restore_parameters(self, text: str) -> None:
        from engine.parameters import parse_parameters, request_from_parameters

        self.restore_fields(request_from_parameters(parse_parameters(text)))

    def restore_fields(self, fields: Mapping[str, object]) -> None:
        """Put a picture's parameters into the controls, and its mode: inpaint settings mean
        it was inpainted, a denoising strength that it was made from another picture (Sketch to
        image), neither that it was made from text."""
        self.params.update(dict(fields))
        if any(name in fields for name in INPAINT_FIELDS):
            self.params.mode = INPAINT
        else:
            self.params.mode = SKETCH if fields.get("strength") is not None else TXT2IMG
        # A hires factor means a hires pass (engine.parameters reads one only from such texts).
        self.params.hires_fix = "hires_scale" in fields and fields["hires_scale"] != 1.0
        self.statusBar().showMessage("Settings restored from the picture.", 5000)

    def open_gallery_folder(self) -> None:
        try:
            self.gallery_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.show_error(f"The gallery folder {self.gallery_dir} could not be made: {exc}")
            return
        if not self.services.reveal(self.gallery_dir):
            self._folder_not_opened(self.gallery_dir)

    def _folder_not_opened(self, folder: Path) -> None:
        # Without a desktop launcher (xdg-open) Qt opens nothing and says nothing.
        self.path_notice.show_path("No file manager could be opened. The folder is", folder)

    def choose_gallery_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Gallery folder", str(self.gallery_dir))
        if folder:
            self.gallery_dir = Path(folder)
            self.settings.gallery_dir = folder
            self.gallery.save_folder = self.gallery_dir
            self.gallery_service.set_gallery_folder(self.gallery_dir)

    def show_error(self, message: str) -> None:
        # Non-blocking: the person reads it while the app keeps working.
        self.last_error = message
        self.statusBar().showMessage(message.splitlines()[0], 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, "Latentdesk", message, parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_shortcuts(self) -> None:
        dialog = ShortcutsDialog(SHORTCUTS, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About Latentdesk",
            "<b>Latentdesk</b> 0.1<br>A desktop studio for Stable Diffusion 1.x: "
            "prompt, sketch, preview, gallery. Everything runs on your own computer.",
        )

    # -- lifetime ---------------------------------------------------------------------------

    def _restore_geometry(self) -> None:
        if self.settings.geometry:
            self.restoreGeometry(QByteArray.fromHex(self.settings.geometry.encode()))
        else:  # a laptop's 1366x768 screen must show the status bar too
            screen = self.screen().availableGeometry().size()
            self.resize(QSize(1320, 860).boundedTo(screen))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        self.controller.shutdown()
        self.downloads.shutdown()  # the partial file stays: the next start continues it
        self.library.shutdown()
        self.picture_offers.shutdown()
        if self.gallery_browser is not None:
            self.gallery_browser.close()  # its thumbnail threads finish their picture first
        self.gallery_service.close()  # waits for the index thread: a sync stops between files
        self.settings.geometry = bytes(self.saveGeometry().toHex().data()).decode()
        self.settings.parameters = self.params.to_dict()
        try:
            save_settings(self.settings, self.settings_path)
        except OSError as exc:
            print(f"latentdesk: settings not saved: {exc}")
        self.sketch.mask_bar.ops.wait()  # a mask operation (grow, feather) ends first
        try:
            self.sketch_store.flush()
        except OSError as exc:
            print(f"latentdesk: sketch not kept: {exc}")
        super().closeEvent(event)


def _is_model(path: Path) -> bool:
    """A checkpoint file or a diffusers folder, judged by name: nothing is read."""
    if path.is_dir():
        return (path / DIFFUSERS_INDEX).is_file()
    return path.suffix.lower() in MODEL_SUFFIXES


def _labelled(text: str, widget: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setContentsMargins(4, 4, 4, 4)
    label = QLabel(f"<b>{text}</b>")
    label.setBuddy(widget)
    row.addWidget(label)
    row.addWidget(widget, 1)
    return row


def _titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(4, 0, 4, 0)
    layout.addWidget(QLabel(f"<b>{title}</b>"))
    layout.addWidget(widget, 1)
    return box
