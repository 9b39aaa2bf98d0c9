"""A random-weight, full-size SD1.5 checkpoint in the real layout, made once and cached.

    python -m tests.benchmarks.checkpoints [--cache DIR]

Random weights give meaningless pictures but real costs: every tensor has the size and dtype of
v1-5-pruned-emaonly (fp16 .safetensors, about 2.1 GB).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.factories import full_sd1_shapes, random_weights

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
FILE_NAME = "sd15-random-fp16.safetensors"


def ensure_full_checkpoint(cache: Path = DEFAULT_CACHE) -> Path:
    path = cache / FILE_NAME
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    shapes = full_sd1_shapes()
    sd = random_weights(shapes, seed=0, dtype=torch.float16)
    sd["alphas_cumprod"] = sd["alphas_cumprod"].float()
    ids = "cond_stage_model.transformer.text_model.embeddings.position_ids"
    if ids in sd:
        sd[ids] = torch.arange(77).unsqueeze(0)
    tmp = path.with_suffix(".tmp")
    save_file(sd, str(tmp))
    tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    print(ensure_full_checkpoint(parser.parse_args().cache))


if __name__ == "__main__":
    main()
