"""Stage 2: a CLIP-architecture text encoder and an SD-architecture U-Net, trained together from scratch.

The data is a pool of pre-rendered scenes whose VAE posteriors (mean, log-variance) are encoded once
(`pool/`, in chunks, so a killed run keeps what it encoded); each step samples latents from those
posteriors and draws a fresh caption for each scene (the data set drops words at random), and
replaces 10% of the captions with "" — the unconditional input the pipeline uses for guidance.

The loss is DDPM's epsilon prediction over SD 1.5's alphas_cumprod with t uniform in 0..999,
weighted per sample by Min-SNR-gamma (Hang et al. 2023; min(SNR, gamma) / SNR), which converges
several times faster than the plain mean. Gamma 0 gives the plain loss.

The noise gets "offset noise" (a per-image, per-channel constant of std `noise_offset`): SD's schedule
never reaches zero signal, and a 16x16 latent's mean is an average of 256 values, so at t=999 the
image's mean colour is still readable from the noisy latent (amplitude SNR about 1). Trained without
the offset, the model learns to read the background colour from x_t and, sampling from pure noise,
takes it from the seed instead of the prompt (seen: 7 of 8 prompts with one seed got the same
background). With 0.4 the mean is noise at t=999, and the colour has to come from the text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sd_desktop.core.io.files import write_atomic, write_text_atomic
from sd_desktop.core.io.outputs import save_image
from sd_desktop.core.nn.configs import TextEncoderConfig, UNetConfig
from sd_desktop.core.nn.clip_text import CLIPTextModel
from sd_desktop.core.nn.unet import UNetModel
from sd_desktop.core.io.images import to_pil
from sd_desktop.core.sampling.denoisers import GuidedDenoiser
from sd_desktop.core.sampling.noise import SeededNoise
from sd_desktop.core.sampling.registry import SAMPLERS, initial_x, sampler_sigmas, to_unet_latents
from sd_desktop.core.sampling.schedules import sd_alphas_cumprod
from sd_desktop.core.text.tokenizer import CLIPTokenizer

from . import shapes
from .common import (EMA, Progress, autocast, check_same_recipe, count_parameters, learning_rate, load_checkpoint,
                     save_checkpoint, setup_device, step_generator, step_rng)
from .judge import judge
from .vae_stage import load_vae

DEMO_TEXT = TextEncoderConfig(width=64, layers=2, heads=2, mlp_width=256)
DEMO_UNET = UNetConfig(model_channels=64, channel_mult=(1, 2, 2), num_res_blocks=1, attention_levels=(1, 2),
                       num_heads=4, context_dim=64)
TINY_TEXT = TextEncoderConfig(width=32, layers=1, heads=2, mlp_width=64)
TINY_UNET = UNetConfig(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
                       num_heads=2, context_dim=32, norm_groups=8)

POOL_CHUNK = 256


@dataclasses.dataclass(frozen=True)
class DiffusionRecipe:
    steps: int = 3200
    batch: int = 32
    size: int = 128  # image size; latents are size / 8
    pool: int = 6144  # pre-encoded scenes
    lr: float = 4e-4
    warmup: int = 200
    uncond_p: float = 0.1
    min_snr_gamma: float = 5.0
    noise_offset: float = 0.4  # std of a per-image, per-channel constant added to the noise (see step_batch)
    ema_decay: float = 0.999
    seed: int = 0
    tiny: bool = False

    @property
    def text_config(self) -> TextEncoderConfig:
        return TINY_TEXT if self.tiny else DEMO_TEXT

    @property
    def unet_config(self) -> UNetConfig:
        return TINY_UNET if self.tiny else DEMO_UNET


# -- the latent pool --------------------------------------------------------------------------


def scene_to_json(scene: shapes.Scene) -> list:
    return [scene.background, [[o.shape, o.colour, o.size, o.position] for o in scene.objects]]


def scene_from_json(value: list) -> shapes.Scene:
    return shapes.Scene(value[0], tuple(shapes.ShapeSpec(*o) for o in value[1]))


@torch.no_grad()
def encode_chunk(vae, seed: int, index: int, size: int, device: torch.device) -> dict:
    """POOL_CHUNK scenes of chunk `index`, rendered and encoded: the same for the same seed and VAE."""
    rng = step_rng(seed, index, stream=7)
    scenes = [shapes.random_scene(rng) for _ in range(POOL_CHUNK)]
    images = torch.stack([shapes.to_tensor(shapes.render(s, size, rng)) for s in scenes])
    means, logvars = [], []
    for part in images.split(64):
        mean, logvar = vae.encode_moments(part.to(device))
        means.append(mean.float().cpu())
        logvars.append(logvar.float().cpu())
    return {"mean": torch.cat(means).half(), "logvar": torch.cat(logvars).half(),
            "scenes": json.dumps([scene_to_json(s) for s in scenes])}


def encoder_fingerprint(vae) -> str:
    from .vae_stage import encoder_parameters

    digest = hashlib.sha256()
    for p in encoder_parameters(vae):
        digest.update(p.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def build_pool(folder: Path, vae, recipe: DiffusionRecipe, device: torch.device, stream=None) -> dict:
    """Encode the pool chunk by chunk into folder/pool/ (chunks already there are kept)."""
    pool_dir = folder / "pool"
    pool_dir.mkdir(parents=True, exist_ok=True)
    stamp, fingerprint = pool_dir / "encoder.sha256", encoder_fingerprint(vae)
    if stamp.is_file() and stamp.read_text().strip() != fingerprint:
        raise SystemExit(f"{folder}: its latent pool was encoded by another VAE encoder; use a new --out folder")
    write_text_atomic(stamp, fingerprint)
    chunks = -(-recipe.pool // POOL_CHUNK)
    parts = []
    started = time.perf_counter()
    for index in range(chunks):
        path = pool_dir / f"{index:04d}.pt"
        if path.is_file():
            part = torch.load(path, weights_only=True)
        else:
            part = encode_chunk(vae, recipe.seed, index, recipe.size, device)
            write_atomic(path, lambda f, part=part: torch.save(part, f))
            done = index + 1
            print(f"pool: encoded {done * POOL_CHUNK}/{chunks * POOL_CHUNK} scenes "
                  f"({(time.perf_counter() - started) / 60:.1f} min)", file=stream, flush=True)
        parts.append(part)
    return {
        "mean": torch.cat([p["mean"] for p in parts])[: recipe.pool].float(),
        "logvar": torch.cat([p["logvar"] for p in parts])[: recipe.pool].float(),
        "scenes": [scene_from_json(s) for p in parts for s in json.loads(p["scenes"])][: recipe.pool],
    }


def measure_scale_factor(pool: dict) -> float:
    """1 / std of posterior samples, as LDM measured 0.18215 for SD's VAE: scaled latents have unit variance."""
    mean, var = pool["mean"], pool["logvar"].exp()
    second_moment = (mean**2 + var).mean()
    return float(1.0 / (second_moment - mean.mean() ** 2).sqrt())


@torch.no_grad()
def measure_latent_rgb(vae, pool: dict, scale_factor: float, device: torch.device, count: int = 256) -> list[list[float]]:
    """Least squares from scaled latents (+1) to the decoded RGB averaged down to latent resolution:
    4 weight rows and a bias row, the preview projection of `core.latents`."""
    means = pool["mean"][:count]
    decoded = torch.cat([vae.decode(m.to(device)).float().cpu() for m in means.split(32)]).clamp(-1, 1)
    rgb = F.avg_pool2d(decoded, vae.config.downscale)  # [N, 3, h, w]
    features = (means * scale_factor).permute(0, 2, 3, 1).reshape(-1, means.shape[1])
    features = torch.cat([features, torch.ones(len(features), 1)], dim=1)
    target = rgb.permute(0, 2, 3, 1).reshape(-1, 3)
    solution = torch.linalg.lstsq(features.double(), target.double()).solution
    return [[round(float(v), 5) for v in row] for row in solution]


# -- training --------------------------------------------------------------------------------


class CaptionTokens:
    """Token ids of captions, remembered: the grammar makes a few thousand distinct captions."""

    def __init__(self):
        self.tokenizer = CLIPTokenizer.default()
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, captions: list[str]) -> torch.Tensor:
        for text in captions:
            if text not in self.cache:
                self.cache[text] = self.tokenizer([text])[0]
        return torch.stack([self.cache[text] for text in captions])


def step_batch(pool: dict, recipe: DiffusionRecipe, step: int) -> tuple[torch.Tensor, list[str], torch.Tensor, torch.Tensor]:
    """(unscaled latents sampled from their posteriors, captions, timesteps, noise) of one step."""
    rng = step_rng(recipe.seed, step)
    generator = step_generator(recipe.seed, step)
    index = rng.integers(len(pool["scenes"]), size=recipe.batch)
    captions = [shapes.caption(pool["scenes"][i], rng) for i in index]
    captions = ["" if rng.random() < recipe.uncond_p else text for text in captions]
    mean, logvar = pool["mean"][index], pool["logvar"][index]
    latents = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator)
    timesteps = torch.randint(0, 1000, (recipe.batch,), generator=generator)
    noise = torch.randn(mean.shape, generator=generator)
    if recipe.noise_offset:
        noise = noise + recipe.noise_offset * torch.randn((*mean.shape[:2], 1, 1), generator=generator)
    return latents, captions, timesteps, noise


def diffusion_loss(unet, text_encoder, x0: torch.Tensor, ids: torch.Tensor, timesteps: torch.Tensor,
                   noise: torch.Tensor, alphas_cumprod: torch.Tensor, gamma: float) -> torch.Tensor:
    a = alphas_cumprod[timesteps].to(x0.device)[:, None, None, None]
    noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
    eps = unet(noisy, timesteps.to(x0.device), text_encoder(ids.to(x0.device)))
    per_sample = (eps.float() - noise).pow(2).flatten(1).mean(1)
    if gamma > 0:
        snr = a.flatten() / (1 - a.flatten())
        per_sample = per_sample * snr.clamp(max=gamma) / snr
    return per_sample.mean()


def train_diffusion(out: Path, vae_source: Path, recipe: DiffusionRecipe, device: str | None = "auto",
                    threads: str | int | None = None, bf16: bool = False, save_every: float = 180.0,
                    eval_every: int = 1000, eval_prompts: int = 32, log_every: float = 10.0, stream=None,
                    stop_at: int | None = None) -> dict:
    """Train (or resume, or find finished) stage 2 in `out`. Returns the last checkpoint's state.
    `stop_at`: checkpoint and return after that step, as if the run were killed there."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device, tuner = setup_device(device, threads)
    vae, vae_recipe = load_vae(vae_source)
    vae.to(device)
    pool_started = time.perf_counter()
    pool = build_pool(out, vae, recipe, device, stream)
    scale_factor = measure_scale_factor(pool)
    latent_rgb = measure_latent_rgb(vae, pool, scale_factor, device)
    pool_seconds = time.perf_counter() - pool_started

    torch.manual_seed(recipe.seed)
    text_encoder = CLIPTextModel(recipe.text_config).to(device)
    unet = UNetModel(recipe.unet_config).to(device)
    params = list(text_encoder.parameters()) + list(unet.parameters())
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, betas=(0.9, 0.999), weight_decay=0.01)
    ema_unet, ema_text = EMA(unet, recipe.ema_decay), EMA(text_encoder, recipe.ema_decay)
    step, losses, evals = 0, [], []
    state = load_checkpoint(out)
    if state is not None:
        check_same_recipe(state["recipe"], dataclasses.asdict(recipe), ignore=("steps",))
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text"])
        optimizer.load_state_dict(state["optimizer"])
        ema_unet.load_state_dict(state["ema_unet"])
        ema_text.load_state_dict(state["ema_text"])
        step, losses, evals = state["step"], list(state["losses"]), list(state["evals"])

    log = Progress("diffusion", recipe.steps, step, log_every, stream)
    if step == 0:
        print(f"diffusion: U-Net {count_parameters(unet):,} parameters, text encoder "
              f"{count_parameters(text_encoder):,}; scale factor {scale_factor:.5f}; pool of {len(pool['scenes'])} "
              f"in {pool_seconds / 60:.1f} min; {recipe}", file=log.stream, flush=True)
    alphas_cumprod = sd_alphas_cumprod()
    tokens = CaptionTokens()

    def checkpoint() -> dict:
        state = {
            "recipe": dataclasses.asdict(recipe), "vae_recipe": vae_recipe, "step": step, "losses": losses,
            "evals": evals, "unet": unet.state_dict(), "text": text_encoder.state_dict(),
            "optimizer": optimizer.state_dict(), "ema_unet": ema_unet.state_dict(), "ema_text": ema_text.state_dict(),
            "vae": vae.state_dict(), "configs": {"unet": dataclasses.asdict(recipe.unet_config),
                                                 "text": dataclasses.asdict(recipe.text_config),
                                                 "vae": dataclasses.asdict(vae.config)},
            "scale_factor": scale_factor, "latent_rgb": latent_rgb, "native_size": recipe.size,
        }
        save_checkpoint(out, state)
        return state

    def evaluate(prompts: int) -> None:
        unet_ema, text_ema = ema_modules(recipe, ema_unet, ema_text, device)
        scores, grid = judge_scores(unet_ema, text_ema, vae, scale_factor, prompts, seed=1234, device=device,
                                    latent_size=recipe.size // vae.config.downscale)
        scores["step"] = step
        evals.append(scores)
        save_image(grid, out / f"samples-{step:06d}.png")
        print(f"diffusion eval at step {step}: {json.dumps(scores)}", file=log.stream, flush=True)

    saved_at = time.perf_counter()
    unet.train(), text_encoder.train()
    while step < min(recipe.steps, stop_at or recipe.steps):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, recipe.lr, min(recipe.warmup, recipe.steps // 5), recipe.steps)
        latents, captions, timesteps, noise = step_batch(pool, recipe, step)
        with autocast(device, bf16):
            loss = diffusion_loss(unet, text_encoder, (latents * scale_factor).to(device), tokens(captions),
                                  timesteps, noise.to(device), alphas_cumprod, recipe.min_snr_gamma)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema_unet.update(unet)
        ema_text.update(text_encoder)
        losses.append(loss.item())
        log.update(step, losses[-1], f"  threads {torch.get_num_threads()}")
        step += 1
        if tuner is not None:
            tuner.record(time.perf_counter() - started)
        if eval_every and step % eval_every == 0 and step < recipe.steps:
            evaluate(eval_prompts)
            checkpoint()
            saved_at = time.perf_counter()
        elif time.perf_counter() - saved_at > save_every:
            checkpoint()
            saved_at = time.perf_counter()
    if step == recipe.steps and eval_every and (not evals or evals[-1]["step"] != step):
        evaluate(max(eval_prompts, 96))
    return checkpoint()


def ema_modules(recipe: DiffusionRecipe, ema_unet: EMA, ema_text: EMA, device) -> tuple[UNetModel, CLIPTextModel]:
    unet, text = UNetModel(recipe.unet_config), CLIPTextModel(recipe.text_config)
    unet.load_state_dict(ema_unet.shadow)
    text.load_state_dict(ema_text.shadow)
    return unet.to(device).eval(), text.to(device).eval()


# -- sampling and judging, for progress during training ------------------------------------------------


@torch.no_grad()
def ddim_sample(unet, text_encoder, prompts: list[str], *, steps: int = 20, cfg: float = 7.0, seed: int = 0,
                latent_size: int = 16, device=None) -> torch.Tensor:
    """Scaled latents from the app's own DDIM (eta 0, diffusers' "leading" timesteps) with classifier-free
    guidance against the empty prompt; image i uses seed + i. The networks need not be a loaded model."""
    device = device or next(unet.parameters()).device
    context = text_encoder(CaptionTokens()(list(prompts) + [""] * len(prompts)).to(device))
    cond, uncond = context.chunk(2)
    sigmas = sampler_sigmas("ddim", steps)
    noise = SeededNoise([seed + i for i in range(len(prompts))]).draw(
        (unet.config.in_channels, latent_size, latent_size), device)
    denoiser = GuidedDenoiser(unet, quantize_timesteps=SAMPLERS["ddim"].quantize_timesteps)
    x = SAMPLERS["ddim"].run(denoiser, initial_x("ddim", noise, sigmas), sigmas,
                             extra_args=dict(cond=cond, uncond=uncond, cfg_scale=cfg))
    return to_unet_latents(x, sigmas[-1])


def judge_prompts(count: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(colour, shape, background) triples with colour != background, evenly over shapes."""
    rng = np.random.default_rng(seed)
    triples = []
    for i in range(count):
        background = shapes.COLOURS[int(rng.integers(len(shapes.COLOURS)))]
        colour = [c for c in shapes.COLOURS if c != background][int(rng.integers(len(shapes.COLOURS) - 1))]
        triples.append((colour, shapes.SHAPES[i % len(shapes.SHAPES)], background))
    return triples


@torch.no_grad()
def judge_scores(unet, text_encoder, vae, scale_factor: float, count: int, seed: int = 1234, device=None,
                 steps: int = 20, cfg: float = 7.0, latent_size: int = 16) -> tuple[dict, Image.Image]:
    """Sample "a {colour} {shape} on a {background} background" for `count` triples and judge them:
    (fractions right for background, object colour, shape and all three; a grid of the images)."""
    triples = judge_prompts(count)
    images = []
    for start in range(0, count, 32):
        part = triples[start:start + 32]
        prompts = [f"a {c} {s} on a {b} background" for c, s, b in part]
        latents = ddim_sample(unet, text_encoder, prompts, steps=steps, cfg=cfg, seed=seed + start,
                              latent_size=latent_size, device=device)
        images += to_pil(vae.decode(latents / scale_factor))
    return tally(triples, images), grid(images)


def tally(triples: list[tuple[str, str, str]], images: list[Image.Image]) -> dict[str, float]:
    """Fractions of images judged right for background, object colour, shape, and all three."""
    right = {"background": 0, "colour": 0, "shape": 0, "all": 0}
    for (colour, shape, background), image in zip(triples, images):
        verdict = judge(image)
        right["background"] += verdict.background == background
        right["colour"] += verdict.object_colour == colour
        right["shape"] += verdict.shape == shape
        right["all"] += verdict.matches(colour, shape, background)
    return {k: round(v / len(triples), 4) for k, v in right.items()}


def judge_model(model, count: int, prompt_seed: int, first_seed: int, **request) -> tuple[dict, list[Image.Image]]:
    """A loaded model through the app's own pipeline (core.generate; `request` overrides its defaults) on
    "a {colour} {shape} on a {background} background": (tally's scores, the images)."""
    from sd_desktop.core import GenerationRequest, generate

    triples = judge_prompts(count, seed=prompt_seed)
    images = [generate(model, GenerationRequest(prompt=f"a {c} {s} on a {b} background", seed=first_seed + i,
                                                **request)).images[0]
              for i, (c, s, b) in enumerate(triples)]
    return tally(triples, images), images


def grid(images: list[Image.Image], columns: int = 8) -> Image.Image:
    w, h = images[0].size
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * w, rows * h))
    for i, image in enumerate(images):
        sheet.paste(image, ((i % columns) * w, (i // columns) * h))
    return sheet
