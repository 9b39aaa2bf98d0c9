"""The model library's scan over 1,000 model files: the first scan, and a second start (a new
process, the same scan cache), which must finish in under 1 s.

    python -m tests.benchmarks.library_scan [--files 1000] [--dir DIR] [--runs 5]

The files are spread over the places the library knows (the app's folder, a user folder, A1111,
ComfyUI with extra_model_paths.yaml, InvokeAI, the Hugging Face cache) in a realistic mix:
checkpoints of each family, LoRAs, embeddings, VAEs, ControlNets, torch .ckpt files and
diffusers folders. Big models are header-only safetensors (tests/engine/library/fake_models.py):
a scan reads headers only, so their cost is the real one. The files were just written, so the
first scan runs on a warm page cache: a cold disk makes the first scan (not the second) slower.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.engine.library.fake_models import (
    controlnet_shapes,
    diffusers_files,
    hf_cache_repo,
    lora_shapes,
    sd1_shapes,
    sd2_shapes,
    sdxl_lora_shapes,
    sdxl_shapes,
    vae_shapes,
    write_diffusers_folder,
    write_header_only,
    write_small,
    write_tiny_sd1,
)

ROOT = Path(__file__).resolve().parents[2]

# Share of each kind in the library (per 1,000 files), and the folders it is spread over.
MIX = {
    "sd1": 300,
    "sd1-inpainting": 40,
    "sd2": 40,
    "sdxl": 60,
    "lora": 300,
    "lora-sdxl": 40,
    "embedding": 120,
    "vae": 40,
    "controlnet": 40,
    "ckpt": 10,
    "diffusers": 10,
}


def build_library(root: Path, n_files: int) -> dict:
    """Write the trees; returns the paths a ModelLibrary needs to see them."""
    home, app, user, shared = root / "home", root / "app-models", root / "mine", root / "shared"
    webui, comfy = home / "stable-diffusion-webui", home / "ComfyUI"
    folders = {
        "checkpoint": [
            app,
            user / "photo",
            user / "art" / "2024",
            webui / "models" / "Stable-diffusion",
            comfy / "models" / "checkpoints",
            shared / "checkpoints",
        ],
        "lora": [webui / "models" / "Lora", comfy / "models" / "loras", user / "loras"],
        "vae": [webui / "models" / "VAE", comfy / "models" / "vae"],
        "embedding": [webui / "embeddings", comfy / "models" / "embeddings"],
        "controlnet": [shared / "controlnet"],
    }
    for group in folders.values():
        for folder in group:
            folder.mkdir(parents=True, exist_ok=True)
    (comfy / "extra_model_paths.yaml").write_text(
        f"shared:\n    base_path: {shared}\n    checkpoints: checkpoints\n"
        "    controlnet: controlnet\n"
    )
    templates = _templates(root / "templates")
    scale = n_files / sum(MIX.values())
    written = 0
    for kind, share in MIX.items():
        count = max(1, round(share * scale))
        if kind == "diffusers":
            written += _diffusers(home, root / "templates", count)
            continue
        group = folders[_group(kind)]
        for i in range(count):
            folder = group[i % len(group)]
            target = folder / f"{kind}-{i:04d}{templates[kind].suffix}"
            os.link(templates[kind], target)  # the bytes of a real file, no disk space
            written += 1
    return {"home": home, "app": app, "user": user, "files": written}


def _group(kind: str) -> str:
    if kind.startswith(("sd", "ckpt")):
        return "checkpoint"
    return "lora" if kind.startswith("lora") else kind


def _templates(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    header_only = {
        "sd1": sd1_shapes(),
        "sd1-inpainting": sd1_shapes(inpainting=True),
        "sd2": sd2_shapes(),
        "sdxl": sdxl_shapes(),
        "lora": lora_shapes(),
        "vae": vae_shapes(),
        "controlnet": controlnet_shapes(),
    }
    files = {k: write_header_only(s, folder / f"{k}.safetensors") for k, s in header_only.items()}
    files["lora-sdxl"] = write_small(sdxl_lora_shapes(), folder / "lora-sdxl.safetensors")
    files["embedding"] = write_small({"emb_params": (8, 768)}, folder / "embedding.safetensors")
    files["ckpt"] = write_tiny_sd1(folder / "tiny.ckpt")
    return files


def _diffusers(home: Path, templates: Path, count: int) -> int:
    hub = home / ".cache" / "huggingface" / "hub"
    files = diffusers_files(templates / "diffusers")
    for i in range(count):
        if i % 2:
            hf_cache_repo(hub, f"someone/model-{i}", files, f"{i:040x}")
        else:
            write_diffusers_folder(home / "invokeai" / "models" / "sd-1" / "main" / f"model-{i}")
    return count


def scan_in_new_process(paths: dict, cache: Path) -> dict:
    """A second start as the app or the CLI has it: a fresh interpreter, the saved cache."""
    code = f"""
import json, sys, time
from collections import Counter
start = time.perf_counter()
from pathlib import Path
from engine.library import LibraryConfig, ModelLibrary
imported = time.perf_counter()
lib = ModelLibrary(LibraryConfig(folders=[{str(paths["user"])!r}]), home=Path({str(paths["home"])!r}),
                   env={{}}, cache_path=Path({str(cache)!r}), config_path=Path({str(cache.with_name("l.json"))!r}),
                   models_dir=Path({str(paths["app"])!r}))
result = lib.scan()
kinds = Counter(f"{{e.kind}}/{{e.family}}" for e in result.entries)
print(json.dumps({{"import": imported - start, "scan": result.seconds, "kinds": kinds,
                  "entries": len(result.entries), "skipped": len(result.skipped),
                  "torch": "torch" in sys.modules}}))
"""  # noqa: E501
    wall = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    out = json.loads(proc.stdout)
    out["process"] = time.perf_counter() - wall
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5, help="second starts to time")
    parser.add_argument("--dir", type=Path, help="build here (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="library-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        paths = build_library(root / "trees", args.files)
        print(f"built {paths['files']} model files in {time.perf_counter() - t0:.1f} s")
        cache = root / "cache" / "library-cache.json"

        # Each scan in a fresh interpreter, as the app and the CLI start: this one has torch
        # loaded (it wrote the .ckpt files), whose many objects would slow the scan's GC.
        first = scan_in_new_process(paths, cache)
        print(f"entries: {first['entries']}, skipped: {first['skipped']}")
        print("  " + ", ".join(f"{k} {n}" for k, n in sorted(first["kinds"].items())))
        print(f"first scan (empty cache):  {first['scan']:.3f} s")
        second = [scan_in_new_process(paths, cache) for _ in range(args.runs)]
        scans = [run["scan"] for run in second]
        print(
            f"second start (same cache): scan median {statistics.median(scans):.3f} s,"
            f" max {max(scans):.3f} s over {args.runs} runs; import engine.library"
            f" {statistics.median(run['import'] for run in second):.3f} s; whole process"
            f" {statistics.median(run['process'] for run in second):.3f} s;"
            f" torch imported: {any(run['torch'] for run in [first, *second])}"
        )
        assert all(run["entries"] == first["entries"] for run in second)
        ok = max(scans) < 1.0
        print(("PASS" if ok else "FAIL") + ": a second start scans in under 1 s")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
