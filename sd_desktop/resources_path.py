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


def bundled_model() -> Path | None:
    """The bundled demo model file, or None when it is not installed (no torch needed to ask)."""
    try:
        folder = resource("models")
    except FileNotFoundError:
        return None
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    return files[0] if files else None


def bundled_taesd(model_path: Path) -> Path | None:
    """The TAESD decoder distilled for a bundled model (models/taesd/<the model's file name>), or None."""
    candidate = Path(model_path).parent / "taesd" / Path(model_path).name
    return candidate if candidate.is_file() else None
