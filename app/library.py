"""The model library in the window: its state (a view-model) and the tasks that fill it.

Everything that touches the disk (opening the library, scanning folders, reading headers,
saving its config) runs on one pool thread of its own, one task after another, so the library
object is never used by two threads at once and the GUI thread never waits on a slow or hung
folder. Results come back through a queued signal and land in ``LibraryState``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThreadPool, Signal

from app.services import Library
from app.signals import emit
from app.viewmodel import observable
from engine.errors import EngineError
from engine.library.records import Place, ScanResult

SHUTDOWN_WAIT_MS = 8000  # a scan gives up on a hung folder after 5 s; then the app may close


class LibraryState(QObject):
    """What the welcome panel, the model picker and the Models dialog show."""

    entries_changed = Signal(object)  # tuple[LibraryEntry, ...]
    skipped_changed = Signal(object)  # tuple[Skipped, ...]
    places_changed = Signal(object)  # tuple[Place, ...]: the existing folders searched
    added_changed = Signal(object)  # tuple[str, ...]: folders the person added, even if gone
    scanning_changed = Signal(bool)
    scanned_changed = Signal(bool)  # a scan has finished: "nothing found" is now known
    scan_seconds_changed = Signal(float)
    models_dir_changed = Signal(str)  # where downloads go
    last_model_changed = Signal(str)  # shared with the CLI; "" when none
    opened_changed = Signal(bool)  # the library answered (or could not be opened)

    entries = observable("entries", tuple)
    skipped = observable("skipped", tuple)
    places = observable("places", tuple)
    added = observable("added", tuple)
    scanning = observable("scanning", bool)
    scanned = observable("scanned", bool)
    scan_seconds = observable("scan_seconds", float)
    models_dir = observable("models_dir", str)
    last_model = observable("last_model", str)
    opened = observable("opened", bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._entries: tuple = ()
        self._skipped: tuple = ()
        self._places: tuple = ()
        self._added: tuple = ()
        self._scanning = False
        self._scanned = False
        self._scan_seconds = 0.0
        self._models_dir = ""
        self._last_model = ""
        self._opened = False


@dataclass(frozen=True)
class _Opened:
    places: tuple[Place, ...]
    added: tuple[str, ...]
    models_dir: str
    last_model: str
    warning: str


@dataclass(frozen=True)
class _Places:
    places: tuple[Place, ...]
    added: tuple[str, ...]


@dataclass(frozen=True)
class _Scanned:
    result: ScanResult
    places: _Places  # a download may have made the app's models folder meanwhile


@dataclass(frozen=True)
class _Failed:
    message: str


@dataclass(frozen=True)
class _ScanFailed(_Failed):
    pass


@dataclass(frozen=True)
class _Remembered:
    pass


class LibraryController(QObject):
    """Runs library tasks off the GUI thread and applies their results to a ``LibraryState``."""

    message = Signal(str)  # for the person: a folder that cannot be added, a broken config
    _done = Signal(object)  # a task's result, sent from the pool thread

    def __init__(
        self, state: LibraryState, factory: Callable[[], Library], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.state = state
        self._factory = factory
        self._library: Library | None = None  # created and used on the pool thread only
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # tasks run in order, never two at once
        self._scans = 0  # requested and not finished
        self._scan_waiting = False  # one is queued and not started: another adds nothing
        self._done.connect(self._apply)

    # -- requests from the GUI --------------------------------------------------------------

    def open(self) -> None:
        """Open the library, then scan it."""
        self._run(_open)
        self.scan()

    def scan(self) -> None:
        if self._scan_waiting:
            return
        self._scan_waiting = True
        self._scans += 1
        self.state.scanning = True
        self._run(self._scan, _ScanFailed)

    def add_folder(self, path: str) -> None:
        self._run(lambda library: _change_folders(library, path, add=True))
        self.scan()

    def remove_folder(self, path: str) -> None:
        self._run(lambda library: _change_folders(library, path, add=False))
        self.scan()

    def remember(self, model_path: str) -> None:
        """Make ``model_path`` the last model, for the next start of the app and the CLI."""
        self.state.last_model = model_path
        self._run(lambda library: _remember(library, model_path))

    def shutdown(self) -> None:
        self._pool.clear()  # tasks not started yet
        self._pool.waitForDone(SHUTDOWN_WAIT_MS)

    # -- the pool thread --------------------------------------------------------------------

    def _run(self, task: Callable[[Library], object], failed: type[_Failed] = _Failed) -> None:
        self._pool.start(lambda: emit(self._done, self._attempt(task, failed)))

    def _attempt(self, task: Callable[[Library], object], failed: type[_Failed]) -> object:
        try:
            if self._library is None:
                self._library = self._factory()
            return task(self._library)
        except Exception as exc:  # a broken library must not take the window down
            traceback.print_exc()
            return failed(f"The model library could not be read: {exc}")

    def _scan(self, library: Library) -> _Scanned:
        self._scan_waiting = False  # from now on, a change needs a scan of its own
        return _Scanned(library.scan(), _places(library))

    # -- back on the GUI thread -------------------------------------------------------------

    def _apply(self, result: object) -> None:
        if isinstance(result, _Scanned):
            self._scan_finished()
            self._apply(result.places)
            self.state.entries = result.result.entries
            self.state.skipped = result.result.skipped
            self.state.scan_seconds = result.result.seconds
            self.state.scanned = True
        elif isinstance(result, _Opened):
            self.state.places = result.places
            self.state.added = result.added
            self.state.models_dir = result.models_dir
            self.state.last_model = result.last_model
            self.state.opened = True
            if result.warning:
                emit(self.message, result.warning)
        elif isinstance(result, _Places):
            self.state.places = result.places
            self.state.added = result.added
        elif isinstance(result, _Failed):
            if isinstance(result, _ScanFailed):
                self._scan_finished()
            emit(self.message, result.message)
            self.state.opened = True  # if it could not be opened: the app starts without it

    def _scan_finished(self) -> None:
        self._scans = max(0, self._scans - 1)
        self.state.scanning = self._scans > 0


def _open(library: Library) -> _Opened:
    return _Opened(
        tuple(library.places()),
        tuple(library.config.folders),
        str(library.models_dir),
        library.last_model or "",
        library.config.warning,  # the config was broken and moved aside
    )


def _change_folders(library: Library, path: str, add: bool) -> _Places | _Failed:
    try:
        if add:
            library.add_folder(path)
        else:
            library.remove_folder(path)
    except EngineError as exc:  # not a folder, or the library's settings cannot be saved
        return _Failed(str(exc))
    return _places(library)


def _places(library: Library) -> _Places:
    return _Places(tuple(library.places()), tuple(library.config.folders))


def _remember(library: Library, model_path: str) -> _Remembered | _Failed:
    try:
        library.last_model = model_path
    except EngineError as exc:  # its settings cannot be saved
        return _Failed(str(exc))
    return _Remembered()
