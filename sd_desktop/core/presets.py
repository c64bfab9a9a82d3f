"""Presets: sampler, schedule, steps and CFG picked in one click (the window) or `--preset` (the CLI). "Quality" is
the usual 20-step run; the few-step ones need a model made for them, named in `expects` (with another model they
give a blurred or burnt picture, not an error)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import InvalidRequestError


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    sampler: str
    schedule: str
    steps: int
    cfg_scale: float
    expects: str

    def values(self) -> dict:
        return {"sampler": self.sampler, "schedule": self.schedule, "steps": self.steps, "cfg_scale": self.cfg_scale}


PRESETS = {
    "quality": Preset("quality", "Quality", "dpmpp_2m", "karras", 20, 7.5, "any Stable Diffusion model"),
    "fast": Preset("fast", "Fast (LCM, 6 steps)", "lcm", "sgm_uniform", 6, 1.5,
                   "an LCM model, or the LCM-LoRA of its base on any model (lcm-lora-sdv1-5 for SD 1.5, "
                   "lcm-lora-sdxl for SDXL)"),
    "turbo": Preset("turbo", "Turbo (4 steps)", "euler_a", "sgm_uniform", 4, 1.0,
                    "a Turbo, Lightning or Hyper-SD model or LoRA made for 4 steps (Hyper-SD's 4-step LoRA, "
                    "SD-Turbo)"),
}


def preset_named(name: str) -> Preset:
    preset = PRESETS.get(str(name).strip().lower())
    if preset is None:
        raise InvalidRequestError(f"preset {name!r} is unknown; choose {', '.join(PRESETS)}")
    return preset


def apply_preset(request, name: str):
    """The request with the preset's sampler, schedule, steps and CFG."""
    return dataclasses.replace(request, **preset_named(name).values())


def preset_of(sampler: str, schedule: str, steps: int, cfg_scale: float) -> str | None:
    """The preset these values are, or None (custom)."""
    for preset in PRESETS.values():
        if (preset.sampler, preset.schedule, preset.steps, float(preset.cfg_scale)) == (sampler, schedule, steps,
                                                                                         float(cfg_scale)):
            return preset.name
    return None
