"""Stable Diffusion 2.x: OpenCLIP-H's text tower (from the single file's OpenCLIP layout, and as a diffusers folder
holds it), 64-wide heads and linear projections in the U-Net, and v-prediction (768-v), equal to diffusers'
StableDiffusionPipeline on a tiny random model of SD 2.x's architecture (tests/tiny_models.py)."""

from __future__ import annotations

import pytest
import torch

import sd_desktop.core as core
from sd_desktop.core.loading import prediction as probe

from test_pipeline import NEGATIVE, PROMPT, SD15, reference_pipeline, reference_scheduler, rel_err
from tiny_models import save_sd2_folder, save_sd2_single_file, tiny_sd2_parts


@pytest.fixture(scope="module")
def parts():
    return tiny_sd2_parts(seed=50)


@pytest.fixture(scope="module")
def files(parts, tmp_path_factory):
    root = tmp_path_factory.mktemp("sd2")
    return {"folder": save_sd2_folder(parts, root / "folder"),
            "v-folder": save_sd2_folder(parts, root / "v-folder", prediction="v_prediction"),
            "single": save_sd2_single_file(parts, root / "v2-1_tiny.safetensors")}


def request(**kwargs):
    values = dict(prompt=PROMPT, negative_prompt=NEGATIVE, seed=7, steps=8, cfg_scale=5.0, width=64, height=48,
                  sampler="euler", schedule="normal")
    values.update(kwargs)
    return core.GenerationRequest(**values)


def reference(parts, folder, scheduler):
    from diffusers import StableDiffusionPipeline

    pipe = reference_pipeline(StableDiffusionPipeline, parts, folder, scheduler)
    pipe.tokenizer.pad_token = "!"  # SD 2.x's tokenizer pads with "!" (id 0), as OpenCLIP did
    with torch.no_grad():
        return pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=8, guidance_scale=5.0, width=64, height=48,
                    generator=torch.Generator("cpu").manual_seed(7), output_type="latent").images


def test_folder_equals_stable_diffusion_pipeline(parts, files):
    model = core.load_model(files["folder"], device="cpu", dtype="fp32")
    assert model.family.name == "sd2" and model.config.prediction == "eps"
    assert model.config.unet.num_head_channels == 64 and model.config.unet.linear_projection
    expected = reference(parts, files["folder"], reference_scheduler("euler", "normal"))
    assert rel_err(core.generate(model, request()).latents, expected) <= 1e-3


def test_v_prediction_equals_diffusers_v_prediction(parts, files):
    from diffusers import EulerDiscreteScheduler

    model = core.load_model(files["v-folder"], device="cpu", dtype="fp32")
    assert model.config.prediction == "v"
    expected = reference(parts, files["v-folder"], EulerDiscreteScheduler(**SD15, steps_offset=1,
                                                                          prediction_type="v_prediction"))
    assert rel_err(core.generate(model, request()).latents, expected) <= 1e-3


def test_single_file_reads_openclip_layout_and_its_penultimate_layer(parts, files, monkeypatch):
    folder = core.load_model(files["folder"], device="cpu", dtype="fp32")
    monkeypatch.setattr(probe, "probe_prediction", lambda model: "eps")
    single = core.load_model(files["single"], device="cpu", dtype="fp32")
    assert single.family.name == "sd2" and single.config.text.layers == 3 and single.config.text.pad_id == 0
    ids = single.tokenize([PROMPT])
    end = int((ids[0] == 49407).int().argmax())
    with torch.no_grad():
        expected = parts["text_encoder"](ids.masked_fill(torch.arange(77)[None] > end, 0)).last_hidden_state
        assert rel_err(single.encode_text(ids), expected) <= 1e-4
    assert rel_err(core.generate(single, request()).latents, core.generate(folder, request()).latents) <= 1e-5
    # Clip skip counts from the original tower's end in both: the folder's tower lacks its last layer
    for skip in (2, 3):
        assert rel_err(single.encode_text(ids, clip_skip=skip), folder.encode_text(ids, clip_skip=skip)) <= 1e-5


def test_a_file_that_does_not_say_is_probed_and_a_v_model_is_768(files, monkeypatch):
    monkeypatch.setattr(probe, "probe_prediction", lambda model: "v")
    model = core.load_model(files["single"], device="cpu", dtype="fp32")
    assert model.config.prediction == "v" and model.native_size == 768


class _FakeUNet:
    """At t = 999 an eps model returns about its input; a v model about minus the clean image."""

    def __init__(self, kind):
        self.kind = kind

    def __call__(self, x, t, context):
        assert int(t[0]) == 999 and context.shape[1:] == (2, 1024)
        return x.clone() if self.kind == "eps" else -2.0 * torch.ones_like(x)


@pytest.mark.parametrize("kind", ["eps", "v"])
def test_the_probe_tells_eps_from_v(kind):
    from types import SimpleNamespace

    from sd_desktop.core.families import SD2

    fake = SimpleNamespace(unet=_FakeUNet(kind), config=SD2.default_config(), device=torch.device("cpu"),
                           dtype=torch.float32)
    assert probe.probe_prediction(fake) == kind
