"""What `latentdesk` checks before Qt loads, so Qt's "Reinstalling the application may fix this
problem" is never the last word when the window cannot open.

Qt-free and torch-free: it runs before ``QApplication`` exists, in a few milliseconds (plus one
``ldd`` run of about 20 ms on Linux).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

from engine.display_check import WindowCheck, check_window
from engine.host import Host

EXIT_NO_WINDOW = 2  # as a usage error: the program cannot do what was asked here


def prepare_window_system(
    env: MutableMapping[str, str], host: Host | None = None, qt_dir: Path | None = None
) -> str:
    """Check that the window can open. When it can, set QT_QPA_PLATFORM in ``env`` if Qt
    would otherwise try a plugin that cannot load first (a Wayland session whose Wayland
    libraries are missing goes straight to XWayland, without Qt's warning); return "".
    When it cannot, return the message to print (and exit with EXIT_NO_WINDOW)."""
    check = check_window(host or Host(env), qt_dir)
    if check.can_start:
        if check.set_platform:
            env["QT_QPA_PLATFORM"] = check.set_platform
        return ""
    return no_window_message(check)


def no_window_message(check: WindowCheck) -> str:
    fixes = "\n".join(f"  {line}" for line in check.fixes)
    return (
        f"latentdesk cannot open its window. {check.problem}\n"
        f"To fix it:\n{fixes}\n"
        "(latentdesk-cli doctor checks the rest of this machine.)"
    )
