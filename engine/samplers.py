"""The sampler and schedule catalogues: one record each, the lists every other part derives from.

The request's sampler and schedule ids, the names written into the ``parameters`` text, the
CLI's defaults, the schedule dispatch and the cost estimates all read these records; the
functions that run them live in ``engine.sampling.registry`` and ``engine.sampling.schedules``.
Plain Python, no torch: the app lists samplers and schedules from here without loading the
engine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerInfo:
    """What the rest of the program needs to know about one sampler."""

    id: str  # what a GenerationRequest and the CLI's --sampler say
    display_name: str  # as A1111 writes it after "Sampler:" (and shows it)
    aliases: tuple[str, ...] = ()  # older or other tools' ids for the same sampler, lower case
    default_steps: int = 25
    # The schedule the CLI uses when none is given (the window keeps the person's choice).
    default_schedule: str = "karras"
    # False for DDIM and PLMS: they run on the CompVis scripts' own timesteps, so the request's
    # schedule is ignored and not written into the picture's parameters.
    uses_schedule: bool = True
    # Draws fresh noise at every step, so it needs a NoiseSource (the seed's generators).
    stochastic: bool = False
    # Takes the request's eta (DDIM): then stochastic exactly when eta > 0.
    takes_eta: bool = False
    # Model evaluations of one run: per_step * steps + extra (Heun's step to sigma 0 is plain
    # Euler: 2 * steps - 1; PLMS evaluates twice in its first step: steps + 1).
    evaluations_per_step: int = 1
    extra_evaluations: int = 0

    def evaluations(self, steps: int) -> int:
        """Denoiser evaluations of one run of ``steps`` steps."""
        return self.evaluations_per_step * steps + self.extra_evaluations

    def draws_noise(self, eta: float = 0.0) -> bool:
        """Whether a run with this eta draws step noise (needs the seed's NoiseSource)."""
        return self.stochastic or (self.takes_eta and eta > 0)


CATALOGUE: tuple[SamplerInfo, ...] = (
    SamplerInfo("euler", "Euler", aliases=("k_euler",)),
    SamplerInfo(
        "euler_a",
        "Euler a",
        # "euler_ancestral" is ComfyUI's id, seen in texts it exports A1111-style.
        aliases=("k_euler_a", "k_euler_ancestral", "euler_ancestral"),
        stochastic=True,
    ),
    SamplerInfo("heun", "Heun", aliases=("k_heun",), evaluations_per_step=2, extra_evaluations=-1),
    SamplerInfo("lms", "LMS", aliases=("k_lms",)),
    SamplerInfo("dpmpp_2m", "DPM++ 2M", aliases=("k_dpmpp_2m",)),
    SamplerInfo("dpmpp_2m_sde", "DPM++ 2M SDE", aliases=("k_dpmpp_2m_sde",), stochastic=True),
    SamplerInfo(
        "ddim",
        "DDIM",
        default_steps=50,
        default_schedule="normal",
        uses_schedule=False,
        takes_eta=True,
    ),
    SamplerInfo(
        "plms",
        "PLMS",
        default_steps=50,
        default_schedule="normal",
        uses_schedule=False,
        extra_evaluations=1,
    ),
    # Latent Consistency Models (A1111 writes "LCM", its id "k_lcm"): denoise, re-noise from
    # the seed's stream. Made for LCM-distilled models and LCM-LoRA, in 2-8 steps.
    SamplerInfo(
        "lcm", "LCM", aliases=("k_lcm",), default_steps=6, default_schedule="lcm", stochastic=True
    ),
)

DEFAULT_SAMPLER = "dpmpp_2m"

_BY_ID = {info.id: info for info in CATALOGUE}


def sampler_ids() -> tuple[str, ...]:
    """The ids in catalogue order (the order the app lists them in)."""
    return tuple(_BY_ID)


def sampler_info(sampler_id: str) -> SamplerInfo:
    """The record of a sampler id; ValueError for an unknown one (a caller's bug: requests
    are validated first)."""
    try:
        return _BY_ID[sampler_id]
    except KeyError:
        raise ValueError(f"unknown sampler {sampler_id!r}") from None


def find_sampler(name: str) -> SamplerInfo | None:
    """The sampler an id, alias or display name means, ignoring case; None when unknown."""
    wanted = name.strip().casefold()
    for info in CATALOGUE:
        if wanted in (info.id, info.display_name.casefold(), *info.aliases):
            return info
    return None


# -- schedules ------------------------------------------------------------------------------------

# LCM's distillation ran on 50 evenly spaced timesteps (diffusers' LCMScheduler
# ``original_inference_steps``); its schedule picks its steps among them.
LCM_ORIGINAL_STEPS = 50


@dataclass(frozen=True)
class ScheduleInfo:
    """A noise schedule: how a sampler's steps are spread over the noise levels."""

    id: str  # what a GenerationRequest and the CLI's --schedule say (ComfyUI's names)
    display_name: str  # as A1111 writes it after "Schedule type:"
    aliases: tuple[str, ...] = ()  # other tools' spellings, lower case
    max_steps: int | None = None  # None: any number of steps


SCHEDULE_CATALOGUE: tuple[ScheduleInfo, ...] = (
    ScheduleInfo("normal", "Normal"),
    ScheduleInfo("karras", "Karras"),
    # A1111 also accepts "SGMUniform" (sd_schedulers.py aliases).
    ScheduleInfo("sgm_uniform", "SGM Uniform", aliases=("sgmuniform",)),
    ScheduleInfo("simple", "Simple"),
    # Not an A1111 schedule type: A1111's LCM sampler spreads its steps over the same 50
    # timesteps itself. Written "LCM" and read back by us.
    ScheduleInfo("lcm", "LCM", max_steps=LCM_ORIGINAL_STEPS),
)

_SCHEDULES_BY_ID = {info.id: info for info in SCHEDULE_CATALOGUE}


def schedule_ids() -> tuple[str, ...]:
    """The schedule ids in catalogue order (the order the app lists them in)."""
    return tuple(_SCHEDULES_BY_ID)


def schedule_info(schedule_id: str) -> ScheduleInfo:
    """The record of a schedule id; ValueError for an unknown one."""
    try:
        return _SCHEDULES_BY_ID[schedule_id]
    except KeyError:
        raise ValueError(f"unknown schedule {schedule_id!r}") from None


def find_schedule(name: str) -> ScheduleInfo | None:
    """The schedule an id, alias or display name means, ignoring case; None when unknown."""
    wanted = name.strip().casefold()
    for info in SCHEDULE_CATALOGUE:
        if wanted in (info.id, info.display_name.casefold(), *info.aliases):
            return info
    return None
