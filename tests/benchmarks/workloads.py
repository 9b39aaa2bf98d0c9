"""The benchmark's measured work, each run in a child process of ``tests.benchmarks.bench``.

    python -m tests.benchmarks.workloads <task> <json args>   (prints one JSON line)

Tasks: ``load`` (load to ready and peak RSS), ``generate`` (a whole txt2img or img2img, the
process's wall time is measured by the parent), ``micro`` (UNet step, VAE decode, previews and
matmul peak, engine and diffusers alternating in one process) and ``bf16`` (the short bf16 step
comparison). Every side loads the same weights: the engine from the fp16 single file, diffusers
from the diffusers-format copy of it.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tests.benchmarks.checkpoints import DEFAULT_CACHE, DIFFUSERS_NAME, FILE_NAME

PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry"
GUIDANCE = 7.5
SEED = 42
STRENGTH = 0.75
SIGMA = 4.0  # a mid-schedule noise level for single steps; the cost does not depend on it
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def checkpoint_path() -> Path:
    return DEFAULT_CACHE / FILE_NAME


def diffusers_path() -> Path:
    return DEFAULT_CACHE / DIFFUSERS_NAME


def peak_rss_bytes() -> int:
    """VmHWM: the process's peak resident set, file-backed pages (mmap) included."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def module_bytes(*modules: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for m in modules for t in m.state_dict().values())


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def init_image(side: int) -> np.ndarray:
    """A smooth deterministic picture (gradients), the same for both sides."""
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    rgb = np.stack([ramp[None, :].repeat(side, 0), ramp[:, None].repeat(side, 1)], axis=-1)
    rgb = np.concatenate([rgb, 255 - rgb[..., :1]], axis=-1)  # (H, W, 3)
    return rgb.round().astype(np.uint8)


# -- loading ----------------------------------------------------------------------------------


def load_engine(precision: str):
    """(Engine, its modules) ready to generate, through the public facade."""
    from engine.session import Engine

    engine = Engine(device="cpu", precision=precision)
    engine.load_model(checkpoint_path())
    bundle = engine._bundle
    assert bundle is not None
    return engine, (bundle.unet, bundle.vae, bundle.text_encoder.model)


def load_diffusers(precision: str, img2img: bool = False):
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    cls = StableDiffusionImg2ImgPipeline if img2img else StableDiffusionPipeline
    pipe = cls.from_pretrained(
        str(diffusers_path()),
        torch_dtype=DTYPES[precision],
        safety_checker=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe, (pipe.unet, pipe.vae, pipe.text_encoder)


def task_load(side: str, precision: str) -> dict:
    start = time.perf_counter()
    if side == "engine":
        _, modules = load_engine(precision)
    else:
        _, modules = load_diffusers(precision)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss": peak_rss_bytes(), "model_bytes": module_bytes(*modules)}


# -- whole generations ------------------------------------------------------------------------


def task_generate(side: str, precision: str, mode: str, size: int, steps: int) -> dict:
    """Load, then one image; the phases are reported, the parent times the whole process."""
    start = time.perf_counter()
    img2img = mode == "img2img"
    if side == "engine":
        image, phases = _engine_generate(precision, img2img, size, steps)
    else:
        image, phases = _diffusers_generate(precision, img2img, size, steps)
    phases["in_process"] = time.perf_counter() - start
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    if out is not None:
        np.save(out, image)
    return phases


def _engine_generate(precision: str, img2img: bool, size: int, steps: int):
    from engine.api import GenerationRequest

    t0 = time.perf_counter()
    engine, _ = load_engine(precision)
    load = time.perf_counter() - t0
    request = GenerationRequest(
        PROMPT,
        NEGATIVE,
        width=size,
        height=size,
        steps=steps,
        guidance_scale=GUIDANCE,
        seed=SEED,
        sampler="euler",
        schedule="normal",
        init_image=init_image(size) if img2img else None,
        strength=STRENGTH,
    )
    t0 = time.perf_counter()
    result = engine.generate(request, on_step=lambda event: None)
    phases = {"load": load, "generate": time.perf_counter() - t0, **result.timings}
    return result.images[0].image, phases


def _diffusers_generate(precision: str, img2img: bool, size: int, steps: int):
    from PIL import Image

    t0 = time.perf_counter()
    pipe, _ = load_diffusers(precision, img2img)
    load = time.perf_counter() - t0
    kwargs: dict = {"num_inference_steps": steps, "guidance_scale": GUIDANCE}
    if img2img:
        kwargs.update(image=Image.fromarray(init_image(size)), strength=STRENGTH)
    else:
        kwargs.update(height=size, width=size)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = pipe(
            PROMPT,
            negative_prompt=NEGATIVE,
            generator=torch.Generator("cpu").manual_seed(SEED),
            output_type="np",
            **kwargs,
        )
    image = (out.images[0] * 255).round().astype(np.uint8)
    return image, {"load": load, "generate": time.perf_counter() - t0}


# -- one process, both sides ------------------------------------------------------------------


class Steps:
    """One guided UNet step (batch 2: uncond and cond) on each side, on identical inputs."""

    def __init__(self, bundle, pipe, dtype: torch.dtype) -> None:
        from engine.sampling.conditioning import Conditioning
        from engine.sampling.denoiser import CFGDenoiser, UNetDenoiser

        self.bundle, self.pipe, self.dtype = bundle, pipe, dtype
        gen = torch.Generator().manual_seed(1)
        context = torch.randn(2, 77, 768, generator=gen)  # (2, 77, 768): uncond, cond
        self.uncond, self.cond = context[:1], context[1:]
        base = UNetDenoiser(bundle.unet, bundle.family.alphas_cumprod(), dtype=dtype)
        cond, uncond = Conditioning(self.cond), Conditioning(self.uncond)
        self.engine_denoiser = CFGDenoiser(base, cond, uncond, GUIDANCE)

    def latents(self, size: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(2)
        return torch.randn(1, 4, size // 8, size // 8, generator=gen)  # (1, 4, h, w)

    def engine(self, size: int) -> torch.Tensor:
        return self.engine_denoiser(self.latents(size) * SIGMA, torch.tensor([SIGMA]))

    def diffusers(self, size: int) -> torch.Tensor:
        """The same denoised x0 as the engine's step, through diffusers' UNet."""
        from engine.sampling.schedules import sigma_to_t

        sigma = torch.tensor([SIGMA])
        x = self.latents(size) * SIGMA  # (1, 4, h, w) in sigma space
        t = sigma_to_t(sigma, self.bundle.family.alphas_cumprod()).float()[0]
        x_in = (torch.cat([x, x]) / (SIGMA**2 + 1) ** 0.5).to(self.dtype)  # (2, 4, h, w)
        context = torch.cat([self.uncond, self.cond]).to(self.dtype)  # (2, 77, 768)
        eps = self.pipe.unet(x_in, t, encoder_hidden_states=context).sample.float()
        uncond, cond = eps.chunk(2)
        return x - SIGMA * (uncond + GUIDANCE * (cond - uncond))


def step_flops(steps: Steps, size: int) -> float:
    """FLOPs of one guided engine UNet step, counted by torch (convs, matmuls, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        steps.engine(size)
    return float(counter.get_total_flops())


def matmul_peak(dtype: torch.dtype, n: int, reps: int = 3) -> float:
    """GFLOP/s of a square matmul, the best layout and of ``reps`` runs (the practical peak).

    Both ``a @ b`` and ``a @ b.T`` (the nn.Linear layout) are tried: where bfloat16 is emulated
    they differ ten-fold.
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    best = math.inf
    for rhs in (b, b.t()):
        a @ rhs
        best = min(best, *(timed(lambda r=rhs: a @ r) for _ in range(reps)))
    return 2 * n**3 / best / 1e9


def alternate(reps: int, engine_fn, diffusers_fn) -> tuple[list[float], list[float]]:
    """Warm both, then time them in turn so a busy machine hurts both sides alike."""
    engine_fn(), diffusers_fn()
    engine_times, diffusers_times = [], []
    for _ in range(reps):
        engine_times.append(timed(engine_fn))
        diffusers_times.append(timed(diffusers_fn))
    return engine_times, diffusers_times


def task_micro(precision: str, sizes: list[int], decode_size: int, reps: int, ab: int) -> dict:
    from engine.loading.build import load_bundle

    dtype = DTYPES[precision]
    bundle = load_bundle(checkpoint_path(), torch.device("cpu"), dtype)
    pipe, _ = load_diffusers(precision)
    steps = Steps(bundle, pipe, dtype)
    result: dict = {"threads": torch.get_num_threads()}
    with torch.inference_mode():
        for size in sizes:
            e, d = alternate(
                reps, lambda s=size: steps.engine(s), lambda s=size: steps.diffusers(s)
            )
            result[f"unet_step_{size}"] = {"engine": e, "diffusers": d}
            result[f"unet_flops_{size}"] = step_flops(steps, size)
        z = torch.randn(1, 4, decode_size // 8, decode_size // 8).to(dtype)  # (1, 4, h, w)
        e, d = alternate(reps, lambda: bundle.vae.decode(z), lambda: pipe.vae.decode(z).sample)
        result[f"vae_decode_{decode_size}"] = {"engine": e, "diffusers": d}
        result["matmul_peak_gflops"] = matmul_peak(dtype, 2048 if dtype == torch.float32 else 512)
        result["previews"] = preview_costs(bundle, ab)
    return result


def preview_costs(bundle, ab: int) -> dict:
    """The cheap preview's own cost per step, and (``ab`` > 0) whole runs with and without."""
    from engine.preview import latents_to_rgb

    factors = bundle.family.latent_rgb
    denoised = torch.randn(1, 4, 32, 32)  # (1, 4, h, w): a 256x256 x0 estimate
    latents_to_rgb(denoised, factors)
    per_preview = statistics.median(
        timed(lambda: latents_to_rgb(denoised, factors)) for _ in range(50)
    )
    out: dict = {"per_preview_seconds": per_preview}
    if ab:
        out["with"], out["without"] = _preview_ab(bundle, ab)
    return out


def _preview_ab(bundle, reps: int) -> tuple[list[float], list[float]]:
    from engine.api import GenerationRequest
    from engine.pipeline import ModelLabel, generate

    label = ModelLabel("bench", None)

    def run(every: int) -> float:
        request = GenerationRequest(
            PROMPT, width=256, height=256, steps=10, seed=SEED, sampler="euler",
            schedule="normal", preview_every=every,
        )  # fmt: skip
        return generate(bundle, request, label, on_step=lambda e: None).timings["total"]

    run(0)  # the first generation in a process pays one-time costs: keep it out
    with_previews, without = [], []
    for i in range(reps):  # alternate the order so drift does not favour one side
        for every in (1, 0) if i % 2 == 0 else (0, 1):
            (with_previews if every else without).append(run(every))
    return with_previews, without


def task_bf16(size: int) -> dict:
    """bf16 UNet steps of both sides (one each: they are slow where bf16 is emulated), and the
    engine's bf16 step error against its float32 step on the same inputs."""
    from engine.loading.build import load_bundle

    bundle = load_bundle(checkpoint_path(), torch.device("cpu"), torch.bfloat16)
    pipe, _ = load_diffusers("bfloat16")
    steps = Steps(bundle, pipe, torch.bfloat16)
    result: dict = {}
    with torch.inference_mode():
        bf16_out = steps.engine(size)
        result["engine"] = [timed(lambda: steps.engine(size))]
        result["diffusers"] = [timed(lambda: steps.diffusers(size))]
        result["flops"] = step_flops(steps, size)
        result["matmul_peak_gflops"] = matmul_peak(torch.bfloat16, 1024)
        del pipe
        fp32 = load_bundle(checkpoint_path(), torch.device("cpu"), torch.float32)
        ref = Steps(fp32, None, torch.float32).engine(size)
    result["rel_error_vs_fp32"] = float((bf16_out - ref).norm() / ref.norm())
    return result


TASKS = {"load": task_load, "generate": task_generate, "micro": task_micro, "bf16": task_bf16}


def main() -> None:
    task, args = sys.argv[1], json.loads(sys.argv[2])
    print("RESULT " + json.dumps(TASKS[task](**args)), flush=True)


if __name__ == "__main__":
    main()
