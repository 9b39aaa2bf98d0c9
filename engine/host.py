"""`Host`: what the diagnostics ask of the operating system, behind one small interface.

The start-up checks and ``latentdesk-cli doctor`` read environment variables, look for files and
sockets, and run a few programs (``ldd``, ``nvidia-smi``). They do it only through a ``Host``, so
a test can describe a machine (no display, a missing library, a GPU with the wrong torch) with a
fake one instead of patching ``os`` and ``subprocess``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping


class Host:
    """The real machine. Every method is cheap and never raises for a missing thing."""

    def __init__(self, env: Mapping[str, str] | None = None, platform: str | None = None):
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.platform = sys.platform if platform is None else platform

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read_text(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None

    def which(self, program: str) -> str | None:
        return shutil.which(program, path=self.env.get("PATH"))

    def run(self, argv: list[str], timeout: float = 5.0) -> tuple[int, str] | None:
        """(exit status, stdout + stderr), or None when the program cannot be started."""
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, errors="replace", timeout=timeout
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.returncode, done.stdout + done.stderr

    def tcp_reachable(self, host: str, port: int, timeout: float = 0.5) -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False
