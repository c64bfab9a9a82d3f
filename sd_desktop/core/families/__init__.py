"""The model-family registry: every kind of model file sd-desktop knows, matched in order.

Detection, the loader, the diffusers-folder reader, the preview, metadata and the window read what a
family is from here; adding a family is one declaration (and its networks, if it is loaded).
"""

from __future__ import annotations

from ..errors import ModelLoadError, UnsupportedModelError
from .base import FolderConfigs, KeyLayout, LatentFormat, ModelConfig, ModelFamily, Shapes
from .refused import CASCADE, CONTROLNET, DIT, FLUX, LORA, SD2_UNCLIP, SD3, SDXL_REFINER, UNET_ONLY
from .sd1 import SD1, SD1_INPAINT, unet_in_channels
from .sd2 import SD2, SD2_INPAINT
from .sdxl import SDXL, SDXL_INPAINT

__all__ = [
    "FAMILIES", "ModelFamily", "ModelConfig", "LatentFormat", "KeyLayout", "Shapes", "SD1", "SD1_INPAINT",
    "SD2", "SD2_INPAINT", "SDXL", "SDXL_INPAINT",
    "family_named", "recognise", "recognise_folder", "supported", "supported_labels", "loadable_families",
]

# Matched in order: the first declaration that recognises a file decides what it is.
FAMILIES: tuple[ModelFamily, ...] = (SDXL_REFINER, SDXL_INPAINT, SDXL, SD2_UNCLIP, SD2_INPAINT, SD2, FLUX, SD3, CASCADE,
                                     DIT, LORA, CONTROLNET, UNET_ONLY, SD1_INPAINT, SD1)


def loadable_families() -> list[ModelFamily]:
    return [family for family in FAMILIES if family.loadable]


def supported_labels() -> str:
    """The families sd-desktop loads, for people: "Stable Diffusion 1.x" (variants such as inpainting go unsaid)."""
    families = sorted((f for f in loadable_families() if not f.inpainting), key=lambda f: f.name)  # sd1, sd2, sdxl
    return ", ".join(dict.fromkeys(family.label for family in families))


def supported() -> str:
    """What sd-desktop loads, as the end of a refusal: "sd-desktop loads Stable Diffusion 1.x, ..."."""
    return f"sd-desktop loads {supported_labels()} models"


def family_named(name: str) -> ModelFamily:
    for family in FAMILIES:
        if family.name == name:
            return family
    raise ValueError(f"unknown model family {name!r}; known: {', '.join(f.name for f in FAMILIES)}")


def _refuse(family: ModelFamily, name: str) -> UnsupportedModelError:
    return UnsupportedModelError(family.refusal.format(name=name, supported=supported()))


def recognise(shapes: Shapes, name: str) -> ModelFamily:
    """The family of a single file from its keys and shapes; a clear error for anything sd-desktop does not load."""
    for family in FAMILIES:
        if family.recognise(shapes):
            if not family.loadable:
                raise _refuse(family, name)
            return family
    in_channels = unet_in_channels(shapes)
    if in_channels is not None:
        known = ", ".join(f"{f.unet.in_channels} = {f.label}" for f in loadable_families())
        raise UnsupportedModelError(
            f"{name}: U-Net with {in_channels} input channels ({known}); this variant is not supported")
    if "encoder.conv_in.weight" in shapes or "decoder.conv_in.weight" in shapes:
        raise ModelLoadError(f"{name} is a VAE on its own; load a full checkpoint and choose this file as its VAE")
    sample = ", ".join(sorted(shapes)[:3]) or "no tensors"
    raise ModelLoadError(f"{name} is not a Stable Diffusion checkpoint (no U-Net weights; it holds {sample} ...)")


def recognise_folder(configs: FolderConfigs, name: str) -> ModelFamily:
    """The family of a diffusers folder from its config.json files."""
    for family in FAMILIES:
        if family.recognise_folder(configs):
            if not family.loadable:
                raise UnsupportedModelError(
                    f"{name}: this looks like {family.article} {family.label} model folder; {supported()}")
            return family
    in_channels = configs.get("unet", {}).get("in_channels")
    raise UnsupportedModelError(f"{name}: a diffusers U-Net with {in_channels} input channels is not supported")
