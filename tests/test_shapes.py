"""The shapes data set draws what its captions say, and the judge reads it back."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from sd_desktop.training.judge import count_components, judge, nearest_palette_colour, object_mask
from sd_desktop.training.shapes import (
    COLOUR_JITTER,
    PALETTE,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    ShapeSpec,
    ShapesDataset,
    batch,
    caption,
    random_scene,
    render,
)

_COLOUR = "|".join(PALETTE)
_OBJECT = rf"an? (?:(?:{'|'.join(SIZES)}) )?(?:{_COLOUR}) (?:{'|'.join(SHAPES)})(?: in the (?:{'|'.join(POSITIONS)}))?"
_OBJECTS = rf"{_OBJECT}(?: and {_OBJECT})?"
_BACKGROUND = rf"(?:{_COLOUR}) background"
CAPTION_GRAMMAR = re.compile(rf"{_OBJECTS}(?: on an? {_BACKGROUND})?|(?:an? )?{_BACKGROUND}")


def _articles_agree(text: str) -> bool:
    return not re.search(r"\ba [aeiou]|\ban [^aeiou]", text)


def _single_object_accuracy(size: int, n: int = 300) -> float:
    rng = np.random.default_rng(1234 + size)
    correct = 0
    for _ in range(n):
        scene = random_scene(rng, two_objects_p=0.0)
        (spec,) = scene.objects
        correct += judge(render(scene, size, rng)).matches(spec.colour, spec.shape, scene.background)
    return correct / n


@pytest.mark.slow
@pytest.mark.parametrize("size", [128, 64])
def test_judge_reads_rendered_scenes(size):
    # Measured: 300/300 at both sizes (and 1000/1000 on other seeds).
    assert _single_object_accuracy(size) >= 0.98


def test_judge_survives_grain():
    # Generated images are grainy; noise pixels must not stretch the object's bounding box.
    rng = np.random.default_rng(7)
    correct = 0
    for _ in range(100):
        scene = random_scene(rng, two_objects_p=0.0)
        (spec,) = scene.objects
        pixels = np.asarray(render(scene, 64, rng), dtype=np.float32) + rng.normal(0, 15, (64, 64, 3))
        noisy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        correct += judge(noisy).matches(spec.colour, spec.shape, scene.background)
    assert correct >= 95


def test_judge_without_object():
    plain = Image.new("RGB", (64, 64), PALETTE["blue"])
    result = judge(plain)
    assert (result.background, result.object_colour, result.shape, result.bbox) == ("blue", None, None, None)


def test_judge_bbox_and_fill_of_a_known_square():
    image = Image.new("RGB", (64, 64), PALETTE["white"])
    image.paste(PALETTE["red"], (10, 20, 30, 40))
    result = judge(image)
    assert result.bbox == (10, 20, 30, 40)
    assert result.fill == pytest.approx(1.0, abs=0.02)  # the median filter may nibble the corners
    assert result.matches("red", "square", "white")


def test_nearest_palette_colour():
    for name, rgb in PALETTE.items():
        assert nearest_palette_colour(rgb) == name
        assert nearest_palette_colour(np.array(rgb) + COLOUR_JITTER) == name
    assert nearest_palette_colour((255, 0, 0)) == "red"


def test_full_captions_follow_the_grammar():
    scene = Scene("green", (ShapeSpec("square", "yellow", "large", "top left"),))
    assert caption(scene) == "a large yellow square in the top left on a green background"
    assert caption(Scene("orange", (ShapeSpec("circle", "yellow", "small", "center"),))) == (
        "a small yellow circle in the center on an orange background"
    )
    two = Scene(
        "black", (ShapeSpec("triangle", "white", "small", "bottom right"), ShapeSpec("circle", "red", "small", "top left"))
    )
    # Objects are named in reading order, whatever their order in the scene.
    assert caption(two) == (
        "a small red circle in the top left and a small white triangle in the bottom right on a black background"
    )


def test_full_captions_name_everything_in_the_scene():
    rng = np.random.default_rng(0)
    for _ in range(300):
        scene = random_scene(rng)
        text = caption(scene)
        assert CAPTION_GRAMMAR.fullmatch(text) and _articles_agree(text), text
        assert text.endswith(f" {scene.background} background")
        for spec in scene.objects:
            assert f"{spec.size} {spec.colour} {spec.shape} in the {spec.position}" in text


def test_dropped_word_captions_are_grammatical_and_true():
    rng = np.random.default_rng(1)
    seen = {"no size": 0, "no position": 0, "only objects": 0, "only background": 0}
    for _ in range(1000):
        scene = random_scene(rng)
        text = caption(scene, rng)
        assert CAPTION_GRAMMAR.fullmatch(text) and _articles_agree(text), text
        words = text.split()
        mentioned = [w for w in words if w in PALETTE]
        if "background" in words:
            assert mentioned[-1] == scene.background
            mentioned = mentioned[:-1]
        in_reading_order = sorted(scene.objects, key=lambda spec: POSITIONS.index(spec.position))
        assert mentioned in ([], [spec.colour for spec in in_reading_order])
        assert [w for w in words if w in SHAPES] in ([], [spec.shape for spec in in_reading_order])
        seen["no size"] += bool(mentioned) and not any(size in words for size in SIZES)
        seen["no position"] += bool(mentioned) and " in the " not in text
        seen["only objects"] += "background" not in words
        seen["only background"] += not mentioned
    assert all(count > 50 for count in seen.values()), seen  # each kind of dropping happens


def test_random_scene_rules():
    rng = np.random.default_rng(2)
    assert all(len(random_scene(rng, two_objects_p=0.0).objects) == 1 for _ in range(50))
    for _ in range(200):
        scene = random_scene(rng, two_objects_p=1.0)
        first, second = scene.objects
        assert first.size == second.size == "small"
        assert first.position != second.position
        assert scene.background not in (first.colour, second.colour)


def test_two_objects_never_overlap():
    rng = np.random.default_rng(3)
    for _ in range(60):
        scene = random_scene(rng, two_objects_p=1.0)
        image = render(scene, 64, rng)
        # Same-coloured neighbours would merge into one region if they touched.
        mask, _ = object_mask(image)
        assert count_components(mask, min_pixels=20) == 2, scene


def test_background_is_the_palette_colour():
    rng = np.random.default_rng(4)
    for _ in range(50):
        scene = random_scene(rng)
        pixels = np.asarray(render(scene, 64, rng)).astype(int)
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        assert (border == border[0]).all()  # plain: one colour
        assert np.abs(border[0] - PALETTE[scene.background]).max() <= COLOUR_JITTER


def test_objects_are_their_palette_colour_and_anti_aliased():
    rng = np.random.default_rng(5)
    scene = Scene("black", (ShapeSpec("circle", "yellow", "large", "center"),))
    pixels = np.asarray(render(scene, 128, rng)).astype(int)
    centre = pixels[64, 64]
    assert np.abs(centre - PALETTE["yellow"]).max() <= COLOUR_JITTER
    background = pixels[0, 0]
    # Intermediate pixels: neither colour, on the circle's rim only.
    in_between = (np.abs(pixels - centre).max(-1) > 10) & (np.abs(pixels - background).max(-1) > 10)
    assert in_between.sum() > 100
    inside_rows, inside_cols = np.nonzero(np.abs(pixels - background).max(-1) > 10)
    centre_row, centre_col = inside_rows.mean(), inside_cols.mean()  # the centre is jittered
    rows, cols = np.nonzero(in_between)
    radius = np.hypot(rows - centre_row, cols - centre_col)
    assert radius.max() - radius.min() < 2


@pytest.mark.parametrize("size", [128, 64])
def test_dataset_items(size):
    image, text = next(iter(ShapesDataset(size=size, seed=0)))
    assert image.shape == (3, size, size) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0 and image.max() - image.min() > 0.5
    assert CAPTION_GRAMMAR.fullmatch(text)


def _take(iterable, n):
    items = []
    for item in iterable:
        items.append(item)
        if len(items) == n:
            return items


def test_dataset_is_deterministic_for_a_seed():
    a = _take(ShapesDataset(size=64, seed=5), 8)
    b = _take(ShapesDataset(size=64, seed=5), 8)
    c = _take(ShapesDataset(size=64, seed=6), 8)
    assert all(torch.equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b))
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a, c))


def test_dataloader_workers_are_deterministic_and_distinct():
    def first_batches():
        loader = torch.utils.data.DataLoader(ShapesDataset(size=64, seed=9), batch_size=4, num_workers=2)
        return _take(loader, 2)  # one batch from each worker

    run1, run2 = first_batches(), first_batches()
    for (images1, texts1), (images2, texts2) in zip(run1, run2):
        assert torch.equal(images1, images2) and texts1 == texts2
    assert not torch.equal(run1[0][0], run1[1][0])  # workers do not repeat each other


def test_batch_is_deterministic_for_the_rng():
    images, texts = batch(np.random.default_rng(11), 6, 64)
    again, texts_again = batch(np.random.default_rng(11), 6, 64)
    assert images.shape == (6, 3, 64, 64) and len(texts) == 6
    assert torch.equal(images, again) and texts == texts_again
