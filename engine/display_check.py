"""Can the window open here? Answered without Qt, so it runs before ``QApplication`` exists.

When Qt cannot load its platform plugin it prints "Reinstalling the application may fix this
problem" and aborts, whether the cause is a missing display (an SSH session) or a missing
system library (libxcb-cursor0 on Ubuntu 22.04). Reinstalling fixes neither. This module finds
the real cause: it looks for the X11 and Wayland sockets the environment points at, and runs
``ldd`` on the platform plugin inside PySide6 to list the libraries it cannot find. It imports
neither Qt nor torch: the app calls it first thing, and ``latentdesk-cli doctor`` reports it.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.host import Host
from engine.system_packages import family_from_os_release, install_lines

# Qt's name for each window system's plugin, and the plugin's file in PySide6's Qt folder.
PLUGIN_FILES = {"xcb": "libqxcb.so", "wayland": "libqwayland.so"}
_WINDOW_SYSTEM = {"xcb": "X11", "wayland": "Wayland"}


@dataclass(frozen=True)
class Display:
    plugin: str  # "xcb" or "wayland"
    name: str  # ":0", "localhost:10.0", "wayland-0"; "" when not set
    reachable: bool
    detail: str  # where we looked, or why it is not reachable


@dataclass(frozen=True)
class PluginLibraries:
    plugin: str
    missing: tuple[str, ...] = ()  # sonames ldd could not find
    error: str = ""  # the plugin is absent or could not be checked ("" when checked)


@dataclass(frozen=True)
class WindowCheck:
    can_start: bool
    platform: str  # the plugin Qt will use ("xcb", "wayland", "offscreen", "native"), or ""
    set_platform: str = ""  # QT_QPA_PLATFORM the app sets to reach ``platform`` cleanly
    problem: str = ""  # what stops the window ("" when it can start)
    fixes: tuple[str, ...] = ()  # lines that fix ``problem``
    notes: tuple[str, ...] = ()  # worth knowing, not blocking
    displays: tuple[Display, ...] = ()
    libraries: tuple[PluginLibraries, ...] = ()


def pyside6_qt_dir() -> Path | None:
    """PySide6's bundled Qt folder, found without importing PySide6 (that loads Qt)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "Qt"


def check_window(host: Host | None = None, qt_dir: Path | None = None) -> WindowCheck:
    host = host or Host()
    if not host.platform.startswith(("linux", "freebsd")):
        # macOS and Windows: the wheel's cocoa/windows plugins need no extra system libraries.
        return WindowCheck(True, "native")
    requested = host.env.get("QT_QPA_PLATFORM", "").strip()
    candidates = _candidates(host, requested)
    if not candidates:  # offscreen, vnc, eglfs... chosen by the person: nothing to look for
        return WindowCheck(True, requested, notes=(f"QT_QPA_PLATFORM={requested} is set.",))
    qt_dir = qt_dir if qt_dir is not None else pyside6_qt_dir()
    displays = tuple(probe_display(host, plugin) for plugin in candidates)
    libraries = tuple(plugin_libraries(host, qt_dir, plugin) for plugin in candidates)
    for display, libs in zip(displays, libraries, strict=True):
        if display.reachable and not libs.missing and not _plugin_absent(libs):
            first = display.plugin == candidates[0]
            notes = _fallback_notes(host, displays, libraries, display.plugin)
            return WindowCheck(
                True,
                display.plugin,
                set_platform="" if first or requested else display.plugin,
                notes=notes + _unchecked_notes(libraries),
                displays=displays,
                libraries=libraries,
            )
    problem, fixes = _explain(host, displays, libraries)
    return WindowCheck(
        False, "", problem=problem, fixes=fixes, displays=displays, libraries=libraries
    )


def _candidates(host: Host, requested: str) -> list[str]:
    """The plugins Qt will try, in its order. Qt 6 tries wayland first only in a Wayland
    session; a lone WAYLAND_DISPLAY (a compositor started from a console) is our fallback."""
    if requested:
        names = [part.split(":")[0].strip() for part in requested.split(";")]
        names = ["wayland" if n.startswith("wayland") else n for n in names]
        if any(n not in PLUGIN_FILES for n in names):  # Qt can end on offscreen, vnc...
            return []
        return list(dict.fromkeys(names))
    if host.env.get("XDG_SESSION_TYPE", "").lower() == "wayland":
        return ["wayland", "xcb"]
    return ["xcb", "wayland"] if host.env.get("WAYLAND_DISPLAY") else ["xcb"]


def probe_display(host: Host, plugin: str) -> Display:
    return _probe_x11(host) if plugin == "xcb" else _probe_wayland(host)


def _probe_x11(host: Host) -> Display:
    name = host.env.get("DISPLAY", "")
    if not name:
        return Display("xcb", "", False, "DISPLAY is not set")
    where, sep, number_screen = name.rpartition(":")
    number = number_screen.split(".")[0]
    if not sep or not number.isdigit():
        return Display("xcb", name, False, f"DISPLAY={name} is not of the form [host]:number")
    where = where.removeprefix("tcp/").strip("[]")
    if where in ("", "unix"):
        socket = f"/tmp/.X11-unix/X{number}"
        # X servers also listen on an abstract socket, the only one inside some containers.
        found = host.exists(socket) or f"@{socket}" in (host.read_text("/proc/net/unix") or "")
        detail = f"socket {socket}" + ("" if found else " does not exist")
        return Display("xcb", name, found, detail)
    port = 6000 + int(number)  # ssh -X forwards DISPLAY=localhost:10 as TCP port 6010
    found = host.tcp_reachable(where, port)
    return Display("xcb", name, found, f"{where}:{port}" + ("" if found else " does not answer"))


def _probe_wayland(host: Host) -> Display:
    if host.env.get("WAYLAND_SOCKET"):  # the compositor handed us a connected socket
        return Display("wayland", "WAYLAND_SOCKET", True, "socket passed by the compositor")
    name = host.env.get("WAYLAND_DISPLAY", "")
    shown = name or "wayland-0"  # libwayland's default when WAYLAND_DISPLAY is unset
    if shown.startswith("/"):
        path = shown
    elif host.env.get("XDG_RUNTIME_DIR"):
        path = f"{host.env['XDG_RUNTIME_DIR'].rstrip('/')}/{shown}"
    else:
        return Display("wayland", name, False, "XDG_RUNTIME_DIR is not set")
    found = host.exists(path)
    return Display("wayland", name, found, f"socket {path}" + ("" if found else " does not exist"))


def plugin_libraries(host: Host, qt_dir: Path | None, plugin: str) -> PluginLibraries:
    """The shared libraries the plugin (and the Qt libraries it links) cannot find, by ``ldd``,
    which resolves the whole dependency tree the way the loader will."""
    if qt_dir is None:
        return PluginLibraries(plugin, error="PySide6's Qt folder was not found")
    path = qt_dir / "plugins" / "platforms" / PLUGIN_FILES[plugin]
    if not host.exists(str(path)):
        return PluginLibraries(plugin, error=f"{path} is missing")
    if host.which("ldd") is None:
        return PluginLibraries(plugin, error="ldd is not installed, libraries not checked")
    ran = host.run(["ldd", str(path)])
    if ran is None or (ran[0] != 0 and "=>" not in ran[1]):
        return PluginLibraries(plugin, error="ldd could not read the plugin")
    return PluginLibraries(plugin, missing=tuple(dict.fromkeys(_not_found(ran[1]))))


def _not_found(ldd_output: str) -> list[str]:
    """Sonames from ldd lines such as "\tlibxcb-cursor.so.0 => not found"."""
    return [
        line.split("=>")[0].strip() for line in ldd_output.splitlines() if "=> not found" in line
    ]


def _plugin_absent(libs: PluginLibraries) -> bool:
    return libs.error.endswith("is missing") or libs.error.startswith("PySide6's Qt")


def _unchecked_notes(libraries: tuple[PluginLibraries, ...]) -> tuple[str, ...]:
    return tuple(f"{lib.plugin}: {lib.error}" for lib in libraries if lib.error)


def _fallback_notes(
    host: Host,
    displays: tuple[Display, ...],
    libraries: tuple[PluginLibraries, ...],
    chosen: str,
) -> tuple[str, ...]:
    """Why a Wayland session ends up on X11 (XWayland), with the line for native Wayland."""
    notes = []
    for display, libs in zip(displays, libraries, strict=True):
        if display.plugin == chosen:
            break
        if not display.reachable or not libs.missing:
            continue
        family = family_from_os_release(host.read_text("/etc/os-release"))
        lines = "; ".join(install_lines(list(libs.missing), family))
        notes.append(
            f"The {_WINDOW_SYSTEM[display.plugin]} plugin lacks {', '.join(libs.missing)}: "
            f"using {_WINDOW_SYSTEM[chosen]} instead. For native {_WINDOW_SYSTEM[display.plugin]}: "
            f"{lines}"
        )
    return tuple(notes)


def _explain(
    host: Host, displays: tuple[Display, ...], libraries: tuple[PluginLibraries, ...]
) -> tuple[str, tuple[str, ...]]:
    """The one message and its fix lines when no candidate plugin can start."""
    family = family_from_os_release(host.read_text("/etc/os-release"))
    reachable = [lib for d, lib in zip(displays, libraries, strict=True) if d.reachable]
    absent = [lib for lib in reachable if _plugin_absent(lib)]
    if absent:
        return (
            f"PySide6 is incomplete: {absent[0].error}.",
            (f"{sys.executable} -m pip install --force-reinstall PySide6-Essentials",),
        )
    # With no display, the X11 plugin's gaps are what ssh -X would hit next.
    relevant = reachable or [lib for lib in libraries if lib.plugin == "xcb"]
    missing = list(dict.fromkeys(s for lib in relevant for s in lib.missing))
    if reachable:
        names = " and ".join(_WINDOW_SYSTEM[lib.plugin] for lib in reachable)
        noun, verb = ("library", "is") if len(missing) == 1 else ("libraries", "are")
        return (
            f"Qt's {names} platform plugin cannot load: the system {noun} "
            f"{', '.join(missing)} {verb} missing.",
            tuple(install_lines(missing, family)),
        )
    problem = _no_display_text(displays)
    fixes = [
        "Run latentdesk from a terminal or the menu of your desktop session.",
        "Over SSH, forward X11: ssh -X user@host, then run latentdesk.",
        "Without a window: latentdesk-cli txt2img --ckpt MODEL --prompt '...' "
        "(see latentdesk-cli --help).",
    ]
    if missing:  # the next thing the person would hit once a display is there
        fixes += [
            f"(Also needed for the window: {line})" for line in install_lines(missing, family)
        ]
    return problem, tuple(fixes)


def _no_display_text(displays: tuple[Display, ...]) -> str:
    set_ones = [d for d in displays if d.name]
    if not set_ones:
        return (
            "No display: neither DISPLAY nor WAYLAND_DISPLAY is set, so there is no X11 or "
            "Wayland screen to open the window on (an SSH session or a text console)."
        )
    reasons = "; ".join(
        f"{'DISPLAY' if d.plugin == 'xcb' else 'WAYLAND_DISPLAY'}={d.name}: {d.detail}"
        for d in set_ones
    )
    return f"No display can be reached ({reasons})."
