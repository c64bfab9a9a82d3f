"""A full-size SD 1.5 architecture with random weights, saved once as an original-layout fp16 single
file (about 2 GB) in bench-cache/ (git-ignored), for the load and speed benchmarks."""

from __future__ import annotations

from pathlib import Path

import torch

CACHE = Path(__file__).resolve().parent.parent / "bench-cache"


def random_full_size_checkpoint(dtype: torch.dtype = torch.float16) -> Path:
    from safetensors.torch import save_file

    from sd_desktop.core.families import SD1
    from sd_desktop.core.nn.clip_text import CLIPTextModel
    from sd_desktop.core.nn.unet import UNetModel
    from sd_desktop.core.nn.vae import AutoencoderKL

    path = CACHE / f"sd15-random-{str(dtype).removeprefix('torch.')}.safetensors"
    if path.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for prefix, cls, cfg in (("model.diffusion_model.", UNetModel, SD1.unet),
                             ("first_stage_model.", AutoencoderKL, SD1.vae),
                             ("cond_stage_model.transformer.text_model.", CLIPTextModel, SD1.text)):
        with torch.device("meta"):
            module = cls(cfg)
        for key, param in module.state_dict().items():
            tensors[prefix + key] = (torch.randn(param.shape, generator=gen) * 0.02).to(dtype)
    save_file(tensors, str(path))
    return path
