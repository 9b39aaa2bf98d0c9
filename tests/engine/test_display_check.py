"""Can the window open? Displays and platform-plugin libraries on described machines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.display_check import check_window, plugin_libraries, pyside6_qt_dir
from engine.host import Host
from tests.fake_host import ARCH, DEBIAN, FEDORA, TUMBLEWEED, UBUNTU, FakeHost, ldd_output

QT = Path("/venv/PySide6/Qt")
XCB = str(QT / "plugins/platforms/libqxcb.so")
WAYLAND = str(QT / "plugins/platforms/libqwayland.so")
X0 = "/tmp/.X11-unix/X0"


def machine(env, files=(), missing=(), wayland_missing=(), os_release=DEBIAN, **kw) -> FakeHost:
    """Both plugins installed; ``ldd`` reports ``missing`` for xcb, ``wayland_missing`` for
    the Wayland plugin."""

    def ldd(argv):
        return ldd_output(list(wayland_missing if argv[1] == WAYLAND else missing))(argv)

    contents = {XCB: "", WAYLAND: "", "/etc/os-release": os_release}
    contents.update({path: "" for path in files})
    return FakeHost(env, contents, {"ldd": ldd}, **kw)


def check(host: FakeHost):
    return check_window(host, qt_dir=QT)


def test_no_display_at_all_says_what_to_do():
    result = check(machine({}))
    assert not result.can_start
    assert "neither DISPLAY nor WAYLAND_DISPLAY is set" in result.problem
    fixes = "\n".join(result.fixes)
    assert "ssh -X" in fixes and "latentdesk-cli" in fixes and "desktop" in fixes
    assert "Reinstall" not in result.problem + fixes


def test_local_x_display_with_its_socket_can_start_and_checks_the_plugin():
    host = machine({"DISPLAY": ":0"}, files=[X0])
    result = check(host)
    assert (result.can_start, result.platform, result.set_platform) == (True, "xcb", "")
    assert ["ldd", XCB] in host.ran


def test_x_display_reached_only_through_its_abstract_socket():
    # Containers often share only the abstract socket: no file in /tmp/.X11-unix.
    host = machine({"DISPLAY": "unix:0.0"})
    assert not check(host).can_start
    host.files["/proc/net/unix"] = "Num RefCount Path\n0: 2 27309 @/tmp/.X11-unix/X0\n"
    assert check(host).can_start


def test_display_set_but_nobody_listening():
    result = check(machine({"DISPLAY": ":55"}))
    assert not result.can_start
    assert "DISPLAY=:55" in result.problem and "/tmp/.X11-unix/X55 does not exist" in result.problem
    assert any("ssh -X" in fix for fix in result.fixes)


def test_ssh_forwarded_display_is_a_tcp_port():
    reachable = machine({"DISPLAY": "localhost:10.0"}, tcp={("localhost", 6010)})
    assert check(reachable).can_start
    gone = check(machine({"DISPLAY": "localhost:10.0"}))
    assert not gone.can_start and "localhost:6010 does not answer" in gone.problem


def test_malformed_display():
    result = check(machine({"DISPLAY": "nonsense"}))
    assert not result.can_start and "not of the form" in result.problem


@pytest.mark.parametrize(
    ("os_release", "line"),
    [
        (DEBIAN, "sudo apt install libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0"),
        (UBUNTU, "sudo apt install libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0"),
        (FEDORA, "sudo dnf install xcb-util-wm xcb-util-keysyms xcb-util-cursor"),
        (ARCH, "sudo pacman -S --needed xcb-util-wm xcb-util-keysyms xcb-util-cursor"),
        (TUMBLEWEED, "sudo zypper install libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0"),
    ],
)
def test_missing_libraries_are_named_with_the_install_line(os_release, line):
    missing = ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"]
    result = check(machine({"DISPLAY": ":0"}, files=[X0], missing=missing, os_release=os_release))
    assert not result.can_start
    assert "X11 platform plugin cannot load" in result.problem
    assert all(lib in result.problem for lib in missing)
    assert result.fixes == (line,)


def test_unknown_distribution_gets_a_line_per_family():
    result = check(
        machine(
            {"DISPLAY": ":0"}, files=[X0], missing=["libxcb-cursor.so.0"], os_release="ID=alpine\n"
        )
    )
    assert [fix.split()[1] for fix in result.fixes] == ["apt", "dnf", "pacman", "zypper"]


def test_an_unknown_library_gets_the_search_command():
    result = check(
        machine({"DISPLAY": ":0"}, files=[X0], missing=["libweird.so.3"], os_release=ARCH)
    )
    assert result.fixes == ("pacman -F libweird.so.3",)


def test_no_display_also_names_libraries_ssh_x_would_need():
    result = check(machine({}, missing=["libxcb-cursor.so.0"]))
    assert "No display" in result.problem
    assert "(Also needed for the window: sudo apt install libxcb-cursor0)" in result.fixes


def test_wayland_session_with_working_plugin_uses_wayland():
    env = {
        "XDG_SESSION_TYPE": "wayland",
        "WAYLAND_DISPLAY": "wayland-0",
        "XDG_RUNTIME_DIR": "/run/user/1000",
    }
    result = check(machine(env, files=["/run/user/1000/wayland-0"]))
    assert (result.can_start, result.platform, result.set_platform) == (True, "wayland", "")


def test_wayland_without_its_libraries_falls_back_to_xwayland_cleanly():
    env = {
        "XDG_SESSION_TYPE": "wayland",
        "WAYLAND_DISPLAY": "wayland-0",
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "DISPLAY": ":0",
    }
    host = machine(
        env, files=["/run/user/1000/wayland-0", X0], wayland_missing=["libwayland-cursor.so.0"]
    )
    result = check(host)
    assert (result.can_start, result.platform, result.set_platform) == (True, "xcb", "xcb")
    assert "libwayland-cursor.so.0" in result.notes[0]
    assert "sudo apt install libwayland-cursor0" in result.notes[0]


def test_wayland_without_libraries_and_without_xwayland_cannot_start():
    env = {
        "XDG_SESSION_TYPE": "wayland",
        "WAYLAND_DISPLAY": "wayland-0",
        "XDG_RUNTIME_DIR": "/run/user/1000",
    }
    host = machine(
        env, files=["/run/user/1000/wayland-0"], wayland_missing=["libwayland-cursor.so.0"]
    )
    result = check(host)
    assert not result.can_start
    assert "Wayland platform plugin cannot load" in result.problem
    assert "library libwayland-cursor.so.0 is missing" in result.problem
    assert result.fixes == ("sudo apt install libwayland-cursor0",)


def test_a_lone_wayland_compositor_is_chosen_explicitly():
    # Qt would try only xcb without XDG_SESSION_TYPE=wayland: the app must ask for wayland.
    env = {"WAYLAND_DISPLAY": "/tmp/wl.sock"}
    result = check(machine(env, files=["/tmp/wl.sock"]))
    assert (result.can_start, result.platform, result.set_platform) == (True, "wayland", "wayland")


def test_wayland_without_runtime_dir_is_unreachable():
    result = check(machine({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}))
    assert not result.can_start and "XDG_RUNTIME_DIR is not set" in result.problem


def test_a_chosen_non_window_platform_is_respected_without_checks():
    host = machine({"QT_QPA_PLATFORM": "offscreen"})
    result = check(host)
    assert (result.can_start, result.platform) == (True, "offscreen")
    assert host.ran == []


def test_a_chosen_xcb_is_checked_and_never_overridden():
    blocked = check(
        machine(
            {"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"}, files=[X0], missing=["libxcb-xkb.so.1"]
        )
    )
    assert not blocked.can_start and blocked.fixes == ("sudo apt install libxcb-xkb1",)
    env = {
        "QT_QPA_PLATFORM": "wayland;xcb",
        "DISPLAY": ":0",
        "WAYLAND_DISPLAY": "w",
        "XDG_RUNTIME_DIR": "/r",
    }
    fallback = check(machine(env, files=[X0]))
    assert (fallback.platform, fallback.set_platform) == ("xcb", "")


def test_macos_and_windows_need_no_check():
    for platform in ("darwin", "win32"):
        host = machine({}, platform=platform)
        assert check(host).platform == "native" and host.ran == []


def test_a_missing_plugin_file_means_pyside6_is_incomplete():
    host = machine({"DISPLAY": ":0"}, files=[X0])
    del host.files[XCB]
    result = check(host)
    assert not result.can_start and "PySide6 is incomplete" in result.problem
    assert "--force-reinstall PySide6-Essentials" in result.fixes[0]


def test_without_ldd_the_window_is_tried_and_the_gap_noted():
    host = machine({"DISPLAY": ":0"}, files=[X0])
    del host.programs["ldd"]
    result = check(host)
    assert result.can_start and "ldd is not installed" in result.notes[0]


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd")
def test_the_real_plugin_is_checked_with_the_real_ldd():
    qt_dir = pyside6_qt_dir()
    assert qt_dir is not None and (qt_dir / "plugins/platforms/libqxcb.so").exists()
    libs = plugin_libraries(Host(), qt_dir, "xcb")
    assert libs.error == ""
    assert all(name.startswith("lib") and ".so" in name for name in libs.missing)


def test_a_chosen_list_ending_on_a_non_window_platform_is_not_blocked():
    host = machine({"QT_QPA_PLATFORM": "xcb;offscreen"})  # no display: Qt ends on offscreen
    assert check(host).can_start and host.ran == []
