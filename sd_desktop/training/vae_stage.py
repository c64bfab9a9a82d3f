"""Stage 1: the KL-f8 autoencoder, trained on shapes renders.

Loss as in LDM's autoencoder without its GAN and LPIPS parts (flat shapes do not need them):
pixel L1, plus L1 between the images' finite differences (keeps edges crisp), plus the KL of the
posterior to N(0, 1) with LDM's tiny weight (sum over latent elements, per image, relative to the
summed pixel loss), plus three terms for colour (below); a last phase trains the decoder alone,
which keeps the latents (and so any diffusion model trained on them) valid.

Why the colour terms: GroupNorm makes flat colours hard for this architecture. A flat region's
features lose their length at every norm, and within a few hundred steps the encoder settles on a
code in which flat colours fall into two clusters (light, dark): black and green, or white, yellow
and orange, differ by a hair, told apart mostly at the image border. No diffusion model reproduces
that. So: latent channels 0-2 are asked to carry each 8x8 patch's colour linearly (the decisive
term), the latents get noise of a fixed signal-to-noise ratio while training (differences smaller
than it are useless to the decoder), and the squared error of 8x8-averaged colours weighs a wrong
colour by its area.

Batches are half whole scenes rendered at `size`, half `size` crops of scenes rendered at twice
that: the network is fully convolutional and will see 128 px images, whose shapes are larger.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save

from sd_desktop.core.io.files import write_atomic

from sd_desktop.core.nn.configs import VAEConfig
from sd_desktop.core.nn.vae import AutoencoderKL

from . import shapes
from .common import (Progress, autocast, check_same_recipe, count_parameters, learning_rate, load_checkpoint,
                     save_checkpoint, setup_device, step_generator, step_rng)

VAE_FILE = "vae.safetensors"

# 8 norm groups, not SD's 32: at 32 channels, 32 groups would normalise each channel on its own, and a
# flat region (most of every shapes image) would come out of each norm as zeros. The file says so.
DEMO_VAE = VAEConfig(base_channels=32, channel_mult=(1, 2, 2, 4), num_res_blocks=1, norm_groups=8)
TINY_VAE = VAEConfig(base_channels=16, channel_mult=(1, 1, 1, 1), num_res_blocks=1, norm_groups=8)  # still 8x down


@dataclasses.dataclass(frozen=True)
class VAERecipe:
    steps: int = 2600
    batch: int = 8
    size: int = 64
    lr: float = 2e-3
    warmup: int = 50
    kl_weight: float = 1e-6
    edge_weight: float = 1.0
    latent_noise: float = 0.1
    latent_noise_from: int = 0
    colour_weight: float = 4.0
    colour_from: int = 0
    decoder_only_from: int = 2000  # -1: never; from this step on the encoder is frozen (its latents stay valid)
    latent_colour_weight: float = 4.0
    latent_colour_scale: float = 5.0
    init: str = ""  # a VAE file to start from instead of random weights
    seed: int = 0
    tiny: bool = False

    @property
    def config(self) -> VAEConfig:
        return TINY_VAE if self.tiny else DEMO_VAE


def training_images(seed: int, step: int, batch: int, size: int) -> torch.Tensor:
    """The step's images in [-1, 1]: half whole scenes, half crops of scenes drawn twice as large."""
    rng = step_rng(seed, step)
    whole = batch - batch // 2
    images, _ = shapes.batch(rng, whole, size)
    if batch // 2:
        large, _ = shapes.batch(rng, batch // 2, 2 * size)
        x0, y0 = rng.integers(0, size + 1, size=(2, batch // 2))
        crops = [img[:, y:y + size, x:x + size] for img, x, y in zip(large, x0.tolist(), y0.tolist())]
        images = torch.cat([images, torch.stack(crops)])
    return images


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


def vae_loss(vae: AutoencoderKL, images: torch.Tensor, noise: torch.Tensor, recipe: VAERecipe,
             latent_noise: float = 0.0, colour_weight: float = 0.0):
    """(total loss, reconstruction L1) for one batch. noise[0] samples the posterior; noise[1], times
    latent_noise x the latents' std, is added on top: with LDM's tiny KL weight the posterior gets so
    narrow that the decoder can rely on differences far below what a diffusion model reproduces."""
    mean, logvar = vae.encode_moments(images)
    z = mean + (0.5 * logvar).exp() * noise[0] + latent_noise * mean.detach().std() * noise[1]
    decoded = vae.decode(z).float()
    l1 = (decoded - images).abs().mean()
    edges = sum((a - b).abs().mean() for a, b in zip(image_gradients(decoded), image_gradients(images)))
    kl = 0.5 * (mean.float() ** 2 + logvar.float().exp() - 1 - logvar.float()).flatten(1).sum(1).mean()
    # Squared error of the colours averaged over each latent pixel's 8x8 patch: wrong colours over a
    # whole background cost far more than their per-pixel L1 says (they are what a viewer sees first).
    factor = vae.config.downscale
    colour = (F.avg_pool2d(decoded, factor) - F.avg_pool2d(images, factor)).pow(2).mean()
    pixels_per_image = images[0].numel()
    loss = l1 + recipe.edge_weight * edges + colour_weight * colour + recipe.kl_weight * kl / pixels_per_image
    if recipe.latent_colour_weight:
        loss = loss + recipe.latent_colour_weight * latent_colour_error(mean, images, recipe.latent_colour_scale)
    return loss, l1


def latent_colour_error(mean: torch.Tensor, images: torch.Tensor, scale: float) -> torch.Tensor:
    """How far latent channels 0-2 are from `scale` x the RGB of their 8x8 patch (in RGB units).

    Left to itself, the encoder codes flat colours by a direction that GroupNorm has stripped of its
    length, and in a few hundred steps it settles on two clusters (light, dark) where black and green,
    or white and yellow, differ by a hair. Asking three channels to carry the colour linearly keeps
    every colour far from every other, which is what a diffusion model needs to get colours right
    (and it makes the latent -> RGB preview nearly exact)."""
    patches = F.avg_pool2d(images.float(), images.shape[-1] // mean.shape[-1])
    return (mean[:, :3].float() / scale - patches).pow(2).mean()


def start_nearly_deterministic(vae: AutoencoderKL, logvar: float = -6.0) -> None:
    """Start the posterior's log-variance low: with the default (std 1) the decoder first sees
    nearly pure noise, and a short run spends most of its steps getting out of that."""
    with torch.no_grad():
        vae.quant_conv.bias[vae.config.latent_channels:] = logvar


def encoder_parameters(vae: AutoencoderKL) -> list[torch.nn.Parameter]:
    """What makes the latents: as in SD's ft-MSE VAE, a decoder fine-tune keeps these fixed, so a
    diffusion model trained on the old latents works with the new decoder."""
    return list(vae.encoder.parameters()) + list(vae.quant_conv.parameters())


def train_vae(out: Path, recipe: VAERecipe, device: str | None = "auto", threads: str | int | None = None,
              bf16: bool = False, save_every: float = 180.0, log_every: float = 10.0, stream=None,
              stop_at: int | None = None) -> dict:
    """Train (or resume, or find finished) the VAE in `out`; writes out/vae.safetensors at the end.
    Returns the last checkpoint's state (with `losses`, one per step). `stop_at`: checkpoint and
    return after that step, as if the run were killed there."""
    out = Path(out)
    device, tuner = setup_device(device, threads)
    torch.manual_seed(recipe.seed)
    vae = AutoencoderKL(recipe.config)
    start_nearly_deterministic(vae)
    init_recipe = None
    if recipe.init:  # e.g. a VAE trained without a later term; its recipe is kept in ours
        start, init_recipe = load_vae(Path(recipe.init))
        vae.load_state_dict(start.state_dict())
    vae.to(device)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=recipe.lr, betas=(0.9, 0.99), weight_decay=0.0)
    state = load_checkpoint(out)
    step, losses = 0, []
    if state is not None:
        # The length and the phases may be changed to go on training (as the demo model's decoder was).
        check_same_recipe(state["recipe"], dataclasses.asdict(recipe),
                          ignore=("steps", "latent_noise_from", "colour_from", "decoder_only_from"))
        vae.load_state_dict(state["vae"])
        optimizer.load_state_dict(state["optimizer"])
        step, losses = state["step"], list(state["losses"])
    log = Progress("vae", recipe.steps, step, log_every, stream)
    if step == 0:
        print(f"vae: {count_parameters(vae):,} parameters, {recipe}", file=log.stream, flush=True)

    def checkpoint() -> dict:
        state = {"recipe": dataclasses.asdict(recipe), "config": dataclasses.asdict(recipe.config), "step": step,
                 "vae": vae.state_dict(), "optimizer": optimizer.state_dict(), "losses": losses}
        save_checkpoint(out, state)
        return state

    saved_at = time.perf_counter()
    vae.train()
    while step < min(recipe.steps, stop_at or recipe.steps):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, recipe.lr, min(recipe.warmup, recipe.steps // 5), recipe.steps)
        images = training_images(recipe.seed, step, recipe.batch, recipe.size).to(device)
        latent = recipe.size // recipe.config.downscale
        noise = torch.randn((2, recipe.batch, recipe.config.latent_channels, latent, latent),
                            generator=step_generator(recipe.seed, step)).to(device)
        latent_noise = recipe.latent_noise if step >= recipe.latent_noise_from else 0.0
        colour_weight = recipe.colour_weight if step >= recipe.colour_from else 0.0
        with autocast(device, bf16):
            loss, l1 = vae_loss(vae, images, noise, recipe, latent_noise, colour_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if 0 <= recipe.decoder_only_from <= step:
            for p in encoder_parameters(vae):
                p.grad = None  # AdamW leaves parameters without a gradient exactly as they are
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        log.update(step, losses[-1], f"  l1 {l1.item():.4f}  threads {torch.get_num_threads()}")
        step += 1
        if tuner is not None:
            tuner.record(time.perf_counter() - started)
        if time.perf_counter() - saved_at > save_every:
            checkpoint()
            saved_at = time.perf_counter()
    state = checkpoint()
    if step < recipe.steps:
        return state
    write_vae_file(out / VAE_FILE, vae, recipe, init_recipe)
    return state


def write_vae_file(path: Path, vae: AutoencoderKL, recipe: VAERecipe, init_recipe: dict | None = None) -> None:
    """Bare LDM VAE keys (loadable as a model's separate VAE) with the config in our metadata; the
    recipe nests the recipe of the VAE it started from (`init`), so the file tells its whole history."""
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in vae.state_dict().items()}
    ours = {**dataclasses.asdict(recipe), **({"init_recipe": init_recipe} if init_recipe else {})}
    metadata = {"sd_desktop": json.dumps({"vae": dataclasses.asdict(vae.config)}),
                "sd_desktop_recipe": json.dumps({"vae": ours})}
    data = save(tensors, metadata=metadata)
    write_atomic(path, lambda f: f.write(data))


def load_vae(source: Path) -> tuple[AutoencoderKL, dict]:
    """A trained VAE from a stage-1 folder or a VAE .safetensors file -> (float32 module, its recipe)."""
    source = Path(source)
    path = source / VAE_FILE if source.is_dir() else source
    if not path.is_file():
        raise SystemExit(f"no trained VAE at {source}: expected {path} (run `sd-desktop train vae` first)")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        metadata = f.metadata() or {}
    ours = json.loads(metadata.get("sd_desktop", "{}")).get("vae")
    if ours:
        config = VAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in ours.items()})
        tensors = load_file(str(path))
        tensors = {k.removeprefix("first_stage_model."): v.float() for k, v in tensors.items()}
    else:  # someone else's VAE file: infer its sizes
        from sd_desktop.core.loading.model import read_vae_file

        config, tensors = read_vae_file(path, torch.float32)
    vae = AutoencoderKL(config)
    vae.load_state_dict(tensors)
    recipe = json.loads(metadata.get("sd_desktop_recipe", "{}")).get("vae", {"file": path.name})
    return vae.eval().requires_grad_(False), recipe
