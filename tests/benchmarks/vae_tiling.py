"""Peak memory of a big VAE decode, tiled and untiled, beside diffusers' AutoencoderKL.

    python -m tests.benchmarks.vae_tiling [--size 2048] [--dtype auto] [--out FILE]

The VAE: the full-size random SD1 VAE of ``checkpoints.py`` (for diffusers, the same weights from
its diffusers folder). Each of the four runs (engine untiled / tiled, diffusers untiled /
``enable_tiling()``) is its own process, so no run's memory shows in another's figure; a run
loads the VAE alone, decodes one (1, 4, size/8, size/8) latent, and reports the peak RSS of the
process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and its growth over the RSS just before
the decode. Precision: ``--dtype auto`` is what ``Engine(device="cpu")`` picks on this machine
(``engine.cpu_precision``: bfloat16 only where it is clearly faster), used by both sides.
Also printed: PSNR of each side's tiled decode against its untiled one (the same latent).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.benchmarks.checkpoints import (
    DEFAULT_CACHE,
    ensure_diffusers_folder,
    ensure_full_checkpoint,
)

RESULTS = Path(__file__).resolve().parent / "results" / "vae_tiling.json"
# diffusers' tiled decode last: at 2048² it is by far the slowest.
RUNS = (("engine", True), ("engine", False), ("diffusers", False), ("diffusers", True))


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _latent(size: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(1, 4, size // 8, size // 8, generator=gen) / 0.18215  # unscaled


def engine_vae(checkpoint: Path, dtype: torch.dtype):
    from safetensors.torch import load_file

    from engine.models.vae import AutoencoderKL, VAEConfig

    prefix = "first_stage_model."
    sd = {
        k[len(prefix) :]: v for k, v in load_file(str(checkpoint)).items() if k.startswith(prefix)
    }
    with torch.device("meta"):
        vae = AutoencoderKL(VAEConfig())
    vae.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, strict=True, assign=True)
    return vae.eval()


def child(side: str, tiled: bool, size: int, dtype_name: str, out: Path, cap_gb: float) -> dict:
    """One decode; the address space is capped at ``cap_gb`` so that a decode needing more
    fails in this process instead of pushing a shared machine into swap or the OOM killer."""
    cap = int(cap_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    dtype = getattr(torch, dtype_name)
    cache = DEFAULT_CACHE
    if side == "engine":
        from engine.models.vae_tiling import tiled_decode

        vae = engine_vae(ensure_full_checkpoint(cache), dtype)
        decode = (lambda z: tiled_decode(vae, z)) if tiled else vae.decode
    else:
        from diffusers import AutoencoderKL

        twin = AutoencoderKL.from_pretrained(
            str(ensure_diffusers_folder(cache) / "vae"), torch_dtype=dtype
        ).eval()
        if tiled:
            twin.enable_tiling()
            # As SD1.5's own VAE config (sample_size 512): 512-pixel tiles, 64 latent pixels.
            # The random folder says 64, which would make 64-pixel tiles.
            twin.tile_sample_min_size, twin.tile_latent_min_size = 512, 64
        decode = lambda z: twin.decode(z).sample  # noqa: E731
    z = _latent(size).to(dtype)
    before, peak_before = _rss(), _peak()
    start = time.perf_counter()
    image, failed = None, ""
    try:
        with torch.inference_mode():
            image = decode(z)
    except (MemoryError, RuntimeError) as e:  # the address-space cap: "needs more than that"
        failed = str(e).splitlines()[0][:200]
    seconds = time.perf_counter() - start
    if image is not None:
        torch.save(image.float().clone(), out)
    return {
        "out_of_memory": failed,
        "side": side,
        "tiled": tiled,
        "size": size,
        "dtype": dtype_name,
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "rss_before": before,
        "peak_rss": _peak(),
        "peak_before_decode": peak_before,
        "peak_growth": _peak() - before,
    }


def psnr(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """Over images in [-1, 1] (peak-to-peak 2), clamped as they would be saved."""
    a, b = ours.clamp(-1, 1), reference.clamp(-1, 1)
    mse = float((a - b).double().square().mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(4.0 / mse)).item()


def engine_dtype_name() -> str:
    from engine.devices import dtype_name, pick_device, pick_dtype

    return dtype_name(pick_dtype(pick_device("cpu")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--dtype", default="auto", help="auto, float32 or bfloat16")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--only", nargs="*", help="runs to make, e.g. engine-tiled")
    parser.add_argument(
        "--cap-gb", type=float, default=12.0, help="address-space cap of each run (GiB)"
    )
    parser.add_argument("--child", nargs=4, metavar=("SIDE", "TILED", "DTYPE", "IMAGE"))
    args = parser.parse_args()
    if args.child:
        side, tiled, dtype_name, image = args.child
        result = child(side, tiled == "1", args.size, dtype_name, Path(image), args.cap_gb)
        print("RESULT " + json.dumps(result), flush=True)
        return
    dtype_name = engine_dtype_name() if args.dtype == "auto" else args.dtype
    ensure_diffusers_folder(DEFAULT_CACHE)
    from engine.devices import cpu_has_native_bf16

    report: dict = {"size": args.size, "dtype": dtype_name, "native_bf16": cpu_has_native_bf16()}
    images: dict[str, torch.Tensor] = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for side, tiled in RUNS:
        name = f"{side}-{'tiled' if tiled else 'untiled'}"
        if args.only and name not in args.only:
            continue
        image_file = args.out.parent / f".{name}.pt"
        cmd = [sys.executable, "-m", "tests.benchmarks.vae_tiling", "--size", str(args.size)]
        cmd += ["--cap-gb", str(args.cap_gb)]
        cmd += ["--child", side, "1" if tiled else "0", dtype_name, str(image_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[2])
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            report[name] = {"failed": proc.returncode, "stderr": proc.stderr[-2000:]}
        else:
            report[name] = json.loads(lines[-1].removeprefix("RESULT "))
            if image_file.exists():
                images[name] = torch.load(image_file)
                image_file.unlink()
        print(name, json.dumps(report[name]), flush=True)
    for side in ("engine", "diffusers"):
        if f"{side}-tiled" in images and f"{side}-untiled" in images:
            report[f"{side}_tiled_psnr_db"] = psnr(
                images[f"{side}-tiled"], images[f"{side}-untiled"]
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if not isinstance(v, dict)}, indent=2))


if __name__ == "__main__":
    main()
