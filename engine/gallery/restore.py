"""From parameters read out of any tool's file to the values the window's controls can take.

``restore_fields(record)`` is what a drop of a picture onto the window calls: the result's
``fields`` hold only values a ``GenerationRequest`` accepts, so
``dataclasses.replace(request, **restored.fields)`` is always safe, and ``dropped`` says in
words what was left out and why (a seed beyond our range, a sampler we do not have...), for the
window to show.

Names are mapped to our ids (``engine.samplers.CATALOGUE``): A1111 display names ("DPM++ 2M",
"Euler a", "DPM++ 2M Karras"), k-diffusion ids (``k_euler_ancestral``, NovelAI and InvokeAI 2),
ComfyUI's and Fooocus's (``euler_ancestral``, ``dpmpp_2m_sde_gpu``: the ``_gpu`` variants only
draw their noise on the GPU) and InvokeAI's diffusers schedulers (``euler_a``, ``dpmpp_2m_k``:
``_k`` is Karras sigmas, ``pndm`` runs PLMS steps in Stable Diffusion's configuration).
Schedules: our ids (ComfyUI's: "normal", "karras", "sgm_uniform", "simple") and A1111's labels
("SGM Uniform") in any case, see ``engine.samplers.SCHEDULE_CATALOGUE``; others (ComfyUI's
"exponential", A1111's "Automatic", NovelAI's "native") are dropped with a note.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.api import MAX_GUIDANCE, MAX_SEED, MAX_SIZE, MAX_STEPS, MIN_SIZE, SCHEDULES
from engine.gallery.recovered import RecoveredParameters
from engine.parameters import Parameters, request_from_parameters
from engine.samplers import find_sampler, find_schedule, sampler_info

# Tools that start txt2img from noise * sqrt(1 + sigma_max**2) (our sgm_noise=True): ComfyUI's
# noise scaling at full denoise, and diffusers' init_noise_sigma (InvokeAI); Fooocus runs on
# ComfyUI's samplers.
_SGM_NOISE_TOOLS = ("ComfyUI", "InvokeAI", "Fooocus")


# What only the A1111 reading of a settings line gives (engine.parameters).
_A1111_ONLY = (
    "clip_skip",
    "eta",
    "sgm_noise",
    "hires_scale",
    "hires_steps",
    "hires_denoise",
    "hires_upscaler",
    "mask_blur",  # inpainting (engine.inpaint.settings)
    "masked_content",
    "inpaint_area",
    "inpaint_padding",
)


@dataclass(frozen=True)
class RestoredFields:
    fields: dict[str, object]  # GenerationRequest field name -> a value it accepts
    dropped: tuple[str, ...]  # what was in the file but is not in ``fields``, and why


def restore_fields(record: RecoveredParameters) -> RestoredFields:
    """The request fields ``record`` gives, each checked against the request's limits.

    Fields the file does not hold are simply absent (the control keeps its value); values it
    holds but we cannot use are absent too, with a sentence in ``dropped``. For A1111-format
    texts (ours among them) the A1111 reading of the settings line also gives ``clip_skip``,
    ``eta``, ``sgm_noise`` and the hires fix's fields, as
    ``engine.parameters.request_from_parameters`` does (a hires picture's denoising strength
    is its hires pass's, so it gives no ``strength``).
    """
    fields: dict[str, object] = {}
    dropped: list[str] = []
    if record.prompt is not None:
        fields["prompt"] = record.prompt
    if record.negative_prompt is not None:
        fields["negative_prompt"] = record.negative_prompt
    _number(fields, dropped, "seed", "Seed", record.seed, 0, MAX_SEED)
    _number(fields, dropped, "steps", "Steps", record.steps, 1, MAX_STEPS)
    _number(fields, dropped, "guidance_scale", "Guidance", record.cfg_scale, 0.0, MAX_GUIDANCE)
    _number(fields, dropped, "strength", "Denoising strength", record.strength, 0.0, 1.0)
    _size(fields, dropped, record.width, record.height)
    _sampler_and_schedule(fields, dropped, record.sampler, record.schedule)
    if "Steps" in record.settings:  # an A1111 settings line
        extra = request_from_parameters(Parameters("", "", dict(record.settings)))
        fields.update({k: extra[k] for k in _A1111_ONLY if k in extra})
        if "hires_denoise" in extra:  # "Denoising strength" was the hires pass's, not img2img's
            fields.pop("strength", None)
    elif record.tool in _SGM_NOISE_TOOLS:
        fields["sgm_noise"] = True
    return RestoredFields(fields, tuple(dropped))


def sampler_id(name: str) -> tuple[str | None, str | None]:
    """(our sampler id, the schedule the name implies) for any tool's sampler name."""
    wanted = name.strip().casefold()
    schedule = None
    if wanted.endswith(" karras"):  # A1111 before "Schedule type"
        wanted, schedule = wanted[: -len(" karras")], "karras"
    if wanted.endswith("_gpu"):  # ComfyUI, Fooocus: the same sampler, noise drawn on the GPU
        wanted = wanted[: -len("_gpu")]
    info = find_sampler(wanted)
    if info is None and wanted.endswith("_k"):  # InvokeAI: Karras sigmas
        info, schedule = find_sampler(wanted[:-2]), "karras"
    if info is None and wanted == "pndm":  # InvokeAI: PNDM with PLMS steps only
        info = find_sampler("plms")
    return (info.id if info is not None else None), schedule


def _sampler_and_schedule(
    fields: dict[str, object], dropped: list[str], sampler: str | None, schedule: str | None
) -> None:
    implied = None
    if sampler is not None:
        found, implied = sampler_id(sampler)
        if found is None:
            dropped.append(f"The sampler {sampler!r} is not one this app has.")
        else:
            fields["sampler"] = found
    chosen = fields.get("sampler")
    if isinstance(chosen, str) and not sampler_info(chosen).uses_schedule:
        return  # DDIM and PLMS have their own timesteps: any schedule is moot
    name = schedule if schedule is not None else implied
    if name is None:
        return
    info = find_schedule(name)
    if info is not None:
        fields["schedule"] = info.id
    else:
        known = ", ".join(SCHEDULES)
        dropped.append(f"The schedule {name!r} is not one this app has ({known}).")


def _number(
    fields: dict[str, object],
    dropped: list[str],
    name: str,
    label: str,
    value: float | None,
    low: float,
    high: float,
) -> None:
    if value is None:
        return
    if low <= value <= high:
        fields[name] = value
    else:
        dropped.append(f"{label} {value} is outside {low}..{high}, the range this app takes.")


def _size(
    fields: dict[str, object], dropped: list[str], width: int | None, height: int | None
) -> None:
    if width is None or height is None:
        return
    if all(MIN_SIZE <= side <= MAX_SIZE and side % 8 == 0 for side in (width, height)):
        fields["width"], fields["height"] = width, height
    else:
        dropped.append(
            f"The size {width}x{height} is not one this app makes (multiples of 8, "
            f"{MIN_SIZE} to {MAX_SIZE} pixels a side)."
        )
