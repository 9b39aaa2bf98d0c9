"""Float32 or bfloat16 on this CPU: decided by timing both, once, not by CPU flags.

A CPU that reports avx512_bf16 is not always faster in bfloat16: measured with torch 2.13, a
Zen 4 EPYC runs a 1024² bf16 matmul 2.8x faster than float32, but a Xeon without AMX runs it
at 0.6x, and a whole job there took 17% longer in the "native" bfloat16. So we time what a UNet
step is made of (a matmul and a 3x3 convolution) in both, keep the figures in the cache folder
keyed by the CPU and the torch version, and pick bfloat16 only when it is clearly faster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.host import Host

MATMUL_N = 1024
# (batch, channels, height, width): the 320-channel level of SD1's UNet at a 256² picture.
CONV_INPUT = (1, 320, 32, 32)
# bfloat16 must beat float32 by this: the margin covers timing noise and the parts of a step
# we do not time (norms, softmax), which gain less from bfloat16.
MIN_SPEEDUP = 1.2
BUDGET_SECONDS = 0.5  # no new timing round starts after this
ROUNDS = 3  # extra rounds after the first, at most
CACHE_FILE = "cpu-precision.json"
FILE_VAR = "LATENTDESK_CPU_PRECISION_FILE"


@dataclass(frozen=True)
class CpuTimings:
    """Seconds per operation, the best of a few runs. ``conv_bfloat16`` is None when the
    bfloat16 matmul alone took longer than 1/1.2 of both float32 operations: bfloat16 would
    lose even with a free convolution, so it is not timed."""

    matmul_float32: float
    matmul_bfloat16: float
    conv_float32: float
    conv_bfloat16: float | None

    def gflops(self) -> dict[str, float | None]:
        """Throughput of each timed operation, for people reading the doctor's report."""
        mm = 2 * MATMUL_N**3
        b, c, h, w = CONV_INPUT
        conv = 2 * b * c * c * 9 * h * w
        return {
            "matmul_float32": mm / self.matmul_float32 / 1e9,
            "matmul_bfloat16": mm / self.matmul_bfloat16 / 1e9,
            "conv_float32": conv / self.conv_float32 / 1e9,
            "conv_bfloat16": None
            if self.conv_bfloat16 is None
            else conv / self.conv_bfloat16 / 1e9,
        }


@dataclass(frozen=True)
class CpuPrecision:
    dtype: str  # "bfloat16" or "float32"
    reason: str
    timings: CpuTimings | None
    cached: bool  # True when read from the cache file, not measured in this process


def choose(timings: CpuTimings | None) -> tuple[str, str]:
    """The dtype and the reason, from the figures alone.

    The two operations do about the same work (~2 GFLOP each), and a UNet step is roughly half
    of each, so their summed time stands for a step: bfloat16 must make that sum 1.2x shorter.
    """
    if timings is None:
        return "float32", "bfloat16 could not be timed on this CPU"
    mm = timings.matmul_float32 / timings.matmul_bfloat16
    if timings.conv_bfloat16 is None:
        return "float32", f"bfloat16 runs matmuls at {mm:.2f}x the float32 speed here"
    conv = timings.conv_float32 / timings.conv_bfloat16
    step = (timings.matmul_float32 + timings.conv_float32) / (
        timings.matmul_bfloat16 + timings.conv_bfloat16
    )
    measured = (
        f"bfloat16 runs matmuls at {mm:.2f}x and convolutions at {conv:.2f}x the float32 "
        f"speed ({step:.2f}x together)"
    )
    if step >= MIN_SPEEDUP:
        return "bfloat16", f"{measured} on this CPU"
    return "float32", f"{measured}, short of the {MIN_SPEEDUP}x that pays for bfloat16"


def cpu_precision(
    cache_dir: Path | None = None,
    measure: Callable[[], CpuTimings | None] | None = None,
    host: Host | None = None,
) -> CpuPrecision:
    """The CPU's working precision, measured on first use and then read from the cache."""
    import torch

    cache = cache_file(cache_dir)
    key = cache_key(host or Host(), torch.__version__)
    entries = _read(cache)
    timings = _timings_from(entries.get(key))
    cached = timings is not None
    if timings is None:
        timings = (measure or measure_cpu)()
        if timings is not None:
            entries[key] = asdict(timings) | {"measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
            _write(cache, entries)
    dtype, reason = choose(timings)
    return CpuPrecision(dtype, reason, timings, cached)


def measure_cpu(budget: float = BUDGET_SECONDS) -> CpuTimings | None:
    """Time a 1024² matmul and a UNet-shaped convolution in float32 and bfloat16: one round,
    then more while ``budget`` lasts, keeping each one's best (about 0.3 s on 2 cores). None
    when this torch cannot run bfloat16 on the CPU at all."""
    import torch

    start = time.perf_counter()
    try:
        with torch.inference_mode():
            ops = {
                "mm32": _matmul(torch.float32),
                "conv32": _conv(torch.float32),
                "mm16": _matmul(torch.bfloat16),
                "conv16": _conv(torch.bfloat16),
            }
            best = {name: _seconds(ops[name]) for name in ("mm32", "conv32", "mm16")}
            # Emulated bfloat16 (0.4 s a matmul) loses even with a free convolution: skip it.
            if (best["mm32"] + best["conv32"]) / best["mm16"] < MIN_SPEEDUP:
                del ops["conv16"]
            else:
                best["conv16"] = _seconds(ops["conv16"])
            for _ in range(ROUNDS):  # the first round paid for oneDNN's kernel set-up
                if time.perf_counter() - start > budget:
                    break
                for name, op in ops.items():  # interleaved: a busy moment slows both alike
                    best[name] = min(best[name], _seconds(op))
    except RuntimeError:  # e.g. a build without bfloat16 CPU kernels
        return None
    return CpuTimings(best["mm32"], best["mm16"], best["conv32"], best.get("conv16"))


def _matmul(dtype) -> Callable[[], object]:
    import torch

    g = torch.Generator().manual_seed(0)
    a = torch.randn(MATMUL_N, MATMUL_N, generator=g).to(dtype)
    b = torch.randn(MATMUL_N, MATMUL_N, generator=g).to(dtype)
    return lambda: a @ b


def _conv(dtype) -> Callable[[], object]:
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    # Channels-last, as the engine lays out CPU convolutions (engine.loading.build.conv_layout).
    cl = torch.channels_last
    b, c, h, w = CONV_INPUT
    x = torch.randn(b, c, h, w, generator=g).to(dtype).contiguous(memory_format=cl)
    weight = torch.randn(c, c, 3, 3, generator=g).to(dtype).contiguous(memory_format=cl)
    return lambda: F.conv2d(x, weight, padding=1)


def _seconds(op: Callable[[], object]) -> float:
    start = time.perf_counter()
    op()
    return time.perf_counter() - start


def cpu_model(host: Host) -> str:
    """The CPU's marketing name: "AMD Ryzen 9 7950X", "Apple M2", ..."""
    info = host.read_text("/proc/cpuinfo") or ""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Processor", "cpu model") and value.strip():
            return value.strip()
    if host.platform == "darwin":
        ran = host.run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if ran and ran[0] == 0 and ran[1].strip():
            return ran[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cache_key(host: Host, torch_version: str) -> str:
    """CPU model, a digest of its feature flags, and the torch version. Virtual machines name
    different generations alike ("AMD EPYC"), and a home folder may move between them."""
    flags = ""
    for line in (host.read_text("/proc/cpuinfo") or "").splitlines():
        if line.startswith(("flags", "Features")):
            flags = line.partition(":")[2].strip()
            break
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return f"{cpu_model(host)} | flags {digest} | torch {torch_version}"


def cache_file(cache_dir: Path | None = None) -> Path:
    """Where the figures are kept; deleting it makes the next run measure again.
    ``LATENTDESK_CPU_PRECISION_FILE`` moves it: the test suite shares one measurement across
    tests that each get their own cache folder."""
    if cache_dir is not None:
        return cache_dir / CACHE_FILE
    override = os.environ.get(FILE_VAR)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("latentdesk")) / CACHE_FILE


def _read(file: Path) -> dict[str, object]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing or corrupt: measure again and rewrite it
        return {}
    return data if isinstance(data, dict) else {}


def _timings_from(entry: object) -> CpuTimings | None:
    if not isinstance(entry, dict):
        return None
    names = ("matmul_float32", "matmul_bfloat16", "conv_float32", "conv_bfloat16")
    values = [entry.get(name) for name in names]
    numbers = [v for v in values if isinstance(v, int | float) and v > 0]
    if len(numbers) != 4 and not (len(numbers) == 3 and values[3] is None):
        return None
    return CpuTimings(*values)  # type: ignore[arg-type]


def _write(file: Path, entries: dict[str, object]) -> None:
    """Atomically, and best effort: an unwritable cache only costs a measurement next time."""
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(entries, indent=1), encoding="utf-8")
        os.replace(tmp, file)
    except OSError:
        with contextlib.suppress(OSError):  # the folder itself may be what failed
            tmp.unlink(missing_ok=True)
