"""Is the installed torch the right one for this machine's GPU?

The classic first-run trap: `pip install torch` on Linux gives a CUDA build, on a machine
without a GPU it is only large, but a CPU-only build (from the CPU index, or pulled in by
another package) on a machine with an NVIDIA GPU runs everything on the CPU, 20-50x slower,
with no error. So does a CUDA build whose driver is missing or too old. This finds both and
gives the exact command that fixes them.
"""

from __future__ import annotations

import re
import sys
import warnings
from dataclasses import dataclass

from engine.host import Host
from engine.problem import Problem
from engine.system_packages import family_from_os_release

# PyTorch's CUDA wheel indexes, newest first: (tag, CUDA version it is built for).
CUDA_WHEELS = (("cu130", (13, 0)), ("cu128", (12, 8)), ("cu126", (12, 6)))
DEFAULT_WHEEL = "cu128"  # when the driver's CUDA version cannot be read
# Installing the NVIDIA driver, by package manager family (then a reboot).
_DRIVER_INSTALL = {
    "apt": "sudo apt install nvidia-driver    # Ubuntu: sudo ubuntu-drivers install",
    "dnf": "sudo dnf install akmod-nvidia    # from RPM Fusion",
    "pacman": "sudo pacman -S nvidia",
    "zypper": "sudo zypper install nvidia-video-G06",
}


@dataclass(frozen=True)
class NvidiaDriver:
    """What nvidia-smi says; ``error`` holds its message when it runs but fails."""

    cuda: tuple[int, int] | None  # the newest CUDA the driver supports
    version: str
    error: str = ""


def torch_build() -> str:
    """ "CUDA 12.8", "ROCm 6.4", "MPS" (Apple) or "CPU"."""
    import torch

    if torch.version.cuda:
        return f"CUDA {torch.version.cuda}"
    hip = getattr(torch.version, "hip", None)
    if hip:
        return f"ROCm {'.'.join(hip.split('.')[:2])}"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_built():
        return "MPS"
    return "CPU"


def nvidia_present(host: Host) -> bool:
    """An NVIDIA driver is installed: nvidia-smi on PATH or the kernel module's /proc entry."""
    return host.which("nvidia-smi") is not None or host.exists("/proc/driver/nvidia")


def read_driver(host: Host) -> NvidiaDriver | None:
    """Runs nvidia-smi (about 0.1-1 s): only the doctor does, never the engine's start."""
    if host.which("nvidia-smi") is None:
        return None
    ran = host.run(["nvidia-smi"], timeout=10)
    if ran is None:
        return None
    status, text = ran
    if status != 0:
        return NvidiaDriver(None, "", error=text.strip().splitlines()[0] if text.strip() else "")
    cuda = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", text)
    version = re.search(r"Driver Version:\s*([\d.]+)", text)
    return NvidiaDriver(
        (int(cuda[1]), int(cuda[2])) if cuda else None, version[1] if version else ""
    )


def wheel_for(driver_cuda: tuple[int, int] | None) -> str:
    """The newest torch CUDA wheel this driver runs. A driver runs any wheel of its CUDA major
    version (CUDA's minor-version compatibility), so a 12.4 driver gets the oldest 12.x one."""
    if driver_cuda is None:
        return DEFAULT_WHEEL
    for tag, built_for in CUDA_WHEELS:
        if built_for <= driver_cuda:
            return tag
    same_major = [tag for tag, built in CUDA_WHEELS if built[0] == driver_cuda[0]]
    return same_major[-1] if same_major else CUDA_WHEELS[-1][0]


def install_command(tag: str, python: str = sys.executable) -> str:
    # Uninstall first: pip sees "torch" as satisfied by the CPU build and would keep it.
    return (
        f"{python} -m pip uninstall -y torch && "
        f"{python} -m pip install torch --index-url https://download.pytorch.org/whl/{tag}"
    )


def cuda_status() -> tuple[bool, str]:
    """torch.cuda.is_available(), and torch's own warning when it is not (e.g. "The NVIDIA
    driver on your system is too old (found version 11040)")."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    said = [str(w.message).strip() for w in caught if "CUDA" in str(w.message)]
    return available, said[0].splitlines()[0] if said else ""


def gpu_problem(host: Host, driver: NvidiaDriver | None = None) -> Problem | None:
    """What keeps an NVIDIA GPU idle, with the fix; None when there is nothing to fix."""
    if not nvidia_present(host):
        return None
    build = torch_build()
    if build in ("CPU", "MPS"):
        cuda = driver.cuda if driver else None
        fix = install_command(wheel_for(cuda))
        oldest = CUDA_WHEELS[-1][1]
        if cuda is not None and cuda[0] < oldest[0]:  # no current wheel runs on this driver
            fix = (
                f"Update the NVIDIA driver (it supports CUDA {cuda[0]}.{cuda[1]}; torch's "
                f"wheels need {oldest[0]}.x), then: {fix}"
            )
        return Problem(
            "An NVIDIA GPU is present, but the installed torch is a CPU-only build: "
            "everything runs on the CPU, many times slower.",
            fix,
        )
    if not build.startswith("CUDA"):
        return None
    available, said = cuda_status()
    if available:
        return None
    return _driver_problem(host, driver, said)


def _driver_problem(host: Host, driver: NvidiaDriver | None, said: str) -> Problem:
    import torch

    built = tuple(int(p) for p in (torch.version.cuda or "0.0").split(".")[:2])
    detail = f" (torch says: {said})" if said else ""
    if driver is not None and driver.cuda is not None and driver.cuda[0] < built[0]:
        have = f"{driver.cuda[0]}.{driver.cuda[1]}"
        return Problem(
            f"This torch is built for CUDA {torch.version.cuda}, but the NVIDIA driver "
            f"({driver.version}) supports CUDA {have} at most{detail}.",
            f"Update the NVIDIA driver, or install the torch for it: "
            f"{install_command(wheel_for(driver.cuda))}",
        )
    family = family_from_os_release(host.read_text("/etc/os-release"))
    install = _DRIVER_INSTALL.get(family or "", "install your distribution's NVIDIA driver")
    why = f": {driver.error}" if driver is not None and driver.error else detail
    return Problem(
        f"An NVIDIA GPU is present and torch is a CUDA build, but the driver is not working{why}.",
        f"{install}, then reboot (check with: nvidia-smi)",
    )


def cpu_fallback_reason(host: Host | None = None) -> str:
    """Why the engine runs on the CPU, in a few words for the status bar. Cheap: it looks for
    the driver but does not run nvidia-smi."""
    import torch

    host = host or Host()
    build = torch_build()
    if nvidia_present(host):
        if build in ("CPU", "MPS"):
            return "the NVIDIA GPU is unused because torch is a CPU-only build"
        return "torch cannot use the NVIDIA GPU (driver missing or too old)"
    if build.startswith("ROCm") and not torch.cuda.is_available():
        return "torch is a ROCm build but no usable AMD GPU was found"
    return "no supported GPU found"
