"""What a model family is. One `ModelFamily` declaration holds everything sd-desktop knows about a family
(in the spirit of ComfyUI's supported_models.py and latent_formats.py): how its files are recognised from
keys and shapes, where each network's weights sit in a single file, its latent format, native size and
default network sizes, or, for a family sd-desktop does not load, what to tell the user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..nn.configs import TextEncoderConfig, UNetConfig, VAEConfig

Shapes = dict[str, tuple[int, ...]]  # a single file's keys and tensor shapes, read without the data
FolderConfigs = dict[str, dict]  # a diffusers folder: {"unet": unet/config.json, "text_encoder": ...} and "subfolders": {name: {}}


@dataclass(frozen=True)
class LatentFormat:
    """How the VAE's latents look to the U-Net, and how to see them without the VAE."""

    channels: int
    scale_factor: float  # VAE latents * scale_factor = what the U-Net sees
    # Least-squares fit of the VAE decode: one RGB row per latent channel (latents as the U-Net sees them ->
    # RGB in [-1, 1]), optionally a last row with the bias. Per-step previews use it.
    rgb_factors: tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class KeyLayout:
    """Where a single file keeps each network's weights (the original LDM layout)."""

    unet: str
    vae: str
    text: tuple[str, ...]  # tried in order: the current name first, older ones after
    vae_parts: tuple[str, ...] = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")  # not loss.* leftovers
    text_openclip: bool = False  # the text tower is in OpenCLIP's layout (SD 2.x), renamed on load
    text2: str | None = None  # a second text tower, in OpenCLIP's layout (SDXL's ViT-bigG)


@dataclass(frozen=True)
class ModelConfig:
    """One model: its family and the sizes of its networks (read off the file, defaults from the family)."""

    family: "ModelFamily"
    text: TextEncoderConfig
    unet: UNetConfig
    vae: VAEConfig
    scale_factor: float
    native_size: int
    text2: TextEncoderConfig | None = None  # SDXL's second text encoder (OpenCLIP ViT-bigG)
    prediction: str = "eps"  # what the U-Net predicts: "eps" (the noise) or "v" (v-prediction)
    zero_snr: bool = False  # trained with zero terminal SNR: a file's empty `ztsnr` tensor, a folder's rescale_betas_zero_snr


@dataclass(frozen=True, eq=False)
class ModelFamily:
    """A kind of model file. `loadable` families carry everything the loader, the preview, metadata and the
    window need; the others only how to recognise them and the one line that refuses them."""

    name: str  # "sd1"
    label: str  # "Stable Diffusion 1.x": shown to users
    recognise: Callable[[Shapes], bool]  # a single file, from its keys and shapes
    recognise_folder: Callable[[FolderConfigs], bool] = lambda configs: False  # a diffusers folder
    article: str = "a"  # "an SDXL checkpoint"
    loadable: bool = False
    inpainting: bool = False  # a U-Net that also takes the mask and the masked image's latents
    addons: str | None = None  # the LoRAs and embeddings that fit: made for "sd1", "sd2", "sdxl" models
    # For a family that is not loaded: "{name}" is the file's name, "{supported}" what sd-desktop loads.
    refusal: str = "{name}: this is not a model sd-desktop can load; {supported}"
    keys: KeyLayout | None = None
    latent: LatentFormat | None = None
    native_size: int = 512
    text: TextEncoderConfig | None = None  # defaults for what a text encoder's weights do not show
    unet: UNetConfig | None = None  # full-size networks (benchmarks, docs)
    vae: VAEConfig | None = None
    text2: TextEncoderConfig | None = None  # SDXL's second text encoder
    # "eps" or "v"; "probe": the file does not say, one U-Net call decides (core.loading.prediction), as A1111 does
    prediction: str = "eps"
    native_size_v: int | None = None  # the native size of the family's v-prediction models (SD 2.x 768-v: 768)
    # An empty negative prompt is all zeros (context and pooled), as A1111 and diffusers do for SDXL
    zero_empty_negative: bool = False
    sizes: tuple[tuple[int, int], ...] = ()  # (width, height) the family was trained on, offered in the window
    taesd: str = "taesd"  # the TAESD made for its latents: taesd_decoder.* (SD 1.x/2.x), taesdxl_decoder.* (SDXL)

    def default_config(self) -> ModelConfig:
        """The family's full-size model."""
        return ModelConfig(family=self, text=self.text, unet=self.unet, vae=self.vae, text2=self.text2,
                           scale_factor=self.latent.scale_factor, native_size=self.native_size,
                           prediction="eps" if self.prediction == "probe" else self.prediction)

    def __repr__(self) -> str:
        return f"<ModelFamily {self.name}>"
