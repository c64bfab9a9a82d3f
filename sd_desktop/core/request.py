"""Everything that affects an image lives in one frozen request; the modes are one enum."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

RNG_SOURCES = ("cpu", "nv")
# A1111's "Masked content": the picture there (original), its surroundings' colours (fill), or in latent space
# the seed's noise (latent noise) or zeros (latent nothing) -- what an inpaint of strength near 1 starts from
MASKED_CONTENT = ("fill", "original", "latent noise", "latent nothing")
RESIZE_MODES = ("just resize", "crop and resize", "resize and fill")  # A1111's img2img "Resize mode": core.io.images
PREDICTIONS = ("auto", "eps", "v")  # what the U-Net predicts; auto: what the model file says (or a probe finds)
# the training noise schedule sampled over: SD's ("default"), or rescaled to zero terminal SNR ("zsnr", A1111's "Zero
# Terminal SNR", ComfyUI's ModelSamplingDiscrete zsnr); auto: zsnr for a model whose file says it was trained so
NOISE_SCHEDULES = ("auto", "default", "zsnr")


class Mode(str, Enum):
    """What a run does. The request's fields decide it (Mode.of); the window shows one tab per mode."""

    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"
    INTERPOLATE = "interpolate"  # the window's morph between two images: an InterpolationRequest

    def __str__(self) -> str:  # "txt2img" in f-strings and JSON alike, on every Python
        return self.value

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def of(cls, request: "GenerationRequest") -> "Mode":
        if request.init_image is None:
            return cls.TXT2IMG
        return cls.IMG2IMG if request.mask is None else cls.INPAINT


_LABELS = {Mode.TXT2IMG: "Text to Image", Mode.IMG2IMG: "Image to Image", Mode.INPAINT: "Inpaint",
           Mode.INTERPOLATE: "Interpolate"}


@dataclass(frozen=True)
class LoraRef:
    """One LoRA (or LyCORIS) of a request: its file, its weight on the U-Net, and on the text encoder
    (None: the same weight). A1111's `<lora:name:w>` is LoraRef(file, w); its `<lora:name:te:unet>` is
    LoraRef(file, unet, te) (core.lora.tags)."""

    path: str
    weight: float = 1.0
    text_weight: float | None = None


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None  # None: a random seed, reported in the result
    steps: int = 20
    cfg_scale: float = 7.5
    sampler: str = "dpmpp_2m"  # a name of core.sampling.registry.SAMPLERS
    schedule: str = "karras"  # a name of core.sampling.registry.SCHEDULES, for the sigma-based samplers
    width: int | None = None  # None: the model's native size
    height: int | None = None
    batch_size: int = 1
    init_image: Any = None  # PIL image, uint8 numpy array or path: img2img / inpainting source
    mask: Any = None  # white (255) = repaint, black = keep
    strength: float = 0.75
    resize_mode: str = "just resize"  # an init image of another shape: RESIZE_MODES (core.io.images.fit_picture)
    mask_blur: int = 4
    inpaint_full_res: bool = False
    soft_inpainting: bool = False  # Inpaint: the mask's grey levels say how much may change (differential diffusion)
    masked_content: str = "original"  # Inpaint, A1111's: what the area starts from: MASKED_CONTENT
    inpaint_padding: int = 32  # pixels around the mask with inpaint_full_res (A1111's "Only masked padding")
    eta: float = 0.0  # DDIM's eta; 0 = deterministic
    ancestral_eta: float = 1.0  # A1111's "Eta": the noise an ancestral or SDE step adds (k-diffusion's eta), 1 = all of it
    taesd_decode: bool = False  # the final decode by the model's TAESD (fast, a little soft) instead of its VAE
    tiled_vae: bool | None = None  # None: tiles above 1024x1024 pixels (see core.runtime.vae_ops)
    emphasis: str = "Original"  # how (word:1.2) weighs: core.text.prompts.EMPHASIS_MODES (A1111's, or "ComfyUI")
    clip_skip: int = 1  # the text encoder's layer from the end: A1111's "Clip skip"
    rng: str = "cpu"  # where seeds become noise: "cpu" (torch's CPU generator) or "nv" (A1111's NV = a CUDA GPU's)
    ensd: int = 0  # A1111's "Eta noise seed delta": an ancestral sampler's fresh noise from seed + ensd (core.sampling.noise)
    # A1111's "Variation seed" and "Variation seed strength": the starting noise slerped towards variation_seed's (+ i
    # for image i of a batch); 0 = off, 1 = that seed's noise. None with a strength: a random one (as seed None)
    variation_seed: int | None = None
    variation_strength: float = 0.0
    # A1111's "Seed resize from" (width, height): the seeds' noise at that size in the middle of this size's, so a
    # seed keeps its composition at another size (core.sampling.noise.laid_over); None = off
    seed_resize_from: tuple[int, int] | None = None
    # A1111's Hires fix (Text to Image): sample at width x height, upscale (the latents, or the decoded pictures with
    # an upscaler), then an Image to Image pass at hires_scale times the size with `strength` ("Denoising strength")
    hires_fix: bool = False
    hires_scale: float = 2.0
    hires_upscaler: str = "Latent"  # core.upscale.catalogue.HIRES_UPSCALERS, or an upscaler file's name
    hires_steps: int = 0  # the second pass's steps; 0: the same as `steps`
    # the second pass's sampler, schedule and CFG scale (A1111's "Hires sampler", "Hires schedule type", Forge's
    # "Hires CFG Scale"); None: the first pass's
    hires_sampler: str | None = None
    hires_schedule: str | None = None
    hires_cfg: float | None = None
    loras: tuple[LoraRef, ...] = ()  # on top of the model for this image (core.lora); `<lora:...>` tags resolve here
    embeddings: tuple[tuple[str, str], ...] = ()  # (trigger word, file) textual inversions (core.text.embeddings)
    prediction: str = "auto"  # PREDICTIONS: override a model whose file says the wrong thing (eps / v-prediction)
    noise_schedule: str = "auto"  # NOISE_SCHEDULES (core.sampling.schedules.training_schedule)
    rescale_cfg: float = 0.0  # CFG rescale phi, 0..1 (0.7 for v-prediction / zero-SNR models): core.sampling.denoisers
    # SDXL's size conditioning (core.pipelines.conditioning): the size to pretend the picture was cut from (None:
    # width x height) and the crop's top-left corner (left, top)
    original_size: tuple[int, int] | None = None
    crop: tuple[int, int] = (0, 0)

    @property
    def mode(self) -> Mode:
        return Mode.of(self)


@dataclass(frozen=True)
class InterpolationRequest:
    image_a: Any = None
    image_b: Any = None
    prompt_a: str = ""
    prompt_b: str = ""
    steps: int = 30
    seed_a: int | None = None  # (prompt, seed) given for an image that has no pixels: skip its inversion
    seed_b: int | None = None
    cfg_scale: float = 1.0
    invert_iterations: int = 4  # at most this many fixed-point refinements per inversion step (0: plain DDIM inversion)
    width: int | None = None
    height: int | None = None
    emphasis: str = "Original"
    clip_skip: int = 1
    prediction: str = "auto"  # as GenerationRequest's: override what the model's file says
    noise_schedule: str = "auto"  # as GenerationRequest's
