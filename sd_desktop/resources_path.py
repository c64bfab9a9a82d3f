"""Where the bundled resources live: a checkout, an installed package, or a frozen build."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The folder that holds the CLIP vocabulary, the demo model and the icons."""
    here = Path(__file__).resolve().parent
    candidates = [
        here.parent / "resources",  # a source checkout (also an editable install)
        here / "resources",  # an installed wheel: package sd_desktop.resources
    ]
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        candidates.insert(0, Path(frozen) / "resources")
    for candidate in candidates:
        if (candidate / "clip").is_dir():
            return candidate
    raise FileNotFoundError(
        "sd-desktop's resources folder is missing; reinstall sd-desktop "
        f"(looked in: {', '.join(str(c) for c in candidates)})"
    )


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
