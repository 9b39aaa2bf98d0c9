"""`build_report`: everything that matters when Latentdesk does not start or runs slowly.

Python, torch and PySide6; each device and the precision the engine would choose there, and
why; whether the window can open here; the folders; the model folders. Every problem found
carries the line that fixes it. ``latentdesk-cli doctor`` prints it, the window's Help menu
shows it. The report is plain JSON-ready values: the text form is made from it.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.display_check import check_window, pyside6_qt_dir
from engine.folder_check import app_folders, check_folder, folder_problems
from engine.host import Host
from engine.problem import Problem

Report = dict[str, Any]


def build_report(output_dir: Path | None = None, host: Host | None = None) -> Report:
    """The whole report; a few seconds at most (torch's import is most of it)."""
    host = host or Host()
    start = time.perf_counter()
    problems: list[Problem] = []
    notes: list[str] = []
    report: Report = {
        "latentdesk": _version("latentdesk"),
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "system": _system(host),
        "pyside6": {"version": _version("PySide6-Essentials") or _version("PySide6")},
    }
    sections: dict[str, Callable[[], Any]] = {
        "torch": lambda: _torch(host, problems),
        "window": lambda: _window(host, problems, notes),
        "folders": lambda: _folders(output_dir, problems),
        "models": lambda: _models(problems),
    }
    for name, section in sections.items():
        try:
            report[name] = section()
        except Exception as e:  # noqa: BLE001 - one broken check must not hide the others
            report[name] = None
            problems.append(
                Problem(
                    f"The {name} check failed: {type(e).__name__}: {e}",
                    "Report it to the Latentdesk issue tracker, with this report attached.",
                )
            )
    report["problems"] = [asdict(p) for p in problems]
    report["notes"] = notes
    report["seconds"] = round(time.perf_counter() - start, 2)
    return report


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _system(host: Host) -> dict[str, Any]:
    pretty = ""
    for line in (host.read_text("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.partition("=")[2].strip().strip('"')
    return {"platform": platform.platform(), "distribution": pretty or None}


def _torch(host: Host, problems: list[Problem]) -> dict[str, Any]:
    try:
        import torch
    except ImportError as e:
        problems.append(
            Problem(f"torch cannot be imported: {e}", f"{sys.executable} -m pip install torch")
        )
        return {"version": None}
    from engine.doctor_devices import devices_section

    return {"version": torch.__version__} | devices_section(host, problems)


def _window(host: Host, problems: list[Problem], notes: list[str]) -> dict[str, Any]:
    check = check_window(host)
    if not check.can_start:
        problems.append(Problem(check.problem, "\n".join(check.fixes)))
    notes.extend(check.notes)
    qt_dir = pyside6_qt_dir()
    return asdict(check) | {"qt_dir": str(qt_dir) if qt_dir else None}


def _folders(output_dir: Path | None, problems: list[Problem]) -> list[dict[str, Any]]:
    statuses = [check_folder(role, path) for role, path in app_folders(output_dir).items()]
    for status in statuses:
        problems.extend(folder_problems(status))
    return [asdict(s) for s in statuses]


def _models(problems: list[Problem]) -> dict[str, Any]:
    from engine.cli_models import DEFAULT_PRESET
    from engine.library import ModelLibrary, app_models_dir

    library = ModelLibrary()
    places = [(Path(p.path), p.source) for p in library.places()]
    if app_models_dir() not in [path for path, _ in places]:
        places.insert(0, (app_models_dir(), "app"))  # not there yet: where models go
    scan = library.scan()
    usable = {path: 0 for path, _ in places}
    other = dict(usable)
    for entry in scan.entries:
        owner = _owner(Path(entry.path), list(usable))
        if owner is not None:
            counts = usable if entry.kind == "checkpoint" and not entry.problem else other
            counts[owner] += 1
    folders = [
        {
            "path": str(path),
            "source": source,
            "exists": path.is_dir(),
            "models": usable[path],
            "other_files": other[path],
        }
        for path, source in places
    ]
    if not any(f["models"] for f in folders):
        problems.append(
            Problem(
                "No usable Stable Diffusion model was found in the model folders below.",
                f"latentdesk-cli models download {DEFAULT_PRESET} (or put a checkpoint such as "
                f"v1-5-pruned-emaonly.safetensors in {app_models_dir()})",
            )
        )
    return {"folders": folders, "skipped": len(scan.skipped)}


def _owner(path: Path, places: list[Path]) -> Path | None:
    """The innermost scanned folder holding ``path`` (places can nest: app folder in HF cache)."""
    holders = [place for place in places if path.is_relative_to(place)]
    return max(holders, key=lambda p: len(p.parts)) if holders else None
