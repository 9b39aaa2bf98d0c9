"""Sampling presets: sampler, schedule, steps and guidance that belong together.

A preset is not stored anywhere: the window shows the preset whose four values the controls
hold, and "Custom" otherwise. So a preset survives a restart with the parameters it set
(``Settings.parameters``), and changing any of the four shows "Custom" at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.parameters import sampler_display_name, schedule_display_name


@dataclass(frozen=True)
class SamplingPreset:
    id: str
    name: str  # what the picker shows before the values
    sampler: str  # engine.samplers ids
    schedule: str
    steps: int
    guidance_scale: float
    tip: str  # which models it is for

    @property
    def label(self) -> str:
        """ "Fast: LCM (LCM, 6 steps, guidance 1.5)"."""
        sampler = sampler_display_name(self.sampler)
        schedule = schedule_display_name(self.schedule)
        if self.schedule == self.sampler:  # LCM on its own schedule
            method = sampler
        elif self.schedule == "karras":  # as A1111 named them: "DPM++ 2M Karras"
            method = f"{sampler} {schedule}"
        else:
            method = f"{sampler}, {schedule}"
        guidance = f"{self.guidance_scale:g}"
        return f"{self.name} ({method}, {self.steps} steps, guidance {guidance})"

    def values(self) -> dict[str, object]:
        """The GenerationParams fields the preset sets."""
        return {
            "sampler": self.sampler,
            "schedule": self.schedule,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
        }


PRESETS: tuple[SamplingPreset, ...] = (
    SamplingPreset(
        "quality",
        "Quality",
        "dpmpp_2m",
        "karras",
        25,
        7.0,
        "For ordinary Stable Diffusion models: the app's defaults.",
    ),
    SamplingPreset(
        "lcm",
        "Fast: LCM",
        "lcm",
        "lcm",
        6,
        1.5,
        "For LCM models, or any model with an LCM-LoRA in the prompt "
        "(<lora:lcm-lora-sdv1-5:1>). Ordinary models give blurred pictures with it.",
    ),
    SamplingPreset(
        "turbo",
        "Turbo",
        "euler_a",
        "sgm_uniform",
        4,
        1.0,
        "For SD-Turbo, Lightning and Hyper-SD models, made for a few steps without guidance. "
        "Guidance 1 also skips the negative prompt's pass: twice as fast per step.",
    ),
)


def preset_of(sampler: str, schedule: str, steps: int, guidance_scale: float) -> str | None:
    """The id of the preset with exactly these values, or None ("Custom")."""
    for preset in PRESETS:
        if (preset.sampler, preset.schedule, preset.steps) == (sampler, schedule, steps) and abs(
            preset.guidance_scale - guidance_scale
        ) < 1e-6:
            return preset.id
    return None
