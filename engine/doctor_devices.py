"""The doctor's torch section: the build, each device, and the precision chosen on each."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import torch

from engine.cpu_precision import cpu_model
from engine.devices import (
    choose_precision,
    cpu_has_native_bf16,
    dtype_name,
    mps_available,
    pick_device,
)
from engine.gpu_check import cpu_fallback_reason, cuda_status, gpu_problem, read_driver, torch_build
from engine.host import Host
from engine.problem import Problem


def devices_section(host: Host, problems: list[Problem]) -> dict[str, Any]:
    driver = read_driver(host)
    available, said = cuda_status()
    problem = gpu_problem(host, driver)
    if problem is not None:
        problems.append(problem)
    devices = [_cpu(host)] + [
        _cuda(i) for i in range(torch.cuda.device_count() if available else 0)
    ]
    if mps_available():
        devices.append(_device_entry("mps", {"name": "Apple GPU"}))
    engine_device = pick_device()
    return {
        "build": torch_build(),
        "cuda_available": available,
        "cuda_message": said or None,
        "nvidia_driver": asdict(driver) if driver else None,
        "devices": devices,
        "engine_device": str(engine_device),
        "engine_device_note": cpu_fallback_reason(host) if engine_device.type == "cpu" else "",
    }


def _cpu(host: Host) -> dict[str, Any]:
    from engine.cpu_precision import cache_file, cpu_precision

    measured = cpu_precision(host=host)
    timings = measured.timings
    info = {
        "name": cpu_model(host),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "onednn_bf16_instructions": cpu_has_native_bf16(),
        "timings_seconds": asdict(timings) if timings else None,
        "gflops": _rounded(timings.gflops()) if timings else None,
        "timings_cached": measured.cached,
        "timings_file": str(cache_file()),
    }
    # From the measurement above, not choose_precision(): that would read the cache again.
    return {"device": "cpu", **info, "precision": measured.dtype, "why": measured.reason}


def _cuda(index: int) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(index)
    info = {
        "name": props.name,
        "memory_bytes": props.total_memory,
        "compute_capability": f"{props.major}.{props.minor}",
    }
    arch = getattr(props, "gcnArchName", None)  # ROCm: the AMD architecture, e.g. gfx1100
    if arch:
        info["arch"] = arch
    return _device_entry(f"cuda:{index}", info)


def _device_entry(device: str, info: dict[str, Any]) -> dict[str, Any]:
    choice = choose_precision(torch.device(device))
    return {"device": device, **info, "precision": dtype_name(choice.dtype), "why": choice.reason}


def _rounded(values: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 1) for k, v in values.items()}
