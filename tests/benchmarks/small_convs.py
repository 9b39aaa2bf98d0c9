"""The UNet's small convolutions as one matrix product (``engine.models.conv``), measured.

    python -m tests.benchmarks.small_convs [--sizes 256 512] [--rounds 4] [--precision P]

One guided UNet step (batch 2) of the full-size random SD1.5, three ways in one process and in
turn, round after round: the engine as it runs (convolutions at 8x8 latent pixels or fewer as
one GEMM), the engine with every convolution left to torch (``SMALL_PIXELS = 0``, the build
before), and diffusers' UNet on the same weights and inputs. Default precision: what the engine
picks on this CPU (bfloat16 where it measured it faster); diffusers runs the same dtype. Also
prints how far the two engine ways' denoised outputs lie apart (the same sums in another order).
Results: ``tests/benchmarks/results/small_convs.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from engine.models import conv
from tests.benchmarks.bench import default_cpu_precision
from tests.benchmarks.checkpoints import ensure_diffusers_folder, ensure_full_checkpoint
from tests.benchmarks.startup import machine
from tests.benchmarks.workloads import DTYPES, Steps, checkpoint_path, load_diffusers

RESULTS = Path(__file__).resolve().parent / "results" / "small_convs.json"


def measure(steps: Steps, size: int, rounds: int) -> dict:
    small = conv.SMALL_PIXELS
    ways = {  # name: (SMALL_PIXELS while it runs, the step)
        "engine": (small, steps.engine),
        "engine, all convolutions": (0, steps.engine),
        "diffusers": (small, steps.diffusers),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    outputs: dict[str, torch.Tensor] = {}
    try:
        for r in range(rounds + 1):  # round 0 warms every way up and is not counted
            for name, (pixels, step) in ways.items():
                conv.SMALL_PIXELS = pixels
                start = time.perf_counter()
                outputs[name] = step(size)
                if r:
                    times[name].append(time.perf_counter() - start)
    finally:
        conv.SMALL_PIXELS = small
    apart = (outputs["engine"] - outputs["engine, all convolutions"]).abs()
    from_diffusers = (outputs["engine, all convolutions"] - outputs["diffusers"]).abs()
    return {
        "seconds": times,
        "max_abs_difference": float(apart.max()),
        "max_abs_difference_convolutions_vs_diffusers": float(from_diffusers.max()),
        "output_abs_mean": float(outputs["engine"].abs().mean()),
    }


def report(size: int, result: dict) -> None:
    medians = {name: statistics.median(t) for name, t in result["seconds"].items()}
    base = medians["engine, all convolutions"]
    print(f"\n{size}², one guided UNet step (medians of {len(result['seconds']['engine'])}):")
    for name, seconds in medians.items():
        print(f"  {name}: {seconds:.3f} s ({seconds / base:.2f} of all-convolutions)")
    print(f"  engine / diffusers: {medians['engine'] / medians['diffusers']:.2f}")
    # Guidance 7.5 at sigma 4 magnifies rounding 30-fold: read it beside engine vs diffusers.
    print(
        f"  denoised output (mean |x| {result['output_abs_mean']:.2f}), max |diff|: product vs "
        f"convolution {result['max_abs_difference']:.2e}; all-convolutions engine vs diffusers "
        f"{result['max_abs_difference_convolutions_vs_diffusers']:.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--precision", choices=sorted(DTYPES), default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    ensure_full_checkpoint(), ensure_diffusers_folder()
    precision = args.precision or default_cpu_precision()
    from engine.loading.build import load_bundle

    started = time.perf_counter()
    dtype = DTYPES[precision]
    bundle = load_bundle(checkpoint_path(), torch.device("cpu"), dtype)
    pipe, _ = load_diffusers(precision)
    steps = Steps(bundle, pipe, dtype)
    info = machine()
    print(
        f"CPU: {info['cpu']}, {info['cores']} cores, avx512_bf16={info['avx512_bf16']}; "
        f"{precision} on both sides (engine default here: {info['engine_cpu_precision']})"
    )
    results: dict = {"machine": info, "precision": precision, "sizes": {}}
    with torch.inference_mode():
        for size in args.sizes:
            results["sizes"][str(size)] = measure(steps, size, args.rounds)
            report(size, results["sizes"][str(size)])
    results["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"({results['seconds'] / 60:.1f} min; JSON in {args.out})")


if __name__ == "__main__":
    main()
