"""The library's own settings (folders the person added, the last model) and where things live.

One JSON file in the platformdirs config folder, written atomically (temp file, then rename) so
a crash never leaves half a file. A file that cannot be read is moved aside and the library
starts from defaults, with a message saying so, as the app's settings do.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "latentdesk"
CONFIG_FILE = "library.json"


def config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / CONFIG_FILE


def app_models_dir() -> Path:
    """Where downloads go and where a person can drop model files: the user data dir/models."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "models"


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


@dataclass
class LibraryConfig:
    folders: list[str] = field(default_factory=list)  # added by the person, absolute paths
    last_model: str = ""  # path of the model used last
    # Not saved: why the file on disk was not used (corrupt, unreadable); "" when it was.
    warning: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"folders": list(self.folders), "last_model": self.last_model}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LibraryConfig:
        """Values of the right type; the rest (old or hand-edited) is dropped."""
        folders = data.get("folders")
        last = data.get("last_model")
        return cls(
            folders=[f for f in folders if isinstance(f, str) and f]
            if isinstance(folders, list)
            else [],
            last_model=last if isinstance(last, str) else "",
        )


def load_config(path: Path | None = None) -> LibraryConfig:
    """The saved config, defaults when there is none, defaults and a ``warning`` when broken."""
    path = path or config_path()
    if not path.exists():
        return LibraryConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return LibraryConfig.from_dict(data)
    except (OSError, ValueError) as exc:
        return LibraryConfig(warning=_move_aside(path, exc))


def _move_aside(path: Path, exc: Exception) -> str:
    backup = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.replace(backup)
    except OSError:
        return f"The model library settings could not be read ({exc}); defaults are used."
    return (
        f"The model library settings could not be read ({exc}). The file was kept as "
        f"{backup.name}; your added folders must be added again."
    )


def save_config(config: LibraryConfig, path: Path | None = None) -> None:
    """Write atomically; raises OSError when the folder cannot be written."""
    path = path or config_path()
    write_atomically(path, json.dumps(config.to_dict(), indent=2, sort_keys=True))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
