"""`latentdesk-cli txt2img|img2img|models|doctor|info|gallery`: the reference scripts' flags on
our engine, plus the model library, a system report, and the gallery (any picture's parameters,
search).

Every error a user can cause prints one line and exits 1; Ctrl+C stops at the next step, writes
no partial file and exits 130. Mistakes in the arguments, the model name or the values are
reported before torch is imported: importing it alone takes seconds. On a terminal, stderr shows
one progress line while sampling; with --json or when stderr is a log, it does not.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from engine.api import (
    HIRES_UPSCALERS,
    MAX_HIRES_SCALE,
    MAX_SEED,
    SAMPLERS,
    SCHEDULES,
    VAE_TILING,
    GenerationRequest,
    ImageEvent,
)
from engine.cli_doctor import add_doctor_parser, run_doctor
from engine.cli_gallery import add_gallery_parser, run_gallery
from engine.cli_info import add_info_parser, run_info
from engine.cli_models import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    add_models_parser,
    checkpoint_for,
    native_size,
    open_library,
    remember_model,
    run_models,
)
from engine.cli_progress import ERASE_REST, StepProgress
from engine.errors import Cancelled, EngineError
from engine.inpaint.cli_args import add_inpaint_flags, with_mask_args
from engine.samplers import CATALOGUE, DEFAULT_SAMPLER, sampler_info
from engine.validate import validate_request

if TYPE_CHECKING:
    from engine.session import Engine

# The request's own defaults: the CLI shows and uses the same values as the app.
DEFAULTS = GenerationRequest(prompt="")
RANDOM_SEED = -1  # as A1111 and the CompVis scripts: --seed -1 asks for a random seed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentdesk-cli", description="Stable Diffusion 1.x from the command line."
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("txt2img", "img2img"):
        p = sub.add_parser(mode, help=f"{mode} generation")
        _add_common(p, mode)
    add_models_parser(sub)
    add_doctor_parser(sub)
    add_gallery_parser(sub)
    add_info_parser(sub)
    return parser


def _add_common(p: argparse.ArgumentParser, mode: str) -> None:
    d = DEFAULTS
    p.add_argument(
        "--prompt",
        default=None,
        help="what to draw; required (unless --from-file). An empty prompt is refused rather "
        "than replaced by the CompVis scripts' default: a picture nobody asked for would cost "
        "minutes and hide the mistake",
    )
    p.add_argument("--negative-prompt", default="", help="what to avoid")
    p.add_argument("--from-file", type=Path, help="one prompt per line; runs each in turn")
    p.add_argument(
        "--ckpt",
        default=None,
        help=".safetensors, .ckpt or diffusers folder, or the name of a model that "
        "`models list` shows (default: the model used last, or the only one)",
    )
    p.add_argument(
        "--outdir",
        type=Path,
        default=Path(f"outputs/{mode}-samples"),
        help="folder for the PNGs, created if missing (default: %(default)s)",
    )
    p.add_argument(
        "--steps",
        "--ddim_steps",
        dest="steps",
        type=int,
        default=None,
        help="sampling steps (default: " + _default_steps_text() + ")",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=d.guidance_scale,
        help="classifier-free guidance scale (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"first image's seed, the next ones count up; {RANDOM_SEED} or omitted: random "
        "(printed, to repeat the run)",
    )
    for flag, side in (("--H", "height"), ("--W", "width")):
        p.add_argument(
            flag,
            type=int,
            default=None,
            help=f"{side} in pixels, a multiple of 8 (default: {getattr(d, side)}); for a model "
            "whose file names its native size, as the built-in demo's, that size",
        )
    p.add_argument(
        "--n_samples",
        type=int,
        default=d.batch_size,
        help="images per batch (default: %(default)s)",
    )
    p.add_argument(
        "--n_iter",
        type=int,
        default=d.batch_count,
        help="batches, one after another (default: %(default)s)",
    )
    p.add_argument(
        "--sampler", choices=SAMPLERS, default=None, help=f"(default: {DEFAULT_SAMPLER})"
    )
    p.add_argument("--plms", action="store_true", help="same as --sampler plms")
    p.add_argument(
        "--ddim_eta",
        "--eta",
        dest="eta",
        type=float,
        default=d.eta,
        help="DDIM's noise, 0 to 1 (default: %(default)s)",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=None,
        help="(default: karras; lcm for --sampler lcm; ddim and plms ignore it)",
    )
    p.add_argument(
        "--no-sgm-noise",
        dest="sgm_noise",
        action="store_false",
        help="start txt2img from noise * sigma_max, as A1111 without its SGM noise multiplier",
    )
    p.add_argument(
        "--clip-skip",
        type=int,
        default=d.clip_skip,
        help="1 uses the text encoder's last layer, 2 the one before, as A1111's "
        '"Clip skip" (default: %(default)s)',
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "autocast", "full", "float16", "bfloat16", "float32"),
        help="(default: %(default)s: float16 on a GPU; on a CPU bfloat16 where measured "
        "faster, else float32)",
    )
    p.add_argument(
        "--vae-tiling",
        choices=VAE_TILING,
        default=DEFAULTS.vae_tiling,
        help="decode (and encode) big pictures in tiles, the same picture in less memory; "
        "auto: when the picture is large for the memory at hand (default: %(default)s)",
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:N or mps (default: cuda, then mps, cpu)"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON summary on stdout, and no progress line on stderr",
    )
    if mode == "txt2img":
        _add_hires(p)
    if mode == "img2img":
        p.add_argument("--init-img", required=True, type=Path, help="the starting image")
        p.add_argument(
            "--strength",
            type=float,
            default=d.strength,
            help="0 keeps it, 1 ignores it (default: %(default)s)",
        )
        add_inpaint_flags(p)  # --mask and its options (engine.inpaint.cli_args)


def _add_hires(p: argparse.ArgumentParser) -> None:
    """A1111's hires fix (txt2img only): make the picture at --W x --H, upscale it, then
    img2img at the larger size."""
    d = DEFAULTS
    p.add_argument(
        "--hires-scale",
        type=float,
        default=d.hires_scale,
        help=f"hires fix: upscale the picture by this factor, up to {MAX_HIRES_SCALE:g}, and "
        "refine it at that size (default: %(default)s, no hires pass)",
    )
    p.add_argument(
        "--hires-steps",
        type=int,
        default=d.hires_steps,
        help="steps of the hires pass (default: %(default)s, as many as --steps)",
    )
    p.add_argument(
        "--hires-denoise",
        type=float,
        default=d.hires_denoise,
        help="denoising strength of the hires pass, 0 to 1 (default: %(default)s)",
    )
    p.add_argument(
        "--hires-upscaler",
        choices=HIRES_UPSCALERS,
        default=d.hires_upscaler,
        help="latent: interpolate the latents; lanczos: resize the decoded picture "
        "(default: %(default)s)",
    )


def requests_from_args(args: argparse.Namespace, init_image) -> list[GenerationRequest]:
    sampler = "plms" if args.plms else (args.sampler or DEFAULT_SAMPLER)
    info = sampler_info(sampler)
    # The sampler's own default: "karras", "lcm" for LCM; DDIM and PLMS ignore it.
    schedule = args.schedule or info.default_schedule
    steps = args.steps if args.steps is not None else info.default_steps
    prompts = _prompts(args)
    seed = _seed(args.seed)
    return [
        GenerationRequest(
            prompt=prompt,
            negative_prompt=args.negative_prompt,
            # Not given: the model's native size replaces these (sized_for_model).
            width=DEFAULTS.width if args.W is None else args.W,
            height=DEFAULTS.height if args.H is None else args.H,
            steps=steps,
            guidance_scale=args.scale,
            seed=seed,
            sampler=sampler,
            schedule=schedule,
            batch_size=args.n_samples,
            batch_count=args.n_iter,
            init_image=init_image,
            strength=getattr(args, "strength", DEFAULTS.strength),
            eta=args.eta,
            clip_skip=args.clip_skip,
            sgm_noise=args.sgm_noise,
            preview_every=0,
            vae_tiling=args.vae_tiling,
            # img2img has no hires flags: the request's defaults (no hires pass).
            hires_scale=getattr(args, "hires_scale", DEFAULTS.hires_scale),
            hires_steps=getattr(args, "hires_steps", DEFAULTS.hires_steps),
            hires_denoise=getattr(args, "hires_denoise", DEFAULTS.hires_denoise),
            hires_upscaler=getattr(args, "hires_upscaler", DEFAULTS.hires_upscaler),
        )
        for prompt in prompts
    ]


def _default_steps_text() -> str:
    """ "25; 50 with ddim, plms": the catalogue's defaults, most common first."""
    by_steps: dict[int, list[str]] = {}
    for info in CATALOGUE:
        by_steps.setdefault(info.default_steps, []).append(info.id)
    common, *others = sorted(by_steps, key=lambda n: -len(by_steps[n]))
    return "; ".join([str(common)] + [f"{n} with {', '.join(by_steps[n])}" for n in others])


def _seed(seed: int | None) -> int:
    """The seed itself, or a random one drawn here rather than in the engine: with several
    prompts every one then starts from the same seed, as with an explicit --seed, so the seed
    printed repeats the whole run."""
    if seed is None or seed == RANDOM_SEED:
        return secrets.randbelow(MAX_SEED + 1)
    if not 0 <= seed <= MAX_SEED:
        raise EngineError(
            f"Seed must be between 0 and {MAX_SEED}, or {RANDOM_SEED} for a random one, not {seed}."
        )
    return seed


def check_prompt_given(args: argparse.Namespace) -> None:
    """Refuse a missing or blank prompt. (The CompVis scripts draw "a painting of a virus
    monster playing guitar" instead; a picture nobody asked for only hides the mistake, often
    an empty shell variable.)"""
    if args.from_file is None and not (args.prompt or "").strip():
        raise EngineError(
            'The prompt is empty: say what to draw with --prompt "a lighthouse at dusk", '
            "or give a file of prompts, one a line, with --from-file FILE."
        )


def _prompts(args: argparse.Namespace) -> list[str]:
    if args.from_file is None:
        return [args.prompt or ""]
    try:
        text = args.from_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EngineError(f"Cannot read prompts from {args.from_file}: {e}") from None
    prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise EngineError(f"{args.from_file} holds no prompts: write one prompt per line.")
    return prompts


def run(
    args: argparse.Namespace, cancel: threading.Event, summary: dict, own_process: bool = False
) -> None:
    """Generate every request, saving each image as it arrives; ``summary`` (filled in as we
    go, so it is right even after Ctrl+C) gets the seed, the model, the timings and the
    images. ``own_process``: this process ends with the run (see ``collector_paused``)."""
    requests = checked_requests(args)
    summary["seed"] = requests[0].seed
    library = open_library()
    ckpt = checkpoint_for(args.ckpt, library)
    requests = sized_for_model(args, ckpt, requests)
    # A terminal shows one line of progress; --json promises output free of it.
    progress = StepProgress(sys.stderr, prompt_count=len(requests), shown=not args.json)
    try:
        engine = _load_engine(args, ckpt, requests, progress, summary, own_process)
        progress.clear()  # the lines below go where the loading was shown
        remember_model(library, ckpt)
        if args.seed in (None, RANDOM_SEED) and not args.json:
            # Said only now that the run starts: an error stays the one line printed.
            seed = summary["seed"]
            print(f"Seed {seed} (random: --seed {seed} repeats it)", file=sys.stderr)
        # Until the first step (hashing the model on its first use takes seconds).
        progress.note(f"{summary['model']} loaded on {summary['device']}, starting...")
        for request in requests:
            result = engine.generate(
                request,
                on_step=progress,
                on_image=_saver(args, request, progress, summary),
                cancel=cancel,
            )
            _add_timings(summary["timings"], result.timings)
            _report_notes(result.notes, progress, summary)
            progress.next_prompt()
    finally:
        progress.clear()  # whatever comes next (an error, "Cancelled") starts on a clean line


def checked_requests(args: argparse.Namespace) -> list[GenerationRequest]:
    """The requests the arguments ask for, every value checked: all before torch is imported
    and the model read, so that a typo costs no seconds."""
    from engine.images import load_image

    check_prompt_given(args)
    init_image = load_image(args.init_img) if args.mode == "img2img" else None
    requests = with_mask_args(args, requests_from_args(args, init_image))
    for request in requests:
        validate_request(request)
    return requests


def sized_for_model(
    args: argparse.Namespace, ckpt: Path, requests: list[GenerationRequest]
) -> list[GenerationRequest]:
    """Without --W/--H, the model's native size when its file names one (the demo's)."""
    size = native_size(ckpt)
    if not size or (args.W is not None and args.H is not None):
        return requests
    width = size if args.W is None else args.W
    height = size if args.H is None else args.H
    sized = [replace(r, width=width, height=height) for r in requests]
    for request in sized:
        validate_request(request)
    return sized


def _load_engine(
    args: argparse.Namespace,
    ckpt: Path,
    requests: list[GenerationRequest],
    progress: StepProgress,
    summary: dict,
    own_process: bool,
) -> Engine:
    # Importing torch and reading the model take seconds: say what is happening meanwhile.
    progress.note("Loading PyTorch...")
    with collector_paused() if own_process else nullcontext():
        from engine.output import remove_stale_temp_files
        from engine.session import Engine  # torch: only now that everything typed is known good

        engine = Engine(device=args.device, precision=args.precision)
        for request in requests:
            engine.mark_checked(request)  # checked once, by checked_requests
        # A run killed while writing (SIGKILL, power loss) may have left a hidden temp file.
        remove_stale_temp_files(args.outdir)
        info = engine.load_model(
            ckpt, on_progress=lambda done, what: _loading(progress, done, what)
        )
    summary.update(model=info.name, device=info.device, dtype=info.dtype)
    summary["timings"]["load"] = info.load_seconds
    return engine


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while torch is imported and the model built, then what
    exists moved out of its sight (``gc.freeze``). Those ~190,000 objects live until the
    process ends, yet three automatic full collections walked them during the import (0.13 and
    0.15 s in two measured runs on a 2-core CPU); the generation that follows runs with the
    collector on, for its own objects.
    Only for a process of its own: frozen objects are never collected, so a caller that lives
    on (a test calling ``main([...])``) would keep the cyclic garbage of that moment for good."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _loading(progress: StepProgress, done: float, what: str) -> None:
    if done < 1:  # the loader's last word, "Ready", would only flash: the next note says it
        progress.note(what + "...")


def _saver(
    args: argparse.Namespace, request: GenerationRequest, progress: StepProgress, summary: dict
) -> Callable[[ImageEvent], None]:
    """Each image is on disk as soon as it is decoded: Ctrl+C or a crash loses at most the
    batch in progress."""
    from engine.output import save_png

    def save(event: ImageEvent) -> None:
        img = event.image
        path = save_png(args.outdir, img.image, img.parameters, stem=img.seed)
        summary["images"].append({"path": str(path), "seed": img.seed, "prompt": request.prompt})
        if not args.json:
            progress.clear()  # stdout shares the terminal: the progress line goes first
            print(f"{path}  (seed {img.seed})", flush=True)

    return save


def _report_notes(notes: tuple[str, ...], progress: StepProgress, summary: dict) -> None:
    """What the engine says about a job that ran ("film: 40 of 64 layers matched")."""
    if notes:
        progress.clear()
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        summary.setdefault("notes", []).extend(notes)


def _add_timings(total: dict[str, float], timings: dict[str, float]) -> None:
    for key, value in timings.items():
        total[key] = total.get(key, 0.0) + value


@contextmanager
def ctrl_c_sets(cancel: threading.Event, stopping: str) -> Iterator[None]:
    """The first Ctrl+C sets ``cancel`` (the work stops cleanly at its next check) and says
    ``stopping``; a second one raises KeyboardInterrupt at once."""
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        if cancel.is_set():  # a second Ctrl+C: stop now
            raise KeyboardInterrupt
        cancel.set()
        # Over a progress line, if there is one: it is redrawn below until the work stops.
        erase = "\r" + ERASE_REST if sys.stderr.isatty() else ""
        print(f"{erase}{stopping}... (Ctrl+C again to quit now)", file=sys.stderr)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.mode == "doctor":
        return run_doctor(args)
    if args.mode == "info":
        return run_info(args)
    cancel = threading.Event()
    if args.mode == "gallery":
        with ctrl_c_sets(cancel, "Stopping the gallery index update"):
            return run_gallery(args, cancel)
    if args.mode == "models":
        # Only a download has a clean stopping point (its partial file is kept for a resume);
        # anything else just stops on Ctrl+C.
        download = args.models_action == "download"
        with ctrl_c_sets(cancel, "Stopping the download") if download else nullcontext():
            return run_models(args, cancel)
    start = time.perf_counter()
    summary: dict = {"timings": {}, "images": []}
    try:
        with ctrl_c_sets(cancel, "Stopping after the current step"):
            run(args, cancel, summary, own_process=argv is None)
    except (Cancelled, KeyboardInterrupt):
        kept = len(summary["images"])
        print(f"Cancelled: {kept} finished image(s) kept, no partial one.", file=sys.stderr)
        # Scripts reading --json still learn which images were kept.
        _print_summary(args, summary, start, cancelled=True)
        return EXIT_INTERRUPTED
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    _print_summary(args, summary, start, cancelled=False)
    if argv is None:  # a process of its own (the installed script, python -m engine.cli)
        _end_process(0)
    return 0


def _end_process(code: int) -> NoReturn:
    """End a finished generation now: Python's own shutdown would free the model tensor by
    tensor and tear down torch's thousands of modules, about a second (measured on 2 cores)
    with nothing left to do. Every file is written and closed by then; the streams are flushed
    here."""
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError):  # a closed pipe (`| head`): nothing more can reach it anyway
            stream.flush()
    os._exit(code)


def _print_summary(args: argparse.Namespace, summary: dict, start: float, cancelled: bool) -> None:
    if not args.json:
        return
    summary["timings"]["wall"] = time.perf_counter() - start
    summary["cancelled"] = cancelled
    print(json.dumps(summary, indent=2), flush=True)


if __name__ == "__main__":
    sys.exit(main())
