"""Settings that persist between runs, as one JSON file in the user's config folder.

Writes are atomic (temp file, then rename) so a crash never leaves half a file. A file that
cannot be read is moved aside, and the app starts with defaults and tells the person why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from engine.json_files import Unreadable, read_json_object, write_atomically

APP_NAME = "latentdesk"


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def default_gallery_dir() -> Path:
    return Path(platformdirs.user_pictures_dir()) / "Latentdesk"


@dataclass
class Settings:
    last_model: str = ""
    gallery_dir: str = ""
    geometry: str = ""  # QMainWindow.saveGeometry() as hex
    parameters: dict[str, Any] = field(default_factory=dict)  # GenerationParams.to_dict()
    advanced_open: bool = False  # the controls' "Advanced" section unfolded
    theme: str = "system"  # "system" (follow the desktop) | "light" | "dark"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Known keys with values of the right type; the rest (old or hand-edited) is dropped."""
        defaults = asdict(cls())
        kept = {k: v for k, v in data.items() if k in defaults}
        return cls(**{k: v for k, v in kept.items() if isinstance(v, type(defaults[k]))})


@dataclass
class LoadedSettings:
    settings: Settings
    warning: str = ""  # a message for the person, e.g. when the file was corrupt


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings(path: Path | None = None) -> LoadedSettings:
    found = read_json_object(path or settings_path())
    if found is None:
        return LoadedSettings(Settings())
    if isinstance(found, Unreadable):
        return LoadedSettings(Settings(), _unreadable_message(found))
    return LoadedSettings(Settings.from_dict(found))  # drops values of the wrong type


def _unreadable_message(found: Unreadable) -> str:
    if found.kept_as is None:
        return (
            f"Your settings could not be read ({found.error}); default settings are used this time."
        )
    return (
        f"Your settings file could not be read ({found.error}). It was kept as {found.kept_as} "
        "and default settings are used."
    )


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically; raises OSError when the folder cannot be written."""
    write_atomically(
        path or settings_path(), json.dumps(asdict(settings), indent=2, sort_keys=True)
    )
