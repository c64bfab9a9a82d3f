"""The procedural data set the bundled demo model is trained on.

One or two flat-coloured shapes on a plain background, with captions from a small grammar:

    a large yellow square in the top left on a green background
    a small red circle in the top left and a small white triangle in the bottom right on a black background

Training captions leave words out at random (size, position, the background clause or the object
clause, never both) so that partial prompts such as "a blue triangle" or "green background" work.
In two-object captions the objects are named in reading order (top left, top right, bottom left,
bottom right), so "the first one named" consistently means "the upper/left one".

Everything is drawn from a numpy Generator, so a seed means the same images and captions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageDraw

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 210, 40),
    "orange": (245, 130, 30),
    "purple": (140, 50, 180),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLOURS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("top left", "top right", "bottom left", "bottom right", "center")
SIZES = ("small", "large")

COLOUR_JITTER = 8  # +- per channel, drawn once per image and per object
SIZE_RANGES = {"small": (0.28, 0.38), "large": (0.50, 0.62)}  # width of the shape / image width
POSITION_CENTRES = {  # (x, y) as fractions of the image
    "top left": (0.25, 0.25),
    "top right": (0.75, 0.25),
    "bottom left": (0.25, 0.75),
    "bottom right": (0.75, 0.75),
    "center": (0.5, 0.5),
}
POSITION_JITTER = 0.04  # +- fraction of the image
MARGIN = 0.02  # shapes keep this far from the image's edge
SUPERSAMPLING = 4

# Word dropping in training captions.
DROP_SIZE_P = 0.4
DROP_POSITION_P = 0.4
ONLY_OBJECTS_P = 0.15
ONLY_BACKGROUND_P = 0.1


@dataclass(frozen=True)
class ShapeSpec:
    shape: str
    colour: str
    size: str
    position: str


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[ShapeSpec, ...]


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def random_scene(rng: np.random.Generator, two_objects_p: float = 0.3) -> Scene:
    background = _pick(rng, COLOURS)
    object_colours = tuple(c for c in COLOURS if c != background)
    if rng.random() < two_objects_p:
        # Two small shapes in two different corners: small shapes are at most 0.38 wide and corner
        # centres are 0.5 +- 0.08 apart, so they never overlap. A centre shape would touch a corner one.
        corners = POSITIONS[:4]
        first, second = sorted(rng.choice(4, size=2, replace=False))  # reading order
        objects = tuple(
            ShapeSpec(_pick(rng, SHAPES), _pick(rng, object_colours), "small", corners[i]) for i in (first, second)
        )
    else:
        objects = (ShapeSpec(_pick(rng, SHAPES), _pick(rng, object_colours), _pick(rng, SIZES), _pick(rng, POSITIONS)),)
    return Scene(background, objects)


def _jittered_colour(name: str, rng: np.random.Generator) -> tuple[int, int, int]:
    jitter = rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3)
    return tuple(int(v) for v in np.clip(np.array(PALETTE[name]) + jitter, 0, 255))


def _shape_box(spec: ShapeSpec, rng: np.random.Generator) -> tuple[float, float, float]:
    """(centre x, centre y, width) as fractions of the image, jittered and kept inside the image."""
    low, high = SIZE_RANGES[spec.size]
    width = rng.uniform(low, high)
    half = width / 2
    cx, cy = POSITION_CENTRES[spec.position] + rng.uniform(-POSITION_JITTER, POSITION_JITTER, size=2)
    # Large shapes cannot sit as far out as small ones; push them in rather than cut them off.
    cx, cy = (float(np.clip(v, half + MARGIN, 1 - half - MARGIN)) for v in (cx, cy))
    return cx, cy, width


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float], fill) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":  # isosceles, pointing up, as tall as it is wide
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def render(scene: Scene, size: int, rng: np.random.Generator) -> Image.Image:
    """Draw the scene at SUPERSAMPLING x the size and box-filter it down: anti-aliased edges, no ringing."""
    big = size * SUPERSAMPLING
    image = Image.new("RGB", (big, big), _jittered_colour(scene.background, rng))
    draw = ImageDraw.Draw(image)
    for spec in scene.objects:
        cx, cy, width = _shape_box(spec, rng)
        half = width / 2 * big
        box = (cx * big - half, cy * big - half, cx * big + half, cy * big + half)
        _draw_shape(draw, spec.shape, box, _jittered_colour(spec.colour, rng))
    return image.resize((size, size), Image.BOX)


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _object_phrase(spec: ShapeSpec, with_size: bool, with_position: bool) -> str:
    phrase = _with_article(" ".join(([spec.size] if with_size else []) + [spec.colour, spec.shape]))
    return f"{phrase} in the {spec.position}" if with_position else phrase


def caption(scene: Scene, rng: np.random.Generator | None = None) -> str:
    """The scene's caption; with an rng, words are left out at random (rng None: the full caption)."""
    with_size = with_position = with_objects = with_background = True
    if rng is not None:
        with_size = rng.random() >= DROP_SIZE_P
        with_position = rng.random() >= DROP_POSITION_P
        clauses = rng.random()
        with_background = clauses >= ONLY_OBJECTS_P
        with_objects = not (ONLY_OBJECTS_P <= clauses < ONLY_OBJECTS_P + ONLY_BACKGROUND_P)
    objects = " and ".join(_object_phrase(spec, with_size, with_position) for spec in _reading_order(scene.objects))
    if not with_background:
        return objects
    if not with_objects:
        # Alone, the background reads both ways people type it: "green background", "a green background".
        background = f"{scene.background} background"
        return _with_article(background) if rng is not None and rng.random() < 0.5 else background
    return f"{objects} on {_with_article(scene.background)} background"


def _reading_order(objects: tuple[ShapeSpec, ...]) -> list[ShapeSpec]:
    return sorted(objects, key=lambda spec: POSITIONS.index(spec.position))


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float [3, H, W] in [-1, 1], the range the VAE works in."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0


def sample(rng: np.random.Generator, size: int = 128, two_objects_p: float = 0.3) -> tuple[torch.Tensor, str]:
    """One training pair: (image tensor, caption with words dropped at random)."""
    scene = random_scene(rng, two_objects_p)
    return to_tensor(render(scene, size, rng)), caption(scene, rng)


def batch(
    rng: np.random.Generator, n: int, size: int = 128, two_objects_p: float = 0.3
) -> tuple[torch.Tensor, list[str]]:
    """n training pairs stacked: ([n, 3, size, size] in [-1, 1], captions); deterministic for the rng."""
    pairs = [sample(rng, size, two_objects_p) for _ in range(n)]
    return torch.stack([image for image, _ in pairs]), [text for _, text in pairs]


class ShapesDataset(torch.utils.data.IterableDataset):
    """An endless stream of (image [3, H, W] in [-1, 1], caption).

    Each DataLoader worker draws from its own generator seeded with (seed, worker id), so the stream
    is the same for the same seed and number of workers, and workers never repeat each other.
    """

    def __init__(self, size: int = 128, seed: int = 0, two_objects_p: float = 0.3):
        super().__init__()
        self.size = size
        self.seed = seed
        self.two_objects_p = two_objects_p

    def __iter__(self) -> Iterator[tuple[torch.Tensor, str]]:
        worker = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, worker.id if worker is not None else 0])
        while True:
            yield sample(rng, self.size, self.two_objects_p)
