"""The library's own settings (folders the person added, the last model) and where things live.

One JSON file in the platformdirs config folder, written atomically (temp file, then rename) so
a crash never leaves half a file. A file that cannot be read is moved aside and the library
starts from defaults, with a message saying so, as the app's settings do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from engine.json_files import Unreadable, read_json_object, write_atomically

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
    found = read_json_object(path or config_path())
    if found is None:
        return LibraryConfig()
    if isinstance(found, Unreadable):
        return LibraryConfig(warning=_unreadable_message(found))
    return LibraryConfig.from_dict(found)


def _unreadable_message(found: Unreadable) -> str:
    if found.kept_as is None:
        return f"The model library settings could not be read ({found.error}); defaults are used."
    return (
        f"The model library settings could not be read ({found.error}). The file was kept as "
        f"{found.kept_as}; your added folders must be added again."
    )


def save_config(config: LibraryConfig, path: Path | None = None) -> None:
    """Write atomically; raises OSError when the folder cannot be written."""
    path = path or config_path()
    write_atomically(path, json.dumps(config.to_dict(), indent=2, sort_keys=True))
