"""Expand (outpainting): a larger picture with the original where it was, the new border pre-filled by repeating
the original's edge outwards, and a mask of the new border that reaches `seam` pixels into the original with a
feathered edge, so the repaint blends in. An Inpaint request on the two (any masked content, any model, ordinary
or 9-channel) then paints the border; pixels the mask leaves at 0 come back exactly.

The new size is a multiple of 8 (what the VAE and U-Net take): what a side asks for is kept and the right and
bottom grow by the few pixels more that need."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..errors import InvalidRequestError

MAX_SIDE = 4096  # (the largest size the window takes)


def expansion_for_aspect(width: int, height: int, aspect: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) that grow width x height to `aspect` (w / h), centred, only ever growing."""
    if aspect <= 0 or not math.isfinite(aspect):
        raise InvalidRequestError(f"aspect ratio must be a positive number (got {aspect})")
    if width / height < aspect:
        grow = round(height * aspect) - width
        return grow // 2, 0, grow - grow // 2, 0
    grow = round(width / aspect) - height
    return 0, grow // 2, 0, grow - grow // 2


def expand(image: Image.Image, left: int, top: int, right: int, bottom: int, seam: int = 16
           ) -> tuple[Image.Image, Image.Image, tuple[int, int, int, int]]:
    """(the larger picture, its mask: 255 = paint, the expansion used (left, top, right, bottom)). The border
    repeats the original's edge pixels; the mask covers the border and fades out over `seam` pixels inside."""
    if min(left, top, right, bottom) < 0:
        raise InvalidRequestError("an expansion is a number of pixels of 0 or more on each side")
    width, height = image.size
    right += -(width + left + right) % 8
    bottom += -(height + top + bottom) % 8
    new_width, new_height = width + left + right, height + top + bottom
    if (new_width, new_height) == (width, height):
        raise InvalidRequestError("nothing to expand: give a side some pixels (or an aspect ratio the picture lacks)")
    if max(new_width, new_height) > MAX_SIDE:
        raise InvalidRequestError(f"expanded to {new_width}×{new_height}: more than {MAX_SIDE} pixels a side")
    pixels = np.asarray(image.convert("RGB"))
    grown = np.pad(pixels, ((top, bottom), (left, right), (0, 0)), mode="edge")
    keep = np.zeros((new_height, new_width), np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.full((height, width), np.inf, np.float32)  # to the nearest side that grew
    for grew, along in ((left, xs), (top, ys), (right, width - 1 - xs), (bottom, height - 1 - ys)):
        if grew:
            distance = np.minimum(distance, along)
    if seam > 0:
        ease = np.clip((distance + 0.5) / seam, 0, 1)
        keep[top:top + height, left:left + width] = ease * ease * (3 - 2 * ease)  # smoothstep: no visible line
    else:
        keep[top:top + height, left:left + width] = 1.0
    mask = Image.fromarray(np.round((1.0 - keep) * 255).astype(np.uint8))
    return Image.fromarray(grown), mask, (left, top, right, bottom)
