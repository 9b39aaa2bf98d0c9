"""Which distribution package provides a missing shared library, and the line that installs it.

Only the libraries Qt's X11 and Wayland platform plugins need (the ones missing on fresh or
minimal installs); anything else gets the family's "which package has this file" command.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

FAMILIES = ("apt", "dnf", "pacman", "zypper")

# /etc/os-release ID or ID_LIKE word -> package manager family.
_FAMILY_OF_ID = {
    "debian": "apt",
    "ubuntu": "apt",
    "fedora": "dnf",
    "rhel": "dnf",
    "centos": "dnf",
    "rocky": "dnf",
    "almalinux": "dnf",
    "arch": "pacman",
    "manjaro": "pacman",
    "endeavouros": "pacman",
    "opensuse": "zypper",
    "suse": "zypper",
    "sles": "zypper",
}

# soname: (apt, dnf, pacman, zypper). Arch and Fedora bundle most xcb extensions in one package.
_PACKAGES: dict[str, tuple[str, str, str, str]] = {
    "libxcb-cursor.so.0": (
        "libxcb-cursor0",
        "xcb-util-cursor",
        "xcb-util-cursor",
        "libxcb-cursor0",
    ),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm", "xcb-util-wm", "libxcb-icccm4"),
    "libxcb-keysyms.so.1": (
        "libxcb-keysyms1",
        "xcb-util-keysyms",
        "xcb-util-keysyms",
        "libxcb-keysyms1",
    ),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image", "xcb-util-image", "libxcb-image0"),
    "libxcb-render-util.so.0": (
        "libxcb-render-util0",
        "xcb-util-renderutil",
        "xcb-util-renderutil",
        "libxcb-render-util0",
    ),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util", "xcb-util", "libxcb-util1"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb", "libxcb", "libxcb-xkb1"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb", "libxcb", "libxcb-shape0"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb", "libxcb", "libxcb-randr0"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb", "libxcb", "libxcb-shm0"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb", "libxcb", "libxcb-sync1"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb", "libxcb", "libxcb-xfixes0"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb", "libxcb", "libxcb-render0"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb", "libxcb", "libxcb-xinput0"),
    "libxcb.so.1": ("libxcb1", "libxcb", "libxcb", "libxcb1"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb", "libx11", "libX11-xcb1"),
    "libX11.so.6": ("libx11-6", "libX11", "libx11", "libX11-6"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon", "libxkbcommon", "libxkbcommon0"),
    "libxkbcommon-x11.so.0": (
        "libxkbcommon-x11-0",
        "libxkbcommon-x11",
        "libxkbcommon-x11",
        "libxkbcommon-x11-0",
    ),
    "libGL.so.1": ("libgl1", "libglvnd-glx", "libglvnd", "libGL1"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl", "libglvnd", "libEGL1"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl", "libglvnd", "libOpenGL0"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig", "fontconfig", "libfontconfig1"),
    "libfreetype.so.6": ("libfreetype6", "freetype", "freetype2", "libfreetype6"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs", "dbus", "libdbus-1-3"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2", "glib2", "libglib-2_0-0"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2", "glib2", "libgthread-2_0-0"),
    "libwayland-client.so.0": (
        "libwayland-client0",
        "libwayland-client",
        "wayland",
        "libwayland-client0",
    ),
    "libwayland-cursor.so.0": (
        "libwayland-cursor0",
        "libwayland-cursor",
        "wayland",
        "libwayland-cursor0",
    ),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl", "wayland", "libwayland-egl1"),
}

# What Qt's X11 plugin needs beyond a base system: the README's prerequisites are made of these
# (tests/engine/test_system_packages.py keeps the two in step).
QT_PREREQUISITES = (
    "libxcb-cursor.so.0",
    "libxcb-icccm.so.4",
    "libxcb-keysyms.so.1",
    "libxcb-image.so.0",
    "libxcb-render-util.so.0",
    "libxcb-xkb.so.1",
    "libxkbcommon-x11.so.0",
    "libxcb-shape.so.0",
    "libxcb-randr.so.0",
    "libEGL.so.1",
    "libGL.so.1",
    "libfontconfig.so.1",
    "libdbus-1.so.3",
)

_INSTALL = {
    "apt": "sudo apt install",
    "dnf": "sudo dnf install",
    "pacman": "sudo pacman -S --needed",
    "zypper": "sudo zypper install",
}
_DISTROS = {
    "apt": "Debian, Ubuntu, Mint",
    "dnf": "Fedora, RHEL",
    "pacman": "Arch, Manjaro",
    "zypper": "openSUSE",
}
# For a library outside the table: how each family finds the package that holds a file.
_SEARCH = {
    "apt": "apt-file search",
    "dnf": "dnf provides '*/{}'",
    "pacman": "pacman -F",
    "zypper": "zypper search --provides",
}


def family_from_os_release(text: str | None) -> str | None:
    """ "apt", "dnf", "pacman" or "zypper" from /etc/os-release's ID and ID_LIKE; None if unknown.

    ID comes first: Ubuntu says ID_LIKE=debian and openSUSE ID_LIKE="suse opensuse"."""
    fields = _parse_os_release(text or "")
    words = fields.get("ID", "").split() + fields.get("ID_LIKE", "").split()
    for word in words:
        for prefix, family in _FAMILY_OF_ID.items():
            if word == prefix or word.startswith(prefix + "-"):  # "opensuse-tumbleweed"
                return family
    return None


def _parse_os_release(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            words = shlex.split(value, posix=True) if value.strip() else [""]
            fields[key.strip()] = " ".join(words).lower()
    return fields


@dataclass(frozen=True)
class InstallAdvice:
    family: str  # "apt", ...
    packages: tuple[str, ...]  # known packages for the missing libraries
    unknown: tuple[str, ...]  # sonames outside the table

    def lines(self) -> list[str]:
        """The install line, then one "find the package" line per unknown library."""
        out = []
        if self.packages:
            out.append(f"{_INSTALL[self.family]} {' '.join(self.packages)}")
        for soname in self.unknown:
            search = _SEARCH[self.family]
            out.append(search.format(soname) if "{}" in search else f"{search} {soname}")
        return out


def install_advice(sonames: list[str], family: str) -> InstallAdvice:
    column = FAMILIES.index(family)
    packages: dict[str, None] = {}  # ordered set: several sonames share one package
    unknown = []
    for soname in sonames:
        row = _PACKAGES.get(soname)
        if row is None:
            unknown.append(soname)
        else:
            packages.setdefault(row[column], None)
    return InstallAdvice(family, tuple(packages), tuple(unknown))


def install_lines(sonames: list[str], family: str | None) -> list[str]:
    """The lines that install ``sonames``: for ``family``, or one per family when unknown."""
    if family is not None:
        return install_advice(sonames, family).lines()
    lines = []
    for fam in FAMILIES:
        lines += [f"{line}    # {_DISTROS[fam]}" for line in install_advice(sonames, fam).lines()]
    return lines
