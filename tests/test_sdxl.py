"""SDXL (and its v-prediction fine-tunes) from single files and diffusers folders: every network equal to
diffusers/transformers, and generate() equal to StableDiffusionXLPipeline, on tiny random models of SDXL's
architecture (tests/tiny_models.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import sd_desktop.core as core
from sd_desktop.core.errors import InvalidRequestError

from test_pipeline import NEGATIVE, PROMPT, SD15, as_k_diffusion_runs_it, rel_err, reference_scheduler
from tiny_models import XL_G_WIDTH, save_sdxl_folder, save_sdxl_single_file, tiny_sdxl_parts


@pytest.fixture(scope="module")
def parts():
    return tiny_sdxl_parts(seed=40)


@pytest.fixture(scope="module")
def files(parts, tmp_path_factory):
    root = tmp_path_factory.mktemp("sdxl")
    return {"folder": save_sdxl_folder(parts, root / "folder"),
            "single": save_sdxl_single_file(parts, root / "sd_xl_tiny.safetensors"),
            "single-fp16": save_sdxl_single_file(parts, root / "sd_xl_tiny_fp16.safetensors", torch.float16)}


@pytest.fixture(scope="module")
def model(files):
    return core.load_model(files["single"], device="cpu", dtype="fp32")


def xl_pipeline(parts, files, scheduler):
    """StableDiffusionXLPipeline over the tiny networks (the folder's tokenizers, as SDXL's pad them)."""
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    folder = files["folder"]
    pipe = StableDiffusionXLPipeline(
        vae=parts["vae"], text_encoder=parts["text_encoder"], text_encoder_2=parts["text_encoder_2"],
        tokenizer=CLIPTokenizer.from_pretrained(str(folder / "tokenizer"), pad_token="<|endoftext|>",
                                                model_max_length=77),
        tokenizer_2=CLIPTokenizer.from_pretrained(str(folder / "tokenizer_2"), pad_token="!", model_max_length=77),
        unet=parts["unet"], scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_latents(pipe, **kwargs):
    args = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=8, guidance_scale=5.0, width=64,
                height=48, generator=torch.Generator("cpu").manual_seed(7), output_type="latent")
    args.update(kwargs)
    with torch.no_grad():
        return pipe(**args).images


def reference(parts, files, scheduler, **kwargs):
    return pipeline_latents(xl_pipeline(parts, files, scheduler), **kwargs)


def request(**kwargs):
    values = dict(prompt=PROMPT, negative_prompt=NEGATIVE, seed=7, steps=8, cfg_scale=5.0, width=64, height=48)
    values.update(kwargs)
    return core.GenerationRequest(**values)


def test_single_file_and_folder_are_sdxl_with_its_defaults(files):
    for key in ("single", "folder", "single-fp16"):
        model = core.load_model(files[key], device="cpu", dtype="fp32")
        assert model.family.name == "sdxl" and model.config.prediction == "eps"
        assert model.scale_factor == 0.13025 and model.config.unet.adm_in_channels == 176
        assert model.config.unet.transformer_depth == (0, 1, 2) and model.config.unet.attention_levels == (1, 2)
        assert [name for name, _ in model.text_towers()] == ["clip_l", "clip_g"]
    assert model.family.sizes[0] == (1024, 1024) and len(model.family.sizes) == 7


def test_unet_equals_diffusers_with_its_added_conditioning(model, parts):
    gen = torch.Generator().manual_seed(0)
    x, t = torch.randn(2, 4, 6, 8, generator=gen), torch.tensor([10.0, 700.0])
    context, y = torch.randn(2, 77, 192, generator=gen), torch.randn(2, 176, generator=gen)
    with torch.no_grad():
        expected = parts["unet"](x, t, context, added_cond_kwargs={"text_embeds": y[:, :XL_G_WIDTH],
                                                                   "time_ids": torch.zeros(2, 6)}).sample
        # diffusers embeds the six numbers itself: give ours the same vector
        from sd_desktop.core.pipelines.conditioning import size_vector
        y = torch.cat([y[:, :XL_G_WIDTH], size_vector((0, 0), (0, 0), (0, 0), 8).expand(2, -1)], dim=1)
        ours = model.unet(x, t, context, y)
    assert rel_err(ours, expected) <= 1e-4


def test_text_encoders_equal_transformers_penultimate_layers_and_pooled(model, parts):
    ids = model.tokenize(["a red circle, on a blue background", "x"])
    padded = ids.clone()
    first_end = (ids == 49407).int().argmax(-1)
    for row, end in enumerate(first_end.tolist()):
        padded[row, end + 1:] = 0  # OpenCLIP's padding, as diffusers' tokenizer_2 pads
    with torch.no_grad():
        out_l = parts["text_encoder"](ids, output_hidden_states=True)
        out_g = parts["text_encoder_2"](padded, output_hidden_states=True)
        (hidden_l, hidden_g), pooled = model.encode_towers(ids, pooled=True)
    assert rel_err(hidden_l, out_l.hidden_states[-2]) <= 1e-4  # no final LayerNorm
    assert rel_err(hidden_g, out_g.hidden_states[-2]) <= 1e-4
    assert rel_err(pooled, out_g.text_embeds) <= 1e-4


@pytest.mark.parametrize("sampler, schedule, steps", [("ddim", "normal", 8), ("euler", "normal", 8),
                                                      ("dpmpp_2m", "karras", 16)])
def test_latents_equal_stable_diffusion_xl_pipeline(model, parts, files, sampler, schedule, steps):
    expected = reference(parts, files, reference_scheduler(sampler, schedule), num_inference_steps=steps)
    ours = core.generate(model, request(sampler=sampler, schedule=schedule, steps=steps))
    assert ours.latents.shape == expected.shape == (1, 4, 6, 8)
    assert rel_err(ours.latents, expected) <= 1e-3


def test_folder_and_fp16_file_give_the_same_picture(model, files):
    ours = core.generate(model, request(sampler="euler", schedule="normal", steps=4)).latents
    folder = core.load_model(files["folder"], device="cpu", dtype="fp32")
    assert rel_err(core.generate(folder, request(sampler="euler", schedule="normal", steps=4)).latents, ours) <= 1e-5
    half = core.load_model(files["single-fp16"], device="cpu", dtype="fp32")
    assert rel_err(core.generate(half, request(sampler="euler", schedule="normal", steps=4)).latents, ours) <= 2e-2


def test_an_empty_negative_prompt_is_zeros_as_diffusers_and_a1111_make_it(model, parts, files):
    expected = reference(parts, files, reference_scheduler("euler", "normal"), negative_prompt=None)
    ours = core.generate(model, request(sampler="euler", schedule="normal", negative_prompt=""))
    assert rel_err(ours.latents, expected) <= 1e-3
    encoded = reference(parts, files, reference_scheduler("euler", "normal"), negative_prompt=" ")
    assert rel_err(ours.latents, encoded) > 1e-3  # a space is encoded, not zeroed: the zeros matter


def test_size_conditioning_follows_the_request(model, parts, files):
    expected = reference(parts, files, reference_scheduler("euler", "normal"), original_size=(96, 128),
                         crops_coords_top_left=(8, 16))
    ours = core.generate(model, request(sampler="euler", schedule="normal", original_size=(128, 96), crop=(16, 8)))
    assert rel_err(ours.latents, expected) <= 1e-3
    plain = core.generate(model, request(sampler="euler", schedule="normal"))
    assert rel_err(ours.latents, plain.latents) > 1e-3
    with pytest.raises(InvalidRequestError, match="original_size"):
        core.generate(model, request(original_size=(0, 5)))


def test_v_prediction_file_is_recognised_and_equals_diffusers(parts, files, tmp_path):
    from diffusers import EulerDiscreteScheduler

    path = save_sdxl_single_file(parts, tmp_path / "noobai_vpred_tiny.safetensors", v_pred=True)
    model = core.load_model(path, device="cpu", dtype="fp32")
    assert model.config.prediction == "v"
    scheduler = EulerDiscreteScheduler(**SD15, steps_offset=1, prediction_type="v_prediction")
    expected = reference(parts, files, scheduler)
    ours = core.generate(model, request(sampler="euler", schedule="normal"))
    assert rel_err(ours.latents, expected) <= 1e-3
    # the request can say otherwise (a file that says the wrong thing), and the eps model then matches it
    eps = core.load_model(files["single"], device="cpu", dtype="fp32")
    assert rel_err(core.generate(eps, request(sampler="euler", schedule="normal", prediction="v")).latents, ours.latents) <= 1e-5
    # CFG rescale (diffusers' guidance_rescale), for v-prediction models
    scheduler = EulerDiscreteScheduler(**SD15, steps_offset=1, prediction_type="v_prediction")
    expected = reference(parts, files, scheduler, guidance_rescale=0.7)
    assert rel_err(core.generate(model, request(sampler="euler", schedule="normal", rescale_cfg=0.7)).latents, expected) <= 1e-3


def test_a_zero_terminal_snr_file_samples_over_that_schedule_as_diffusers_does(parts, files, tmp_path, monkeypatch):
    """NoobAI-XL V-Pred's file carries empty `v_pred` and `ztsnr` tensors (ComfyUI and Forge read both): its noise
    schedule is rescaled to zero terminal SNR. Against diffusers' Euler with rescale_betas_zero_snr, whose last
    alphas_cumprod is 2**-24 where A1111 and ComfyUI (and we) put 4.8973e-08, so that one value is set alike here."""
    from diffusers import EulerDiscreteScheduler

    from sd_desktop.core.sampling import schedules as S

    path = save_sdxl_single_file(parts, tmp_path / "noobai_vpred_zsnr_tiny.safetensors", v_pred=True, ztsnr=True)
    model = core.load_model(path, device="cpu", dtype="fp32")
    assert (model.config.prediction, model.config.zero_snr) == ("v", True)
    ours = core.generate(model, request(sampler="euler", schedule="normal"))
    assert "Noise Schedule: Zero Terminal SNR" in ours.images[0].info["parameters"]
    plain = core.generate(model, request(sampler="euler", schedule="normal", noise_schedule="default"))
    assert "Noise Schedule: Default" in plain.images[0].info["parameters"]
    assert rel_err(plain.latents, ours.latents) > 1e-2  # the schedule is used, not only read
    # a file without the key, told so by the request, is the same run
    vpred = core.load_model(save_sdxl_single_file(parts, tmp_path / "v.safetensors", v_pred=True), device="cpu", dtype="fp32")
    assert not vpred.config.zero_snr
    told = core.generate(vpred, request(sampler="euler", schedule="normal", noise_schedule="zsnr")).latents
    assert torch.equal(told, ours.latents)

    monkeypatch.setattr(S, "ZERO_SNR_LAST_ALPHA_CUMPROD", 2.0**-24)
    S._zero_snr_sigmas.cache_clear()
    try:
        scheduler = EulerDiscreteScheduler(**SD15, steps_offset=1, prediction_type="v_prediction",
                                           rescale_betas_zero_snr=True)
        expected = reference(parts, files, scheduler)
        assert scheduler.sigmas[0].item() == pytest.approx(4096.0, rel=1e-4)  # (diffusers' sigma_max)
        ours = core.generate(model, request(sampler="euler", schedule="normal")).latents
        assert rel_err(ours, expected) <= 1e-4  # (1.3e-5; over SD's schedule it is 3.9e-2)
    finally:
        S._zero_snr_sigmas.cache_clear()


def test_a_folder_says_zero_terminal_snr_in_its_scheduler_config(parts, tmp_path):
    import json

    folder = save_sdxl_folder(parts, tmp_path / "zsnr", prediction="v_prediction")
    config = folder / "scheduler" / "scheduler_config.json"
    assert not core.load_model(folder, device="cpu", dtype="fp32").config.zero_snr
    config.write_text(json.dumps({**json.loads(config.read_text()), "rescale_betas_zero_snr": True}))
    assert core.load_model(folder, device="cpu", dtype="fp32").config.zero_snr


def test_a_folder_says_v_prediction_in_its_scheduler_config(parts, tmp_path):
    folder = save_sdxl_folder(parts, tmp_path / "vpred", prediction="v_prediction")
    assert core.load_model(folder, device="cpu", dtype="fp32").config.prediction == "v"


def test_weights_apply_to_each_encoder_on_its_own_and_long_prompts_pool_their_first_chunk(model):
    from sd_desktop.core.text.prompts import apply_weights, encode_prompts, prompt_chunks

    plain, weighted = encode_prompts(model, ["a red circle", "a (red:1.5) circle"])
    assert plain.context.shape == (1, 77, 192) and plain.pooled.shape == (1, XL_G_WIDTH)
    chunk = prompt_chunks(model.tokenizer, "a (red:1.5) circle")[0][0]
    weights = torch.tensor([chunk.weights])
    parts, _ = model.encode_towers(torch.tensor([chunk.tokens]))
    expected = torch.cat([apply_weights(part, weights, "Original") for part in parts], dim=-1)
    torch.testing.assert_close(weighted.context, expected)
    for part in (slice(0, 64), slice(64, 192)):  # A1111 keeps each encoder's own mean, not the pair's
        torch.testing.assert_close(weighted.context[..., part].mean(), plain.context[..., part].mean(), rtol=1e-4, atol=1e-7)
    assert not torch.allclose(weighted.context, plain.context)
    long = encode_prompts(model, [" ".join(["circle"] * 100)])[0]
    first = encode_prompts(model, [" ".join(["circle"] * 75)])[0]
    assert long.context.shape == (1, 154, 192)
    torch.testing.assert_close(long.pooled, first.pooled)


def test_every_mode_runs_on_sdxl(model):
    init = Image.fromarray(np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (32, 0, 64, 48))
    img2img = core.generate(model, request(init_image=init, strength=0.5, sampler="dpmpp_2m", steps=4))
    assert img2img.images[0].size == (64, 48)
    inpaint = core.generate(model, request(init_image=init, mask=mask, steps=4, mask_blur=2))
    assert np.array_equal(np.asarray(inpaint.images[0])[:, :26], np.asarray(init)[:, :26])
    hires = core.generate(model, request(steps=2, hires_fix=True, hires_scale=1.5))
    assert hires.images[0].size == (96, 72)
    from sd_desktop.core.pipelines.interpolation import prepare_interpolation

    prepared = prepare_interpolation(model, core.InterpolationRequest(image_a=init, image_b=init.transpose(0),
                                                                      prompt_a="a", prompt_b="b", steps=3))
    assert prepared.frame(0.5).size == (64, 48)
    assert "Model: sd_xl_tiny" in img2img.images[0].info["parameters"]


def sdxl_kohya_lora(parts, rank=4, alpha=2.0, seed=3):
    """An SDXL LoRA as kohya's sd-scripts saves it: lora_unet_<diffusers path>, lora_te1_ (CLIP-L) and lora_te2_
    (OpenCLIP bigG) text_model_<path>."""
    from test_lora import attention_layers, factors, text_layers

    generator = torch.Generator().manual_seed(seed)
    state = {}
    groups = [("lora_unet", attention_layers(parts["unet"])), ("lora_te1", text_layers(parts["text_encoder"])),
              ("lora_te2", text_layers(parts["text_encoder_2"]))]
    for prefix, layers in groups:
        for name, module in layers:
            down, up = factors(module, rank, generator, scale=0.2)
            key = f"{prefix}_{name.replace('.', '_')}"
            state[f"{key}.lora_down.weight"], state[f"{key}.lora_up.weight"] = down, up
            state[f"{key}.alpha"] = torch.tensor(float(alpha))
    return state


def test_sdxl_lora_with_both_text_encoders_equals_diffusers_fuse_lora(parts, files, tmp_path):
    import copy

    from safetensors.torch import save_file

    from sd_desktop.core.request import LoraRef

    state = sdxl_kohya_lora(parts)
    assert any(k.startswith("lora_te2_") for k in state)
    path = tmp_path / "xl_style.safetensors"
    save_file(state, str(path))
    pipe = xl_pipeline({name: copy.deepcopy(part) for name, part in parts.items()}, files,
                       reference_scheduler("ddim", "normal"))
    pipe.load_lora_weights(dict(state))
    pipe.fuse_lora(lora_scale=0.8)
    expected = pipeline_latents(pipe)
    model = core.load_model(files["single"], device="cpu", dtype="fp32")
    bare = core.generate(model, request(sampler="ddim")).latents
    ours = core.generate(model, request(sampler="ddim", loras=(LoraRef(str(path), 0.8),)))
    assert rel_err(ours.latents, expected) <= 1e-3 and rel_err(bare, expected) > 1e-2
    assert rel_err(core.generate(model, request(sampler="ddim")).latents, bare) == 0  # taken off again


def test_sdxl_embedding_equals_diffusers_textual_inversion_in_both_encoders(model, parts, files, tmp_path):
    import copy

    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(5)
    vectors = {"clip_l": torch.randn(2, 64, generator=gen) * 0.3, "clip_g": torch.randn(2, 128, generator=gen) * 0.3}
    path = tmp_path / "glowxl.safetensors"
    save_file(vectors, str(path))
    pipe = xl_pipeline({name: copy.deepcopy(part) for name, part in parts.items()}, files,
                       reference_scheduler("ddim", "normal"))
    pipe.load_textual_inversion(vectors["clip_l"], token="glowxl", text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(vectors["clip_g"], token="glowxl", text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    prompt = "a glowxl circle"
    expected = pipeline_latents(pipe, prompt=prompt)
    ours = core.generate(model, request(prompt=prompt, sampler="ddim", embeddings=(("glowxl", str(path)),)))
    assert rel_err(ours.latents, expected) <= 1e-3
    one_encoder = tmp_path / "glow15.safetensors"
    save_file({"emb_params": torch.randn(1, 64)}, str(one_encoder))
    with pytest.raises(core.errors.ModelLoadError, match="embedding for one text encoder"):
        core.generate(model, request(prompt="a glow15 circle", embeddings=(("glow15", str(one_encoder)),)))


def test_prediction_rescale_and_size_conditioning_are_written_and_restored(model):
    from sd_desktop.core.io.infotext import a1111_parameters
    from sd_desktop.core.io.metadata import parse_parameters, read_parameters, restore_request

    asked = request(sampler="euler", steps=2, prediction="v", rescale_cfg=0.7, original_size=(128, 96), crop=(16, 8),
                    noise_schedule="zsnr")
    image = core.generate(model, asked).images[0]
    text = image.info["parameters"]
    assert "Noise Schedule: Zero Terminal SNR, Prediction: v-prediction, CFG Rescale: 0.7, Original size: 128x96, " \
           "Crop position: 16x8" in text
    plain = core.generate(model, request(steps=1)).images[0].info["parameters"]
    assert all(key not in plain for key in ("Prediction", "CFG Rescale", "Crop", "Noise Schedule"))
    for params in (parse_parameters(text), read_parameters(image)):  # A1111's text, and our JSON
        restored, notes = restore_request(params)
        assert (restored.prediction, restored.rescale_cfg, restored.original_size, restored.crop,
                restored.noise_schedule) == ("v", 0.7, (128, 96), (16, 8), "zsnr") and not notes
    # an A1111 text without the key means A1111's default setting: a restore goes back to following the model
    a1111 = a1111_parameters(plain.replace("Steps: 1", "Steps: 1, Noise Schedule: Default"))
    assert restore_request(a1111, asked)[0].noise_schedule == "default"
    assert restore_request(a1111_parameters(plain), asked)[0].noise_schedule == "auto"


def test_previews_use_sdxls_latent_factors_with_their_bias(model):
    from sd_desktop.core.families import SDXL

    seen = []
    core.generate(model, request(steps=2), on_step=seen.append)
    assert model.latent_rgb == [list(row) for row in SDXL.latent.rgb_factors] and len(model.latent_rgb) == 5
    assert seen[-1].preview.shape == (6, 8, 3)
    zeros = torch.zeros(4, 1, 1)
    from sd_desktop.core.runtime.preview import latent_preview, latent_rgb_projection

    grey = latent_preview(zeros, latent_rgb_projection(model.latent_rgb, 4))[0, 0]
    assert list(grey) == [int((b + 1) * 127.5) for b in (0.1084, -0.0175, -0.0011)]  # the bias row, not zeros


def test_clip_skip_counts_from_the_penultimate_layer_sdxl_reads(model, parts):
    """Clip skip 1 and 2 both mean SDXL's own layer (the penultimate; Pony's "clip skip 2" is its default);
    3 reads one layer earlier, in both encoders."""
    from sd_desktop.core.text.prompts import encode_prompts

    one, two, three = (encode_prompts(model, ["a red circle"], clip_skip=n)[0].context for n in (1, 2, 3))
    torch.testing.assert_close(one, two)
    ids = model.tokenize(["a red circle"])
    with torch.no_grad():
        expected_l = parts["text_encoder"](ids, output_hidden_states=True).hidden_states[-3]
    assert rel_err(three[..., :64], expected_l) <= 1e-4


def test_a_nine_channel_sdxl_inpainting_file_loads_and_inpaints(tmp_path):
    path = save_sdxl_single_file(tiny_sdxl_parts(in_channels=9, seed=44), tmp_path / "xl_inpainting.safetensors")
    model = core.load_model(path, device="cpu", dtype="fp32")
    assert model.family.name == "sdxl-inpaint" and model.is_inpainting
    init = Image.fromarray(np.random.default_rng(5).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (32, 0, 64, 48))
    out = core.generate(model, request(init_image=init, mask=mask, steps=3, mask_blur=2)).images[0]
    assert np.array_equal(np.asarray(out)[:, :26], np.asarray(init)[:, :26])


def test_an_sdxl_model_looks_for_its_own_taesd(model, tmp_path):
    from sd_desktop.core.loading.taesd import find_taesd

    folder = tmp_path / "models" / "vae_approx"
    folder.mkdir(parents=True)
    for name in ("taesd_decoder.safetensors", "taesdxl_decoder.safetensors"):
        (folder / name).write_bytes(b"")
    assert model.family.taesd == "taesdxl"
    assert find_taesd([tmp_path / "models"], model.family.taesd) == [folder / "taesdxl_decoder.safetensors"]
    with pytest.raises(InvalidRequestError, match="put taesdxl_decoder.safetensors in models/vae_approx"):
        core.generate(model, request(taesd_decode=True))


def test_sdxls_vae_overflowing_in_float16_is_decoded_again_in_float32(files):
    """SDXL's VAE overflows in float16 (hence madebyollin's fp16-fix VAE): the fp16 guard decodes in float32."""
    model = core.load_model(files["single-fp16"], device="cpu", dtype="fp16")
    with torch.no_grad():
        model.vae.decoder.conv_in.weight.mul_(1e3)  # activations far beyond float16's 65504
    result = core.generate(model, request(steps=2, sampler="euler", schedule="normal"))
    assert model.float32_vae is not None  # the retry was needed, and made
    assert np.asarray(result.images[0]).std() > 0  # a picture, not the black of NaN
