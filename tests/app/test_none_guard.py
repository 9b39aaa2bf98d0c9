"""PySide6 6.12 on Python < 3.12 loses a reference to None per void call (app/none_guard.py):
importing the app must be enough to make that harmless."""

import os
import subprocess
import sys
from pathlib import Path

from app.none_guard import none_is_stolen

ROOT = Path(__file__).resolve().parents[2]


def _run(guard_line: str) -> subprocess.CompletedProcess:
    code = (
        "from PySide6.QtWidgets import QApplication, QWidget\n"
        "app = QApplication([])\n"
        f"{guard_line}\n"
        "w = QWidget()\n"
        "for _ in range(300_000):\n"
        "    w.update()\n"
        "print('alive')\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_importing_the_app_protects_none_from_void_calls():
    """300,000 update() calls: a long session of strokes, paints and scrolls."""
    guarded = _run("import app.window")
    assert guarded.returncode == 0 and "alive" in guarded.stdout, guarded.stderr[-500:]
    if none_is_stolen():  # this PySide6 has the bug: without the guard the process dies
        bare = _run("")
        assert bare.returncode != 0 and "deallocating None" in bare.stderr
