"""Where the files people add beside their models live (no torch: the window lists them): the user's data folder,
and folders of a given name in and beside each models folder, as A1111 (models/Lora, models/ESRGAN ...) and
ComfyUI (models/loras, models/upscale_models ...) lay them out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


def user_data_dir() -> Path:
    """$SD_DESKTOP_DATA_DIR, else $XDG_DATA_HOME/sd-desktop, else ~/.local/share/sd-desktop."""
    data = os.environ.get("SD_DESKTOP_DATA_DIR")
    if data:
        return Path(data).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "sd-desktop"


def named_folders(models_folders: Iterable[str | Path], names: Iterable[str]) -> list[Path]:
    """Each existing `name` folder in and beside (in the parent of) each models folder, once, in that order."""
    names = tuple(names)
    found: list[Path] = []
    for folder in models_folders:
        folder = Path(folder).expanduser()
        for root in (folder, folder.parent):
            for name in names:
                candidate = root / name
                if candidate.is_dir() and candidate not in found:
                    found.append(candidate)
    return found
