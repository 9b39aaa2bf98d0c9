"""Engine vs diffusers on the same random full-size SD1.5 weights, on this machine, in one run.

    python -m tests.benchmarks.bench [--quick] [--out tests/benchmarks/results/latest.json]

Engine and diffusers alternate (run after run, step after step), so a machine that other jobs
slow down slows both sides alike: the ratios (engine / diffusers, lower is better) are what to
read, not the absolute seconds. Whole-process runs start each side in a fresh Python process
and time it from outside. A full run takes about 20 minutes on 2 cores, --quick about 5.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.benchmarks.checkpoints import ensure_diffusers_folder, ensure_full_checkpoint

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
SIDES = ("engine", "diffusers")


@dataclass(frozen=True)
class Plan:
    """How much to measure: --quick trims repetitions, the 512 sizes, img2img and bf16."""

    load_reps: int
    txt2img_reps: int
    img2img_reps: int
    step_sizes: tuple[int, ...]
    step_reps: int
    decode_size: int
    preview_ab_reps: int
    bf16_size: int  # 0: skip the bf16 comparison


FULL = Plan(3, 3, 2, (256, 512), 3, 512, 2, 128)
QUICK = Plan(1, 1, 0, (256,), 2, 256, 0, 0)


def run_child(task: str, args: dict, image_out: Path | None = None) -> tuple[dict, float]:
    """Run one workload in a fresh interpreter; return its RESULT and its wall time."""
    cmd = [sys.executable, "-m", "tests.benchmarks.workloads", task, json.dumps(args)]
    if image_out is not None:
        cmd.append(str(image_out))
    env = dict(os.environ, PYTHONWARNINGS="ignore", TRANSFORMERS_VERBOSITY="error")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=_repo_root())
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{task} {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT ")), wall


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def warm_page_cache(*paths: Path) -> None:
    """Read every weight file once, so neither side's first load pays for the disk."""
    for path in paths:
        for file in [path] if path.is_file() else sorted(path.rglob("*.safetensors")):
            with open(file, "rb") as f:
                while f.read(64 << 20):
                    pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- measurements -----------------------------------------------------------------------------


def measure_load(reps: int) -> dict:
    out: dict = {side: [] for side in SIDES}
    for i in range(reps):
        for side in SIDES:
            result, _ = run_child("load", {"side": side, "precision": "float32"})
            out[side].append(result)
            peak = result["peak_rss"] / 1e9
            log(f"load {side} #{i}: {result['seconds']:.1f} s, peak {peak:.2f} GB")
    return out


def measure_generate(mode: str, reps: int, precision: dict[str, str], tmp: Path) -> dict:
    """Whole-process runs, alternating sides; keeps the last images for a parity check."""
    out: dict = {side: {"wall": [], "phases": []} for side in SIDES}
    for i in range(reps):
        for side in SIDES:
            args = {"side": side, "precision": precision[side], "mode": mode}
            args |= {"size": 256, "steps": 10}
            image = tmp / f"{mode}-{side}.npy"
            phases, wall = run_child("generate", args, image)
            out[side]["wall"].append(wall)
            out[side]["phases"].append(phases)
            log(f"{mode} {side} ({precision[side]}) #{i}: {wall:.1f} s")
    images = [np.load(tmp / f"{mode}-{side}.npy") for side in SIDES]
    out["psnr_engine_vs_diffusers"] = psnr(*images)
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def default_cpu_precision() -> str:
    import torch

    from engine.devices import dtype_name, pick_dtype

    return dtype_name(pick_dtype(torch.device("cpu"), "auto"))


# -- report -----------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values)


def rows(results: dict) -> list[tuple[str, float, float | None, str]]:
    """(what, engine median, diffusers median or None, unit) for the table."""
    table = []
    load = results["load"]
    table.append(("load to ready (s)", med([r["seconds"] for r in load["engine"]]),
                  med([r["seconds"] for r in load["diffusers"]]), "s"))  # fmt: skip
    table.append(("peak RSS while loading / model size", _rss_ratio(load["engine"]),
                  _rss_ratio(load["diffusers"]), "x"))  # fmt: skip
    for key, label in (("txt2img", "whole-process txt2img 256², 10 steps, fp32"),
                       ("img2img", "whole-process img2img 256², 7 of 10 steps, fp32")):  # fmt: skip
        if key in results:
            gen = results[key]
            table.append((label, med(gen["engine"]["wall"]), med(gen["diffusers"]["wall"]), "s"))
    micro = results["micro"]
    for key, value in micro.items():
        if key.startswith(("unet_step_", "vae_decode_")):
            label = key.replace("unet_step_", "UNet step with guidance ").replace(
                "vae_decode_", "VAE decode "
            )
            table.append((label + "², fp32", med(value["engine"]), med(value["diffusers"]), "s"))
    for key, value in micro.items():
        if key.startswith("unet_step_"):
            size = key.removeprefix("unet_step_")
            gflops = micro[f"unet_flops_{size}"] / 1e9
            e = gflops / med(value["engine"]) / micro["matmul_peak_gflops"]
            d = gflops / med(value["diffusers"]) / micro["matmul_peak_gflops"]
            table.append((f"UNet step {size}² fp32, share of matmul peak", e, d, "%"))
    if "bf16" in results:
        bf = results["bf16"]
        size = results["plan"]["bf16_size"]
        label = f"UNet step with guidance {size}², bf16 (one each)"
        table.append((label, bf["engine"][0], bf["diffusers"][0], "s"))
        gflops = bf["flops"] / 1e9
        table.append((f"UNet step {size}² bf16, share of bf16 matmul peak",
                      gflops / bf["engine"][0] / bf["matmul_peak_gflops"],
                      gflops / bf["diffusers"][0] / bf["matmul_peak_gflops"], "%"))  # fmt: skip
    return table


def _rss_ratio(loads: list[dict]) -> float:
    return max(r["peak_rss"] for r in loads) / loads[0]["model_bytes"]


def format_table(table: list[tuple[str, float, float | None, str]]) -> str:
    lines = ["| measurement | engine | diffusers | engine/diffusers |", "|---|---:|---:|---:|"]
    for what, e, d, unit in table:
        fmt = (lambda v: f"{100 * v:.1f}%") if unit == "%" else (lambda v: f"{v:.2f}")
        ratio = f"{e / d:.2f}" if d else "-"
        lines.append(f"| {what} | {fmt(e)} | {fmt(d) if d is not None else '-'} | {ratio} |")
    return "\n".join(lines)


def notes(results: dict) -> list[str]:
    out = []
    prev = results["micro"]["previews"]
    gen = results["txt2img"]["engine"]["phases"]
    sample = med([p["sample"] for p in gen])
    share = 10 * prev["per_preview_seconds"] / sample
    out.append(f"preview cost, 10 cheap previews / sampling time: {100 * share:.2f}%")
    if "with" in prev:
        ab = med(prev["with"]) / med(prev["without"]) - 1
        out.append(f"preview cost, whole runs with vs without previews: {100 * ab:+.1f}%")
    for key in ("txt2img", "img2img"):
        if key in results:
            psnr_value = results[key]["psnr_engine_vs_diffusers"]
            out.append(f"{key}: PSNR engine vs diffusers image {psnr_value:.1f} dB")
    out.append(f"default CPU precision here: {results['default_precision']}")
    if "bf16" in results:
        error = results["bf16"]["rel_error_vs_fp32"]
        out.append(f"bf16 UNet step relative error vs fp32 (engine): {error:.2e}")
    else:
        out.append("bf16 comparison skipped (--quick)")
    out.append("bf16 whole-process runs skipped: emulated bf16 (no AVX512-BF16/AMX) takes many")
    out.append("minutes per image on both sides; see the bf16 step row instead")
    return out


def machine() -> dict:
    import torch

    flags = Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0]
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, about 5 minutes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    warm_page_cache(ensure_full_checkpoint(), ensure_diffusers_folder())
    started = time.perf_counter()
    results: dict = {"plan": plan.__dict__, "machine": machine()}
    results["default_precision"] = default_cpu_precision()
    fp32 = {"engine": "float32", "diffusers": "float32"}
    with tempfile.TemporaryDirectory() as tmp:
        results["load"] = measure_load(plan.load_reps)
        results["txt2img"] = measure_generate("txt2img", plan.txt2img_reps, fp32, Path(tmp))
        if plan.img2img_reps:
            results["img2img"] = measure_generate("img2img", plan.img2img_reps, fp32, Path(tmp))
    micro_args = {"precision": "float32", "sizes": list(plan.step_sizes)}
    micro_args |= {"decode_size": plan.decode_size, "reps": plan.step_reps}
    micro_args["ab"] = plan.preview_ab_reps
    results["micro"], _ = run_child("micro", micro_args)
    log("micro done")
    if plan.bf16_size:
        results["bf16"], _ = run_child("bf16", {"size": plan.bf16_size})
    results["seconds"] = time.perf_counter() - started
    table = rows(results)
    results["table"] = [
        dict(zip(("what", "engine", "diffusers", "unit"), r, strict=True)) for r in table
    ]
    print(format_table(table))
    print("\n".join(notes(results)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"({results['seconds'] / 60:.1f} min; JSON in {args.out})")


if __name__ == "__main__":
    main()
