"""Images and masks crossing the core's boundary: PIL or uint8 numpy in, tensors inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter, UnidentifiedImageError

from ..errors import InvalidRequestError
from ..request import RESIZE_MODES


def load_image(value, field: str = "init_image", mode: str = "RGB") -> Image.Image:
    """A PIL image, a uint8 array (HxW or HxWxC) or a path -> a PIL image in `mode`."""
    if isinstance(value, Image.Image):
        image = value
    elif isinstance(value, np.ndarray):
        if value.dtype != np.uint8 or value.ndim not in (2, 3):
            raise InvalidRequestError(f"{field}: expected a uint8 array of shape HxW or HxWxC, got {value.dtype} {value.shape}")
        image = Image.fromarray(value[..., :4] if value.ndim == 3 else value)
    elif isinstance(value, (str, Path)):
        try:
            with Image.open(value) as opened:
                opened.load()
                image = opened.copy()
        except FileNotFoundError:
            raise InvalidRequestError(f"{field}: image file not found: {value}") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise InvalidRequestError(f"{field}: cannot read {Path(value).name} as an image ({exc})") from None
    else:
        raise InvalidRequestError(f"{field}: expected an image, an array or a path, got {type(value).__name__}")
    if mode == "L" and image.mode in ("RGBA", "LA"):
        return image.getchannel("A")  # a mask painted on transparency: opaque paint = repaint
    if mode == "RGB" and image.mode in ("RGBA", "LA", "P"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert(mode)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL -> [1, 3, H, W] float32 in [-1, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """[B, 3, H, W] in about [-1, 1] -> RGB PIL images."""
    array = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in array]


def feather(mask: Image.Image, radius: float) -> Image.Image:
    """Soften a mask's edge (L mode, 255 = repaint)."""
    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else mask


def mask_to_latent(mask: Image.Image, latent_size: tuple[int, int]) -> torch.Tensor:
    """L-mode mask -> [1, 1, h, w] float32 in [0, 1] at latent resolution."""
    array = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array)[None, None]
    return torch.nn.functional.interpolate(tensor, size=latent_size, mode="bilinear", align_corners=False).clamp(0, 1)


def composite(original: Image.Image, generated: Image.Image, mask: Image.Image) -> Image.Image:
    """Generated pixels where the mask is white, original pixels exactly where it is black."""
    return Image.composite(generated.convert("RGB"), original.convert("RGB"), mask.convert("L"))


def mask_crop_box(mask: Image.Image, padding: int, aspect: float) -> tuple[int, int, int, int] | None:
    """A box around the mask's painted area, padded, widened to `aspect` (w/h), kept inside the image."""
    bbox = mask.point(lambda v: 255 if v > 0 else 0).getbbox()
    if bbox is None:
        return None
    width, height = mask.size
    x0, y0, x1, y1 = bbox[0] - padding, bbox[1] - padding, bbox[2] + padding, bbox[3] + padding
    w, h = x1 - x0, y1 - y0
    if w / h < aspect:
        grow = aspect * h - w
        x0, x1 = x0 - grow / 2, x1 + grow / 2
    else:
        grow = w / aspect - h
        y0, y1 = y0 - grow / 2, y1 + grow / 2
    (left, right), (top, bottom) = _fit(x0, x1, width), _fit(y0, y1, height)
    return left, top, right, bottom


def _fit(lo: float, hi: float, limit: int) -> tuple[int, int]:
    """Shift [lo, hi) to lie inside [0, limit), shrinking it only if it is larger than the image."""
    size = min(hi - lo, limit)
    lo = min(max(lo, 0), limit - size)
    return int(round(lo)), int(round(lo + size))


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's "fill" masked content: the painted area (mask > 0) takes the colours of what surrounds it, spread
    inwards by blurs of the unmasked picture from wide to narrow (each blur divided by the blurred coverage, so
    only unmasked colours count), every finer one laid over the coarser where it has coverage."""
    keep = 1.0 - np.asarray(mask.convert("L"), np.float32)[..., None] / 255.0
    rgb = np.asarray(image.convert("RGB"), np.float32)
    out = np.zeros_like(rgb)
    weighted = Image.fromarray(np.round(rgb * keep).astype(np.uint8))
    coverage = Image.fromarray(np.round(keep[..., 0] * 255).astype(np.uint8))
    for radius in (256, 64, 16, 4, 2, 0):
        colours = np.asarray(weighted.filter(ImageFilter.GaussianBlur(radius)) if radius else weighted, np.float32)
        cover = np.asarray(coverage.filter(ImageFilter.GaussianBlur(radius)) if radius else coverage, np.float32)
        cover = cover[..., None] / 255.0
        estimate = colours / np.maximum(cover, 1e-3)
        alpha = np.clip(cover * 4, 0, 1)  # where this scale sees enough of the picture, it wins
        out = out * (1 - alpha) + estimate * alpha
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8))


def fit_picture(image: Image.Image, size: tuple[int, int], mode: str = "just resize") -> Image.Image:
    """`image` at `size` as A1111's resize modes make it: stretched (just resize); scaled to cover and cut to the
    centre (crop and resize); scaled to fit, centred, the empty bands filled by repeating its edge (resize and
    fill). A mask goes through the same, so it stays over the same pixels."""
    if image.size == tuple(size):
        return image
    width, height = size
    if mode == "just resize":
        return image.resize(size, Image.LANCZOS)
    cover = mode == "crop and resize"
    if mode not in RESIZE_MODES:
        raise InvalidRequestError(f"resize_mode {mode!r} is unknown; choose {', '.join(RESIZE_MODES)}")
    ratio = (max if cover else min)(width / image.width, height / image.height)
    scaled = image.resize((max(1, round(image.width * ratio)), max(1, round(image.height * ratio))), Image.LANCZOS)
    left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
    if cover:
        return scaled.crop((left, top, left + width, top + height))
    pixels = np.asarray(scaled)
    before_x, before_y = -left, -top
    pad = ((before_y, height - scaled.height - before_y), (before_x, width - scaled.width - before_x))
    pad += ((0, 0),) * (pixels.ndim - 2)
    return Image.fromarray(np.pad(pixels, pad, mode="edge"), scaled.mode)
