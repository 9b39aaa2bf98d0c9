"""Many tiny generations on one Engine: RSS, threads and open files before and after.

Run by hand: ``python -m tests.benchmarks.long_run [count]`` (default 200). CI runs the same
measurement with a smaller count in tests/engine/test_long_run.py.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Usage:
    rss_mb: float
    threads: int
    open_files: int


def usage() -> Usage:
    """Resident memory from /proc/self/statm, OS threads from /proc/self/task, fds."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return Usage(
        rss_mb=resident_pages * PAGE / 2**20,
        threads=len(os.listdir("/proc/self/task")),
        open_files=len(os.listdir("/proc/self/fd")),
    )


def run(count: int, folder: Path, warmup: int = 10) -> tuple[Usage, Usage]:
    """Warm up, then ``count`` jobs (txt2img, img2img, cancels, saves); usage before/after."""
    import gc

    import numpy as np

    from engine import Cancelled, Engine, GenerationRequest
    from engine.output import save_png
    from tests.factories import tiny_sd1_state_dict, write_checkpoint

    ckpt = write_checkpoint(tiny_sd1_state_dict(seed=9), folder / "tiny.safetensors")
    engine = Engine(device="cpu", precision="full")
    engine.load_model(ckpt)
    init = np.full((48, 80, 3), 120, np.uint8)

    def job(i: int) -> None:
        req = GenerationRequest(
            f"prompt {i}",
            width=64,
            height=64,
            steps=2,
            seed=i,
            sampler=("euler", "dpmpp_2m", "ddim", "euler_a")[i % 4],
            init_image=init if i % 3 == 0 else None,
            strength=0.5,
        )
        cancel = threading.Event()
        if i % 5 == 4:  # a cancel mixed in every fifth job
            try:
                engine.generate(req, on_step=lambda e: cancel.set(), cancel=cancel)
            except Cancelled:
                return
        result = engine.generate(req)
        save_png(folder / "out", result.images[0].image, result.images[0].parameters)

    for i in range(warmup):
        job(i)
    gc.collect()
    before = usage()
    for i in range(count):
        job(warmup + i)
    gc.collect()
    return before, usage()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        before, after = run(count, Path(tmp))
    print(
        f"{count} jobs: RSS {before.rss_mb:.1f} -> {after.rss_mb:.1f} MB "
        f"(+{after.rss_mb - before.rss_mb:.1f}), threads {before.threads} -> {after.threads}, "
        f"open files {before.open_files} -> {after.open_files}"
    )


if __name__ == "__main__":
    main()
