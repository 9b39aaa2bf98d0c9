"""The wrong torch for the machine: found, explained, with the exact command that fixes it."""

from __future__ import annotations

import sys

import pytest
import torch

from engine.gpu_check import (
    cpu_fallback_reason,
    gpu_problem,
    read_driver,
    torch_build,
    wheel_for,
)
from tests.fake_host import DEBIAN, FakeHost

SMI = """+-----------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.14    Driver Version: 550.54.14    CUDA Version: {cuda}     |
|   0  NVIDIA GeForce RTX 3060   Off | 00000000:01:00.0  On |                  N/A |
"""
SMI_FAILS = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)


def nvidia(cuda: str = "12.4") -> FakeHost:
    return FakeHost(
        files={"/etc/os-release": DEBIAN},
        programs={"nvidia-smi": lambda argv: (0, SMI.format(cuda=cuda))},
    )


@pytest.fixture
def cpu_torch(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: False)


@pytest.fixture
def cuda_torch_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.8")

    def unavailable():
        import warnings

        warnings.warn(
            "CUDA initialization: The NVIDIA driver on your system is too old "
            "(found version 11040).",
            UserWarning,
            stacklevel=2,
        )
        return False

    monkeypatch.setattr(torch.cuda, "is_available", unavailable)


def test_cpu_torch_with_an_nvidia_gpu_gets_the_cuda_install_command(cpu_torch):
    problem = gpu_problem(nvidia("12.4"), read_driver(nvidia("12.4")))
    assert problem is not None and "CPU-only build" in problem.what
    assert problem.fix == (
        f"{sys.executable} -m pip uninstall -y torch && {sys.executable} -m pip install torch "
        "--index-url https://download.pytorch.org/whl/cu126"
    )


def test_a_gpu_seen_only_in_proc_gets_the_default_wheel(cpu_torch):
    host = FakeHost(files={"/proc/driver/nvidia": ""})
    problem = gpu_problem(host, read_driver(host))
    assert problem is not None and problem.fix.endswith("/whl/cu128")


def test_a_driver_too_old_for_any_wheel_is_named_first(cpu_torch):
    host = nvidia("11.4")
    problem = gpu_problem(host, read_driver(host))
    assert problem is not None
    assert problem.fix.startswith("Update the NVIDIA driver (it supports CUDA 11.4")


def test_no_nvidia_gpu_no_problem(cpu_torch):
    assert gpu_problem(FakeHost()) is None


def test_cuda_torch_with_a_driver_too_old(cuda_torch_without_gpu):
    host = nvidia("11.4")
    problem = gpu_problem(host, read_driver(host))
    assert problem is not None
    assert "built for CUDA 12.8" in problem.what and "supports CUDA 11.4" in problem.what
    assert "found version 11040" in problem.what  # torch's own words, kept
    assert "Update the NVIDIA driver" in problem.fix and "/whl/" in problem.fix


def test_cuda_torch_with_a_driver_that_does_not_answer(cuda_torch_without_gpu):
    host = FakeHost(
        files={"/etc/os-release": DEBIAN},
        programs={"nvidia-smi": lambda argv: (9, SMI_FAILS)},
    )
    driver = read_driver(host)
    assert driver is not None and driver.cuda is None and "couldn't communicate" in driver.error
    problem = gpu_problem(host, driver)
    assert problem is not None and "driver is not working" in problem.what
    assert problem.fix.startswith("sudo apt install nvidia-driver")
    assert "reboot" in problem.fix


@pytest.mark.parametrize(
    ("cuda", "tag"),
    [
        ((13, 1), "cu130"),
        ((12, 9), "cu128"),
        ((12, 8), "cu128"),
        ((12, 6), "cu126"),
        ((12, 2), "cu126"),
        (None, "cu128"),
    ],
)
def test_wheel_for_the_driver(cuda, tag):
    assert wheel_for(cuda) == tag


def test_the_status_bar_reason(cpu_torch):
    assert (
        cpu_fallback_reason(nvidia())
        == "the NVIDIA GPU is unused because torch is a CPU-only build"
    )
    assert cpu_fallback_reason(FakeHost()) == "no supported GPU found"


def test_the_status_bar_reason_for_a_cuda_build(cuda_torch_without_gpu):
    assert "driver missing or too old" in cpu_fallback_reason(nvidia())


def test_build_name_follows_torch(monkeypatch, cpu_torch):
    assert torch_build() == "CPU"
    monkeypatch.setattr(torch.version, "hip", "6.4.43482-0f2d60242")
    assert torch_build() == "ROCm 6.4"
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    assert torch_build() == "CUDA 12.8"
