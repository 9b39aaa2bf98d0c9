"""Locate files shipped in the repository's top-level ``resources/`` folder.

A source checkout, an editable install and a PyInstaller bundle keep ``resources/`` beside
``engine/``. A regular (non-editable) install puts the same folder into the package
``latentdesk_resources`` (see pyproject.toml), which importlib.resources finds.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

INSTALLED_PACKAGE = "latentdesk_resources"


def _source_resources_dir() -> Path:
    # engine/resources.py -> <root>/resources
    return Path(__file__).resolve().parent.parent / "resources"


def _installed_resource(parts: tuple[str, ...]) -> Path | None:
    try:
        root = importlib.resources.files(INSTALLED_PACKAGE)
    except ModuleNotFoundError:
        return None
    candidate = root.joinpath(*parts)
    # A package on the file system gives a real Path; anything else (a zip) cannot be opened
    # by path, and callers need one.
    if isinstance(candidate, Path) and candidate.exists():
        return candidate
    return None


def resource_path(*parts: str) -> Path:
    """The path of ``resources/<parts...>``; raises FileNotFoundError when it is nowhere."""
    local = _source_resources_dir().joinpath(*parts)
    if local.exists():
        return local
    installed = _installed_resource(parts)
    if installed is not None:
        return installed
    raise FileNotFoundError(
        f"resource {'/'.join(parts)!r} is missing: looked in {_source_resources_dir()} "
        f"and in the installed package {INSTALLED_PACKAGE!r}"
    )
