"""Where finished work goes and what it is called: one home for the app, the CLI and the trainer.

Images go to <output root>/<YYYY-MM-DD>/NNNNN-SEED.png (AUTOMATIC1111's naming), numbered after the highest
number already in the folder. A name is taken only if it is free (core.io.files.claim), so two processes
saving into one day's folder never overwrite each other: the second moves on to the next number.
Interpolation exports get folders of their own, interpolation-NNN, taken the same way.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import Sequence

from PIL import Image, PngImagePlugin

from .files import claim, make_folder_exclusive, write_atomic, write_temp
from .image_text import exif_with_user_comment
from .metadata import JSON_KEY, PARAMETERS_KEY

_NUMBERED = re.compile(r"^(\d{5})-")
EXPORT_STEM = "interpolation"
POSTPROCESSING_KEY = "postprocessing"  # A1111's record of what was done after generation ("Postprocess upscale by: 4, ...")
# what a PNG keeps of an image's .info: ours, A1111's, and other apps' parameters an edited image carries on
CARRIED_KEYS = (PARAMETERS_KEY, JSON_KEY, POSTPROCESSING_KEY, "prompt", "workflow", "invokeai_metadata", "Comment",
                "Description")
ANIMATION_FORMATS = ("gif", "webp")


def default_output_root() -> Path:
    """SD_DESKTOP_OUTPUT_DIR, else sd-desktop/ in the user's pictures folder (XDG's XDG_PICTURES_DIR, as
    user-dirs.dirs names it on Linux, else ~/Pictures), else in the home folder when there is none."""
    override = os.environ.get("SD_DESKTOP_OUTPUT_DIR")
    if override:
        return Path(override).expanduser()
    pictures = xdg_pictures_dir() or Path.home() / "Pictures"
    return (pictures if pictures.is_dir() else Path.home()) / "sd-desktop"


def xdg_pictures_dir() -> Path | None:
    """The pictures folder of the XDG user directories (a localised name such as ~/Bilder), if set."""
    value = os.environ.get("XDG_PICTURES_DIR")
    if not value:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "user-dirs.dirs"
        try:
            lines = config.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            key, _, raw = line.strip().partition("=")
            if key == "XDG_PICTURES_DIR":
                value = raw.strip().strip('"')
    if not value:
        return None
    path = Path(value.replace("$HOME", str(Path.home()))).expanduser()
    return path if path.is_absolute() and path != Path.home() else None


def dated_folder(root: Path | None = None, today: datetime.date | None = None) -> Path:
    return (root or default_output_root()) / (today or datetime.date.today()).isoformat()


def _next_number(folder: Path) -> int:
    numbers = [int(m.group(1)) for p in folder.iterdir() for m in [_NUMBERED.match(p.name)] if m]
    return max(numbers, default=-1) + 1


def next_output_path(folder: Path, seed: int, suffix: str = ".png") -> Path:
    """The name the next result would get: folder/NNNNN-SEED.png after the highest number there. Only a
    guess when others write to the folder too: save_numbered takes the name for real."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{_next_number(folder):05d}-{seed}{suffix}"


def pnginfo_of(image: Image.Image) -> PngImagePlugin.PngInfo:
    """The parameter chunks an image carries in its .info (CARRIED_KEYS), ready to be written: tEXt, or iTXt
    where the text is not latin-1 (as A1111 writes them)."""
    info = PngImagePlugin.PngInfo()
    for key in CARRIED_KEYS:
        if key in image.info:
            info.add_text(key, str(image.info[key]))
    return info


def image_writer(image: Image.Image, suffix: str, quality: int = 95):
    """A writer for write_atomic: the format the suffix names. A PNG keeps the parameters the image carries
    as text chunks; a JPEG or WebP keeps the A1111 text in EXIF UserComment, as A1111 writes it."""
    fmt = Image.registered_extensions().get(suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot save an image as '{suffix or 'no extension'}'; use .png, .jpg or .webp")
    if fmt == "PNG":
        return lambda f: image.save(f, format="PNG", pnginfo=pnginfo_of(image))
    rgb = image.convert("RGB") if fmt == "JPEG" and image.mode not in ("RGB", "L") else image
    options = {"quality": quality}
    if fmt in ("JPEG", "WEBP") and image.info.get(PARAMETERS_KEY):
        options["exif"] = exif_with_user_comment(str(image.info[PARAMETERS_KEY]))
    return lambda f: rgb.save(f, format=fmt, **options)


def save_image(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write to `path` (its format from its suffix) atomically, keeping the parameters the image carries."""
    path = Path(path)
    return write_atomic(path, image_writer(image, path.suffix))


def save_numbered(image: Image.Image, folder: Path, seed: int, suffix: str = ".png") -> Path:
    """Save as folder/NNNNN-SEED.png under the first free number; never overwrites."""
    folder.mkdir(parents=True, exist_ok=True)
    temp = write_temp(folder / f"{seed}{suffix}", image_writer(image, suffix))
    number = _next_number(folder)
    try:
        while True:
            path = folder / f"{number:05d}-{seed}{suffix}"
            try:
                claim(temp, path)
                return path
            except FileExistsError:
                number += 1
    finally:
        temp.unlink(missing_ok=True)


def new_export_folder(folder: Path, stem: str = EXPORT_STEM) -> Path:
    """folder/interpolation-NNN, created here and now under the first free number after the highest."""
    folder.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"{re.escape(stem)}-(\d+)$")
    numbers = [int(m.group(1)) for p in folder.iterdir() for m in [pattern.match(p.name)] if m]
    number = max(numbers, default=0) + 1
    while not make_folder_exclusive(folder / f"{stem}-{number:03d}"):
        number += 1
    return folder / f"{stem}-{number:03d}"


def save_animation(frames: Sequence[Image.Image], path: str | os.PathLike, duration_ms: int = 120,
                   loop: int | None = 0) -> Path:
    """An animated GIF or WebP (from the suffix), written atomically. `loop`: 0 for ever, None plays once."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ANIMATION_FORMATS:
        raise ValueError(f"an animation is saved as .gif or .webp, not '{path.suffix}'")
    extra = {"lossless": False, "quality": 90} if fmt == "webp" else {"optimize": False}
    first, *rest = frames
    if loop is not None:
        extra["loop"] = loop
    elif fmt == "webp":
        extra["loop"] = 1  # WebP's loop count: 1 plays once (a GIF without a loop field plays once)
    return write_atomic(path, lambda f: first.save(f, format=fmt.upper(), save_all=True, append_images=rest,
                                                    duration=duration_ms, **extra))
