"""Applying and removing one LoRA on full-size SD1.5: time and extra memory, beside diffusers.

    python -m tests.benchmarks.lora_apply [--cache DIR] [--rounds 2] [--reps 3] [--out FILE]

The model: the random full-size SD1.5 file of ``checkpoints.py`` (and, for diffusers, the same
weights as a diffusers folder). The LoRA: random, rank 32, kohya format (fp16 safetensors, real
key names from tests/data/checkpoint-keys/LoRA-v1-*), on every attention projection of the UNet
(attn1 and attn2 to_q, to_k, to_v, to_out.0: 128 layers) and every CLIP layer (q, k, v, out,
fc1, fc2: 72 layers). Both sides run in the precision the engine picks on this machine
(``engine.cpu_precision``: bfloat16 where the CPU has native bf16, else float32), each in its own
process, so neither one's memory shows in the other's figures; the sides alternate for
``--rounds`` rounds (each loads the model once and repeats apply/remove ``--reps`` times), so a
machine that other jobs slow down slows both: read the ratios.

- engine: apply = ``LoraManager.prepare`` of a prompt with the tag (reads the file, maps the
  keys, writes the weights; the first apply also hashes the file for the metadata, reported
  apart); remove = ``prepare`` of the prompt without it; the same request twice is a no-op.
- diffusers: apply = ``load_lora_weights`` + ``fuse_lora(lora_scale=0.8)``; remove =
  ``unfuse_lora`` + ``unload_lora_weights``.

Memory: RSS growth (VmRSS) over the model alone, with the LoRA applied and after removal, and
the peak during an apply (VmHWM, reset first); for the engine also the bytes it keeps to remove
the LoRA exactly. Exactness: how many weights differ from the base after apply-then-remove.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from tests.benchmarks.checkpoints import (
    DEFAULT_CACHE,
    ensure_diffusers_folder,
    ensure_full_checkpoint,
)
from tests.factories import reference_shapes

LORA_NAME = "bench-rank32"
RANK = 32
WEIGHT = 0.8
RESULTS = Path(__file__).resolve().parent / "results" / "lora_apply.json"


def ensure_lora(cache: Path) -> Path:
    """The benchmark LoRA, written once: real kohya names, random fp16 factors, alpha 16."""
    from safetensors.torch import save_file

    path = cache / "loras" / f"{LORA_NAME}.safetensors"
    if path.exists():
        return path
    shapes = reference_shapes("LoRA-v1-UNET") | reference_shapes("LoRA-v1-CLIP")
    wanted = [
        k for k in shapes if k.startswith("lora_te_") or ("_attn1_to_" in k or "_attn2_to_" in k)
    ]
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for key in wanted:
        shape = tuple(RANK if d == -1 else d for d in shapes[key])
        tensors[key] = (torch.randn(shape, generator=gen) * 0.02).half()
        tensors[key.split(".")[0] + ".alpha"] = torch.tensor(16.0).half()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


# --- measuring ---------------------------------------------------------------------------------


def _status(field: str) -> int:
    """A /proc/self/status memory field, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss() -> int:
    gc.collect()
    return _status("VmRSS")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def peak() -> int:
    return _status("VmHWM")


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _weights(modules) -> dict[str, torch.Tensor]:
    return {f"{i}.{k}": v for i, m in enumerate(modules) for k, v in m.state_dict().items()}


def _differing(base: dict[str, torch.Tensor], now: dict[str, torch.Tensor]) -> dict:
    changed = [k for k in base if not torch.equal(base[k], now[k])]
    worst = max((float((base[k].float() - now[k].float()).abs().max()) for k in changed), default=0)
    return {"weights_not_restored": len(changed), "max_abs_error": worst}


# --- the two sides -----------------------------------------------------------------------------


def engine_side(checkpoint: Path, lora: Path, reps: int) -> dict:
    from engine.devices import dtype_name, pick_device, pick_dtype
    from engine.library import LibraryConfig, ModelLibrary
    from engine.loading.build import load_bundle
    from engine.lora.manager import LoraManager

    device = pick_device("cpu")
    dtype = pick_dtype(device)  # what Engine(device="cpu") runs in here
    bundle = load_bundle(checkpoint, device, dtype)
    tmp = Path(tempfile.mkdtemp(prefix="lora-bench-"))
    library = ModelLibrary(
        LibraryConfig(folders=[str(lora.parent)]),
        home=tmp,
        env={},
        cache_path=tmp / "scan.json",
        config_path=tmp / "library.json",
        models_dir=tmp / "models",
    )
    library.scan()
    manager = LoraManager(bundle, lambda: library, tmp / "hashes.json")
    tagged, plain = f"a cat <lora:{LORA_NAME}:{WEIGHT}>", "a cat"
    base = {k: v.clone() for k, v in _weights([bundle.unet, bundle.text_encoder.model]).items()}
    before = rss()
    reset_peak()
    first_apply = _timed(lambda: manager.prepare(tagged))  # also hashes the file (once)
    result = {
        "side": "engine",
        "dtype": dtype_name(dtype),
        "threads": torch.get_num_threads(),
        "weights_patched": manager.patcher.patched,
        "kept_bytes": manager.patcher.kept_bytes,
        "rss_applied": rss() - before,
        "peak_apply": peak() - before,
        "first_apply_with_hash_s": first_apply,
    }
    result["remove_s"] = [_timed(lambda: manager.prepare(plain))]
    result["rss_removed"] = rss() - before
    result["apply_s"] = []
    for _ in range(reps):
        result["apply_s"].append(_timed(lambda: manager.prepare(tagged)))
        result.setdefault("same_request_s", _timed(lambda: manager.prepare(tagged)))
        result["remove_s"].append(_timed(lambda: manager.prepare(plain)))
    result["rss_removed_last"] = rss() - before  # after reps: the freed memory is reused
    now = _weights([bundle.unet, bundle.text_encoder.model])
    return result | _differing(base, now)


def diffusers_side(folder: Path, lora: Path, dtype_name: str, reps: int) -> dict:
    from diffusers import StableDiffusionPipeline

    dtype = getattr(torch, dtype_name)
    pipe = StableDiffusionPipeline.from_pretrained(
        str(folder), torch_dtype=dtype, safety_checker=None, requires_safety_checker=False
    )
    base = {k: v.clone() for k, v in _weights([pipe.unet, pipe.text_encoder]).items()}
    before = rss()
    result: dict = {"side": "diffusers", "dtype": dtype_name, "threads": torch.get_num_threads()}
    result |= {"load_s": [], "fuse_s": [], "unfuse_s": [], "unload_s": []}
    for rep in range(reps + 1):
        reset_peak()
        result["load_s"].append(_timed(lambda: pipe.load_lora_weights(str(lora), "bench")))
        result["fuse_s"].append(_timed(lambda: pipe.fuse_lora(lora_scale=WEIGHT)))
        if rep == 0:
            result["rss_applied"] = rss() - before
            result["peak_apply"] = peak() - before
        result["unfuse_s"].append(_timed(pipe.unfuse_lora))
        result["unload_s"].append(_timed(pipe.unload_lora_weights))
        if rep == 0:
            result["rss_removed"] = rss() - before
            result |= _differing(base, _weights([pipe.unet, pipe.text_encoder]))
    result["rss_removed_last"] = rss() - before
    return result


# --- driver --------------------------------------------------------------------------------------


def _child(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "tests.benchmarks.lora_apply", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[2])
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def _mib(n: float) -> str:
    return f"{n / 2**20:8.1f} MiB"


def report(ours_runs: list[dict], theirs_runs: list[dict]) -> str:
    """Medians over every repetition of every round; memory and exactness from the first."""
    med = statistics.median
    ours, theirs = ours_runs[0], theirs_runs[0]
    ours_apply = med(t for r in ours_runs for t in r["apply_s"])
    ours_remove = med(t for r in ours_runs for t in r["remove_s"][1:])
    theirs_apply = med(
        a + b for r in theirs_runs for a, b in zip(r["load_s"][1:], r["fuse_s"][1:], strict=True)
    )
    theirs_remove = med(
        a + b
        for r in theirs_runs
        for a, b in zip(r["unfuse_s"][1:], r["unload_s"][1:], strict=True)
    )
    first_apply = med(r["first_apply_with_hash_s"] for r in ours_runs)
    same = med(r["same_request_s"] for r in ours_runs)

    def row(label: str, a: str, b: str = "") -> str:
        return f"{label:28}{a:>14}{b:>14}"

    def mem(key: str) -> str:
        return row(key.replace("_", " "), _mib(ours[key]), _mib(theirs[key]))

    lines = [
        f"dtype {ours['dtype']}, {ours['threads']} threads, {ours['weights_patched']} weights",
        row("", "engine", "diffusers"),
        row("apply (s, median)", f"{ours_apply:.3f}", f"{theirs_apply:.3f}"),
        row("remove (s, median)", f"{ours_remove:.3f}", f"{theirs_remove:.3f}"),
        row("ratio engine/diffusers", f"{ours_apply / theirs_apply:.2f}", "(apply)"),
        row("", f"{ours_remove / theirs_remove:.2f}", "(remove)"),
        row("first apply incl. hash (s)", f"{first_apply:.3f}"),
        row("same request again (s)", f"{same:.4f}"),
        row("kept for removal", _mib(ours["kept_bytes"])),
        mem("rss_applied"),
        mem("peak_apply"),
        mem("rss_removed"),
        mem("rss_removed_last"),
        row(
            "weights not restored",
            str(ours["weights_not_restored"]),
            str(theirs["weights_not_restored"]),
        ),
        row(
            "max abs error after remove",
            f"{ours['max_abs_error']:.3g}",
            f"{theirs['max_abs_error']:.3g}",
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--side", choices=("engine", "diffusers"), help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    checkpoint, lora = ensure_full_checkpoint(args.cache), ensure_lora(args.cache)
    if args.side == "engine":
        print("RESULT " + json.dumps(engine_side(checkpoint, lora, args.reps)), flush=True)
        return
    if args.side == "diffusers":
        folder = ensure_diffusers_folder(args.cache)
        result = diffusers_side(folder, lora, args.dtype, args.reps)
        print("RESULT " + json.dumps(result), flush=True)
        return
    ensure_diffusers_folder(args.cache)
    common = ["--cache", str(args.cache), "--reps", str(args.reps)]
    ours: list[dict] = []
    theirs: list[dict] = []
    for _ in range(args.rounds):  # alternating: other load on the machine slows both alike
        ours.append(_child(["--side", "engine", *common]))
        theirs.append(_child(["--side", "diffusers", "--dtype", ours[0]["dtype"], *common]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"engine": ours, "diffusers": theirs}, indent=2))
    print(report(ours, theirs))


if __name__ == "__main__":
    main()
