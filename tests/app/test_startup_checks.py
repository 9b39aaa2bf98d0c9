"""`latentdesk` without a usable display: one clear message and exit status 2, never Qt's
"Reinstalling the application may fix this problem"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.startup_checks import EXIT_NO_WINDOW, prepare_window_system
from tests.fake_host import DEBIAN, FakeHost, ldd_output

ROOT = Path(__file__).resolve().parents[2]
QT = Path("/venv/PySide6/Qt")
PLATFORMS = QT / "plugins" / "platforms"


def _latentdesk() -> list[str]:
    """The installed gui-script when there is one (what a person runs), else the module."""
    script = Path(sys.executable).with_name("latentdesk")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.main"]


def test_latentdesk_without_a_display_exits_2_with_one_clear_message(tmp_path):
    drop = ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "QT_QPA_PLATFORM", "XDG_SESSION_TYPE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    done = subprocess.run(
        _latentdesk(), capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert done.returncode == EXIT_NO_WINDOW == 2
    assert done.stdout == ""
    message = done.stderr
    assert message.startswith("latentdesk cannot open its window. No display:")
    assert "ssh -X" in message and "latentdesk-cli" in message
    assert "Reinstalling" not in message and "qt.qpa" not in message


def test_missing_libraries_message_has_the_install_line():
    host = FakeHost(
        {"DISPLAY": ":0"},
        files={
            "/tmp/.X11-unix/X0": "",
            str(PLATFORMS / "libqxcb.so"): "",
            "/etc/os-release": DEBIAN,
        },
        programs={"ldd": ldd_output(["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])},
    )
    env = dict(host.env)
    message = prepare_window_system(env, host, QT)
    assert "the system libraries libxcb-icccm.so.4, libxcb-keysyms.so.1 are missing" in message
    assert "\n  sudo apt install libxcb-icccm4 libxcb-keysyms1\n" in message
    assert "QT_QPA_PLATFORM" not in env


def test_a_wayland_session_without_wayland_libraries_is_sent_to_xwayland():
    host = FakeHost(
        {
            "XDG_SESSION_TYPE": "wayland",
            "WAYLAND_DISPLAY": "wayland-0",
            "XDG_RUNTIME_DIR": "/run/user/1000",
            "DISPLAY": ":0",
        },
        files={
            "/run/user/1000/wayland-0": "",
            "/tmp/.X11-unix/X0": "",
            str(PLATFORMS / "libqxcb.so"): "",
            str(PLATFORMS / "libqwayland.so"): "",
        },
        programs={
            "ldd": lambda argv: ldd_output(
                ["libwayland-cursor.so.0"] if "wayland" in argv[1] else []
            )(argv)
        },
    )
    env = dict(host.env)
    assert prepare_window_system(env, host, QT) == ""
    assert env["QT_QPA_PLATFORM"] == "xcb"  # so Qt does not warn while falling back


def test_a_usable_display_changes_nothing():
    env = {"QT_QPA_PLATFORM": "offscreen"}
    assert prepare_window_system(env, FakeHost(env), QT) == ""
    assert env == {"QT_QPA_PLATFORM": "offscreen"}
