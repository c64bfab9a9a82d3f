"""Stage 3 (optional): a TAESD decoder for the demo model, distilled from its VAE.

TAESD's architecture (core.nn.taesd: ~1.2 M parameters) learns to give what the demo VAE's decoder gives, from the
same U-Net-space latents: pictures of the shapes data set are encoded by the demo VAE (the posterior's mean, times
the scale factor), a little noise is added (previews show the sampler's estimates mid-way, which lie a little off
the VAE's latents), and the student is fitted to the teacher's decode of those latents, in [0, 1]: L1, plus the
squared error of 8x8-averaged colours (a wrong background costs what a viewer sees). The decoder is fully
convolutional, so it trains on crops (8x8 latents) and decodes any size.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save

from sd_desktop.core.io.files import write_atomic
from sd_desktop.core.nn.taesd import tiny_decoder

from .common import (Progress, check_same_recipe, count_parameters, learning_rate, load_checkpoint, save_checkpoint,
                     setup_device, step_generator)
from .vae_stage import training_images

TAESD_FILE = "taesd_decoder.safetensors"


@dataclasses.dataclass(frozen=True)
class TAESDRecipe:
    steps: int = 1500
    batch: int = 8
    size: int = 64  # pixels: 8x8 latents
    lr: float = 1e-3
    warmup: int = 50
    latent_noise: float = 0.1  # times the latents' std
    colour_weight: float = 4.0
    width: int = 64  # TAESD's; tests use a narrow one
    seed: int = 0


def teacher(model_path: Path | None):
    """The model whose VAE is distilled (default: the bundled demo model), float32 on the CPU."""
    import sd_desktop.core as core

    model = core.load_model(model_path, device="cpu", dtype="fp32")
    return model.vae, float(model.scale_factor), model.config.vae.latent_channels


@torch.no_grad()
def teacher_batch(vae, scale_factor: float, images: torch.Tensor, noise: torch.Tensor, latent_noise: float):
    """(U-Net-space latents with a little noise, the VAE's decode of them in [0, 1])."""
    mean, _ = vae.encode_moments(images)
    latents = mean * scale_factor
    latents = latents + latent_noise * latents.std() * noise
    target = (vae.decode(latents / scale_factor).float().clamp(-1, 1) + 1) / 2
    return latents, target


def taesd_loss(decoder, latents: torch.Tensor, target: torch.Tensor, colour_weight: float):
    decoded = decoder(latents)
    l1 = (decoded - target).abs().mean()
    colour = (F.avg_pool2d(decoded, 8) - F.avg_pool2d(target, 8)).pow(2).mean()
    return l1 + colour_weight * colour, l1


def train_taesd(out: Path, recipe: TAESDRecipe, model_path: Path | None = None, threads: str | int | None = None,
                save_every: float = 180.0, log_every: float = 10.0, stream=None, stop_at: int | None = None) -> dict:
    """Train (or resume) the decoder in `out`; writes out/taesd_decoder.safetensors at the end."""
    out = Path(out)
    device, tuner = setup_device("cpu", threads)
    torch.manual_seed(recipe.seed)
    vae, scale_factor, channels = teacher(model_path)
    decoder = tiny_decoder(channels, recipe.width)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=recipe.lr, betas=(0.9, 0.99), weight_decay=0.0)
    state = load_checkpoint(out)
    step, losses = 0, []
    if state is not None:
        check_same_recipe(state["recipe"], dataclasses.asdict(recipe), ignore=("steps",))
        decoder.load_state_dict(state["decoder"])
        optimizer.load_state_dict(state["optimizer"])
        step, losses = state["step"], list(state["losses"])
    log = Progress("taesd", recipe.steps, step, log_every, stream)
    if step == 0:
        print(f"taesd: {count_parameters(decoder):,} parameters, {recipe}", file=log.stream, flush=True)

    def checkpoint() -> dict:
        state = {"recipe": dataclasses.asdict(recipe), "step": step, "decoder": decoder.state_dict(),
                 "optimizer": optimizer.state_dict(), "losses": losses}
        save_checkpoint(out, state)
        return state

    saved_at = time.perf_counter()
    decoder.train()
    side = recipe.size // 8
    while step < min(recipe.steps, stop_at or recipe.steps):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, recipe.lr, min(recipe.warmup, recipe.steps // 5), recipe.steps)
        images = training_images(recipe.seed, step, recipe.batch, recipe.size)
        noise = torch.randn((recipe.batch, channels, side, side), generator=step_generator(recipe.seed, step, 1))
        latents, target = teacher_batch(vae, scale_factor, images, noise, recipe.latent_noise)
        loss, l1 = taesd_loss(decoder, latents, target, recipe.colour_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        log.update(step, losses[-1], f"  l1 {l1.item():.4f}")
        step += 1
        if tuner is not None:
            tuner.record(time.perf_counter() - started)
        if time.perf_counter() - saved_at > save_every:
            checkpoint()
            saved_at = time.perf_counter()
    state = checkpoint()
    if step >= recipe.steps:
        write_taesd_file(out / TAESD_FILE, decoder, recipe)
    return state


def write_taesd_file(path: Path, decoder: torch.nn.Module, recipe: TAESDRecipe) -> None:
    """The original taesd_decoder layout ("1.weight", "3.conv.0.weight" ...), in float16 (what ships)."""
    tensors = {k: v.detach().half().contiguous() for k, v in decoder.state_dict().items()}
    data = save(tensors, metadata={"sd_desktop_recipe": json.dumps({"taesd": dataclasses.asdict(recipe)})})
    write_atomic(Path(path), lambda f: f.write(data))
