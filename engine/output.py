"""Writing PNGs into the gallery: atomically, with the A1111 ``parameters`` chunk.

A file in the gallery is either absent or complete: the PNG is written to a hidden temp file
(``.<name>.tmp``) in the same folder, fsync'd, then given its final name by a rename that never
overwrites. Names sort by time and never collide, even with several processes saving into one
folder at once::

    20261122-030618-123456-1234-3fa9c2.png
    UTC date-time, microseconds, seed (or ``stem``), random suffix

UTC, not local time, so that daylight-saving changes cannot make names sort out of order.
Temp files left behind by a crash (SIGKILL, power loss) start with ``.`` and end with ``.tmp``:
listings skip them, and ``remove_stale_temp_files`` (run by the CLI at start) deletes old ones.
"""

from __future__ import annotations

import errno
import io
import os
import re
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from engine.errors import EngineError

# Our temp files, and how old one must be before a later run may take it for a crash's leftover
# (a living writer holds it locked, for milliseconds; ten minutes spare slow network disks and
# file systems without locks).
_TEMP_NAME = re.compile(r"\.[0-9a-f]{16}\.tmp")
STALE_AGE = 600.0
# Attempts at a fresh name when another writer took ours between two calls.
_NAME_ATTEMPTS = 100
# os.link errors meaning "this file system has no hard links" (not "the name is taken").
_NO_HARD_LINKS = {
    getattr(errno, name)
    for name in ("EPERM", "ENOTSUP", "EOPNOTSUPP", "EXDEV", "ENOSYS")
    if hasattr(errno, name)
}


class OutputError(EngineError):
    """An image could not be saved. The message names the place, the cause and a remedy."""

    def __init__(self, message: str, path: Path | None = None, error_number: int | None = None):
        super().__init__(message)
        self.path = path
        self.error_number = error_number


def encode_png(image: np.ndarray, parameters: str) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 image carrying ``parameters`` as a text chunk: tEXt
    when the text is ASCII, UTF-8 iTXt otherwise. (Not Latin-1 tEXt: some tools write UTF-8
    into tEXt, so readers guess, and Latin-1 text such as "Â\x80" reads back as UTF-8.)"""
    from PIL import Image, PngImagePlugin

    _check_image(image)
    info = PngImagePlugin.PngInfo()
    # A lone surrogate (from a broken clipboard paste) cannot be stored as UTF-8: replace it
    # rather than lose the image.
    text = parameters.encode("utf-8", errors="replace").decode("utf-8")
    if text.isascii():
        info.add_text("parameters", text)
    else:
        info.add_itxt("parameters", text)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def save_png(
    folder: str | os.PathLike[str],
    image: np.ndarray,
    parameters: str,
    *,
    stem: str | int | None = None,
) -> Path:
    """Save into ``folder`` (created if needed) under a new time-sorted name; returns the path.

    ``stem`` labels the file: callers pass the image's seed. Raises OutputError.
    """
    folder = Path(folder)
    data = encode_png(image, parameters)
    label = _label(stem)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temp = _write_temp(folder, data)
        try:
            final = _link_new_name(temp, folder, label)
        finally:
            _remove_quietly(temp)
        _sync_folder(folder)
    except OSError as error:
        raise _output_error(folder, error) from error
    return final


def save_png_to(path: str | os.PathLike[str], image: np.ndarray, parameters: str) -> Path:
    """Save to exactly ``path`` (Save as...), atomically replacing a file already there."""
    path = Path(path)
    data = encode_png(image, parameters)
    try:
        temp = _write_temp(path.parent, data)
        try:
            os.replace(temp, path)
        except OSError:
            _remove_quietly(temp)
            raise
        _sync_folder(path.parent)
    except OSError as error:
        raise _output_error(path, error) from error
    return path


def file_name(label: str, now: datetime | None = None) -> str:
    """``YYYYmmdd-HHMMSS-ffffff[-label]-<random>.png``; the fixed-width time sorts first."""
    now = now or datetime.now(timezone.utc)
    parts = [now.strftime("%Y%m%d-%H%M%S-%f")]
    if label:
        parts.append(label)
    parts.append(secrets.token_hex(3))
    return "-".join(parts) + ".png"


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError("image must be a uint8 numpy array")
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")


def _label(stem: str | int | None) -> str:
    # Only characters every file system accepts; long labels would make unwieldy names.
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "" if stem is None else str(stem)).strip("._")[:40]


def _write_temp(folder: Path, data: bytes) -> Path:
    """``data`` in a new hidden file in ``folder``, flushed to disk; removed again on failure."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_NAME_ATTEMPTS):
        temp = folder / f".{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(temp, flags, 0o644)
        except FileExistsError:
            continue
        try:
            _lock(fd)  # tells remove_stale_temp_files in other processes: in use, keep it
            _write_all(fd, data)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _remove_quietly(temp)
            raise
        os.close(fd)
        return temp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(folder))


def remove_stale_temp_files(folder: str | os.PathLike[str], min_age: float = STALE_AGE) -> int:
    """Delete the temp files a killed writer left in ``folder``; returns how many.

    Careful, because other processes may be saving into the same folder right now: only names
    of exactly our pattern (``.<16 hex>.tmp``), only files untouched for ``min_age`` seconds, and
    (where file locks exist) only files no living writer holds locked. Never raises.
    """
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    now = time.time()
    for entry in entries:
        if not _TEMP_NAME.fullmatch(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime < min_age:
                continue
            if _remove_if_unlocked(Path(entry.path)):
                removed += 1
        except OSError:
            continue  # vanished, renamed or unreadable: someone else's business
    return removed


def _lock(fd: int) -> None:
    """An advisory lock held while the temp file is written (POSIX); released when the file is
    closed or the process dies, even by SIGKILL."""
    try:
        import fcntl
    except ImportError:  # Windows: the age rule alone protects files in use
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass  # a file system without locks: the age rule alone applies


def _remove_if_unlocked(path: Path) -> bool:
    try:
        import fcntl
    except ImportError:
        os.unlink(path)
        return True
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a living writer holds it
        except OSError:
            pass  # no locks on this file system: the age rule decided
        os.unlink(path)
        return True
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _link_new_name(temp: Path, folder: Path, label: str) -> Path:
    """Give ``temp``'s content a fresh name in ``folder`` without ever overwriting a file."""
    for _ in range(_NAME_ATTEMPTS):
        final = folder / file_name(label)
        try:
            _no_clobber_rename(temp, final)
        except FileExistsError:
            continue
        return final
    raise FileExistsError(errno.EEXIST, "no free file name after many attempts", str(folder))


def _no_clobber_rename(temp: Path, final: Path) -> None:
    """A hard link fails if ``final`` exists, atomically. File systems without hard links
    (FAT, some network shares) get an O_EXCL reservation that the rename then replaces."""
    try:
        os.link(temp, final)
        return
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
    os.close(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    try:
        os.replace(temp, final)
    except OSError:
        _remove_quietly(final)  # our empty reservation, not someone else's file
        raise


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # already renamed onto its final name, or never created


def _sync_folder(folder: Path) -> None:
    """Make the new directory entry durable too. Not possible on Windows: skipped there."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the data itself is synced
    finally:
        os.close(fd)


_REASONS = {
    errno.ENOSPC: ("the disk is full", "Free some space or choose another output folder."),
    getattr(errno, "EDQUOT", -1): ("the disk quota is used up", "Free some space."),
    errno.EACCES: ("permission denied", "Choose a folder you can write to."),
    errno.EPERM: ("permission denied", "Choose a folder you can write to."),
    errno.EROFS: ("the disk is read-only", "Choose a folder on a writable disk."),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "Choose another folder."),
    errno.EEXIST: ("a file with that name is in the way", "Choose another folder."),
    errno.ENOENT: ("the folder does not exist", "Choose an existing folder."),
}


def _output_error(place: Path, error: OSError) -> OutputError:
    reason, remedy = _REASONS.get(
        error.errno or 0, (error.strerror or str(error), "Check the output folder in Settings.")
    )
    message = f"Could not save the image to {str(place)!r}: {reason}. {remedy}"
    return OutputError(message, path=place, error_number=error.errno)
