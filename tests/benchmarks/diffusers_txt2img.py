"""The reference side of ``tests.benchmarks.startup``: diffusers doing what ``latentdesk-cli
txt2img`` does, as a short script a diffusers user would write (load, encode, sample, decode,
save a PNG), printing the same JSON timings as the CLI's ``--json``.

    python -m tests.benchmarks.diffusers_txt2img FOLDER OUTDIR --size 256 --steps 10 \\
        --precision float32 [--sampler euler|lcm|dpmpp_2m] [--guidance 7.5]

Only the standard library is imported before the work starts: the start-up it measures is
diffusers' own (torch, transformers, diffusers), not this repository's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry"
SEED = 42


def scheduler_for(sampler: str, config):
    """The diffusers scheduler matching the engine's sampler and schedule of the comparison."""
    from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler, LCMScheduler

    if sampler == "euler":  # our "normal" schedule: timesteps linear from 999 to 0
        return EulerDiscreteScheduler.from_config(config, timestep_spacing="linspace")
    if sampler == "dpmpp_2m":  # our default, DPM++ 2M with the Karras schedule
        return DPMSolverMultistepScheduler.from_config(config, use_karras_sigmas=True)
    if sampler == "lcm":
        return LCMScheduler.from_config(config)
    raise ValueError(sampler)


def run(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    import torch
    from diffusers import StableDiffusionPipeline

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.precision]
    t0 = time.perf_counter()
    pipe = StableDiffusionPipeline.from_pretrained(
        str(args.folder), torch_dtype=dtype, safety_checker=None, requires_safety_checker=False
    )
    pipe.scheduler = scheduler_for(args.sampler, pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    timings = {"load": time.perf_counter() - t0}
    with torch.inference_mode():
        t0 = time.perf_counter()
        guided = args.guidance > 1
        cond, uncond = pipe.encode_prompt(PROMPT, "cpu", 1, guided, NEGATIVE if guided else None)
        timings["encode"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        latents = pipe(
            prompt_embeds=cond,
            negative_prompt_embeds=uncond,
            height=args.size,
            width=args.size,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            generator=torch.Generator("cpu").manual_seed(SEED),
            output_type="latent",
        ).images
        timings["sample"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pixels = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
        image = pipe.image_processor.postprocess(pixels, output_type="pil")[0]
        args.outdir.mkdir(parents=True, exist_ok=True)
        image.save(args.outdir / f"diffusers-{SEED}.png")
        timings["decode"] = time.perf_counter() - t0
    timings["total"] = timings["encode"] + timings["sample"] + timings["decode"]
    timings["wall"] = time.perf_counter() - start
    return {"timings": timings, "dtype": args.precision, "device": "cpu"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--sampler", default="euler", choices=("euler", "dpmpp_2m", "lcm"))
    parser.add_argument("--guidance", type=float, default=7.5)
    print(json.dumps(run(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
