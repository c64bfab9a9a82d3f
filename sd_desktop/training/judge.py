"""Scores a generated image against "a {colour} {shape} on a {background} background".

No learned parts, so the score means the same thing for every model:
  background = the palette colour nearest the median of the border pixels;
  object     = (after a 3x3 median against grain) the largest connected region of pixels far from that background;
  colour     = the palette colour nearest the median of the object's inner pixels (edges are blends);
  shape      = from how much of its bounding box the object fills: square ~1, circle ~pi/4, triangle ~1/2.
Tuned for 64 px and up; on rendered scenes it reads 100% at 128 and 64 px, 99.9% at 48, ~94% at 32
(the median filter blunts tiny triangles' tips).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from .shapes import PALETTE

_PALETTE_NAMES = tuple(PALETTE)
_PALETTE_RGB = np.array([PALETTE[name] for name in _PALETTE_NAMES], dtype=np.float32)

BORDER = 2  # pixels of each edge that are taken to be background
# Half the distance between the two closest palette colours (yellow, orange: ~81) is ~40: anything
# this far from the background is object, edges included down to about half coverage.
OBJECT_DISTANCE = 40.0
MIN_OBJECT_FRACTION = 0.005  # smaller regions are specks, not objects
SQUARE_FILL = 0.9  # fill ratios above this are squares (a square fills its box: ~1.0)
TRIANGLE_FILL = 0.65  # below this, triangles (~0.5); in between, circles (~0.785)


@dataclass(frozen=True)
class Judgement:
    background: str
    object_colour: str | None  # None when no object was found
    shape: str | None
    fill: float  # object pixels / bounding box pixels; 0 without an object
    bbox: tuple[int, int, int, int] | None  # (left, top, right, bottom), right and bottom exclusive

    def matches(self, colour: str, shape: str, background: str) -> bool:
        return (self.object_colour, self.shape, self.background) == (colour, shape, background)


def nearest_palette_colour(rgb) -> str:
    distances = np.linalg.norm(_PALETTE_RGB - np.asarray(rgb, dtype=np.float32), axis=-1)
    return _PALETTE_NAMES[int(np.argmin(distances))]


def _border_pixels(pixels: np.ndarray) -> np.ndarray:
    b = BORDER
    edges = (pixels[:b], pixels[-b:], pixels[b:-b, :b], pixels[b:-b, -b:])
    return np.concatenate([edge.reshape(-1, 3) for edge in edges])


def _row_runs(row: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a boolean mask (all False when the mask is empty).

    Labels runs of pixels row by row and joins runs that overlap the row above (union-find): a few
    hundred runs instead of thousands of pixels, so plain Python is fast enough.
    """
    runs: list[tuple[int, int, int]] = []  # (row, start, end)
    parent: list[int] = []

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[int] = []  # run ids in the row above
    for y in range(mask.shape[0]):
        current = []
        for start, end in _row_runs(mask[y]):
            run_id = len(runs)
            runs.append((y, start, end))
            parent.append(run_id)
            for other in previous:
                _, other_start, other_end = runs[other]
                if other_start < end and start < other_end:
                    parent[root(other)] = root(run_id)
            current.append(run_id)
        previous = current

    result = np.zeros_like(mask, dtype=bool)
    if not runs:
        return result
    areas: dict[int, int] = {}
    for run_id, (_, start, end) in enumerate(runs):
        r = root(run_id)
        areas[r] = areas.get(r, 0) + end - start
    biggest = max(areas, key=areas.get)
    for run_id, (y, start, end) in enumerate(runs):
        if root(run_id) == biggest:
            result[y, start:end] = True
    return result


def count_components(mask: np.ndarray, min_pixels: int = 1) -> int:
    """How many 4-connected regions of at least min_pixels the mask has."""
    remaining, count = mask.copy(), 0
    while remaining.any():
        component = largest_component(remaining)
        if component.sum() < min_pixels:
            break
        count += 1
        remaining &= ~component
    return count


def _eroded(mask: np.ndarray) -> np.ndarray:
    """Pixels whose four neighbours are in the mask too: the object without its blended edge."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[[0, -1]] = False
    inner[:, [0, -1]] = False
    return inner


def object_mask(image: Image.Image) -> tuple[np.ndarray, str]:
    """(pixels far from the background colour, the background's palette name)."""
    # A 3x3 median first: generated images are grainy, and noise pixels stuck to the object's edge
    # would stretch its bounding box. The median keeps edges and corners where they are.
    pixels = np.asarray(image.convert("RGB").filter(ImageFilter.MedianFilter(3)), dtype=np.float32)
    background_rgb = np.median(_border_pixels(pixels), axis=0)
    # Distances from the measured background, not its palette value: the background may be jittered.
    distance = np.linalg.norm(pixels - background_rgb, axis=-1)
    return distance > OBJECT_DISTANCE, nearest_palette_colour(background_rgb)


def shape_from_fill(fill: float) -> str:
    if fill > SQUARE_FILL:
        return "square"
    if fill > TRIANGLE_FILL:
        return "circle"
    return "triangle"


def judge(image: Image.Image) -> Judgement:
    mask, background = object_mask(image)
    component = largest_component(mask)
    area = int(component.sum())
    if area < max(4, MIN_OBJECT_FRACTION * component.size):
        return Judgement(background, None, None, 0.0, None)

    ys, xs = np.nonzero(component)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    fill = area / ((bbox[2] - bbox[0]) * (bbox[3] - bbox[1]))

    inner = _eroded(component)
    colour_pixels = np.asarray(image.convert("RGB"))[inner if inner.any() else component]
    colour = nearest_palette_colour(np.median(colour_pixels, axis=0))
    return Judgement(background, colour, shape_from_fill(fill), float(fill), bbox)
