"""Settings that persist between runs, as one JSON file in the user's config folder.

Writes are atomic (temp file, then rename) so a crash never leaves half a file. A file that
cannot be read is moved aside, and the app starts with defaults and tells the person why.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

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
    path = path or settings_path()
    if not path.exists():
        return LoadedSettings(Settings())
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return LoadedSettings(Settings.from_dict(data))
    except (OSError, ValueError, TypeError) as exc:
        return LoadedSettings(Settings(), _move_aside(path, exc))


def _move_aside(path: Path, exc: Exception) -> str:
    backup = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.replace(backup)
    except OSError:
        return f"Your settings could not be read ({exc}); default settings are used this time."
    return (
        f"Your settings file could not be read ({exc}). It was kept as {backup.name} "
        "and default settings are used."
    )


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically; raises OSError when the folder cannot be written."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asdict(settings), indent=2, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
