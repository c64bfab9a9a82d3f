"""`generate`: one `GenerationRequest` in, finished images out — txt2img, img2img and inpainting.

The flow: validate the request, encode the prompts, draw each image's noise from its own seed,
run the sampler over the guided denoiser (previews through a callback, cancel as a denoiser wrapper),
check that the result is finite, decode with the VAE, paste inpainted regions back over the original
pixels, and attach the parameters to each image.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from PIL import Image

from ..errors import Cancelled, InvalidRequestError, NonFiniteOutputError
from ..interrupt import stop_points
from ..io import images as img
from ..io.metadata import JSON_KEY, PARAMETERS_KEY, format_parameters, metadata_json
from ..request import GenerationRequest, Mode
from ..runtime.allocator import release_cpu_memory
from ..runtime.preview import BackgroundPreviews, latent_preview, latent_rgb_projection, picture_array
from ..runtime.vae_ops import decode_latents, encode_pixels
from ..sampling.denoisers import CancellableDenoiser, GuidedDenoiser, InpaintDenoiser, SoftInpaintDenoiser
from ..request import MASKED_CONTENT, NOISE_SCHEDULES, PREDICTIONS, RNG_SOURCES
from ..lora.apply import set_loras
from ..lora.tags import check_tags_resolved, strip_tags
from ..sampling.noise import SeededNoise
from ..sampling.registry import SAMPLERS, SCHEDULES, initial_x, sampler_named, sampler_sigmas, to_unet_latents
from ..sampling.schedules import img2img_sigmas, training_schedule
from ..text.embeddings import embeddings_for
from ..text.prompts import check_emphasis, encode_prompts
from .conditioning import guidance_args, negative
from .hires import check_hires, resolve_upscaler, second_pass_request, second_pass_total, upscaled_latents

MAX_SEED = 2**63 - 1

StopCheck = Callable[[], bool]


@dataclass
class StepInfo:
    """What `on_step` receives after every sampler step."""

    step: int  # steps done, 1..total
    total: int
    preview: np.ndarray | None  # uint8 RGB [h, w, 3] of the first image's current estimate (latent resolution)
    sigma: float = 0.0
    # a full-size preview that comes after its step (core.runtime.preview.BackgroundPreviews): the progress was
    # reported already, with this step's StepInfo and no picture
    picture_only: bool = False


@dataclass
class GenerationResult:
    images: list[Image.Image]
    latents: torch.Tensor  # final latents as the U-Net sees them (scaled), [B, 4, h, w]
    seeds: list[int]
    request: GenerationRequest  # with the size, seed and defaults actually used
    mode: Mode
    notes: list[str] = field(default_factory=list)  # e.g. a size that was rounded


@dataclass(frozen=True)
class BatchTag:
    """Which job an image belongs to, written into our JSON so the history can group a job's images and "Last"
    can reuse its base seed after a restart. A job is one click: `size` images with seeds seed, seed+1, ...
    made by one or more generate() calls; `first` is the index of this call's first image within it."""

    id: str
    first: int
    size: int
    seed: int

    @staticmethod
    def alone(request: GenerationRequest) -> BatchTag:
        """A generate() call that is the whole job (the CLI's, a test's)."""
        return BatchTag(secrets.token_hex(6), 0, request.batch_size, request.seed)

    def record(self, offset: int) -> dict:
        return {"id": self.id, "index": self.first + offset, "size": self.size, "seed": self.seed}


def round_size(width: int, height: int) -> tuple[int, int]:
    """A size the VAE and U-Net take: multiples of 8, at least 8."""
    return max(8, round(width / 8) * 8), max(8, round(height / 8) * 8)


def _fail(name: str, message: str):
    raise InvalidRequestError(f"{name} {message}")


def check_request(request: GenerationRequest) -> None:
    """Every check that needs no model (steps, sizes given, strength, sampler, schedule, seed ...): the CLI
    runs it before loading one, so a typo fails at once. InvalidRequestError, one line."""
    fail = _fail

    if not isinstance(request.prompt, str) or not isinstance(request.negative_prompt, str):
        fail("prompt", "must be text")
    if not isinstance(request.steps, int) or request.steps < 1:
        fail("steps", f"must be at least 1 (got {request.steps})")
    if request.steps > 1000:
        fail("steps", f"must be at most 1000 (got {request.steps})")
    if not isinstance(request.batch_size, int) or request.batch_size < 1:
        fail("batch_size", f"must be at least 1 (got {request.batch_size})")
    if not 0.0 <= float(request.strength) <= 1.0:
        fail("strength", f"must be between 0 and 1 (got {request.strength})")
    if float(request.cfg_scale) < 0 or not np.isfinite(float(request.cfg_scale)):
        fail("cfg_scale", f"must be 0 or more (got {request.cfg_scale})")
    if float(request.eta) < 0:
        fail("eta", f"must be 0 or more (got {request.eta})")
    if not 0.0 <= float(request.ancestral_eta) <= 1.0:  # (A1111's slider's range)
        fail("ancestral_eta", f"must be from 0 to 1 (A1111's Eta for ancestral samplers; got {request.ancestral_eta})")
    if request.mask_blur < 0:
        fail("mask_blur", f"must be 0 or more (got {request.mask_blur})")
    sampler_named(request.sampler)
    if request.schedule not in SCHEDULES:
        fail("schedule", f"{request.schedule!r} is unknown; choose {' or '.join(SCHEDULES)}")
    if request.seed is not None and not (isinstance(request.seed, int) and 0 <= request.seed <= MAX_SEED - request.batch_size):
        fail("seed", f"must be a whole number from 0 to {MAX_SEED - request.batch_size} (got {request.seed})")
    if request.mask is not None and request.init_image is None:
        fail("mask", "needs an init_image to inpaint")
    check_emphasis(request.emphasis)
    check_hires(request)
    check_tags_resolved(request)
    if request.resize_mode not in img.RESIZE_MODES:
        fail("resize_mode", f"{request.resize_mode!r} is unknown; choose {', '.join(img.RESIZE_MODES)}")
    if request.masked_content not in MASKED_CONTENT:
        fail("masked_content", f"{request.masked_content!r} is unknown; choose {', '.join(MASKED_CONTENT)}")
    if not isinstance(request.inpaint_padding, int) or not 0 <= request.inpaint_padding <= 1024:
        fail("inpaint_padding", f"must be from 0 to 1024 pixels (got {request.inpaint_padding})")
    if request.prediction not in PREDICTIONS:
        fail("prediction", f"{request.prediction!r} is unknown; choose {', '.join(PREDICTIONS)}")
    if request.noise_schedule not in NOISE_SCHEDULES:
        fail("noise_schedule", f"{request.noise_schedule!r} is unknown; choose {', '.join(NOISE_SCHEDULES)}")
    if not 0.0 <= float(request.rescale_cfg) <= 1.0:
        fail("rescale_cfg", f"must be from 0 to 1 (got {request.rescale_cfg})")
    for name, pair, low in (("original_size", request.original_size, 1), ("crop", request.crop, 0)):
        if pair is not None and (len(tuple(pair)) != 2 or not all(isinstance(v, int) and low <= v <= 16384 for v in pair)):
            fail(name, f"must be two whole numbers of pixels (width and height, or left and top); got {pair}")
    pair = request.seed_resize_from
    if pair is not None and (len(tuple(pair)) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= 16384 for v in pair)):
        fail("seed_resize_from", f"must be a width and a height from 8 to 16384 pixels, or None for off (got {pair})")
    if request.rng not in RNG_SOURCES:
        fail("rng", f"{request.rng!r} is unknown; choose {' or '.join(RNG_SOURCES)}")
    if not 0.0 <= float(request.variation_strength) <= 1.0:
        fail("variation_strength", f"must be from 0 to 1 (got {request.variation_strength})")
    if request.variation_seed is not None and (isinstance(request.variation_seed, bool) or not isinstance(
            request.variation_seed, int) or not 0 <= request.variation_seed < 2**63):
        fail("variation_seed", f"must be a whole number from 0, or -1 (None) for a random one "
                               f"(got {request.variation_seed!r})")
    if isinstance(request.ensd, bool) or not isinstance(request.ensd, int) or not 0 <= request.ensd < 2**31:
        fail("ensd", f"must be a whole number from 0 to {2**31 - 1} (A1111's Eta noise seed delta; got {request.ensd!r})")
    for name, value in (("width", request.width), ("height", request.height)):
        if value is not None and (not isinstance(value, int) or value <= 0):
            fail(name, f"must be a positive number of pixels (got {value})")


def validate_request(model, request: GenerationRequest) -> tuple[GenerationRequest, list[str]]:
    """Check every field; fill in defaults (size, seed). Returns the resolved request and notes."""
    notes: list[str] = []
    fail = _fail
    check_request(request)
    check_clip_skip(model, request.clip_skip)
    if request.taesd_decode and (getattr(model, "taesd", None) is None or model.taesd.decoder is None):
        fail("taesd_decode", f"asks for a TAESD decode, but none is loaded: put {model.family.taesd}_decoder.safetensors "
                             "in models/vae_approx (or give --taesd FILE), or turn it off")

    init = img.load_image(request.init_image, "init_image") if request.init_image is not None else None
    mask = img.load_image(request.mask, "mask", mode="L") if request.mask is not None else None
    default_w, default_h = init.size if init is not None else (model.native_size, model.native_size)
    width, height = request.width or default_w, request.height or default_h
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or value <= 0:
            fail(name, f"must be a positive number of pixels (got {value})")
    rounded_w, rounded_h = round_size(width, height)
    if (rounded_w, rounded_h) != (width, height):
        notes.append(f"size {width}x{height} rounded to {rounded_w}x{rounded_h} (a multiple of 8)")
    if init is not None and request.resize_mode != "just resize" and init.size != (rounded_w, rounded_h):
        if mask is not None and mask.size != init.size:  # (a mask of another size covers the whole picture)
            mask = mask.resize(init.size, Image.LANCZOS)
        init = img.fit_picture(init, (rounded_w, rounded_h), request.resize_mode)
        mask = img.fit_picture(mask, (rounded_w, rounded_h), request.resize_mode) if mask is not None else None
    if request.negative_prompt.strip() and request.cfg_scale == 1:  # (one U-Net pass a step: the prompt's alone)
        notes.append("the negative prompt is not used at CFG 1 (each step is one pass, of the prompt alone)")
    if (request.original_size is not None or tuple(request.crop) != (0, 0)) and not model.config.unet.adm_in_channels:
        notes.append(f"the original size and crop position are SDXL's conditioning; {model.family.label} models "
                     "do not take them")
    resize = request.seed_resize_from
    if resize is not None and not request.hires_fix and (resize[0] // 8, resize[1] // 8) == (rounded_w // 8, rounded_h // 8):
        notes.append(f"seed resize from {resize[0]}x{resize[1]} is the picture's own size: it changes nothing")
    seed = request.seed if request.seed is not None else secrets.randbelow(2**32)
    variation_seed = request.variation_seed
    if request.variation_strength and variation_seed is None:  # (A1111's -1: a random one, written with the image)
        variation_seed = secrets.randbelow(2**32)
    resolved = dataclasses.replace(request, width=rounded_w, height=rounded_h, seed=seed, init_image=init, mask=mask,
                                   variation_seed=variation_seed)
    return resolved, notes


def nth_image(request: GenerationRequest, offset: int) -> GenerationRequest:
    """The request of image `offset` of a job (a batch, or a batch count's runs): seed + offset; with a variation
    strength the seed stays and the variation seed counts up instead (A1111's all_seeds and all_subseeds)."""
    if not request.variation_strength:
        return dataclasses.replace(request, seed=request.seed + offset)
    varied = None if request.variation_seed is None else request.variation_seed + offset
    return dataclasses.replace(request, variation_seed=varied)


def prediction_of(model, request) -> str:
    """"eps" or "v": the request's override, else what the model's file says (core.loading)."""
    return model.config.prediction if request.prediction == "auto" else request.prediction


def zero_snr_of(model, request) -> bool:
    """Sample over the zero-terminal-SNR schedule: the request's choice, else what the model's file says."""
    if request.noise_schedule == "auto":
        return bool(getattr(model.config, "zero_snr", False))
    return request.noise_schedule == "zsnr"


def check_clip_skip(model, clip_skip) -> None:
    layers = model.config.text.layers + model.config.text.cut_layers
    if not isinstance(clip_skip, int) or not 1 <= clip_skip <= layers:
        raise InvalidRequestError(f"clip_skip must be a whole number from 1 to {layers} for this model (got {clip_skip})")


def generate(model, request: GenerationRequest, on_step: Callable[[StepInfo], None] | None = None,
             should_stop: StopCheck | None = None, batch: BatchTag | None = None,
             upscaler_dirs: Iterable = ()) -> GenerationResult:
    """One run of `request.batch_size` images. `batch`: the job it is part of (default: a job of its own).
    `upscaler_dirs`: models folders whose upscalers a hires fix may name (core.upscale.catalogue)."""
    request, notes = validate_request(model, request)
    batch = batch or BatchTag.alone(request)
    upscaler = resolve_upscaler(request, upscaler_dirs) if request.hires_fix else None  # (before any sampling)
    notes += set_loras(model, request.loras)  # the model carries exactly the request's LoRAs (none: bare)
    mode = request.mode
    stop = should_stop or (lambda: False)
    seeds = [nth_image(request, i).seed for i in range(request.batch_size)]

    try:
        with torch.inference_mode(), training_schedule(zero_snr_of(model, request)):
            if request.hires_fix:
                images, latents = _hires(model, request, seeds, on_step, stop, upscaler)
            elif mode == Mode.INPAINT and request.inpaint_full_res:
                images, latents = _inpaint_full_res(model, request, seeds, on_step, stop, notes)
            else:
                images, latents = _run(model, request, request.init_image, request.mask, seeds, on_step, stop)
                if mode == Mode.INPAINT:
                    base = request.init_image.resize((request.width, request.height), Image.LANCZOS)
                    soft = img.feather(request.mask.resize(base.size, Image.LANCZOS), request.mask_blur)
                    images = [img.composite(base, generated, soft) for generated in images]
    finally:
        release_cpu_memory()
    for offset, (image, seed) in enumerate(zip(images, seeds)):  # (each image says its own variation seed)
        attach_parameters(image, model, nth_image(request, offset), seed, mode, batch.record(offset))
    return GenerationResult(images=images, latents=latents, seeds=seeds, request=request, mode=mode, notes=notes)


def _hires(model, request: GenerationRequest, seeds: list[int], on_step, stop: StopCheck, upscaler):
    """Hires fix (core.pipelines.hires): the first pass, its upscale, the second pass; one progress for both."""
    first_total = request.steps
    total = first_total + second_pass_total(request)

    def counted(offset: int):
        def step(info: StepInfo) -> None:
            if on_step is not None:
                on_step(dataclasses.replace(info, step=offset + info.step, total=total))
        return step

    latent = isinstance(upscaler, str) and upscaler.startswith("Latent")
    pictures, latents = _run(model, request, None, None, seeds, counted(0), stop, decode_result=not latent)
    start = upscaled_latents(model, request, latents, pictures, upscaler, stop)
    return _run(model, second_pass_request(request), None, None, seeds, counted(first_total), stop,
                init_latents=start)


def _run(model, request: GenerationRequest, init: Image.Image | None, mask: Image.Image | None,
         seeds: list[int], on_step, stop: StopCheck, *, init_latents: torch.Tensor | None = None,
         decode_result: bool = True) -> tuple[list[Image.Image] | None, torch.Tensor]:
    """Sample one batch at the request's size; returns decoded images (not yet composited; None without
    `decode_result`) and latents. `init_latents` (scaled, [B, 4, h, w]): an Image to Image start given as
    latents (the hires fix's second pass) instead of `init`."""
    width, height = request.width, request.height
    channels = model.config.vae.latent_channels
    latent_shape = (channels, height // 8, width // 8)
    device = model.device
    variations = ([nth_image(request, i).variation_seed for i in range(len(seeds))]
                  if request.variation_strength else None)
    resize_from = None if request.seed_resize_from is None else (request.seed_resize_from[1] // 8,
                                                                 request.seed_resize_from[0] // 8)
    seeded = SeededNoise(seeds, request.rng, request.ensd, variations, request.variation_strength, resize_from)
    noise = seeded.draw(latent_shape, device)
    fill = noise  # an inpaint's "latent noise": the seeds' own noise, without variation or resize (as A1111 fills it)
    if (variations is not None or resize_from is not None) and init is not None and mask is not None and (
            request.masked_content == "latent noise"):
        fill = SeededNoise(seeds, request.rng).draw(latent_shape, device)

    texts = [strip_tags(request.prompt), strip_tags(request.negative_prompt)]
    cond, uncond = encode_prompts(model, texts, request.emphasis, request.clip_skip,
                                  embeddings_for(model, request.embeddings))
    uncond = negative(model, uncond, texts[1])
    batch = len(seeds)
    spec = SAMPLERS[request.sampler]

    sigmas = sampler_sigmas(request.sampler, request.steps, request.schedule)  # stays on the CPU
    if init is not None:
        picture = init.resize((width, height), Image.LANCZOS)
        if mask is not None and request.masked_content == "fill":  # A1111's masked content (core.request)
            picture = img.fill_masked(picture, mask.resize((width, height), Image.LANCZOS))
        init_latents = encode_pixels(model, img.to_tensor(picture), request.tiled_vae).expand(batch, -1, -1, -1)
        if mask is not None and request.masked_content in ("latent noise", "latent nothing"):
            soft = img.feather(mask.resize((width, height), Image.LANCZOS), request.mask_blur)
            area = img.mask_to_latent(soft, latent_shape[1:]).round().to(device, init_latents.dtype)  # as A1111's
            start = fill if request.masked_content == "latent noise" else torch.zeros_like(init_latents)
            init_latents = init_latents * (1 - area) + start.to(init_latents.dtype) * area
    if init_latents is not None:
        init_latents = init_latents.to(device)
        sigmas = img2img_sigmas(sigmas, float(request.strength), spec.img2img_convention)
        if len(sigmas) <= 1:  # strength 0: the init image through the VAE, nothing sampled
            return decode(model, init_latents, stop, request.tiled_vae), init_latents.clone()

    guided = GuidedDenoiser(model.unet, quantize_timesteps=spec.quantize_timesteps, lcm_boundary=spec.lcm_boundary,
                            prediction=prediction_of(model, request), rescale_cfg=request.rescale_cfg)
    guided.prepare(sigmas)  # every timestep looked up once, on the CPU, before the loop
    extra_args = guidance_args(model, cond, uncond, batch=batch, width=width, height=height,
                               cfg_scale=request.cfg_scale, original_size=request.original_size, crop=request.crop)
    if model.is_inpainting:
        extra_args["concat"] = inpainting_conditioning(model, init, mask, width, height, batch, request.tiled_vae)
    denoiser = guided
    if mask is not None and request.soft_inpainting:  # (any model: a 9-channel one sees the hard mask besides)
        latent_mask = img.mask_to_latent(img.feather(mask.resize((width, height), Image.LANCZOS), request.mask_blur),
                                         latent_shape[1:]).to(device)
        denoiser = SoftInpaintDenoiser(denoiser, init_latents, noise, latent_mask, sigmas)
    elif mask is not None and not model.is_inpainting:
        latent_mask = img.mask_to_latent(img.feather(mask.resize((width, height), Image.LANCZOS), request.mask_blur),
                                         latent_shape[1:]).to(device)
        denoiser = InpaintDenoiser(denoiser, init_latents, noise, latent_mask)
    denoiser = CancellableDenoiser(denoiser, stop)

    x = initial_x(request.sampler, noise, sigmas, init_latents)
    projection = latent_rgb_projection(model.latent_rgb, channels)
    total = len(sigmas) - 1
    taesd = model.taesd if getattr(model, "taesd_previews", False) and model.taesd is not None else None
    background = None
    # full-size, off the sampler's path; on an Apple GPU inline (MPS is not safe to use from two threads at once)
    inline_taesd = taesd is not None and taesd.decoder is not None and model.device.type not in ("cpu", "cuda")
    render = None
    if on_step is not None and taesd is not None and taesd.decoder is not None and not inline_taesd:
        render = lambda latent: picture_array(taesd.decode(latent)[0])  # noqa: E731
    elif on_step is not None and model.device.type == "cuda":  # the projection's copy to the CPU would sync each step
        render = lambda latent: latent_preview(latent[0], projection)  # noqa: E731
    if render is not None:
        background = BackgroundPreviews(render, lambda info, picture: on_step(
            dataclasses.replace(info, preview=picture, picture_only=True)))

    def callback(state: dict) -> None:
        if on_step is None:
            return
        info = StepInfo(step=state["i"] + 1, total=total, preview=None, sigma=float(state["sigma"]))
        if background is not None:
            on_step(info)  # the progress now; its picture when the previews' thread has it
            background.submit(state["denoised"][:1], info)
        elif inline_taesd:
            on_step(dataclasses.replace(info, preview=picture_array(taesd.decode(state["denoised"][:1])[0])))
        else:
            on_step(dataclasses.replace(info, preview=latent_preview(state["denoised"][0], projection)))

    # ancestral samplers draw each image's noise from its own seed, after its starting noise; SDE samplers from
    # a Brownian tree per image, seeded with its seed (both as A1111 does)
    try:
        noise_sampler = seeded.brownian(x, sigmas) if spec.noise == "brownian" else seeded.sampler(x)
        x = spec.run(denoiser, x, sigmas, extra_args=extra_args, noise_sampler=noise_sampler, callback=callback,
                     eta=float(request.eta), ancestral_eta=float(request.ancestral_eta))
    finally:
        if background is not None:
            background.close()
    latents = to_unet_latents(x, sigmas[-1])
    check_finite(model, latents, "the sampled latents")
    if not decode_result:
        return None, latents
    if request.taesd_decode:
        return decode_taesd(model, latents, stop), latents
    return decode(model, latents, stop, request.tiled_vae), latents


def decode_taesd(model, latents: torch.Tensor, stop: StopCheck | None = None) -> list[Image.Image]:
    """The final decode by the model's TAESD (request.taesd_decode), one picture at a time."""
    out = []
    for latent in latents.split(1):
        if stop is not None and stop():
            raise Cancelled("generation cancelled")
        out.append(Image.fromarray(picture_array(model.taesd.decode(latent)[0])))
    return out


def check_finite(model, tensor: torch.Tensor, what: str) -> None:
    """NaN or infinity would come out as a black picture: refuse it, saying what to do."""
    if bool(torch.isfinite(tensor).all()):
        return
    if model.dtype == torch.float16:
        raise NonFiniteOutputError(
            f"{what} came out as NaN (not a number): the model overflowed in float16; choose bf16 or fp32 "
            "precision (Preferences, or --precision bf16) and generate again")
    dtype = str(model.dtype).removeprefix("torch.")
    other = "" if model.dtype == torch.float32 else ", or choose fp32 precision"
    raise NonFiniteOutputError(f"{what} came out as NaN (not a number) in {dtype}: the model file may be damaged "
                               f"(download it again){other}")


def _inpaint_full_res(model, request, seeds, on_step, stop, notes):
    """Crop a padded box around the mask, inpaint it at the request's size, paste it back."""
    width, height = request.width, request.height
    base = request.init_image.resize((width, height), Image.LANCZOS)
    mask = request.mask.resize((width, height), Image.LANCZOS)
    box = img.mask_crop_box(mask, request.inpaint_padding, width / height)
    if box is None:
        notes.append("the mask is empty: nothing to inpaint")
        box = (0, 0, width, height)
    crop_size = (box[2] - box[0], box[3] - box[1])
    crop_image = base.crop(box).resize((width, height), Image.LANCZOS)
    crop_mask = mask.crop(box).resize((width, height), Image.LANCZOS)
    generated, latents = _run(model, request, crop_image, crop_mask, seeds, on_step, stop)
    soft = img.feather(mask, request.mask_blur)
    results = []
    for image in generated:
        pasted = base.copy()
        pasted.paste(image.resize(crop_size, Image.LANCZOS), box[:2])
        results.append(img.composite(base, pasted, soft))
    return results, latents


def decode(model, latents: torch.Tensor, stop: StopCheck | None = None, tiled: bool | None = None) -> list[Image.Image]:
    """Scaled latents -> PIL images, one at a time (memory), checking for cancel between them. Pixels that
    are not finite even after the VAE's float32 retry are refused (NonFiniteOutputError)."""
    out = []
    for latent in latents.split(1):
        if stop is not None and stop():
            raise Cancelled("generation cancelled")
        with stop_points(stop):  # (the decoder asks between its levels: a decode is as long as a step)
            pixels = decode_latents(model, latent, tiled)
        check_finite(model, pixels, "the decoded image")
        out.extend(img.to_pil(pixels))
    return out


def inpainting_conditioning(model, init, mask, width, height, batch, tiled: bool | None = None) -> torch.Tensor:
    """The 5 extra channels of a 9-channel inpainting U-Net: [mask, masked-image latents]."""
    latent_size = (height // 8, width // 8)
    if init is None:  # no image: everything is to be painted (A1111's txt2img with an inpainting model)
        init = Image.new("RGB", (width, height), (127, 127, 127))
    if mask is None:
        mask = Image.new("L", (width, height), 255)
    pixels = img.to_tensor(init.resize((width, height), Image.LANCZOS))
    hard = torch.from_numpy((np.asarray(mask.resize((width, height), Image.LANCZOS)) >= 128).astype(np.float32))
    masked = pixels * (1 - hard)[None, None]
    masked_latents = encode_pixels(model, masked, tiled)
    latent_mask = torch.nn.functional.interpolate(hard[None, None], size=latent_size, mode="nearest").to(model.device)
    return torch.cat([latent_mask, masked_latents], dim=1).expand(batch, -1, -1, -1)


def addon_hashes(request: GenerationRequest) -> dict[str, str]:
    """A1111's "Lora hashes" and "TI hashes" of a request, "name: 12 hex digits" each (core.lora.hashes); a
    LoRA is named as the prompt's tag names it (a restore looks it up by that name), else by its file."""
    from ..lora.hashes import file_hash, lora_hash
    from ..lora.tags import LORA_KINDS, find_tags, tag_calls

    clean = lambda name: name.replace(":", "").replace(",", "")  # noqa: E731 - as A1111 writes them
    tags = [tag.name for tag in find_tags(request.prompt) if tag.kind in LORA_KINDS]
    fields = {}
    if request.loras:
        entries = []
        for ref in request.loras:
            called = next((tag for tag in tags if tag_calls(tag, ref.path)), Path(ref.path).stem)
            entries.append(f"{clean(called)}: {lora_hash(ref.path)}")
        fields["Lora hashes"] = ", ".join(entries)
    if request.embeddings:
        fields["TI hashes"] = ", ".join(f"{clean(word)}: {file_hash(path)}" for word, path in request.embeddings)
    return fields


def prompt_with_lora_tags(request: GenerationRequest) -> str:
    """The prompt with a tag for each LoRA it does not name (given outside it: --lora), for the A1111 text: A1111
    reads a LoRA and its weight from the prompt's tags, and a JPEG or WebP keeps only that text."""
    from ..lora.tags import LORA_KINDS, find_tags, lora_tag, tag_calls

    prompt = request.prompt
    names = [tag.name for tag in find_tags(prompt) if tag.kind in LORA_KINDS]  # (each names one LoRA: two files
    for ref in request.loras:  # under one alias, one by a tag, one by --lora, are both written)
        named = next((name for name in names if tag_calls(name, ref.path)), None)
        if named is not None:
            names.remove(named)
        else:
            prompt = f"{prompt.rstrip()} {lora_tag(Path(ref.path).stem, ref.weight, ref.text_weight)}".strip()
    return prompt


def attach_parameters(image: Image.Image, model, request: GenerationRequest, seed: int, mode: Mode,
                      batch: dict | None = None) -> None:
    """Store the A1111 text and our JSON in the image's info; core.io.outputs writes both."""
    vae_path = getattr(model, "vae_path", None)
    taesd = getattr(model, "taesd", None)
    args = dict(seed=seed, width=request.width, height=request.height, model_name=model.name,
                model_hash=model.file_hash, mode=mode, vae=vae_path.name if vae_path else None,
                vae_hash=model.vae_hash if vae_path else None, taesd=taesd.name if taesd is not None else None)
    hashes = addon_hashes(request)
    tagged = dataclasses.replace(request, prompt=prompt_with_lora_tags(request))
    image.info[PARAMETERS_KEY] = format_parameters(tagged, **args, hashes=hashes, zero_snr=zero_snr_of(model, request))
    precision = str(getattr(model, "dtype", "")).removeprefix("torch.") or None
    device = getattr(getattr(model, "device", None), "type", None)
    image.info[JSON_KEY] = metadata_json(request, **args, family=model.family.name, hashes=hashes, batch=batch,
                                         precision=precision, device=device)
