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


_OPENCLIP_NAMES = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
                   "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}


def _openclip(state: dict, prefix: str) -> dict:
    """Our (transformers') text-tower names -> OpenCLIP's, as SDXL's original files keep bigG: q, k and v fused
    into in_proj, the projection stored transposed."""
    out = {}
    for key, tensor in state.items():
        if key.startswith("encoder.layers."):
            index, rest = key.removeprefix("encoder.layers.").split(".", 1)
            block = f"{prefix}transformer.resblocks.{index}."
            if rest.startswith("self_attn.q_proj."):
                kind = rest.rsplit(".", 1)[1]
                parts = [state[f"encoder.layers.{index}.self_attn.{p}_proj.{kind}"] for p in "qkv"]
                out[f"{block}attn.in_proj_{kind}"] = torch.cat(parts)
            elif not rest.startswith(("self_attn.k_proj.", "self_attn.v_proj.")):
                head, leaf = rest.rsplit(".", 1)
                out[f"{block}{_OPENCLIP_NAMES[head]}.{leaf}"] = tensor
        else:
            name = {"embeddings.token_embedding.weight": "token_embedding.weight",
                    "embeddings.position_embedding.weight": "positional_embedding",
                    "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias",
                    "text_projection.weight": "text_projection"}[key]
            out[prefix + name] = tensor.t().contiguous() if name == "text_projection" else tensor
    return out


def random_full_size_sdxl(dtype: torch.dtype = torch.float16) -> Path:
    """A full-size SDXL base architecture with random weights, in sd_xl_base_1.0.safetensors' layout (about 6.9 GB
    in fp16; ~2.6 B U-Net parameters), cached in bench-cache/."""
    from safetensors.torch import save_file

    from sd_desktop.core.families import SDXL
    from sd_desktop.core.nn.clip_text import CLIPTextModel
    from sd_desktop.core.nn.unet import UNetModel
    from sd_desktop.core.nn.vae import AutoencoderKL

    path = CACHE / f"sdxl-random-{str(dtype).removeprefix('torch.')}.safetensors"
    if path.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    gen = torch.Generator().manual_seed(0)

    def random(module) -> dict:
        return {key: (torch.randn(p.shape, generator=gen) * 0.02).to(dtype) for key, p in module.state_dict().items()}

    with torch.device("meta"):
        unet, vae = UNetModel(SDXL.unet), AutoencoderKL(SDXL.vae)
        clip_l, clip_g = CLIPTextModel(SDXL.text), CLIPTextModel(SDXL.text2)
    tensors = {f"model.diffusion_model.{k}": v for k, v in random(unet).items()}
    tensors.update({f"first_stage_model.{k}": v for k, v in random(vae).items()})
    tensors.update({f"conditioner.embedders.0.transformer.text_model.{k}": v for k, v in random(clip_l).items()})
    tensors.update(_openclip(random(clip_g), "conditioner.embedders.1.model."))
    save_file(tensors, str(path))
    return path
