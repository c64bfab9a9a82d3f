"""Where finished images go, and writing them with their parameters."""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

from PIL import Image, PngImagePlugin

from .metadata import JSON_KEY, PARAMETERS_KEY, save_png_atomic

_NUMBERED = re.compile(r"^(\d{5})-")


def default_output_root() -> Path:
    """SD_DESKTOP_OUTPUT_DIR, else the user's Pictures/sd-desktop."""
    override = os.environ.get("SD_DESKTOP_OUTPUT_DIR")
    if override:
        return Path(override).expanduser()
    pictures = Path.home() / "Pictures"
    return (pictures if pictures.is_dir() else Path.home()) / "sd-desktop"


def dated_folder(root: Path | None = None, today: datetime.date | None = None) -> Path:
    return (root or default_output_root()) / (today or datetime.date.today()).isoformat()


def next_output_path(folder: Path, seed: int, suffix: str = ".png") -> Path:
    """folder/NNNNN-SEED.png, numbered after the highest number already there (A1111's naming)."""
    folder.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in folder.iterdir() for m in [_NUMBERED.match(p.name)] if m]
    return folder / f"{max(numbers, default=-1) + 1:05d}-{seed}{suffix}"


def pnginfo_of(image: Image.Image) -> PngImagePlugin.PngInfo:
    """The parameter chunks a generated image carries in its .info, ready to be written."""
    info = PngImagePlugin.PngInfo()
    for key in (PARAMETERS_KEY, JSON_KEY):
        if key in image.info:
            info.add_itxt(key, str(image.info[key]))
    return info


def save_image(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write atomically, keeping the parameters the image carries."""
    return save_png_atomic(image, path, pnginfo_of(image))
