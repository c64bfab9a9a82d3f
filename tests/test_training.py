"""The trainer, at tiny sizes: losses fall, a resumed run equals an uninterrupted one, and the export
loads through `core.load_model` with networks equal to the trained (EMA) ones."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from safetensors import safe_open

from sd_desktop.core import load_model
from sd_desktop.training import cli
from sd_desktop.training.common import load_checkpoint
from sd_desktop.training.diffusion_stage import DiffusionRecipe, ema_modules, judge_scores, train_diffusion
from sd_desktop.training.export import export_model
from sd_desktop.training.vae_stage import VAERecipe, load_vae, train_vae

VAE = VAERecipe(steps=60, batch=4, size=32, latent_noise_from=0, colour_from=0, decoder_only_from=-1, tiny=True)
DIFFUSION = DiffusionRecipe(steps=40, batch=8, size=32, pool=256, lr=1e-3, tiny=True)
pytestmark = pytest.mark.slow  # trains for real

QUIET = dict(device="cpu", threads=1, log_every=1e9)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One uninterrupted run through the CLI: both stages and the export."""
    out = tmp_path_factory.mktemp("run")
    argv = ["all", "--out", str(out), "--output", str(out / "model.safetensors"), "--tiny", "--device", "cpu",
            "--threads", "1", "--vae-steps", str(VAE.steps), "--vae-batch", str(VAE.batch), "--vae-size", str(VAE.size),
            "--vae-latent-noise-from", "0", "--vae-colour-from", "0", "--vae-decoder-only-from", "-1",
            "--steps", str(DIFFUSION.steps), "--batch", str(DIFFUSION.batch), "--size", str(DIFFUSION.size),
            "--pool", str(DIFFUSION.pool), "--lr", str(DIFFUSION.lr), "--eval-every", "0"]
    assert cli.main(argv) == 0
    return out


def _mean(values):
    return sum(values) / len(values)


def test_losses_fall(run):
    vae_losses = load_checkpoint(run / "vae")["losses"]
    diffusion_losses = load_checkpoint(run / "diffusion")["losses"]
    assert len(vae_losses) == VAE.steps and len(diffusion_losses) == DIFFUSION.steps
    # Fixed seed, so these are the same numbers every run; each drop is far beyond step-to-step noise.
    assert _mean(vae_losses[-4:]) < 0.8 * _mean(vae_losses[:4])
    assert _mean(diffusion_losses[-8:]) < 0.8 * _mean(diffusion_losses[:8])


def test_resume_equals_uninterrupted(run, tmp_path):
    train_vae(tmp_path / "vae", VAE, stop_at=25, **QUIET)
    assert load_checkpoint(tmp_path / "vae")["step"] == 25
    train_vae(tmp_path / "vae", VAE, **QUIET)
    train_diffusion(tmp_path / "diffusion", tmp_path / "vae", DIFFUSION, eval_every=0, stop_at=17, **QUIET)
    assert load_checkpoint(tmp_path / "diffusion")["step"] == 17
    train_diffusion(tmp_path / "diffusion", tmp_path / "vae", DIFFUSION, eval_every=0, **QUIET)

    for stage, keys in (("vae", ("vae",)), ("diffusion", ("unet", "text", "vae"))):
        resumed, straight = load_checkpoint(tmp_path / stage), load_checkpoint(run / stage)
        assert resumed["losses"] == straight["losses"]
        for key in keys:
            for name, tensor in straight[key].items():
                assert torch.equal(resumed[key][name], tensor), f"{stage} {key} {name}"
    resumed, straight = load_checkpoint(tmp_path / "diffusion"), load_checkpoint(run / "diffusion")
    for name, tensor in straight["ema_unet"]["shadow"].items():
        assert torch.equal(resumed["ema_unet"]["shadow"][name], tensor), name
    # A finished folder is left as it is: rerunning does no steps.
    again = train_vae(tmp_path / "vae", VAE, **QUIET)
    assert again["step"] == VAE.steps and len(again["losses"]) == VAE.steps


def test_resume_refuses_other_settings(run):
    with pytest.raises(SystemExit, match="batch"):
        train_vae(run / "vae", dataclasses.replace(VAE, batch=2), **QUIET)


def test_export_loads_with_core_and_matches_trained_networks(run):
    path = run / "model.safetensors"
    state = load_checkpoint(run / "diffusion")
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
        keys = list(f.keys())
    assert dtypes == {"F16"}
    assert any(k.startswith("model.diffusion_model.input_blocks.") for k in keys)
    assert any(k.startswith("first_stage_model.decoder.") for k in keys)
    assert any(k.startswith("cond_stage_model.transformer.text_model.encoder.layers.") for k in keys)
    ours = json.loads(metadata["sd_desktop"])
    assert ours["native_size"] == DIFFUSION.size and len(ours["latent_rgb"]) == 5
    recipe = json.loads(metadata["sd_desktop_recipe"])
    assert recipe["diffusion"]["steps"] == DIFFUSION.steps and recipe["diffusion"]["lr"] == DIFFUSION.lr
    # The recorded command, run through the CLI's parser, asks for exactly these recipes.
    command = recipe["training_command"].split()
    assert command[:3] == ["sd-desktop", "train", "all"]
    args = cli.build_parser().parse_args(command[2:])
    assert cli.vae_recipe(args, "vae_") == VAE and cli.diffusion_recipe(args) == DIFFUSION
    assert len(metadata["sd_desktop_commit"]) in (40, len("unknown"))

    model = load_model(path, device="cpu", dtype="fp32")
    assert model.scale_factor == pytest.approx(state["scale_factor"])
    assert model.native_size == DIFFUSION.size
    assert model.config.text == DIFFUSION.text_config  # heads come from the metadata
    assert model.config.unet == DIFFUSION.unet_config
    assert model.config.vae == VAE.config

    unet, text = ema_modules(DIFFUSION, _ema(state["ema_unet"]), _ema(state["ema_text"]), "cpu")
    vae, _ = load_vae(run / "vae")
    torch.manual_seed(0)
    ids = model.tokenize(["a red circle on a blue background", ""])
    latents = torch.randn(2, 4, 4, 4)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        context = text(ids)
        pairs = [
            (model.encode_text(ids), context),
            (model.unet(latents, torch.tensor([500, 20]), context), unet(latents, torch.tensor([500, 20]), context)),
            (model.vae.decode(latents), vae.decode(latents)),
            (model.vae.encode(image), vae.encode(image)),
        ]
    for loaded, trained in pairs:
        # Only fp16 rounding of the weights separates them.
        assert (loaded - trained).abs().max() <= 2e-2 * trained.abs().max() + 1e-3


def test_export_generates_and_judges(run):
    from sd_desktop.core import GenerationRequest, generate

    model = load_model(run / "model.safetensors", device="cpu")
    result = generate(model, GenerationRequest(prompt="a red circle on a blue background", seed=1, steps=3,
                                               sampler="ddim", cfg_scale=7.0))
    assert result.images[0].size == (DIFFUSION.size, DIFFUSION.size)
    scores, sheet = judge_scores(model.unet, model.text_encoder, model.vae, model.scale_factor, 3, latent_size=4, steps=3)
    assert set(scores) == {"background", "colour", "shape", "all"} and sheet.size == (8 * 32, 32)


def test_decoder_finetune_keeps_the_latents_and_exports(run, tmp_path):
    shutil.copytree(run / "vae", tmp_path / "vae")
    finetune = dataclasses.replace(VAE, steps=VAE.steps + 6, decoder_only_from=VAE.steps)
    train_vae(tmp_path / "vae", finetune, **QUIET)
    before, after = load_checkpoint(run / "vae")["vae"], load_checkpoint(tmp_path / "vae")["vae"]
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("decoder.", "post_quant_conv.")) for k in changed)

    path = export_model(run, tmp_path / "model.safetensors", vae=tmp_path / "vae")
    key = "decoder.conv_out.weight"
    assert torch.equal(safe_open(str(path), "pt").get_tensor("first_stage_model." + key), after[key].half())
    assert json.loads(safe_open(str(path), "pt").metadata()["sd_desktop_recipe"])["vae"]["decoder_only_from"] == VAE.steps

    train_vae(tmp_path / "other", dataclasses.replace(VAE, steps=2, seed=1), **QUIET)
    with pytest.raises(SystemExit, match="encoder differs"):
        export_model(run, tmp_path / "refused.safetensors", vae=tmp_path / "other")


def test_a_latent_pool_is_not_reused_with_another_encoder(run, tmp_path):
    shutil.copytree(run / "diffusion" / "pool", tmp_path / "diffusion" / "pool")
    train_vae(tmp_path / "vae", dataclasses.replace(VAE, steps=2, seed=1), **QUIET)
    with pytest.raises(SystemExit, match="another VAE encoder"):
        train_diffusion(tmp_path / "diffusion", tmp_path / "vae", DIFFUSION, eval_every=0, **QUIET)


def test_export_refuses_a_folder_without_training(tmp_path):
    with pytest.raises(SystemExit, match="no diffusion checkpoint"):
        export_model(tmp_path, tmp_path / "model.safetensors")


class _ema:
    """Just enough of an EMA for ema_modules(): the saved shadow weights."""

    def __init__(self, state):
        self.shadow = state["shadow"]


def test_offset_noise_adds_one_constant_per_image_and_channel():
    """The diffusion stage's noise = the plain noise + noise_offset x a constant per (image, channel)."""
    import numpy as np

    from sd_desktop.training import shapes
    from sd_desktop.training.diffusion_stage import step_batch

    rng = np.random.default_rng(0)
    pool = {"scenes": [shapes.random_scene(rng) for _ in range(16)],
            "mean": torch.zeros(16, 4, 8, 8), "logvar": torch.full((16, 4, 8, 8), -10.0)}
    plain = step_batch(pool, dataclasses.replace(DIFFUSION, noise_offset=0.0), step=3)[3]
    offset = step_batch(pool, dataclasses.replace(DIFFUSION, noise_offset=0.4), step=3)[3]
    shift = offset - plain
    assert torch.allclose(shift, shift[..., :1, :1].expand_as(shift), atol=1e-6)  # constant over the image
    assert 0.2 < shift[..., 0, 0].std().item() < 0.6
