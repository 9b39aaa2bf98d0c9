"""Latentdesk's folders: where they are, whether we can write there, and the space left.

Looked at without side effects: a folder that does not exist yet is judged by the nearest
folder above it that does (it will be created there), and nothing is left behind.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.problem import Problem

LOW_SPACE = 1 << 30  # bytes: under 1 GiB free, a model download or a batch of PNGs can fail
APP_NAME = "latentdesk"


@dataclass(frozen=True)
class FolderStatus:
    role: str  # "data", "config", "cache", "output"
    path: str
    exists: bool
    writable: bool
    free_bytes: int | None
    blocker: str = ""  # a file where a folder on the way should be ("" when none)


def app_folders(output_dir: Path | None = None) -> dict[str, Path]:
    """The platformdirs folders the app and engine use, and the gallery (output) folder."""
    import platformdirs

    return {
        "data": Path(platformdirs.user_data_dir(APP_NAME)),
        "config": Path(platformdirs.user_config_dir(APP_NAME)),
        "cache": Path(platformdirs.user_cache_dir(APP_NAME)),
        "output": output_dir or Path(platformdirs.user_pictures_dir()) / "Latentdesk",
    }


def check_folder(role: str, path: Path) -> FolderStatus:
    path = path.expanduser()
    existing, blocker = _nearest_existing(path)
    writable = blocker is None and existing is not None and _can_write(existing)
    free = _free_bytes(existing) if existing is not None else None
    return FolderStatus(
        role, str(path), path.is_dir(), writable, free, str(blocker) if blocker else ""
    )


def folder_problems(status: FolderStatus) -> list[Problem]:
    problems = []
    if not status.writable:
        problems.append(
            Problem(f"The {status.role} folder {status.path} is not writable.", _fix(status))
        )
    if status.free_bytes is not None and status.free_bytes < LOW_SPACE:
        problems.append(
            Problem(
                f"Only {status.free_bytes / 1e6:.0f} MB are free on the disk holding the "
                f"{status.role} folder {status.path}.",
                f"Free some space on that disk (df -h '{status.path}' shows which one).",
            )
        )
    return problems


def _fix(status: FolderStatus) -> str:
    if status.blocker:
        return (
            f"A file stands where a folder should be: mv '{status.blocker}' '{status.blocker}.old'"
        )
    if status.role == "output":
        return (
            "Choose a writable gallery folder: latentdesk --output-dir ~/Pictures/Latentdesk "
            "(or File ▸ Change gallery folder… in the window)"
        )
    return f"sudo chown -R \"$USER\" '{status.path}'"


def _nearest_existing(path: Path) -> tuple[Path | None, Path | None]:
    """(the folder itself or its nearest existing ancestor, a non-folder found on the way)."""
    for candidate in (path, *path.parents):
        try:
            if candidate.is_dir():
                return candidate, None
            if candidate.exists():
                return None, candidate
        except OSError:
            return None, None
    return None, None


def _can_write(folder: Path) -> bool:
    """Really create (and remove) a file: permission bits lie on read-only mounts, ACLs and
    network folders."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".latentdesk-check-"):
            return True
    except OSError:
        return False


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None
