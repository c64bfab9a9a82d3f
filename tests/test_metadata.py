"""PNG parameters: our writer round-trips, and infotexts written by AUTOMATIC1111 parse as A1111 reads them."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from sd_desktop import __version__
from sd_desktop.core.io.files import write_atomic
from sd_desktop.core.io.metadata import (
    JSON_KEY,
    PARAMETERS_KEY,
    UnreadableImageError,
    format_parameters,
    metadata_json,
    parse_parameters,
    read_parameters,
    request_from_parameters,
    restore_request,
)
from sd_desktop.core.sampling.registry import SAMPLERS
from sd_desktop.core.io.outputs import save_image
from sd_desktop.core.request import GenerationRequest

VERSION = f"sd-desktop {__version__}"


def tiny_image(color=(200, 30, 90)) -> Image.Image:
    return Image.new("RGB", (16, 8), color)


def write(tmp_path, request, *, name="out.png", **kwargs):
    args = dict(seed=123, width=512, height=512, model_name="v1-5-pruned-emaonly", model_hash="6ce0161689",
                mode="txt2img")
    args.update(kwargs)
    image = tiny_image()  # as core.generate hands it over: the parameters in .info, written by core.io.outputs
    image.info[PARAMETERS_KEY] = format_parameters(request, **args)
    image.info[JSON_KEY] = metadata_json(request, **args)
    return save_image(image, tmp_path / name)


def png_with_parameters_only(path, text):
    """A PNG as AUTOMATIC1111 saves it: one `parameters` text chunk, nothing of ours."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    tiny_image().save(path, pnginfo=info)
    return path


# ------------------------------------------------------------------------------------------- writing


def test_txt2img_text_is_exactly_a1111_layout():
    request = GenerationRequest(prompt="a cat on a sofa", negative_prompt="blurry", steps=20, cfg_scale=7.5,
                                sampler="dpmpp_2m", schedule="karras")
    text = format_parameters(request, seed=123, width=512, height=512, model_name="v1-5-pruned-emaonly",
                             model_hash="6ce0161689", mode="txt2img")
    assert text == (
        "a cat on a sofa\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 123, Size: 512x512, "
        f"Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, RNG: CPU, Version: {VERSION}"
    )


def test_inpaint_text_has_strength_mask_blur_and_area_and_an_empty_negative_line():
    """A1111 leaves out an empty negative prompt; we write the line, without which ComfyUI's importer takes
    nothing."""
    request = GenerationRequest(prompt="line one\nline two", steps=30, cfg_scale=7.0, sampler="euler_a",
                                schedule="normal", strength=0.6, mask_blur=8, inpaint_full_res=True)
    text = format_parameters(request, seed=-5, width=768, height=512, model_name="my model", model_hash=None,
                             mode="inpaint")
    assert text == (
        "line one\nline two\n"
        "Negative prompt: \n"
        "Steps: 30, Sampler: Euler a, Schedule type: Normal, CFG scale: 7.0, Seed: -5, Size: 768x512, "
        f"Model: my model, Denoising strength: 0.6, Mask blur: 8, Inpaint area: Only masked, Masked area padding: 32, RNG: CPU, "
        f"Version: {VERSION}"
    )


@pytest.mark.parametrize("sampler, label, schedule_label", [
    ("ddim", "DDIM", "Automatic"), ("ddpm", "DDPM", "Automatic"), ("euler", "Euler", "Karras"),
    ("euler_a", "Euler a", "Karras"), ("dpmpp_2m", "DPM++ 2M", "Karras"),
])
def test_sampler_labels(sampler, label, schedule_label):
    text = format_parameters(GenerationRequest(prompt="x", sampler=sampler), seed=1, width=64, height=64,
                             model_name="m", model_hash="h", mode="img2img")
    assert f"Sampler: {label}, Schedule type: {schedule_label}, CFG scale: 7.5," in text
    assert "Denoising strength: 0.75" in text and "Mask blur" not in text


def test_values_with_commas_colons_or_quotes_are_json_quoted():
    request = GenerationRequest(prompt="p")
    text = format_parameters(request, seed=1, width=64, height=64, model_name='odd, "name": v2',
                             model_hash=None, mode="txt2img")
    assert 'Model: "odd, \\"name\\": v2",' in text
    assert parse_parameters(text)["model"] == 'odd, "name": v2'
    # Quotes alone are quoted too, or a name like "v2" would lose its quotes when read back.
    text = format_parameters(request, seed=1, width=64, height=64, model_name='"v2"', model_hash=None, mode="txt2img")
    assert 'Model: "\\"v2\\"",' in text
    assert parse_parameters(text)["model"] == '"v2"'


def test_ddim_eta_is_written_as_a1111_does():
    text = format_parameters(GenerationRequest(prompt="p", sampler="ddim", eta=0.5), seed=1, width=64, height=64,
                             model_name="m", model_hash=None, mode="txt2img")
    assert "Eta DDIM: 0.5" in text
    assert parse_parameters(text)["eta"] == 0.5


# ------------------------------------------------------------------------------------------- round trips


def test_full_request_round_trips_through_our_json_chunk(tmp_path):
    init = Image.new("RGB", (96, 64))
    mask = np.zeros((64, 96), dtype=np.uint8)
    request = GenerationRequest(
        prompt="ein Kätzchen 猫 ☕\n  second line, with: colon", negative_prompt='bad "hands"\nugly', seed=None,
        steps=33, cfg_scale=6.25, sampler="euler", schedule="normal", width=None, height=None, batch_size=3,
        init_image=init, mask=mask, strength=0.55, mask_blur=6, inpaint_full_res=True, eta=0.0)
    path = write(tmp_path, request, seed=9223372036854775783, width=96, height=64, mode="inpaint")

    params = read_parameters(path)
    assert params["source"] == "sd-desktop"
    assert (params["seed"], params["width"], params["height"]) == (9223372036854775783, 96, 64)
    assert (params["mode"], params["model"], params["model_hash"]) == ("inpaint", "v1-5-pruned-emaonly", "6ce0161689")
    assert params["version"] == __version__
    assert params["init_image"] == {"width": 96, "height": 64} and params["mask"] == {"width": 96, "height": 64}

    as_asked = dataclasses.replace(request, init_image=None, mask=None)
    assert request_from_parameters(params["request"]) == as_asked
    as_made = dataclasses.replace(as_asked, seed=9223372036854775783, width=96, height=64)
    assert request_from_parameters(params) == as_made

    # The A1111 chunk alone gives the same picture back, too (prompt lines are stripped as A1111 does).
    with Image.open(path) as image:
        text = image.text["parameters"]
    from_text = request_from_parameters(parse_parameters(text))
    assert from_text == dataclasses.replace(as_made, prompt="ein Kätzchen 猫 ☕\nsecond line, with: colon", batch_size=1)


def test_non_latin1_parameters_go_to_an_itxt_chunk(tmp_path):
    path = write(tmp_path, GenerationRequest(prompt="猫"))
    data = path.read_bytes()
    assert b"iTXtparameters" in data and b"tEXtsd-desktop" in data


@pytest.mark.parametrize("mode", ["txt2img", "img2img", "inpaint"])
@pytest.mark.parametrize("sampler, schedule", [("dpmpp_2m", "karras"), ("euler_a", "normal"), ("euler", "karras"),
                                               ("ddim", "karras"), ("ddpm", "karras")])
def test_our_a1111_text_parses_back(mode, sampler, schedule):
    request = GenerationRequest(prompt="a\nb", negative_prompt="c\nd", steps=12, cfg_scale=4.5, sampler=sampler,
                                schedule=schedule, strength=0.3, mask_blur=2)
    text = format_parameters(request, seed=77, width=640, height=448, model_name="m", model_hash="0123456789",
                             mode=mode)
    restored = request_from_parameters(parse_parameters(text))
    expected = dataclasses.replace(request, seed=77, width=640, height=448)
    if mode == "txt2img":
        expected = dataclasses.replace(expected, strength=GenerationRequest.strength)
    if mode != "inpaint":
        expected = dataclasses.replace(expected, mask_blur=GenerationRequest.mask_blur)
    if sampler in ("ddim", "ddpm"):  # they write "Automatic", which restores the sampler's own default
        expected = dataclasses.replace(expected, schedule=SAMPLERS[sampler].default_schedule)
    assert restored == expected


# ------------------------------------------------------------------------------------------- A1111's own texts

A1111_FULL = (
    "masterpiece, best quality, 1girl, (smile:1.2),\n"
    "standing in a field of flowers <lora:add_detail:0.5>\n"
    "Negative prompt: (worst quality, low quality:1.4), \n"
    "bad hands, extra fingers\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3098764532, Size: 512x768, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, Clip skip: 2, "
    "ADetailer model: face_yolov8n.pt, ADetailer prompt: \"a \\\"smiling\\\" face, detailed\", "
    "ADetailer confidence: 0.3, ADetailer mask blur: 4, ADetailer denoising strength: 0.4, "
    "ADetailer inpaint only masked: True, ADetailer version: 24.1.2, Hires upscale: 2, Hires steps: 15, "
    "Hires upscaler: R-ESRGAN 4x+ Anime6B, Lora hashes: \"add_detail: 7c6bad76eb54, x: 1\", "
    "TI hashes: \"easynegative: c74b4e810b03\", Version: v1.9.4"
)


def test_a1111_multiline_prompts_quoted_values_and_extra_keys():
    params = parse_parameters(A1111_FULL)
    assert params == {
        "prompt": "masterpiece, best quality, 1girl, (smile:1.2),\nstanding in a field of flowers <lora:add_detail:0.5>",
        "negative_prompt": "(worst quality, low quality:1.4),\nbad hands, extra fingers",
        "steps": 28, "sampler": "dpmpp_2m", "schedule": "karras", "cfg_scale": 7.0, "seed": 3098764532,
        "width": 512, "height": 768, "model_hash": "6ce0161689", "model": "v1-5-pruned-emaonly", "strength": 0.45,
        "clip_skip": 2, "version": "v1.9.4",
        "hires_fix": True, "hires_scale": 2.0, "hires_steps": 15, "hires_upscaler": "realesrgan-x4plus-anime",
        "extras": {
            "ADetailer model": "face_yolov8n.pt",
            "ADetailer prompt": 'a "smiling" face, detailed',
            "ADetailer confidence": "0.3", "ADetailer mask blur": "4", "ADetailer denoising strength": "0.4",
            "ADetailer inpaint only masked": "True", "ADetailer version": "24.1.2",
            "Lora hashes": "add_detail: 7c6bad76eb54, x: 1",
            "TI hashes": "easynegative: c74b4e810b03",
        },
    }


def test_steps_words_inside_the_prompt_stay_in_the_prompt():
    text = (
        'a poster reading "Steps: 5, Sampler: none, CFG scale: high"\n'
        "the staircase has Steps: 12, Seed: pods\n"
        "Negative prompt: Steps: blurry\n"
        "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 512x512, "
        "Model hash: 6ce0161689, Model: m, Version: v1.9.4"
    )
    params = parse_parameters(text)
    assert params["prompt"] == 'a poster reading "Steps: 5, Sampler: none, CFG scale: high"\nthe staircase has Steps: 12, Seed: pods'
    assert params["negative_prompt"] == "Steps: blurry"
    assert (params["steps"], params["sampler"], params["seed"]) == (20, "euler_a", 1)
    assert "schedule" not in params  # "Automatic": the sampler's default


def test_size_without_negative_prompt():
    params = parse_parameters("portrait of an owl\nSteps: 25, Sampler: Euler, CFG scale: 8.5, Seed: 42, Size: 768x512")
    assert params == {"prompt": "portrait of an owl", "negative_prompt": "", "steps": 25, "sampler": "euler",
                      "cfg_scale": 8.5, "seed": 42, "width": 768, "height": 512}


def test_pre_1_9_sampler_names_carry_the_schedule_and_unknown_samplers_are_kept():
    old = parse_parameters("x\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, Size: 512x512")
    assert (old["sampler"], old["schedule"]) == ("dpmpp_2m", "karras")
    other = parse_parameters("x\nSteps: 20, Sampler: DPM adaptive, Schedule type: Polyexponential, CFG scale: 7, Seed: 1")
    assert (other["sampler"], other["schedule"]) == ("DPM adaptive", "Polyexponential")
    request, notes = restore_request(other, GenerationRequest(sampler="euler_a", schedule="normal"))
    assert (request.sampler, request.schedule, request.steps) == ("euler_a", "normal", 20)  # kept, and said so
    assert notes == ["sampler DPM adaptive Polyexponential → using Euler a Normal"]


def test_text_without_a_parameters_line_is_all_prompt():
    assert parse_parameters("just a prompt, with: one colon\nNegative prompt: bad") == {
        "prompt": "just a prompt, with: one colon", "negative_prompt": "bad"}
    # Two `Key: value` pairs on the last line are still prompt; A1111 needs three for a parameters line.
    assert parse_parameters("a castle\nStyle: gothic, Mood: dark") == {
        "prompt": "a castle\nStyle: gothic, Mood: dark", "negative_prompt": ""}


def test_bad_known_values_are_kept_as_strings_and_ignored_on_restore():
    params = parse_parameters("x\nSteps: many, Sampler: Euler, CFG scale: 7, Seed: 3, Size: big")
    assert params["extras"] == {"Steps": "many", "Size": "big"} and "steps" not in params
    # no schedule written: Euler's own, A1111's "Automatic"
    assert request_from_parameters(params) == GenerationRequest(prompt="x", sampler="euler", schedule="normal",
                                                                cfg_scale=7.0, seed=3)


def test_file_with_a1111_parameters_only(tmp_path):
    path = png_with_parameters_only(tmp_path / "a1111.png", A1111_FULL)
    params = read_parameters(path)
    assert params["source"] == "A1111"
    assert params["extras"]["Lora hashes"] == "add_detail: 7c6bad76eb54, x: 1"
    assert params["ignored"] == ["ADetailer"]  # (its LoRA tag is the prompt's: core.lora; the hires fix is done)
    assert request_from_parameters(params) == GenerationRequest(rng="nv",  # no RNG key: A1111's GPU noise

        prompt="masterpiece, best quality, 1girl, (smile:1.2),\nstanding in a field of flowers <lora:add_detail:0.5>",
        negative_prompt="(worst quality, low quality:1.4),\nbad hands, extra fingers", seed=3098764532, steps=28,
        cfg_scale=7.0, sampler="dpmpp_2m", schedule="karras", width=512, height=768, strength=0.45, clip_skip=2,
        hires_fix=True, hires_scale=2.0, hires_steps=15, hires_upscaler="realesrgan-x4plus-anime")


def test_damaged_json_chunk_falls_back_to_parameters(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "cat\nSteps: 9, Sampler: DDIM, CFG scale: 3, Seed: 5, Size: 64x64")
    info.add_text("sd-desktop", "{not json")
    path = tmp_path / "damaged.png"
    tiny_image().save(path, pnginfo=info)
    params = read_parameters(path)
    assert params["source"] == "A1111" and params["steps"] == 9 and params["sampler"] == "ddim"


def test_in_memory_image_with_info_parameters():
    image = tiny_image()
    image.info["parameters"] = "dog\nSteps: 4, Sampler: Euler, CFG scale: 2, Seed: 8, Size: 16x8"
    assert read_parameters(image)["prompt"] == "dog"


# ------------------------------------------------------------------------------------------- no or bad metadata


def test_images_without_metadata_give_none(tmp_path):
    tiny_image().save(tmp_path / "plain.png")
    tiny_image().save(tmp_path / "plain.jpg")
    assert read_parameters(tmp_path / "plain.png") is None
    assert read_parameters(tmp_path / "plain.jpg") is None
    assert read_parameters(tiny_image()) is None


def test_unreadable_files_raise_a_clear_error(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UnreadableImageError, match="notes.png is not an image"):
        read_parameters(tmp_path / "notes.png")
    with pytest.raises(UnreadableImageError, match="does not exist"):
        read_parameters(tmp_path / "missing.png")
    good = write(tmp_path, GenerationRequest(prompt="p"))
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:60])
    with pytest.raises(UnreadableImageError, match="cut.png"):
        read_parameters(tmp_path / "cut.png")


# ------------------------------------------------------------------------------------------- atomic save


def test_atomic_save_leaves_only_the_target(tmp_path):
    out = tmp_path / "sub" / "image.png"
    assert write(tmp_path, GenerationRequest(prompt="first"), name="sub/image.png") == out
    write(tmp_path, GenerationRequest(prompt="second"), name="sub/image.png")  # replaces in place
    assert os.listdir(out.parent) == ["image.png"]
    assert read_parameters(out)["prompt"] == "second"


class ExplodingImage:
    """Writes half a file, then fails, as a full disk or a crashing encoder would."""

    def save(self, file, **kwargs):
        file.write(b"\x89PNG\r\n\x1a\n half")
        raise OSError("disk full")


def test_atomic_save_failure_leaves_no_temp_file_and_the_old_file_intact(tmp_path):
    out = write(tmp_path, GenerationRequest(prompt="keep me"))
    before = out.read_bytes()
    with pytest.raises(OSError, match="disk full"):
        write_atomic(out, ExplodingImage().save)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(tmp_path / "new.png", ExplodingImage().save)
    assert os.listdir(tmp_path) == ["out.png"]
    assert out.read_bytes() == before


def test_clip_skip_and_emphasis_are_written_as_a1111_writes_them_and_read_back():
    request = GenerationRequest(prompt="a (red:1.2) cat", clip_skip=2, emphasis="No norm", seed=1)
    text = format_parameters(request, seed=1, width=512, height=512, model_name="m", model_hash=None, mode="txt2img")
    assert ", Clip skip: 2, Emphasis: No norm, RNG: CPU, Version:" in text
    assert request_from_parameters(parse_parameters(text)) == dataclasses.replace(request, width=512, height=512)
    plain = format_parameters(GenerationRequest(prompt="x"), seed=1, width=8, height=8, model_name="m",
                              model_hash=None, mode="txt2img")
    assert "Clip skip" not in plain and "Emphasis" not in plain  # A1111 leaves out the defaults


def test_what_an_a1111_text_asks_for_that_we_do_not_do_is_named_once_each():
    from sd_desktop.core.io.infotext import a1111_parameters

    text = ("a knight <lora:armor:0.7>\nNegative prompt: \nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, "
            "Size: 512x512, Model hash: 6ce0161689, Model: v15, VAE hash: 735e4c3a44, VAE: kl-f8-anime2, "
            "Variation seed: 4, Variation seed strength: 0.3, Hires upscale: 2, Hires upscaler: Latent, "
            "Hires sampler: DPM adaptive, ENSD: 31337, "
            "Eta: 0.67, Version: v1.10.1")
    params = a1111_parameters(text)
    assert params["ignored"] == ["VAE kl-f8-anime2", "Hires fix's sampler"]
    assert (params["rng"], params["clip_skip"], params["emphasis"], params["source"]) == ("nv", 1, "Original", "A1111")
    request, notes = restore_request(params, GenerationRequest(schedule="karras"))
    assert request.schedule == "normal" and notes == params["ignored"]  # Euler a's own schedule, as A1111 reads it
    assert params["ensd"] == request.ensd == 31337  # (core.sampling.noise: the ancestral noise from seed + ENSD)
    assert params["ancestral_eta"] == request.ancestral_eta == 0.67  # A1111's Eta for ancestral samplers
    assert (request.variation_seed, request.variation_strength) == (4, 0.3)
    text = format_parameters(request, seed=1, width=512, height=512, model_name="v15", model_hash=None, mode="txt2img")
    assert "Eta: 0.67" in text and "ENSD: 31337" in text  # (Euler a takes both)
    for sampler, eta, written in (("dpmpp_2m", 0.67, False), ("euler_a", 0.0, True), ("dpmpp_sde", 0.5, True)):
        other = dataclasses.replace(request, sampler=sampler, ancestral_eta=eta)
        text = format_parameters(other, seed=1, width=8, height=8, model_name="m", model_hash=None, mode="txt2img")
        assert ("Eta: " in text) == written and "ENSD" not in text  # (no noise after the start changed by it)


def test_a_json_chunk_older_than_a_field_means_that_fields_default_then(tmp_path):
    old = {"format": 1, "version": "0.1.0", "mode": "txt2img", "seed": 3, "width": 64, "height": 64,
           "request": {"prompt": "p", "seed": 3, "sampler": "euler", "schedule": "normal"}}  # before clip skip, rng
    info = PngImagePlugin.PngInfo()
    info.add_text(JSON_KEY, json.dumps(old))
    path = tmp_path / "old.png"
    tiny_image().save(path, pnginfo=info)
    request, notes = restore_request(read_parameters(path), GenerationRequest(rng="nv", clip_skip=2, emphasis="None"))
    assert (request.rng, request.clip_skip, request.emphasis, notes) == ("cpu", 1, "Original", [])


def test_restore_names_what_it_cannot_take_and_never_fails_on_odd_values():
    odd = {"sampler": ["euler"], "schedule": {"k": 1}, "seed": -1, "steps": -5, "cfg_scale": float("inf"),
           "tiled_vae": "banana", "strength": "nan", "prompt": "kept"}
    request, notes = restore_request(odd, GenerationRequest(seed=3))
    assert request == GenerationRequest(prompt="kept", seed=3)
    assert notes == ["sampler ['euler'] {'k': 1} → using DPM++ 2M Karras", "seed -1", "steps -5", "cfg scale inf",
                     "strength nan", "tiled vae banana"]
    # a schedule DDIM would ignore anyway is no loss
    assert restore_request({"sampler": "ddim", "schedule": "weird"})[1] == []


def test_two_word_schedules_in_sampler_labels():
    from sd_desktop.core.sampling.registry import resolve_sampler, sampler_from_label

    assert sampler_from_label("DPM++ 2M SGM Uniform") == ("dpmpp_2m", "sgm_uniform")
    assert sampler_from_label("Euler a Uniform") == ("euler_a", "normal")
    assert resolve_sampler("  dpm++ 2m   sgm uniform ") == ("dpmpp_2m", "sgm_uniform")


def test_a_text_without_ensd_where_it_would_have_said_it_restores_none():
    """A1111 writes ENSD for Euler a, DPM2 a and DPM++ 2S a whenever it is set: a text of theirs without it had none.
    Other samplers' texts leave the user's ENSD alone (A1111 does not say it there)."""
    from sd_desktop.core.io.infotext import a1111_parameters

    line = "Steps: 20, Sampler: {}, CFG scale: 7, Seed: 1, Size: 512x512, Version: v1.10.1"
    current = GenerationRequest(ensd=31337)
    assert restore_request(a1111_parameters("x\n" + line.format("Euler a")), current)[0].ensd == 0
    assert restore_request(a1111_parameters("x\n" + line.format("DPM++ 2M")), current)[0].ensd == 31337
    assert restore_request(a1111_parameters("x\n" + line.format("DDIM")), current)[0].ensd == 31337
    assert restore_request(a1111_parameters("x\n" + line.format("Euler a") + ", ENSD: 7"), current)[0].ensd == 7


def test_seed_resize_from_round_trips_and_off_restores_off(tmp_path):
    """A1111's "Seed resize from: WxH" (written only when on; -1x-1 and 0x0 in older texts mean off) and our
    JSON's pair are restored; a file without it (A1111's, or ours from before the field) turns it off."""
    from sd_desktop.core.io.infotext import a1111_parameters

    resized = GenerationRequest(prompt="a cat", seed=1, seed_resize_from=(512, 768))
    path = write(tmp_path, resized)
    params = read_parameters(path)
    assert params["source"] == "sd-desktop" and restore_request(params)[0].seed_resize_from == (512, 768)
    text = Image.open(path).info[PARAMETERS_KEY]
    assert "Variation seed strength" not in text and ", Seed resize from: 512x768," in text
    from_text = a1111_parameters(text)
    assert from_text["ignored"] == [] and restore_request(from_text)[0].seed_resize_from == (512, 768)
    line = "x\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512{}, Version: v1.10.1"
    for off in ("", ", Seed resize from: -1x-1", ", Seed resize from: 0x0"):
        params = a1111_parameters(line.format(off))
        assert params["ignored"] == [] and restore_request(params, resized)[0].seed_resize_from is None, off
    record = json.loads(Image.open(path).info[JSON_KEY])
    del record["request"]["seed_resize_from"]  # (a file from before the field)
    older = png_with_parameters_only(tmp_path / "older.png", text)
    with Image.open(older) as image:
        info = PngImagePlugin.PngInfo()
        info.add_text(JSON_KEY, json.dumps(record))
        image.save(older, pnginfo=info)
    assert restore_request(read_parameters(older), resized)[0].seed_resize_from is None
    bad = a1111_parameters(line.format(", Seed resize from: 4x4"))  # (below 8 pixels: named, not restored)
    restored, notes = restore_request(bad, resized)
    assert restored.seed_resize_from == (512, 768) and "seed resize from (4, 4)" in notes
