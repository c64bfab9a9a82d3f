"""What the next generation will be: every control of the window as an observable property, bound two-way
to the panels. Persisting the controls, restoring an image's parameters and building the request are
methods here, not walks over widgets."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from sd_desktop.core.request import GenerationRequest, Mode
from sd_desktop.core.request import MASKED_CONTENT, NOISE_SCHEDULES, PREDICTIONS, RESIZE_MODES, RNG_SOURCES
from sd_desktop.core.sampling.registry import SAMPLERS, SCHEDULES
from sd_desktop.core.text.prompts import DEFAULT_EMPHASIS, EMPHASIS_MODES

from .properties import ObservableObject, Property

EXAMPLE_PROMPT = "a red circle on a blue background"  # what the bundled demo model understands
# What the demo model was trained on (sd_desktop.training.shapes; a test keeps the two equal).
DEMO_COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "white", "black")
DEMO_SHAPES = ("circle", "square", "triangle")
DEMO_POSITIONS = ("top left", "top right", "bottom left", "bottom right", "center")
DEMO_SIZES = ("small", "large")
DEMO_HINT = "Demo model: colours, circle / square / triangle, small / large, top left … center, backgrounds"
DEMO_HINT_DETAIL = ("The demo model knows colours (" + ", ".join(DEMO_COLOURS) + "), shapes ("
                    + ", ".join(DEMO_SHAPES) + "), sizes (small, large), positions (" + ", ".join(DEMO_POSITIONS)
                    + ") and backgrounds: “a small yellow triangle in the top left on a black background”. "
                      "Help → Example Prompts has more.")
EXAMPLE_PROMPTS = (
    EXAMPLE_PROMPT,
    "a large orange circle on a green background",
    "a small yellow triangle in the top left on a black background",
    "a white square in the top right and a red circle in the bottom left on a black background",
    "a purple circle in the center on a white background",
)
MAX_SEED = 2**53  # exact in a double spin box; A1111 seeds are below 2**32
# What "Restore parameters" takes from an image, besides the prompts.
RESTORED_FIELDS = ("sampler", "schedule", "steps", "cfg_scale", "seed", "width", "height", "strength", "mask_blur",
                   "inpaint_full_res", "soft_inpainting", "resize_mode", "masked_content", "inpaint_padding", "clip_skip", "emphasis", "rng", "ensd", "ancestral_eta", "variation_seed",
                   "variation_strength", "seed_resize_from", "hires_fix", "hires_scale", "hires_upscaler",
                   "hires_steps", "hires_sampler", "hires_schedule", "hires_cfg", "taesd_decode", "prediction", "noise_schedule", "rescale_cfg")


def _bounded_int(low: int, high: int):
    def convert(value) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        number = int(value)
        if not low <= number <= high:
            raise ValueError(f"{number} is outside {low}..{high}")
        return number

    return convert


def _seed_resize_side(value) -> int:
    """A side of Resize seed from: 0 (off) or 8..4096 pixels (the sizes the controls hold)."""
    number = _bounded_int(0, 4096)(value)
    if 0 < number < 8:
        raise ValueError(f"{number} is below 8 pixels")
    return number


def _size(value) -> int:
    """A width or height as the engine will use it: a multiple of 8 (the nearest), 64..4096, so the field
    never shows a size it will not make."""
    number = _bounded_int(1, 4096)(value)
    return min(4096, max(64, int(round(number / 8)) * 8))


def _size_pair(value):
    """(width, height) of the other modes' size, or None (not chosen yet)."""
    if value is None:
        return None
    width, height = value
    return [_size(width), _size(height)]


def _bounded_float(low: float, high: float, digits: int):
    def convert(value) -> float:
        number = round(float(value), digits)
        if not low <= number <= high:
            raise ValueError(f"{number} is outside {low}..{high}")
        return number

    return convert


def _seed(value) -> int | None:
    """None (or any negative number, as the seed box's "Random") means a new seed each time."""
    if value is None:
        return None
    number = _bounded_int(-1, MAX_SEED)(value)
    return None if number < 0 else number


def _registered(names: dict):
    """A name of the sampler (or schedule) registry: the controls never hold one the engine does not have."""
    def convert(value) -> str:
        if value not in names:  # (a dict's keys, or a tuple)
            raise ValueError(f"{value!r} is not one of {', '.join(names)}")
        return str(value)

    return convert


def _or_none(convert):
    """None (the first pass's, for the hires fix's own sampler, schedule and CFG), or what `convert` takes."""
    return lambda value: None if value is None else convert(value)


def _name(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a name")
    return value.strip()


def _bool(value) -> bool:
    if not isinstance(value, (bool, int)):
        raise TypeError(value)
    return bool(value)


class GenerationSettings(ObservableObject):
    """The window's controls. The persistent ones are saved on close and restored at the next start.

    Text to Image has a size of its own and Image to Image / Inpaint share another (as A1111's tabs): `width` and
    `height` are the current mode's, and switching modes keeps them for that mode and brings back the other's
    (`txt2img_size` / `edit_size` hold the mode not shown). So opening or pasting a picture, which fits the
    editing size to it, never changes the Text to Image size."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._size_group = self.mode in (Mode.IMG2IMG, Mode.INPAINT)
        self.mode_changed.connect(self._swap_sizes)

    def _swap_sizes(self, mode) -> None:
        editing = mode in (Mode.IMG2IMG, Mode.INPAINT)
        if mode == Mode.INTERPOLATE or editing == self._size_group:
            return
        leaving, arriving = ("edit_size", "txt2img_size") if self._size_group else ("txt2img_size", "edit_size")
        setattr(self, leaving, (self.width, self.height))
        stored = getattr(self, arriving)
        self._size_group = editing
        if stored is not None:
            self.set_size(*stored)

    prompt = Property("", persist=True, convert=str)
    negative_prompt = Property("", persist=True, convert=str)
    mode = Property(Mode.TXT2IMG, persist=True, convert=Mode)
    sampler = Property("dpmpp_2m", persist=True, convert=_registered(SAMPLERS))
    schedule = Property("karras", persist=True, convert=_registered(SCHEDULES))
    steps = Property(20, persist=True, convert=_bounded_int(1, 1000))
    cfg_scale = Property(7.5, persist=True, convert=_bounded_float(0.0, 30.0, 2))
    seed = Property(None, persist=True, convert=_seed)
    variation_seed = Property(None, persist=True, convert=_seed)  # A1111's Variation seed (None: a random one)
    variation_strength = Property(0.0, persist=True, convert=_bounded_float(0.0, 1.0, 2))  # 0: off
    # A1111's "Resize seed from" width and height, 0: off (as its sliders); on when both are set (seed_resize_from)
    seed_resize_width = Property(0, persist=True, convert=_seed_resize_side)
    seed_resize_height = Property(0, persist=True, convert=_seed_resize_side)
    width = Property(512, persist=True, convert=_size)
    height = Property(512, persist=True, convert=_size)
    batch_count = Property(1, persist=True, convert=_bounded_int(1, 100))
    strength = Property(0.75, persist=True, convert=_bounded_float(0.0, 1.0, 3))
    mask_blur = Property(4, persist=True, convert=_bounded_int(0, 64))
    inpaint_full_res = Property(False, persist=True, convert=_bool)
    soft_inpainting = Property(False, persist=True, convert=_bool)
    masked_content = Property("original", persist=True, convert=_registered(MASKED_CONTENT))
    inpaint_padding = Property(32, persist=True, convert=_bounded_int(0, 1024))
    clip_skip = Property(1, persist=True, convert=_bounded_int(1, 24))
    emphasis = Property(DEFAULT_EMPHASIS, persist=True, convert=_registered(EMPHASIS_MODES))
    rng = Property("cpu", persist=True, convert=_registered(RNG_SOURCES))
    ensd = Property(0, persist=True, convert=_bounded_int(0, 2**31 - 1))  # A1111's Eta noise seed delta
    ancestral_eta = Property(1.0, persist=True, convert=_bounded_float(0.0, 1.0, 2))  # A1111's Eta (ancestral)
    taesd_decode = Property(False, persist=True, convert=_bool)  # the final decode by TAESD (fast, a little soft)
    prediction = Property("auto", persist=True, convert=_registered(PREDICTIONS))  # override a file that is wrong
    noise_schedule = Property("auto", persist=True, convert=_registered(NOISE_SCHEDULES))  # zero terminal SNR or not
    rescale_cfg = Property(0.0, persist=True, convert=_bounded_float(0.0, 1.0, 2))  # CFG rescale (v-prediction models)
    hires_fix = Property(False, persist=True, convert=_bool)  # Text to Image only (core.pipelines.hires)
    hires_scale = Property(2.0, persist=True, convert=_bounded_float(1.0, 4.0, 2))
    hires_upscaler = Property("Latent", persist=True, convert=_name)
    hires_steps = Property(0, persist=True, convert=_bounded_int(0, 1000))
    # the second pass's own sampler, schedule and CFG (A1111's Hires sampler / schedule type, Forge's Hires CFG
    # Scale); None: the first pass's
    hires_sampler = Property(None, persist=True, convert=_or_none(_registered(SAMPLERS)))
    hires_schedule = Property(None, persist=True, convert=_or_none(_registered(SCHEDULES)))
    hires_cfg = Property(None, persist=True, convert=_or_none(_bounded_float(0.5, 30.0, 2)))
    frames = Property(9, persist=True, convert=_bounded_int(2, 240))  # interpolation
    interpolation_steps = Property(20, persist=True, convert=_bounded_int(2, 200))
    prompt_a = Property("", persist=True, convert=str)
    prompt_b = Property("", persist=True, convert=str)
    txt2img_size = Property(None, persist=True, convert=_size_pair)  # (kept while another mode shows its size)
    edit_size = Property(None, persist=True, convert=_size_pair)
    resize_mode = Property("just resize", persist=True, convert=_registered(RESIZE_MODES))
    brush_size = Property(32, persist=True, convert=_bounded_int(1, 4096))
    brush_hardness = Property(100, persist=True, convert=_bounded_int(0, 100))  # percent: 100 = a hard brush
    last_seed = Property(None)  # the seed of the last finished image ("Reuse seed")

    @property
    def seed_resize_from(self) -> tuple[int, int] | None:
        """The request's seed_resize_from: (width, height) when both are set, else None (off)."""
        if self.seed_resize_width and self.seed_resize_height:
            return (self.seed_resize_width, self.seed_resize_height)
        return None

    @seed_resize_from.setter
    def seed_resize_from(self, value: tuple[int, int] | None) -> None:
        width, height = (0, 0) if value is None else (_seed_resize_side(value[0]), _seed_resize_side(value[1]))
        self.seed_resize_width, self.seed_resize_height = width, height  # (both checked first: both or neither)

    def first_start(self) -> None:
        """What a new user sees: an example prompt the bundled model understands."""
        self.prompt = EXAMPLE_PROMPT

    def set_size(self, width: int, height: int) -> None:
        self.width, self.height = int(width), int(height)

    def swap_size(self) -> None:
        self.set_size(self.height, self.width)

    def reuse_last_seed(self) -> None:
        if self.last_seed is not None:
            self.seed = self.last_seed

    def build_request(self, init_image: Any = None, mask: Any = None) -> GenerationRequest:
        """The controls as a GenerationRequest, the seed resolved so that it can be reused. init_image and mask
        (PIL images) come from the canvas in Image to Image and Inpaint."""
        seed = self.seed if self.seed is not None else secrets.randbelow(2**32)
        request = dataclasses.replace(self.current_request(), seed=seed, init_image=init_image, mask=mask)
        if request.variation_strength and request.variation_seed is None:  # (one for the job: + i per image)
            request = dataclasses.replace(request, variation_seed=secrets.randbelow(2**32))
        return request

    def current_request(self) -> GenerationRequest:
        """The controls as they are (seed None when random), without images."""
        return GenerationRequest(
            prompt=self.prompt.strip(), negative_prompt=self.negative_prompt.strip(), seed=self.seed, steps=self.steps,
            cfg_scale=self.cfg_scale, sampler=self.sampler, schedule=self.schedule, width=self.width,
            height=self.height, batch_size=1, strength=self.strength, mask_blur=self.mask_blur,
            inpaint_full_res=self.inpaint_full_res, soft_inpainting=self.soft_inpainting, clip_skip=self.clip_skip, resize_mode=self.resize_mode,
            masked_content=self.masked_content, inpaint_padding=self.inpaint_padding, emphasis=self.emphasis, rng=self.rng, ensd=self.ensd, ancestral_eta=self.ancestral_eta,
            variation_seed=self.variation_seed, variation_strength=self.variation_strength,
            seed_resize_from=self.seed_resize_from, hires_fix=self.hires_fix and self.mode == Mode.TXT2IMG, hires_scale=self.hires_scale,
            hires_upscaler=self.hires_upscaler, hires_steps=self.hires_steps, hires_sampler=self.hires_sampler,
            hires_schedule=self.hires_schedule, hires_cfg=self.hires_cfg, taesd_decode=self.taesd_decode,
            prediction=self.prediction, noise_schedule=self.noise_schedule, rescale_cfg=self.rescale_cfg,
        )

    def restore(self, params: dict) -> list[str]:
        """An image's parameters (any app's, as core.read_parameters gives them) into the controls. Returns
        what was not restored, one short phrase each (core.io.metadata.restore_request: a sampler we lack and
        the one used instead, Hires fix, LoRA ...; here also a value the controls cannot hold)."""
        from sd_desktop.core.io.metadata import restore_request

        current = self.current_request()
        request, notes = restore_request(params, current)
        for key in ("prompt", "negative_prompt", *RESTORED_FIELDS):
            value = getattr(request, key)
            if value == getattr(current, key):
                continue
            try:
                setattr(self, key, value)
            except (TypeError, ValueError, OverflowError):
                notes.append(f"{key.replace('_', ' ')} {value} (outside what the controls hold)")
                continue
            if getattr(self, key) != value:  # held as the engine will use it (a size to a multiple of 8)
                notes.append(f"{key.replace('_', ' ')} {value} → {getattr(self, key)}")
        if request.eta:  # DDIM's eta has no control in the window
            notes.append(f"Eta DDIM {request.eta}")
        return notes
