"""The sampler registry: the one source of sampler and schedule names, their AUTOMATIC1111 and ComfyUI
labels, and what each needs (a schedule, fresh noise, DDIM's eta). The request's validation, metadata,
the window's combos and the CLI's choices all read it; adding a sampler is one entry here.

Importing it imports no torch (the window and the metadata reader use it): entries name their functions in
core.sampling.samplers and core.sampling.schedules, which are imported when a sampler runs.

How a pipeline runs sampler `name` for `steps` and `schedule`:

1. sigmas = sampler_sigmas(name, steps, schedule)          # float32 [steps + 1], descending, on the CPU
   img2img: sigmas = img2img_sigmas(sigmas, strength, spec.img2img_convention)  # A1111's step count
2. x = initial_x(name, noise, sigmas, init_latents)        # noise: float32 [B, 4, H/8, W/8], N(0, 1)
   txt2img: noise * sigmas[0] (k-diffusion's samplers, as A1111 and ComfyUI start), or
   noise * sqrt(sigmas[0]^2 + 1) for samplers whose diffusers scheduler starts from unit noise in the
   U-Net's space (UniPC, LCM, DDIM, DDPM);
   img2img: init_latents + noise * sigmas[0] (diffusers' add_noise, for every sampler).
3. x = SAMPLERS[name].run(denoiser, x, sigmas, extra_args=..., noise_sampler=..., callback=..., eta=...)
   eta is DDIM's and reaches only the samplers with uses_eta (Euler a keeps eta = 1 as in A1111).
   noise_sampler: each image's seeded generator, or for spec.noise == "brownian" (the SDE samplers) a
   Brownian tree per image seed (core.sampling.noise).
4. latents = to_unet_latents(x, sigmas[-1])  # = diffusers' output_type="latent"
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InvalidRequestError

if TYPE_CHECKING:
    import torch

__all__ = ["SAMPLERS", "SCHEDULES", "SamplerSpec", "ScheduleSpec", "sampler_named", "schedule_named",
           "sampler_sigmas", "initial_x", "to_unet_latents", "sampler_from_label", "schedule_from_label",
           "schedule_label", "timestep_samplers", "resolve_sampler", "resolve_schedule", "AUTOMATIC_SCHEDULE"]


def _function(module: str, name: str):
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    label: str  # AUTOMATIC1111's "Schedule type"
    comfy: str  # ComfyUI's scheduler name
    function: str  # in core.sampling.schedules: steps -> [steps + 1] sigmas

    def sigmas(self, steps: int) -> "torch.Tensor":
        return _function("schedules", self.function)(steps)


@dataclass(frozen=True)
class SamplerSpec:
    name: str
    label: str  # AUTOMATIC1111's sampler name, as its infotext writes it
    comfy: str  # ComfyUI's sampler name
    function: str  # the sample_* function in core.sampling.samplers
    ancestral: bool  # adds fresh noise every step (needs a seeded noise_sampler)
    uses_eta: bool  # the request's eta (DDIM's) applies
    unit_noise_start: bool  # txt2img starts at noise * sqrt(sigma0^2 + 1), unit noise in VP space
    own_sigmas: str | None = None  # in core.sampling.schedules: own timesteps, the schedule does not apply
    # Feed the U-Net whole training timesteps (diffusers' schedulers do; k-diffusion, and so A1111,
    # interpolate). DDIM's and DDPM's sigmas sit on training timesteps anyway.
    quantize_timesteps: bool = False
    default_schedule: str = "normal"  # what A1111's "Automatic" means for this sampler
    noise: str = "seeded"  # "seeded": each image's generator; "brownian": a Brownian tree per image (SDE)
    discard_next_to_last: bool = False  # A1111 computes one sigma more and drops the next-to-last
    lcm_boundary: bool = False  # LCM's consistency boundary condition on the x0 estimate (core.sampling.denoisers)
    # k-diffusion's eta (the noise an ancestral or SDE step adds, 1 = its full amount): A1111's "Eta" setting for
    # ancestral samplers, which it passes to every sampler function taking one and writes as "Eta" when not 1
    ancestral_eta: bool = False

    @property
    def img2img_convention(self) -> str:
        """How many steps img2img runs at a strength (core.sampling.schedules.img2img_steps): A1111's for
        the samplers over a sigma list, rounded for DDIM and DDPM."""
        return "rounded" if self.own_sigmas is not None else "a1111"

    def draws_seeded_noise(self, eta: float = 0.0, ancestral_eta: float = 1.0) -> bool:
        """Draws fresh noise from each image's generator after the starting noise (what A1111's ENSD changes):
        the ancestral samplers (unless their eta is 0), DDIM with an eta; not the SDE samplers, whose Brownian
        trees take the seed."""
        if self.noise != "seeded":
            return False
        if self.uses_eta:
            return bool(eta)
        return self.ancestral and not (self.ancestral_eta and not ancestral_eta)

    @property
    def uses_schedule(self) -> bool:
        return self.own_sigmas is None

    @property
    def sampler(self):
        """The sample_* function."""
        return _function("samplers", self.function)

    def run(self, denoiser, x: "torch.Tensor", sigmas, *, extra_args: dict | None = None,
            noise_sampler=None, callback=None, eta: float = 0.0, ancestral_eta: float = 1.0) -> "torch.Tensor":
        """The uniform call: eta (DDIM's) reaches only the samplers with uses_eta, ancestral_eta (A1111's "Eta")
        only those with ancestral_eta."""
        kwargs = {"eta": eta} if self.uses_eta else {"eta": ancestral_eta} if self.ancestral_eta else {}
        return self.sampler(denoiser, x, sigmas, extra_args=extra_args, noise_sampler=noise_sampler,
                            callback=callback, **kwargs)


SCHEDULES: dict[str, ScheduleSpec] = {spec.name: spec for spec in [
    ScheduleSpec("karras", "Karras", "karras", "karras_sigmas"),
    ScheduleSpec("normal", "Normal", "normal", "normal_sigmas"),  # A1111's "Uniform" and "Normal" are this too
    ScheduleSpec("exponential", "Exponential", "exponential", "exponential_sigmas"),
    ScheduleSpec("sgm_uniform", "SGM Uniform", "sgm_uniform", "sgm_uniform_sigmas"),
    ScheduleSpec("simple", "Simple", "simple", "simple_sigmas"),
]}
SCHEDULE_ALIASES = {"Uniform": "normal", "SGMUniform": "sgm_uniform"}  # other labels A1111 writes for the same

_K = dict(ancestral=False, uses_eta=False, unit_noise_start=False)  # k-diffusion's form: A1111's and ComfyUI's

# In the order the window lists them: the usual choice first.
SAMPLERS: dict[str, SamplerSpec] = {spec.name: spec for spec in [
    SamplerSpec("dpmpp_2m", "DPM++ 2M", "dpmpp_2m", "sample_dpmpp_2m", **_K, default_schedule="karras"),
    SamplerSpec("euler_a", "Euler a", "euler_ancestral", "sample_euler_ancestral",
                **{**_K, "ancestral": True}, ancestral_eta=True),
    SamplerSpec("euler", "Euler", "euler", "sample_euler", **_K),
    SamplerSpec("dpmpp_2m_sde", "DPM++ 2M SDE", "dpmpp_2m_sde", "sample_dpmpp_2m_sde",
                **{**_K, "ancestral": True}, default_schedule="exponential", noise="brownian", ancestral_eta=True),
    SamplerSpec("dpmpp_sde", "DPM++ SDE", "dpmpp_sde", "sample_dpmpp_sde",
                **{**_K, "ancestral": True}, default_schedule="karras", noise="brownian", ancestral_eta=True),
    SamplerSpec("dpmpp_3m_sde", "DPM++ 3M SDE", "dpmpp_3m_sde", "sample_dpmpp_3m_sde",
                **{**_K, "ancestral": True}, default_schedule="exponential", noise="brownian",
                discard_next_to_last=True, ancestral_eta=True),
    SamplerSpec("dpmpp_2s_a", "DPM++ 2S a", "dpmpp_2s_ancestral", "sample_dpmpp_2s_ancestral",
                **{**_K, "ancestral": True}, default_schedule="karras", ancestral_eta=True),
    SamplerSpec("heun", "Heun", "heun", "sample_heun", **_K),
    SamplerSpec("lms", "LMS", "lms", "sample_lms", **_K),
    SamplerSpec("dpm2", "DPM2", "dpm_2", "sample_dpm2", **_K, default_schedule="karras", discard_next_to_last=True),
    SamplerSpec("dpm2_a", "DPM2 a", "dpm_2_ancestral", "sample_dpm2_ancestral", **{**_K, "ancestral": True},
                default_schedule="karras", discard_next_to_last=True, ancestral_eta=True),
    SamplerSpec("unipc", "UniPC", "uni_pc_bh2", "sample_unipc", ancestral=False, uses_eta=False,
                unit_noise_start=True, quantize_timesteps=True),  # = diffusers' UniPCMultistepScheduler
    SamplerSpec("lcm", "LCM", "lcm", "sample_lcm", ancestral=True, uses_eta=False, unit_noise_start=True,
                quantize_timesteps=True, lcm_boundary=True),  # = diffusers' LCMScheduler over its sigmas
    SamplerSpec("ddim", "DDIM", "ddim", "sample_ddim", ancestral=False, uses_eta=True, unit_noise_start=True,
                own_sigmas="ddim_sigmas", quantize_timesteps=True),
    SamplerSpec("ddpm", "DDPM", "ddpm", "sample_ddpm", ancestral=True, uses_eta=False, unit_noise_start=True,
                own_sigmas="ddpm_sigmas", quantize_timesteps=True),
]}

# What A1111 writes as the schedule of a sampler with its own timesteps ("the sampler's default").
AUTOMATIC_SCHEDULE = "Automatic"


def sampler_named(name: str) -> SamplerSpec:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise InvalidRequestError(f"sampler {name!r} is unknown; choose one of {', '.join(SAMPLERS)}") from None


def schedule_named(name: str) -> ScheduleSpec:
    try:
        return SCHEDULES[name]
    except KeyError:
        raise InvalidRequestError(f"schedule {name!r} is unknown; choose one of {', '.join(SCHEDULES)}") from None


def timestep_samplers() -> list[str]:
    """Samplers with their own timesteps, which ignore the schedule."""
    return [name for name, spec in SAMPLERS.items() if not spec.uses_schedule]


def sampler_sigmas(name: str, steps: int, schedule: str = "karras") -> "torch.Tensor":
    """The full float32 sigma list ([steps + 1], descending, on the CPU) that sampler `name` runs over."""
    spec = sampler_named(name)
    if spec.own_sigmas is not None:
        return _function("schedules", spec.own_sigmas)(steps)
    if spec.discard_next_to_last:
        return _function("schedules", "discard_next_to_last")(schedule_named(schedule).sigmas(steps + 1))
    return schedule_named(schedule).sigmas(steps)


def initial_x(name: str, noise: "torch.Tensor", sigmas, init_latents: "torch.Tensor | None" = None) -> "torch.Tensor":
    """The sampler's starting point: see step 2 of the module docstring."""
    sigma0 = float(sigmas[0])
    if init_latents is not None:
        return init_latents + noise * sigma0
    return noise * (math.sqrt(sigma0**2 + 1) if sampler_named(name).unit_noise_start else sigma0)


def to_unet_latents(x: "torch.Tensor", sigma_last) -> "torch.Tensor":
    """The sampler's final x as the U-Net/VAE latent (VP): x / sqrt(sigma_last^2 + 1). The identity
    when the sigmas end at 0; DDIM ends at sigma(t=0) ~0.029."""
    return x / math.sqrt(float(sigma_last) ** 2 + 1)


def schedule_label(sampler: str, schedule: str) -> str:
    """A1111's "Schedule type" of a run: the schedule's label, or "Automatic" for own timesteps (as A1111
    writes for DDIM)."""
    spec = SAMPLERS.get(sampler)
    if spec is not None and not spec.uses_schedule:
        return AUTOMATIC_SCHEDULE
    return SCHEDULES[schedule].label if schedule in SCHEDULES else schedule


def sampler_from_label(label: str) -> tuple[str | None, str | None]:
    """(our sampler, the schedule a pre-1.9 A1111 label carried, e.g. "DPM++ 2M Karras") for an A1111
    label, a ComfyUI name or ours; (None, None) when it names no sampler of ours."""
    by_label = {spec.label: name for name, spec in SAMPLERS.items()}
    by_label.update({spec.comfy: name for name, spec in SAMPLERS.items()})
    by_label.update({name: name for name in SAMPLERS})
    if label in by_label:
        return by_label[label], None
    for suffix, schedule in _schedule_suffixes():
        if label.endswith(" " + suffix) and label[: -len(suffix) - 1] in by_label:
            return by_label[label[: -len(suffix) - 1]], schedule
    return None, None


def _schedule_suffixes() -> list[tuple[str, str]]:
    """(label, our schedule) for every name a schedule goes by, longest first ("SGM Uniform" before "Uniform")."""
    names = [(key, name) for name, spec in SCHEDULES.items() for key in (spec.label, spec.comfy, name)]
    names += list(SCHEDULE_ALIASES.items())
    return sorted(set(names), key=lambda item: -len(item[0]))


def schedule_from_label(label: str) -> str | None:
    """Our schedule for A1111's "Schedule type" label, a ComfyUI scheduler name or ours; None for
    "Automatic" and for names we do not have."""
    for name, spec in SCHEDULES.items():
        if label in (spec.label, spec.comfy, name):
            return name
    return SCHEDULE_ALIASES.get(label)


def _nearest(text: str, names: list[str]) -> str:
    import difflib

    lowered = {name.lower(): name for name in names}
    close = difflib.get_close_matches(text.lower(), list(lowered), n=1, cutoff=0.5)
    return f"; did you mean '{lowered[close[0]]}'?" if close else ""


def resolve_sampler(text: str) -> tuple[str, str | None]:
    """(our sampler, the schedule its label carried) for what a person typed: our name, an A1111 label
    ("DPM++ 2M SDE", "DPM++ 2M Karras") or a ComfyUI name, in any case. InvalidRequestError with the nearest
    name otherwise."""
    text = " ".join(text.split())
    sampler, schedule = sampler_from_label(text)
    if sampler is None:
        folded = {key.lower(): key for spec in SAMPLERS.values() for key in (spec.name, spec.label, spec.comfy)}
        lowered = text.lower()
        if lowered in folded:
            sampler, schedule = sampler_from_label(folded[lowered])
        for suffix, name in ([] if sampler else _schedule_suffixes()):
            base = lowered[: -len(suffix) - 1]
            if lowered.endswith(" " + suffix.lower()) and base in folded:
                sampler, schedule = sampler_from_label(folded[base])[0], name
                break
    if sampler is None:
        names = [key for spec in SAMPLERS.values() for key in (spec.name, spec.label)]
        names += [f"{spec.label} {schedule.label}" for spec in SAMPLERS.values() if spec.uses_schedule
                  for schedule in SCHEDULES.values()]
        raise InvalidRequestError(f"unknown sampler '{text}'{_nearest(text, names)} "
                                  f"(choose one of {', '.join(spec.label for spec in SAMPLERS.values())})")
    return sampler, schedule


def resolve_schedule_or_none(text: str) -> str | None:
    text = " ".join(text.split())
    found = schedule_from_label(text)
    if found is None:
        folded = {key.lower(): name for name, spec in SCHEDULES.items() for key in (name, spec.label, spec.comfy)}
        folded.update({alias.lower(): name for alias, name in SCHEDULE_ALIASES.items()})
        found = folded.get(text.lower())
    return found


def resolve_schedule(text: str) -> str:
    """Our schedule for what a person typed (ours, A1111's label, ComfyUI's, any case); InvalidRequestError
    with the nearest name otherwise."""
    found = resolve_schedule_or_none(text)
    if found is None:
        text = text.strip()
        names = [key for name, spec in SCHEDULES.items() for key in (name, spec.label)]
        raise InvalidRequestError(f"unknown schedule '{text}'{_nearest(text, names)} "
                                  f"(choose one of {', '.join(spec.label for spec in SCHEDULES.values())})")
    return found
