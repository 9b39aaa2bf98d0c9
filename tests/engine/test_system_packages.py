"""Distribution family from /etc/os-release, and the packages for missing libraries."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.system_packages import (
    QT_PREREQUISITES,
    family_from_os_release,
    install_advice,
    install_lines,
)
from tests.fake_host import ARCH, DEBIAN, FEDORA, TUMBLEWEED, UBUNTU


@pytest.mark.parametrize(
    ("text", "family"),
    [
        (DEBIAN, "apt"),
        (UBUNTU, "apt"),
        ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "apt"),
        (FEDORA, "dnf"),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "dnf"),
        (ARCH, "pacman"),
        ("ID=manjaro\nID_LIKE=arch\n", "pacman"),
        ("ID=endeavouros\nID_LIKE=arch\n", "pacman"),
        (TUMBLEWEED, "zypper"),
        ('ID="sles"\nID_LIKE="suse"\n', "zypper"),
        ("ID=alpine\n", None),
        ("", None),
        (None, None),
        ("# only a comment\nnot a field\n", None),
    ],
)
def test_family_from_os_release(text, family):
    assert family_from_os_release(text) == family


def test_libraries_sharing_a_package_name_it_once():
    advice = install_advice(["libxcb-shape.so.0", "libxcb-randr.so.0", "libxcb-xkb.so.1"], "dnf")
    assert advice.packages == ("libxcb",)
    assert advice.lines() == ["sudo dnf install libxcb"]


def test_the_usual_qt_xcb_gaps_map_to_packages_in_every_family():
    usual = [
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
    ]
    for family in ("apt", "dnf", "pacman", "zypper"):
        assert install_advice(usual, family).unknown == ()
    apt = install_advice(usual, "apt").packages
    assert {"libxcb-cursor0", "libxkbcommon-x11-0", "libegl1", "libgl1", "libdbus-1-3"} <= set(apt)


def test_unknown_libraries_get_the_family_search_command():
    assert install_lines(["libfoo.so.1"], "apt") == ["apt-file search libfoo.so.1"]
    assert install_lines(["libfoo.so.1"], "dnf") == ["dnf provides '*/libfoo.so.1'"]
    assert install_lines(["libfoo.so.1"], "zypper") == ["zypper search --provides libfoo.so.1"]


def test_unknown_family_lists_every_family_labelled():
    lines = install_lines(["libxcb-cursor.so.0"], None)
    assert lines[0] == "sudo apt install libxcb-cursor0    # Debian, Ubuntu, Mint"
    assert len(lines) == 4 and lines[3].endswith("# openSUSE")


def test_the_readme_prerequisites_match_the_table():
    # One home for the package names: the README's lines must be what the checker would print.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for line in install_lines(list(QT_PREREQUISITES), None):
        assert f"\n{line}\n" in readme, line
