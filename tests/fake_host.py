"""A described machine for the diagnostics: files, programs and open ports, all made up."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from engine.host import Host

Program = Callable[[list[str]], tuple[int, str]]

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n'
FEDORA = 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=40\n'
ARCH = 'NAME="Arch Linux"\nID=arch\n'
TUMBLEWEED = 'NAME="openSUSE Tumbleweed"\nID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n'


class FakeHost(Host):
    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        files: Mapping[str, str] | None = None,
        programs: Mapping[str, Program] | None = None,
        tcp: set[tuple[str, int]] | None = None,
        platform: str = "linux",
    ):
        super().__init__(env=dict(env or {}), platform=platform)
        self.files = dict(files or {})  # path -> contents; a path here exists
        self.programs = dict(programs or {})
        self.tcp = tcp or set()
        self.ran: list[list[str]] = []

    def exists(self, path: str) -> bool:
        return path in self.files

    def read_text(self, path: str) -> str | None:
        return self.files.get(path)

    def which(self, program: str) -> str | None:
        return f"/usr/bin/{program}" if program in self.programs else None

    def run(self, argv: list[str], timeout: float = 5.0) -> tuple[int, str] | None:
        self.ran.append(argv)
        program = self.programs.get(argv[0])
        return None if program is None else program(argv)

    def tcp_reachable(self, host: str, port: int, timeout: float = 0.5) -> bool:
        return (host, port) in self.tcp


def ldd_output(missing: list[str], found: tuple[str, ...] = ("libc.so.6",)) -> Program:
    """An ``ldd`` that reports ``missing`` as "not found"."""
    lines = [f"\t{lib} => /lib/x86_64-linux-gnu/{lib} (0x00007f)" for lib in found]
    lines += [f"\t{lib} => not found" for lib in missing]
    return lambda argv: (0, "\n".join(lines) + "\n")
