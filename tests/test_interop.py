"""Parameters in and out of every app people bring images from: hand-written examples of each real format
(A1111's PNG text and JPEG/WebP EXIF, ComfyUI's graphs, Fooocus, NovelAI, InvokeAI), our files read by A1111's
own rules, no pixel decoded to read text, a linear-time parser, and nothing raised but the documented error."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import struct
import zlib

import pytest
from PIL import Image, ImageFile, PngImagePlugin

from sd_desktop import __version__
from sd_desktop.core.io.image_text import (UnreadableImageError, decode_user_comment, exif_with_user_comment,
                                           text_chunks)
from sd_desktop.core.io.infotext import find_pairs, format_parameters, is_infotext, parse_parameters
from sd_desktop.core.io.metadata import JSON_KEY, metadata_json, read_parameters, restore_request
from sd_desktop.core.io.outputs import save_image
from sd_desktop.core.request import GenerationRequest


def png(path, chunks: dict[str, str], size=(16, 8)):
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", size, (10, 200, 30)).save(path, pnginfo=info)
    return path


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_chunks_after_the_pixels(path, *chunks: bytes):
    """The PNG with chunks inserted before IEND, after its image data (as some tools write text)."""
    data = path.read_bytes()
    iend = data.rindex(b"IEND") - 4
    path.write_bytes(data[:iend] + b"".join(chunks) + data[iend:])
    return path


# --------------------------------------------------------------------------------- A1111 JPEG / WebP EXIF

A1111_TEXT = ("a lighthouse at dusk, (volumetric light:1.2)\nNegative prompt: blurry\n"
              "Steps: 25, Sampler: DPM++ 2M SDE, Schedule type: Karras, CFG scale: 6.5, Seed: 1234, Size: 512x768, "
              "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1")


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_a1111_jpeg_and_webp_exif_user_comment_as_piexif_writes_it(tmp_path, fmt):
    piexif = pytest.importorskip("piexif")
    import piexif.helper

    # what A1111's images.save_image_with_geninfo does for a JPEG or WebP
    exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(A1111_TEXT, encoding="unicode")}})
    path = tmp_path / f"a1111.{fmt.lower()}"
    Image.new("RGB", (16, 8)).save(path, format=fmt, exif=exif, quality=90)
    params = read_parameters(path)
    assert params["source"] == "A1111"
    assert (params["prompt"], params["negative_prompt"]) == ("a lighthouse at dusk, (volumetric light:1.2)", "blurry")
    assert (params["sampler"], params["schedule"], params["steps"], params["seed"]) == ("dpmpp_2m_sde", "karras", 25, 1234)
    assert params["rng"] == "nv"  # no RNG key: A1111 drew on a GPU, whose numbers "nv" gives


def test_user_comment_encodings():
    text = "a cat 猫"
    assert decode_user_comment(b"UNICODE\0" + text.encode("utf-16-be")) == text  # A1111 (piexif)
    assert decode_user_comment(b"UNICODE\0" + text.encode("utf-16-le")) == text  # some Windows tools
    assert decode_user_comment(b"ASCII\0\0\0plain") == "plain"
    assert decode_user_comment(b"\0" * 8 + "utf ☕".encode()) == "utf ☕"
    assert decode_user_comment("Fooocus writes a str") == "Fooocus writes a str"
    assert decode_user_comment(text.encode()) == text  # no prefix: UTF-8, as A1111 falls back


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_our_jpeg_and_webp_carry_the_infotext_in_exif_as_a1111_writes_it(tmp_path, suffix):
    request = GenerationRequest(prompt="a red fox ☕", negative_prompt="", sampler="euler_a", schedule="normal",
                                seed=5, steps=9, clip_skip=2, rng="nv")
    image = Image.new("RGB", (16, 8), (200, 90, 10))
    image.info["parameters"] = format_parameters(request, seed=5, width=16, height=8, model_name="m",
                                                 model_hash=None, mode="txt2img")
    image.info[JSON_KEY] = metadata_json(request, seed=5, width=16, height=8, model_name="m", model_hash=None,
                                         mode="txt2img")
    path = save_image(image, tmp_path / f"out{suffix}")
    with Image.open(path) as written:
        assert written.format == {".jpg": "JPEG", ".webp": "WEBP"}[suffix]  # the format its name says
    piexif = pytest.importorskip("piexif")
    import piexif.helper

    with Image.open(path) as written:  # read as A1111's read_info_from_image does
        comment = piexif.load(written.info["exif"])["Exif"][piexif.ExifIFD.UserComment]
    assert piexif.helper.UserComment.load(comment) == image.info["parameters"]
    params = read_parameters(path)
    assert params["source"] == "sd-desktop" and params["rng"] == "nv" and params["clip_skip"] == 2
    assert restore_request(params)[0] == dataclasses.replace(request, width=16, height=8)


# --------------------------------------------------------------------------------- our files, A1111's rules

A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def a1111_reads(text: str) -> dict:
    """AUTOMATIC1111's infotext_utils.parse_generation_parameters, restated from its rules: the prompt lines,
    the `Negative prompt:` line onwards, the last line's pairs (json strings unquoted), Size split into
    Size-1 and Size-2, and what a missing key means there (Clip skip 1, RNG GPU, Schedule type Automatic)."""
    res: dict[str, str] = {}
    prompt, negative, done = "", "", False
    *lines, last = text.strip().split("\n")
    if len(A1111_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done, line = True, line[16:].strip()
        if done:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    res["Prompt"], res["Negative prompt"] = prompt, negative
    for key, value in A1111_PARAM.findall(last):
        if value and value[0] == '"' and value[-1] == '"':
            value = json.loads(value)
        size = re.match(r"^(\d+)x(\d+)$", value)
        if size:
            res[f"{key}-1"], res[f"{key}-2"] = size.group(1), size.group(2)
        else:
            res[key] = value
    res.setdefault("Clip skip", "1")
    res.setdefault("RNG", "GPU")
    res.setdefault("Schedule type", "Automatic")
    res.setdefault("Emphasis", "Original")
    return res


@pytest.mark.parametrize("sampler, schedule, label, schedule_label", [
    ("dpmpp_2m", "karras", "DPM++ 2M", "Karras"), ("euler_a", "normal", "Euler a", "Normal"),
    ("dpmpp_2m_sde", "exponential", "DPM++ 2M SDE", "Exponential"), ("dpmpp_3m_sde", "sgm_uniform", "DPM++ 3M SDE", "SGM Uniform"),
    ("unipc", "karras", "UniPC", "Karras"), ("lcm", "normal", "LCM", "Normal"), ("ddim", "karras", "DDIM", "Automatic"),
])
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_our_image_read_by_a1111s_rules_gives_the_same_fields(tmp_path, sampler, schedule, label, schedule_label, suffix):
    request = GenerationRequest(prompt="a (red:1.2) barn, BREAK\nat noon", negative_prompt="", seed=98765, steps=17,
                                cfg_scale=6.5, sampler=sampler, schedule=schedule, clip_skip=2, emphasis="No norm",
                                strength=0.6, mask_blur=3)
    image = Image.new("RGB", (16, 8))
    image.info["parameters"] = format_parameters(request, seed=98765, width=640, height=448, model_name="dream, v2",
                                                 model_hash="abc123", mode="img2img")
    path = save_image(image, tmp_path / f"ours{suffix}")
    text = text_chunks(path)["parameters"]
    res = a1111_reads(text)
    assert (res["Prompt"], res["Negative prompt"]) == ("a (red:1.2) barn, BREAK\nat noon", "")
    assert (res["Steps"], res["Sampler"], res["Schedule type"]) == ("17", label, schedule_label)
    assert (res["CFG scale"], res["Seed"], res["Size-1"], res["Size-2"]) == ("6.5", "98765", "640", "448")
    assert (res["Clip skip"], res["Emphasis"], res["RNG"]) == ("2", "No norm", "CPU")
    assert (res["Denoising strength"], res["Model"], res["Model hash"]) == ("0.6", "dream, v2", "abc123")
    assert res["Version"] == f"sd-desktop {__version__}"
    # and what we read back is the request
    restored, notes = restore_request(read_parameters(path))
    expected_schedule = schedule if schedule_label != "Automatic" else "normal"  # DDIM: its own timesteps
    assert restored == dataclasses.replace(request, width=640, height=448, schedule=expected_schedule,
                                           mask_blur=GenerationRequest.mask_blur) and notes == []


# --------------------------------------------------------------------------------- ComfyUI

COMFY_PROMPT = {  # ComfyUI's default graph, as its SaveImage writes the `prompt` chunk
    "3": {"inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
                     "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                     "latent_image": ["5", 0]}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
    "4": {"inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}, "class_type": "CheckpointLoaderSimple",
          "_meta": {"title": "Load Checkpoint"}},
    "5": {"inputs": {"width": 512, "height": 512, "batch_size": 1}, "class_type": "EmptyLatentImage",
          "_meta": {"title": "Empty Latent Image"}},
    "6": {"inputs": {"text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
                     "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "7": {"inputs": {"text": "text, watermark", "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
          "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode", "_meta": {"title": "VAE Decode"}},
    "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage",
          "_meta": {"title": "Save Image"}},
}

COMFY_WORKFLOW = {  # the same graph as the editor saves it in the `workflow` chunk
    "last_node_id": 9, "last_link_id": 9,
    "nodes": [
        {"id": 7, "type": "CLIPTextEncode", "pos": [413, 389], "size": [425, 180], "flags": {}, "order": 3, "mode": 0,
         "inputs": [{"name": "clip", "type": "CLIP", "link": 5}],
         "outputs": [{"name": "CONDITIONING", "type": "CONDITIONING", "links": [6], "slot_index": 0}],
         "properties": {"Node name for S&R": "CLIPTextEncode"}, "widgets_values": ["text, watermark"]},
        {"id": 6, "type": "CLIPTextEncode", "pos": [415, 186], "size": [422, 164], "flags": {}, "order": 2, "mode": 0,
         "inputs": [{"name": "clip", "type": "CLIP", "link": 3}],
         "outputs": [{"name": "CONDITIONING", "type": "CONDITIONING", "links": [4], "slot_index": 0}],
         "properties": {"Node name for S&R": "CLIPTextEncode"},
         "widgets_values": ["beautiful scenery nature glass bottle landscape, , purple galaxy bottle,"]},
        {"id": 5, "type": "EmptyLatentImage", "pos": [473, 609], "size": [315, 106], "flags": {}, "order": 0, "mode": 0,
         "outputs": [{"name": "LATENT", "type": "LATENT", "links": [2], "slot_index": 0}],
         "properties": {"Node name for S&R": "EmptyLatentImage"}, "widgets_values": [512, 512, 1]},
        {"id": 3, "type": "KSampler", "pos": [863, 186], "size": [315, 262], "flags": {}, "order": 4, "mode": 0,
         "inputs": [{"name": "model", "type": "MODEL", "link": 1}, {"name": "positive", "type": "CONDITIONING", "link": 4},
                    {"name": "negative", "type": "CONDITIONING", "link": 6},
                    {"name": "latent_image", "type": "LATENT", "link": 2}],
         "outputs": [{"name": "LATENT", "type": "LATENT", "links": [7], "slot_index": 0}],
         "properties": {"Node name for S&R": "KSampler"},
         "widgets_values": [156680208700286, "randomize", 20, 8, "euler", "normal", 1]},
        {"id": 8, "type": "VAEDecode", "pos": [1209, 188], "size": [210, 46], "flags": {}, "order": 5, "mode": 0,
         "inputs": [{"name": "samples", "type": "LATENT", "link": 7}, {"name": "vae", "type": "VAE", "link": 8}],
         "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [9], "slot_index": 0}], "properties": {}},
        {"id": 9, "type": "SaveImage", "pos": [1451, 189], "size": [210, 58], "flags": {}, "order": 6, "mode": 0,
         "inputs": [{"name": "images", "type": "IMAGE", "link": 9}], "properties": {}, "widgets_values": ["ComfyUI"]},
        {"id": 4, "type": "CheckpointLoaderSimple", "pos": [26, 474], "size": [315, 98], "flags": {}, "order": 1,
         "mode": 0, "outputs": [{"name": "MODEL", "type": "MODEL", "links": [1], "slot_index": 0},
                                {"name": "CLIP", "type": "CLIP", "links": [3, 5], "slot_index": 1},
                                {"name": "VAE", "type": "VAE", "links": [8], "slot_index": 2}],
         "properties": {"Node name for S&R": "CheckpointLoaderSimple"},
         "widgets_values": ["v1-5-pruned-emaonly.safetensors"]},
    ],
    "links": [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 6, 0, "CLIP"], [4, 6, 0, 3, 1, "CONDITIONING"],
              [5, 4, 1, 7, 0, "CLIP"], [6, 7, 0, 3, 2, "CONDITIONING"], [7, 3, 0, 8, 0, "LATENT"], [8, 4, 2, 8, 1, "VAE"],
              [9, 8, 0, 9, 0, "IMAGE"]],
    "groups": [], "config": {}, "extra": {}, "version": 0.4,
}

COMFY_DEFAULT_EXPECTED = {
    "source": "ComfyUI", "prompt": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
    "negative_prompt": "text, watermark", "seed": 156680208700286, "steps": 20, "cfg_scale": 8.0, "sampler": "euler",
    "schedule": "normal", "width": 512, "height": 512, "batch_size": 1, "model": "v1-5-pruned-emaonly",
    "emphasis": "ComfyUI", "rng": "cpu", "clip_skip": 1, "ignored": [],
}


def test_comfyui_prompt_graph(tmp_path):
    path = png(tmp_path / "ComfyUI_00001_.png", {"prompt": json.dumps(COMFY_PROMPT), "workflow": json.dumps(COMFY_WORKFLOW)})
    assert read_parameters(path) == COMFY_DEFAULT_EXPECTED
    request, notes = restore_request(read_parameters(path))
    assert (request.emphasis, request.seed, request.sampler, request.schedule, notes) == (
        "ComfyUI", 156680208700286, "euler", "normal", [])  # (x:1.2) means there what it meant in ComfyUI


def test_comfyui_workflow_alone(tmp_path):
    path = png(tmp_path / "workflow-only.png", {"workflow": json.dumps(COMFY_WORKFLOW)})
    assert read_parameters(path) == COMFY_DEFAULT_EXPECTED


def test_comfyui_lora_clip_skip_hires_pass_and_linked_text(tmp_path):
    graph = json.loads(json.dumps(COMFY_PROMPT))
    graph["10"] = {"inputs": {"lora_name": "loras\\add_detail.safetensors", "strength_model": 0.6, "strength_clip": 0.3,
                              "model": ["4", 0], "clip": ["4", 1]}, "class_type": "LoraLoader"}
    graph["11"] = {"inputs": {"stop_at_clip_layer": -2, "clip": ["10", 1]}, "class_type": "CLIPSetLastLayer"}
    graph["12"] = {"inputs": {"value": "a castle on a hill, (masterpiece:1.2)"}, "class_type": "PrimitiveString"}
    graph["6"]["inputs"].update(text=["12", 0], clip=["11", 0])
    graph["7"]["inputs"]["clip"] = ["11", 0]
    graph["3"]["inputs"].update(model=["10", 0], sampler_name="dpmpp_2m_sde_gpu", scheduler="karras")
    # a second pass: upscale the latent, sample again at denoise 0.5 (a hires fix)
    graph["13"] = {"inputs": {"upscale_method": "nearest-exact", "scale_by": 1.5, "samples": ["3", 0]},
                   "class_type": "LatentUpscaleBy"}
    graph["14"] = {"inputs": {**graph["3"]["inputs"], "denoise": 0.5, "latent_image": ["13", 0], "seed": 1},
                   "class_type": "KSampler"}
    graph["8"]["inputs"]["samples"] = ["14", 0]
    params = read_parameters(png(tmp_path / "lora.png", {"prompt": json.dumps(graph)}))
    assert params["prompt"] == "a castle on a hill, (masterpiece:1.2) <lora:add_detail:0.3:0.6>"  # A1111: te, unet
    assert (params["seed"], params["clip_skip"], params["sampler"], params["schedule"]) == (156680208700286, 2, "dpmpp_2m_sde", "karras")
    assert "strength" not in params  # the first pass starts from noise
    assert params["ignored"] == ["dpmpp_2m_sde_gpu's GPU noise (its CPU twin is used)",
                                 "1 more sampler pass (hires fix, refiner)"]
    request, notes = restore_request(params, GenerationRequest(sampler="ddim"))
    assert (request.sampler, request.clip_skip) == ("dpmpp_2m_sde", 2)
    assert notes == params["ignored"]


def test_comfyui_v_prediction_and_rescale_cfg_nodes_are_read(tmp_path):
    graph = json.loads(json.dumps(COMFY_PROMPT))  # NoobAI-XL V-Pred's recommended graph
    graph["10"] = {"inputs": {"sampling": "v_prediction", "zsnr": False, "model": ["4", 0]},
                   "class_type": "ModelSamplingDiscrete"}
    graph["11"] = {"inputs": {"multiplier": 0.7, "model": ["10", 0]}, "class_type": "RescaleCFG"}
    graph["3"]["inputs"]["model"] = ["11", 0]
    params = read_parameters(png(tmp_path / "vpred.png", {"prompt": json.dumps(graph)}))
    assert (params["prediction"], params["rescale_cfg"], params["ignored"]) == ("v", 0.7, [])
    request, notes = restore_request(params)
    assert (request.prediction, request.rescale_cfg, request.noise_schedule, notes) == ("v", 0.7, "default", [])
    graph["10"]["inputs"]["zsnr"] = True  # the node's zero-terminal-SNR switch: our noise schedule
    params = read_parameters(png(tmp_path / "zsnr.png", {"prompt": json.dumps(graph)}))
    assert (params["noise_schedule"], params["ignored"]) == ("zsnr", [])
    assert restore_request(params)[0].noise_schedule == "zsnr"


def test_comfyui_img2img_graph_gives_the_denoise_as_strength(tmp_path):
    graph = json.loads(json.dumps(COMFY_PROMPT))
    graph["5"] = {"inputs": {"pixels": ["20", 0], "vae": ["4", 2]}, "class_type": "VAEEncode"}
    graph["20"] = {"inputs": {"image": "photo.png"}, "class_type": "LoadImage"}
    graph["3"]["inputs"]["denoise"] = 0.55
    params = read_parameters(png(tmp_path / "i2i.png", {"prompt": json.dumps(graph)}))
    assert (params["strength"], params["mode"]) == (0.55, "img2img") and "width" not in params


def test_comfyui_graphs_that_are_odd_or_hostile_give_what_they_can(tmp_path):
    graph = json.loads(json.dumps(COMFY_PROMPT))
    graph["6"]["inputs"]["text"] = ["6", 0]  # a link to itself
    graph["7"]["inputs"]["text"] = ["99", 0]  # to a node that is not there
    graph["3"]["inputs"]["steps"] = "twenty"
    graph["3"]["inputs"]["cfg"] = float("nan")
    params = read_parameters(png(tmp_path / "odd.png", {"prompt": json.dumps(graph)}))
    assert (params["prompt"], params["negative_prompt"], params["seed"]) == ("", "", 156680208700286)
    assert "steps" not in params and "cfg_scale" not in params
    for junk in ("[1, 2, 3]", '{"a": 1}', '{"3": {"class_type": "KSampler", "inputs": 7}}', "null", "{" * 5000):
        assert read_parameters(png(tmp_path / "junk.png", {"prompt": junk})) is None
    huge = '{"3": {"class_type": "KSampler", "inputs": {"cfg": 1%s, "steps": 4}}}' % ("0" * 400)  # past a float
    assert read_parameters(png(tmp_path / "huge.png", {"prompt": huge}))["steps"] == 4
    for workflow in ('{"nodes": [], "links": 5}', '{"nodes": [{"id": 1, "type": "KSampler", "inputs": 7}]}',
                     '{"nodes": [{"id": 1, "type": "KSampler", "inputs": [{"name": "positive", "link": [1]}]}], '
                     '"links": [[[1], 2, 3], {"id": [1]}]}'):
        assert read_parameters(png(tmp_path / "wf.png", {"workflow": workflow})) in (None, dict(
            source="ComfyUI", prompt="", negative_prompt="", emphasis="ComfyUI", rng="cpu", clip_skip=1, ignored=[]))
    odd_fooocus = {**FOOOCUS, "resolution": "{[1], 2}", "styles": "{[]: 1}", "guidance_scale": "1e999"}
    params = read_parameters(png(tmp_path / "f.png", {"parameters": json.dumps(odd_fooocus), "fooocus_scheme": "fooocus"}))
    assert params["seed"] == 3405947934 and "width" not in params and "cfg_scale" not in params
    ours = read_parameters(png(tmp_path / "ours.png", {JSON_KEY: '{"request": {}, "seed": %s}' % ("9" * 5000)}))
    assert ours is None  # a number JSON refuses to read: not our chunk


# --------------------------------------------------------------------------------- Fooocus

FOOOCUS = {
    "adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion.safetensors",
    "base_model_hash": "aeb7e9e689", "clip_skip": 2,
    "full_negative_prompt": ["(worst quality, low quality, lowres:1.4)", "unrealistic, saturated, painting"],
    "full_prompt": ["cinematic still a cat in a garden . emotional, harmonious, vignette, film grain",
                    "a cat in a garden, intricate, elegant, highly detailed"],
    "guidance_scale": 4, "loras": [["sd_xl_offset_example-lora_1.0", 0.1, "4852686128"]], "metadata_scheme": "fooocus",
    "negative_prompt": "", "performance": "Speed", "prompt": "a cat in a garden",
    "prompt_expansion": "a cat in a garden, intricate, elegant, highly detailed", "refiner_model": "None",
    "refiner_switch": 0.5, "resolution": "(1152, 896)", "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras",
    "seed": "3405947934", "sharpness": 2, "steps": 30, "styles": "['Fooocus V2', 'Fooocus Enhance', 'Fooocus Sharp']",
    "vae": "Default (model)", "version": "Fooocus v2.5.5",
}


def test_fooocus_json_in_the_parameters_chunk(tmp_path):
    path = png(tmp_path / "fooocus.png", {"parameters": json.dumps(FOOOCUS), "fooocus_scheme": "fooocus"})
    params = read_parameters(path)
    assert params["source"] == "Fooocus"
    # the prompt as encoded: its styles and the Fooocus V2 expansion, joined as Fooocus' own A1111 text does
    assert params["prompt"] == ("cinematic still a cat in a garden . emotional, harmonious, vignette, film grain, "
                                "a cat in a garden, intricate, elegant, highly detailed "
                                "<lora:sd_xl_offset_example-lora_1.0:0.1>")
    assert params["negative_prompt"] == "(worst quality, low quality, lowres:1.4), unrealistic, saturated, painting"
    assert (params["seed"], params["steps"], params["cfg_scale"], params["width"], params["height"]) == (
        3405947934, 30, 4.0, 1152, 896)
    assert (params["sampler"], params["schedule"], params["clip_skip"], params["model"]) == (
        "dpmpp_2m_sde", "karras", 2, "juggernautXL_v8Rundiffusion")
    assert params["ignored"] == ["dpmpp_2m_sde_gpu's GPU noise (its CPU twin is used)", "Fooocus sharpness"]


def test_fooocus_jpeg_with_its_json_in_ifd0_user_comment(tmp_path):
    exif = Image.Exif()  # as Fooocus' get_exif writes it: UserComment and MakerNote in IFD0, as text
    exif[0x9286] = json.dumps(FOOOCUS)
    exif[0x927C] = "fooocus"
    path = tmp_path / "fooocus.jpg"
    Image.new("RGB", (16, 8)).save(path, exif=exif)
    assert read_parameters(path)["seed"] == 3405947934


# --------------------------------------------------------------------------------- NovelAI, InvokeAI

NOVELAI_COMMENT = {
    "prompt": "1girl, {{masterpiece}}, best quality, cherry blossoms", "steps": 28, "height": 1216, "width": 832,
    "scale": 5.0, "uncond_scale": 0.0, "cfg_rescale": 0.0, "seed": 1234567890, "n_samples": 1,
    "hide_debug_overlay": False, "noise_schedule": "karras", "legacy_v3_extend": False,
    "reference_information_extracted_multiple": [], "reference_strength_multiple": [], "sampler": "k_euler_ancestral",
    "controlnet_strength": 1.0, "controlnet_model": None, "dynamic_thresholding": False, "sm": False, "sm_dyn": False,
    "skip_cfg_above_sigma": None, "skip_cfg_below_sigma": 0.0, "lora_unet_weights": None, "lora_clip_weights": None,
    "deliberate_euler_ancestral_bug": True, "prefer_brownian": False, "strength": 0.7, "noise": 0.0,
    "cfg_sched_eligibility": "enable_for_post_summer_samplers", "explike_fine_detail": False,
    "minimize_sigma_inf": False, "uncond_per_vibe": True, "wonky_vibe_correlation": True, "version": 1,
    "uc": "lowres, bad anatomy, bad hands", "request_type": "PromptGenerateRequest", "signed_hash": "Xy1z",
}


def test_novelai_comment_json(tmp_path):
    path = png(tmp_path / "nai.png", {"Title": "AI generated image", "Description": NOVELAI_COMMENT["prompt"],
                                      "Software": "NovelAI", "Source": "NovelAI Diffusion V3 4F49EC75",
                                      "Generation time": "4.66", "Comment": json.dumps(NOVELAI_COMMENT)})
    params = read_parameters(path)
    assert params["source"] == "NovelAI"
    assert (params["prompt"], params["negative_prompt"]) == (NOVELAI_COMMENT["prompt"], "lowres, bad anatomy, bad hands")
    assert (params["seed"], params["steps"], params["cfg_scale"], params["width"], params["height"]) == (
        1234567890, 28, 5.0, 832, 1216)
    assert (params["sampler"], params["schedule"], params["model"]) == ("euler_a", "karras", "NovelAI Diffusion V3 4F49EC75")
    assert "strength" not in params  # a txt2img request carries NovelAI's default strength; it means nothing
    assert params["ignored"] == ["NovelAI's {…} emphasis (read as text)", "NovelAI's own noise and models"]


INVOKEAI = {
    "generation_mode": "txt2img", "positive_prompt": "a photo of an astronaut riding a horse",
    "negative_prompt": "blurry, lowres", "width": 512, "height": 768, "seed": 2436234571, "rand_device": "cpu",
    "cfg_scale": 7.5, "cfg_rescale_multiplier": 0, "steps": 30, "scheduler": "dpmpp_2m_k", "clip_skip": 1,
    "model": {"key": "8f5d1c4e", "hash": "blake3:1f2e", "name": "Dreamshaper 8", "base": "sd-1", "type": "main"},
    "loras": [{"model": {"key": "99a", "hash": "blake3:aa", "name": "add_detail", "base": "sd-1", "type": "lora"},
               "weight": 0.75}],
    "seamless_x": False, "seamless_y": False, "app_version": "4.2.9",
}


def test_invokeai_metadata(tmp_path):
    path = png(tmp_path / "invoke.png", {"invokeai_metadata": json.dumps(INVOKEAI), "invokeai_graph": "{}"})
    params = read_parameters(path)
    assert params["source"] == "InvokeAI"
    assert (params["prompt"], params["negative_prompt"]) == (
        "a photo of an astronaut riding a horse <lora:add_detail:0.75>", "blurry, lowres")
    assert (params["seed"], params["steps"], params["cfg_scale"], params["width"], params["height"]) == (
        2436234571, 30, 7.5, 512, 768)
    assert (params["sampler"], params["schedule"], params["clip_skip"], params["rng"]) == ("dpmpp_2m", "karras", 2, "cpu")
    assert (params["model"], params["version"], params["ignored"]) == ("Dreamshaper 8", "4.2.9", [])


# --------------------------------------------------------------------------------- reading without pixels


def test_no_pixel_is_decoded_to_read_text(tmp_path, monkeypatch):
    after = with_chunks_after_the_pixels(
        png(tmp_path / "after.png", {"Software": "x"}, size=(64, 64)),
        chunk(b"tEXt", b"parameters\0" + A1111_TEXT.encode("latin-1")),
        chunk(b"zTXt", b"note\0\0" + zlib.compress(b"compressed text")),
        chunk(b"iTXt", b"title\0\0\0en\0\0" + "iTXt ☕".encode()))
    jpeg, webp = tmp_path / "a.jpg", tmp_path / "a.webp"
    for path in (jpeg, webp):
        Image.new("RGB", (64, 64)).save(path, exif=exif_with_user_comment(A1111_TEXT))

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels decoded to read text")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    chunks = text_chunks(after)
    assert chunks["parameters"] == A1111_TEXT and chunks["note"] == "compressed text" and chunks["title"] == "iTXt ☕"
    for path in (after, jpeg, webp):
        assert read_parameters(path)["seed"] == 1234


def test_damaged_files_raise_only_the_documented_error(tmp_path):
    """Truncations and flipped bytes anywhere in a PNG, a JPEG and a WebP: parameters, None, or one
    UnreadableImageError; never anything else."""
    sources = [png(tmp_path / "c.png", {"prompt": json.dumps(COMFY_PROMPT), "parameters": A1111_TEXT})]
    for name in ("d.jpg", "d.webp"):
        Image.new("RGB", (24, 16), (90, 20, 200)).save(tmp_path / name, exif=exif_with_user_comment(A1111_TEXT))
        sources.append(tmp_path / name)
    rng = random.Random(7)
    outcomes = set()
    for source in sources:
        data = source.read_bytes()
        for trial in range(120):
            damaged = bytearray(data)
            if trial % 3 == 0:
                damaged = damaged[: rng.randrange(len(data))]
            else:
                for _ in range(rng.randint(1, 4)):
                    damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            target = tmp_path / f"damaged{source.suffix}"
            target.write_bytes(bytes(damaged))
            try:
                outcomes.add(type(read_parameters(target)).__name__)
            except UnreadableImageError as error:
                assert "\n" not in str(error) and target.name in str(error)
                outcomes.add("error")
    assert {"dict", "error"} <= outcomes


def test_a_damaged_text_chunk_is_skipped_and_a_cut_file_keeps_what_came_before(tmp_path):
    bomb = chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b" " * (40 * 2**20), 9))  # inflates past 32 MB
    bad_crc = chunk(b"tEXt", b"prompt\0{}")[:-4] + b"\0\0\0\0"
    broken_stream = chunk(b"zTXt", b"workflow\0\0not zlib")
    path = with_chunks_after_the_pixels(png(tmp_path / "odd.png", {"parameters": A1111_TEXT}), bomb, bad_crc,
                                        broken_stream)
    assert text_chunks(path) == {"parameters": A1111_TEXT}
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: data.index(b"IDAT") + 20])  # cut inside the pixels, after the text
    assert read_parameters(cut)["seed"] == 1234


def test_a_huge_jpeg_is_read_from_its_header(tmp_path):
    path = tmp_path / "huge.jpg"
    Image.new("RGB", (16, 8)).save(path, exif=exif_with_user_comment(A1111_TEXT))
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", 20000, 20000)  # 400 megapixels: past Pillow's bomb limit
    path.write_bytes(bytes(data))
    assert read_parameters(path)["seed"] == 1234


@pytest.mark.parametrize("tag_type, value", [(5, (1, 3)), (4, 0xFFFFFFFF), (8, -1), (3, 300)])
def test_a_user_comment_that_is_a_number_is_no_text(tmp_path, tag_type, value):
    """UserComment of type RATIONAL, LONG (4 GB, were it taken as a length), SSHORT or SHORT: no text."""
    fmt = {5: ">II", 4: ">I", 8: ">h", 3: ">H"}[tag_type]
    payload = struct.pack(fmt, *(value if isinstance(value, tuple) else (value,)))
    offset = 8 + 2 + 12 + 4
    inline = len(payload) <= 4
    entry = struct.pack(">HHI", 0x9286, tag_type, 1) + (payload.ljust(4, b"\0") if inline else struct.pack(">I", offset + 18))
    exif = (b"Exif\0\0MM\0*" + struct.pack(">I", 8) + struct.pack(">HHHII", 1, 0x8769, 4, 1, offset) + b"\0" * 4
            + struct.pack(">H", 1) + entry + b"\0" * 4 + (b"" if inline else payload))
    for suffix in (".jpg", ".webp"):
        path = tmp_path / f"number{suffix}"
        Image.new("RGB", (16, 8)).save(path, exif=exif)
        assert read_parameters(path) is None


# --------------------------------------------------------------------------------- the infotext parser


def test_find_pairs_is_a1111s_regular_expression():
    """On 30,000 random lines over the characters that matter (word characters, spaces, ',', ':', quotes,
    backslashes, '-', '/', tabs) the linear scanner finds what A1111's findall finds."""
    alphabet = "aZ1 ,:\"\\-/\t_é"
    rng = random.Random(3)
    for _ in range(30000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert find_pairs(line) == A1111_PARAM.findall(line), line
    real = A1111_TEXT.split("\n")[-1] + ', Lora hashes: "a: 1, b: 2", Note: "unclosed, x'
    assert find_pairs(real) == A1111_PARAM.findall(real)
    for line in ('ab: "x"\n', 'ab: "x\ny", cd: 1', "ab:\u2003 c, de:\r", 'ab: "q\\"'):  # `$` before a final newline
        assert find_pairs(line) == A1111_PARAM.findall(line), line


def test_a_huge_line_is_still_a_prompt():
    line = "masterpiece " * 10000  # 120,000 characters, no colon (A1111's expression takes minutes on it)
    text = f"{line}\nSteps: 20, Sampler: Euler, Seed: 1, Size: 64x64"
    assert is_infotext(text) and not is_infotext(line)
    assert parse_parameters(text)["prompt"] == line.strip()
    assert parse_parameters(line)["prompt"] == line.strip()
