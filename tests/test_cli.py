"""The `sd-desktop` command line, run end to end in subprocesses with a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sd_desktop.core.io.metadata import read_parameters

from tiny_models import ldm_state_dict, save_single_file, tiny_parts


pytestmark = pytest.mark.slow  # each test runs the command in a fresh process

@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_single_file(tiny_parts(seed=50), tmp_path_factory.mktemp("model") / "tiny.safetensors")


def cli(*args, cwd=None):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "sd_desktop", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_generate_writes_pngs_with_parameters_and_prints_path_and_seed(model_file, tmp_path):
    out = cli("generate", "--prompt", "a red circle", "--negative-prompt", "blurry", "--model", model_file,
              "--steps", "3", "--seed", "42", "--width", "64", "--height", "48", "--batch", "2",
              "--sampler", "euler", "--schedule", "normal", "--output-dir", tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [line.split("\t")[1] for line in lines] == ["seed 42", "seed 43"]
    paths = [line.split("\t")[0] for line in lines]
    assert [os.path.basename(p) for p in paths] == ["00000-42.png", "00001-43.png"]
    assert "3/3" in out.stderr and "\r" not in out.stderr  # the progress bar: lines, not redraws, in a log
    params = read_parameters(paths[1])
    assert params["prompt"] == "a red circle" and params["negative_prompt"] == "blurry" and params["seed"] == 43
    assert Image.open(paths[0]).size == (64, 48)

    info = cli("info", paths[0])
    assert info.returncode == 0
    assert "Negative prompt: blurry" in info.stdout and "Sampler: Euler, Schedule type: Normal" in info.stdout


def test_img2img_and_inpainting_with_a_mask_of_another_size(model_file, tmp_path):
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (30, 160, 60)).save(init)
    mask = tmp_path / "mask.png"
    small = Image.new("L", (16, 16), 0)
    small.paste(255, (8, 0, 16, 16))
    small.save(mask)
    target = tmp_path / "out.png"
    out = cli("generate", "--prompt", "a white square", "--model", model_file, "--steps", "4", "--seed", "1",
              "--init-image", init, "--mask", mask, "--mask-blur", "2", "--strength", "0.5", "--output", target)
    assert out.returncode == 0, out.stderr
    result = Image.open(target)
    assert result.size == (64, 64)
    assert result.crop((0, 0, 24, 64)).getcolors() == [(24 * 64, (30, 160, 60))]  # kept exactly
    assert read_parameters(target)["mode"] == "inpaint"


@pytest.mark.parametrize("args, words", [
    (["--steps", "0"], "steps must be at least 1"),
    (["--width", "-64"], "width must be a positive"),
    (["--strength", "1.7", "--init-image", "IMG"], "strength must be between 0 and 1"),
    (["--init-image", "/no/such/image.png"], "image file not found"),
    (["--model", "BROKEN"], "not a valid safetensors file"),
    (["--model", "/no/such/model.safetensors"], "model file not found"),
    (["--mask", "IMG"], "--mask needs --init-image"),
    (["--device", "tpu"], "error: unknown device 'tpu'; use auto, cpu, cuda or mps"),
    (["--precision", "fp8"], "error: unknown precision 'fp8'"),
    (["--sampler", "DPM++ 2M Kraras"], "unknown sampler 'DPM++ 2M Kraras'; did you mean 'DPM++ 2M Karras'?"),
    (["--schedule", "karas"], "unknown schedule 'karas'; did you mean 'Karras'?"),
    (["--emphasis", "loud"], "emphasis"),
    (["--model", "NAN", "--precision", "fp16"], "the model overflowed in float16; choose bf16 or fp32"),
    (["--device", "cpu", "--cuda-graphs"], "CUDA graphs need a CUDA GPU, not the CPU; load the model without them"),
    (["--compile", "fastest"], "unknown compile mode 'fastest'; use one of default, reduce-overhead, max-autotune"),
])
def test_bad_input_gives_one_clear_line_and_writes_nothing(model_file, tmp_path, args, words):
    image = tmp_path / "image.png"
    Image.new("RGB", (64, 64)).save(image)
    broken = tmp_path / "broken.safetensors"
    broken.write_text("not a model")
    nan = tmp_path / "nan.safetensors"  # a model whose output overflows float16: a black picture, were it saved
    state = ldm_state_dict(tiny_parts(seed=50))
    state["model.diffusion_model.out.2.bias"] = torch.full_like(state["model.diffusion_model.out.2.bias"], 1e5)
    save_file(state, str(nan))
    files = {"IMG": str(image), "BROKEN": str(broken), "NAN": str(nan)}
    args = [files.get(a, a) for a in args]
    if "--model" not in args:
        args += ["--model", str(model_file)]
    out_dir = tmp_path / "out"
    result = cli("generate", "--prompt", "x", "--steps", "2", "--output-dir", out_dir, *args)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("sd-desktop:")]
    assert len(errors) == 1 and words in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out_dir.exists() or not any(out_dir.iterdir())
    if {"--sampler", "--schedule", "--emphasis"} & set(args):
        assert "loaded" not in result.stderr  # refused before the model loads


def test_a1111_labels_and_a_jpeg_with_the_infotext_in_exif(model_file, tmp_path):
    target = tmp_path / "fox.jpg"
    out = cli("generate", "--prompt", "a (red:1.2) fox", "--model", model_file, "--steps", "3", "--seed", "11",
              "--width", "64", "--height", "48", "--sampler", "DPM++ 2M SDE", "--schedule", "Karras",
              "--clip-skip", "2", "--rng", "nv", "--output", target)
    assert out.returncode == 0, out.stderr
    with Image.open(target) as image:
        assert image.format == "JPEG" and image.size == (64, 48)
    info = cli("info", target)
    assert info.returncode == 0, info.stderr
    assert "Sampler: DPM++ 2M SDE, Schedule type: Karras" in info.stdout
    assert "Clip skip: 2" in info.stdout and "RNG: NV" in info.stdout
    params = read_parameters(target)
    assert (params["sampler"], params["schedule"], params["rng"], params["seed"]) == ("dpmpp_2m_sde", "karras", "nv", 11)

    legacy = cli("generate", "--prompt", "x", "--model", model_file, "--steps", "2", "--seed", "1", "--width", "64",
                 "--height", "64", "--sampler", "Euler a", "--output", tmp_path / "a.webp")  # no --schedule: Euler a's own
    assert legacy.returncode == 0, legacy.stderr
    assert read_parameters(tmp_path / "a.webp")["schedule"] == "normal"
    refused = cli("generate", "--prompt", "x", "--model", model_file, "--output", tmp_path / "out.xyz")
    assert refused.returncode == 1 and "name a .png, .jpg or .webp" in refused.stderr and "loaded" not in refused.stderr


def test_info_on_a_comfyui_image_prints_what_it_found(tmp_path):
    from PIL import PngImagePlugin

    graph = {"3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 9, "cfg": 4.5, "sampler_name": "euler",
                                                        "scheduler": "karras", "denoise": 1, "positive": ["6", 0]}},
             "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lake"}}}
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(graph))
    path = tmp_path / "comfy.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    result = cli("info", path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["source"], shown["prompt"], shown["seed"], shown["schedule"]) == ("ComfyUI", "a lake", 5, "karras")


def test_debug_shows_the_traceback(tmp_path):
    result = cli("--debug", "generate", "--prompt", "x", "--model", tmp_path / "missing.safetensors")
    assert result.returncode != 0 and "Traceback" in result.stderr
    anywhere = cli("generate", "--prompt", "x", "--model", tmp_path / "missing.safetensors", "--debug")
    assert anywhere.returncode != 0 and "Traceback" in anywhere.stderr  # at the end of the line too
    plain = cli("generate", "--prompt", "x", "--model", tmp_path / "missing.safetensors")
    assert "Traceback" not in plain.stderr


@pytest.mark.parametrize("option, message", [(("--steps", "0"), "steps must be at least 1"),
                                             (("--width", "-8"), "width must be a positive number of pixels"),
                                             (("--strength", "1.7"), "strength must be between 0 and 1")])
def test_bad_values_fail_before_the_model_loads(option, message):
    result = cli("generate", "--prompt", "x", *option)
    assert result.returncode == 1 and message in result.stderr and "loaded" not in result.stderr


def test_train_help_lists_the_stages_without_torch():
    import subprocess

    code = ("import sys; from sd_desktop.cli import main\n"
            "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch loaded' if 'torch' in sys.modules else 'no torch')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert all(stage in result.stdout for stage in ("vae ", "diffusion ", "export ", "all "))
    assert result.stdout.strip().endswith("no torch")


def test_interpolate_writes_frames_and_an_animation(model_file, tmp_path):
    for name, colour in (("a.png", (220, 30, 30)), ("b.png", (40, 70, 220))):
        Image.new("RGB", (64, 64), colour).save(tmp_path / name)
    out = cli("interpolate", "--image-a", tmp_path / "a.png", "--image-b", tmp_path / "b.png", "--frames", "3",
              "--steps", "3", "--model", model_file, "--output-dir", tmp_path / "frames")
    assert out.returncode == 0, out.stderr
    written = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert written == ["frame-000.png", "frame-001.png", "frame-002.png", "interpolation.gif"]
    assert Image.open(tmp_path / "frames" / "interpolation.gif").n_frames == 3


def test_info_on_an_image_without_parameters(tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    result = cli("info", plain)
    assert result.returncode == 1 and "carries no generation parameters" in result.stderr


def test_version():
    from sd_desktop import __version__

    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"sd-desktop {__version__}"


def test_without_a_display_the_app_says_to_use_generate_instead_of_aborting(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "sd_desktop"], capture_output=True, text=True, env=env, timeout=120)
    if sys.platform.startswith(("win", "darwin")):
        pytest.skip("Windows and macOS always have a display")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "sd-desktop: there is no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); "
        "use `sd-desktop generate --prompt ...` to generate without a window"]


def test_a_missing_system_library_names_the_package_to_install(monkeypatch, capsys):
    """PySide6 imports, but Qt's own libraries need libEGL/libxkbcommon ... that a minimal system lacks."""
    from sd_desktop import cli

    class MissingLibrary:
        def find_spec(self, name, path=None, target=None):
            if name == "sd_desktop.app.main":
                raise ImportError("libEGL.so.1: cannot open shared object file: No such file or directory")
            return None

    monkeypatch.delitem(sys.modules, "sd_desktop.app.main", raising=False)
    monkeypatch.setattr(sys, "meta_path", [MissingLibrary(), *sys.meta_path])
    monkeypatch.setenv("DISPLAY", ":0")
    assert cli.run_gui(None) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("sd-desktop: the window needs the system library libEGL.so.1, which is missing")
    assert "sudo apt install libegl1" in line and "sudo dnf install mesa-libEGL" in line
    assert "libxcb-cursor0" in cli.missing_library_message(ImportError("libxcb-cursor.so.0: cannot open shared object"))
    assert "pip install PySide6-Essentials" in cli.missing_library_message(
        ModuleNotFoundError("No module named 'PySide6'", name="PySide6"))
    assert cli.has_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not cli.has_display({}, "linux") and cli.has_display({}, "win32") and cli.has_display({}, "darwin")


def test_loras_from_files_and_from_prompt_tags(model_file, tmp_path):
    from test_lora import kohya_lora

    lora_dir = tmp_path / "Lora"
    lora_dir.mkdir()
    save_file(kohya_lora(tiny_parts(seed=50)), str(lora_dir / "ink.safetensors"))
    common = ["--model", model_file, "--steps", "3", "--seed", "5", "--width", "64", "--height", "64"]
    by_file = cli("generate", "--prompt", "a cat", "--lora", f"{lora_dir / 'ink.safetensors'}:0.7", *common,
                  "--output", tmp_path / "file.png")
    by_tag = cli("generate", "--prompt", "a cat <lora:ink:0.7>", "--lora-dir", lora_dir, *common,
                 "--output", tmp_path / "tag.png")
    plain = cli("generate", "--prompt", "a cat", *common, "--output", tmp_path / "plain.png")
    assert by_file.returncode == by_tag.returncode == plain.returncode == 0, by_file.stderr + by_tag.stderr
    pixels = {name: Image.open(tmp_path / f"{name}.png").tobytes() for name in ("file", "tag", "plain")}
    assert pixels["file"] == pixels["tag"] != pixels["plain"]
    info = cli("info", tmp_path / "tag.png").stdout
    assert info.startswith("a cat <lora:ink:0.7>\n") and 'Lora hashes: "ink: ' in info
    missing = cli("generate", "--prompt", "a cat <lora:nope:1>", "--lora-dir", lora_dir, *common)
    assert missing.returncode == 1 and "LoRA 'nope' is not in the LoRA folders" in missing.stderr
    assert "loaded" not in missing.stderr  # found out before the model loads
    from sd_desktop.cli import lora_argument
    from sd_desktop.core.request import LoraRef

    path = str(lora_dir / "ink.safetensors")
    assert lora_argument(f"{path}:0.3:0.8") == LoraRef(path, 0.8, 0.3)  # FILE:TE:UNET, as <lora:ink:0.3:0.8>
    assert lora_argument(path) == LoraRef(path)
    with pytest.raises(ValueError, match="the weight 'nan' is not a number"):
        lora_argument(f"{path}:nan")
    with pytest.raises(ValueError, match="no such file"):
        lora_argument(f"{lora_dir / 'gone.safetensors'}:0.5")
    twice = cli("generate", "--prompt", "a cat", "--lora", path, "--lora", f"{path}:0.5", *common)
    assert twice.returncode == 1 and "--lora ink.safetensors is given twice" in twice.stderr
    assert "loaded" not in twice.stderr
    from sd_desktop.core.io.metadata import PARAMETERS_KEY

    with Image.open(tmp_path / "file.png") as image:  # the A1111 text names it as A1111 does, with its weight
        assert image.info[PARAMETERS_KEY].startswith("a cat <lora:ink:0.7>\n")
    assert read_parameters(tmp_path / "file.png")["prompt"] == "a cat"  # (our record keeps the prompt as typed)
    as_jpeg = cli("generate", "--prompt", "a cat", "--lora", f"{path}:0.7", *common, "--output", tmp_path / "f.jpg")
    assert as_jpeg.returncode == 0, as_jpeg.stderr
    assert read_parameters(tmp_path / "f.jpg")["prompt"] == "a cat <lora:ink:0.7>"  # a JPEG keeps only that text


def test_upscale_keeps_the_parameters_and_says_what_it_did(model_file, tmp_path):
    """A generated image upscaled x2 by name: its A1111 text and our JSON carried over, A1111's postprocessing
    line added; RGBA kept; a typo gets the nearest names; `models list` shows the bundled models."""
    result = cli("generate", "--model", model_file, "--prompt", "a red circle", "--steps", "1", "--seed", "5",
                 "--width", "32", "--height", "24", "--output", tmp_path / "gen.png")
    assert result.returncode == 0, result.stderr
    result = cli("upscale", tmp_path / "gen.png", "--scale", "2", "--model", "REALESR-ANIMEVIDEOV3-X2")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "gen-x2.png"
    assert result.stdout.strip() == str(out) and "1/1 " in result.stderr
    with Image.open(out) as image:
        assert image.size == (64, 48)
        assert image.info["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: realesr-animevideov3-x2"
    assert read_parameters(out)["prompt"] == "a red circle" and read_parameters(out)["seed"] == 5

    rgba = Image.new("RGBA", (20, 10), (200, 30, 30, 90))
    rgba.save(tmp_path / "glass.png")
    result = cli("upscale", tmp_path / "glass.png", "--output", tmp_path / "big.webp")  # default scale 4
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "big.webp") as image:
        assert image.size == (80, 40) and image.mode == "RGBA" and image.getpixel((40, 20))[3] in range(85, 96)

    result = cli("upscale", tmp_path / "glass.png", "--model", "realesr-animevideo-x3")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "did you mean realesr-animevideov3-x3" in result.stderr
    result = cli("upscale", tmp_path / "missing.png")
    assert result.returncode == 1 and "image file not found" in result.stderr
    result = cli("models", "list")
    assert result.returncode == 0 and "realesr-animevideov3-x4" in result.stdout and "import-upscalers" in result.stderr


def test_hires_fix_and_the_inpainting_options_from_the_command_line(model_file, tmp_path):
    result = cli("generate", "--model", model_file, "--prompt", "a red circle", "--steps", "2", "--seed", "3",
                 "--width", "32", "--height", "32", "--hires", "1.5", "--hires-upscaler", "Lanczos",
                 "--strength", "0.5", "--output", tmp_path / "hires.png")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "hires.png") as image:
        assert image.size == (48, 48) and "Hires upscale: 1.5, Hires upscaler: Lanczos" in image.info["parameters"]
    Image.new("L", (48, 48), 255).save(tmp_path / "mask.png")
    result = cli("generate", "--model", model_file, "--prompt", "x", "--steps", "2", "--init-image",
                 tmp_path / "hires.png", "--mask", tmp_path / "mask.png", "--masked-content", "latent noise",
                 "--soft-inpainting", "--resize-mode", "crop and resize", "--width", "64", "--height", "32",
                 "--output", tmp_path / "edit.png")
    assert result.returncode == 0, result.stderr
    params = read_parameters(tmp_path / "edit.png")
    assert (params["masked_content"], params["soft_inpainting"], params["resize_mode"]) == (
        "latent noise", True, "crop and resize")
    result = cli("generate", "--model", model_file, "--prompt", "x", "--hires", "9")
    assert result.returncode == 1 and "--hires must be from 1 to 4" in result.stderr  # the option, as typed


def test_the_hires_second_pass_takes_its_own_sampler_schedule_and_cfg_from_the_command_line(model_file, tmp_path):
    result = cli("generate", "--model", model_file, "--prompt", "x", "--steps", "2", "--seed", "3", "--width", "32",
                 "--height", "32", "--hires", "1.5", "--hires-sampler", "DPM++ 2M", "--hires-schedule", "Exponential", "--hires-cfg", "3",
                 "--output", tmp_path / "hires.png")
    assert result.returncode == 0, result.stderr
    text = Image.open(tmp_path / "hires.png").info["parameters"]
    assert "Hires schedule type: Exponential, Hires CFG Scale: 3.0" in text and "Hires sampler" not in text  # as the first
    params = read_parameters(tmp_path / "hires.png")
    assert (params["hires_sampler"], params["hires_schedule"], params["hires_cfg"]) == ("dpmpp_2m", "exponential", 3.0)

    result = cli("generate", "--model", model_file, "--prompt", "x", "--hires-schedule", "Automatic")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "give --hires-sampler too" in result.stderr
    result = cli("generate", "--model", model_file, "--prompt", "x", "--steps", "1", "--width", "32", "--height", "32",
                 "--hires-cfg", "3", "--output", tmp_path / "plain.png")
    assert result.returncode == 0 and "note: --hires-cfg does nothing without --hires" in result.stderr
    assert "Hires" not in Image.open(tmp_path / "plain.png").info["parameters"]


def test_taesd_decode_from_the_command_line(model_file, tmp_path):
    from diffusers import AutoencoderTiny
    from safetensors.torch import save_file

    result = cli("generate", "--model", model_file, "--prompt", "x", "--steps", "1", "--taesd-decode")
    assert result.returncode == 1 and "put taesd_decoder.safetensors in models/vae_approx" in result.stderr
    folder = model_file.parent.parent / "vae_approx"  # ComfyUI's place, beside the models folder
    folder.mkdir(exist_ok=True)
    decoder = {f"{int(k.split('.')[2]) + 1}.{'.'.join(k.split('.')[3:])}": v
               for k, v in AutoencoderTiny().state_dict().items() if k.startswith("decoder.layers.")}
    save_file(decoder, str(folder / "taesd_decoder.safetensors"))
    result = cli("generate", "--model", model_file, "--prompt", "x", "--steps", "1", "--width", "32", "--height",
                 "32", "--taesd-decode", "--output", tmp_path / "fast.png")
    assert result.returncode == 0, result.stderr
    assert read_parameters(tmp_path / "fast.png")["taesd_decode"] is True


def test_a_taesd_file_given_is_the_decode_and_is_named_in_the_image(model_file, tmp_path):
    from diffusers import AutoencoderTiny
    from safetensors.torch import save_file

    missing = cli("generate", "--model", model_file, "--prompt", "x", "--taesd", tmp_path / "nope.safetensors")
    assert missing.returncode == 1 and "--taesd" in missing.stderr and "no such file" in missing.stderr
    assert "loaded" not in missing.stderr  # found out before the model loads
    tiny = tmp_path / "my-taesd.safetensors"
    save_file(AutoencoderTiny().state_dict(), str(tiny))
    result = cli("generate", "--model", model_file, "--prompt", "x", "--steps", "1", "--width", "32", "--height",
                 "32", "--taesd", tiny, "--output", tmp_path / "fast.png")
    assert result.returncode == 0, result.stderr
    assert read_parameters(tmp_path / "fast.png")["taesd_decode"] is True
    with Image.open(tmp_path / "fast.png") as image:
        assert "Decoder: TAESD, TAESD: my-taesd" in image.info["parameters"]


def test_odd_command_lines_are_read_as_a1111_users_mean_them_or_refused_at_once(model_file, tmp_path):
    common = ["--model", model_file, "--prompt", "x", "--steps", "1", "--width", "32", "--height", "32"]
    random = cli("generate", *common, "--seed", "-1", "--output", tmp_path / "r.png")
    assert random.returncode == 0, random.stderr  # -1: random, as in A1111
    assert read_parameters(tmp_path / "r.png")["seed"] == int(random.stdout.split("seed ")[-1])
    (tmp_path / "folder").mkdir()
    for output, words in (("noext", "name a .png, .jpg or .webp file"), ("a.bmp", "name a .png, .jpg or .webp"),
                          ("folder", "is a folder; give a file name (a.png), or use --output-dir")):
        result = cli("generate", *common, "--output", tmp_path / output)
        assert result.returncode == 1 and words in result.stderr and "loaded" not in result.stderr, result.stderr
    empty = cli("generate", *common, "--preset", "")
    assert empty.returncode == 1 and "preset '' is unknown" in empty.stderr
    negative = cli("generate", *common, "--cfg", "-5")
    assert negative.returncode == 1 and "error: --cfg must be 0 or more" in negative.stderr
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    no_steps = cli("interpolate", "--model", model_file, "--image-a", tmp_path / "a.png", "--image-b",
                   tmp_path / "a.png", "--steps", "0", "--output-dir", tmp_path / "morph")
    assert no_steps.returncode == 1 and "--steps must be at least 1" in no_steps.stderr
    assert "loaded" not in no_steps.stderr


def test_models_list_does_not_take_checkpoints_for_upscalers(tmp_path):
    models = tmp_path / "models"
    for folder, name in (("Stable-diffusion", "sd15.safetensors"), ("Lora", "ink.safetensors"),
                         ("ESRGAN", "4x-mine.pth")):
        (models / folder).mkdir(parents=True)
        (models / folder / name).write_bytes(b"x")
    (models / "loose-upscaler.pth").write_bytes(b"x")  # (a file in the folder given itself)
    (models / "mine").mkdir()
    (models / "mine" / "2x-sorted.pth").write_bytes(b"x")  # (and one in a folder of the user's own)
    listed = cli("models", "list", "--models-dir", models)
    assert listed.returncode == 0, listed.stderr
    assert "4x-mine" in listed.stdout and "loose-upscaler" in listed.stdout and "2x-sorted" in listed.stdout
    assert "sd15" not in listed.stdout and "ink" not in listed.stdout


def test_ctrl_c_and_a_closed_pipe_end_quietly(tmp_path, monkeypatch, capsys):
    import sd_desktop.self_test
    from sd_desktop.cli import main

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sd_desktop.self_test, "run_self_test", interrupted)
    assert main(["--self-test"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    with monkeypatch.context() as windowed:  # a windowed build (pythonw, console=False) has no stdout at all
        windowed.setattr(sys, "stdout", None)
        assert main(["models", "list"]) == 0
    from PIL import PngImagePlugin

    image, text = tmp_path / "made.png", PngImagePlugin.PngInfo()
    text.add_text("parameters", "a cat\nNegative prompt: \nSteps: 20, Sampler: Euler, Seed: 1, Size: 8x8")
    Image.new("RGB", (8, 8)).save(image, pnginfo=text)
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # (its output waits for the exit)
    reader = subprocess.Popen([sys.executable, "-m", "sd_desktop", "info", str(image)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=buffered)
    reader.stdout.close()  # as `| head -0` would
    assert reader.wait(timeout=120) == 0 and reader.stderr.read() == b""  # it had done its work: 0
    writer = subprocess.Popen([sys.executable, "-m", "sd_desktop", "generate", "--prompt", "x", "--steps", "2",
                               "--width", "32", "--height", "32", "--output", str(tmp_path / "never.png")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer.stderr.close()  # its messages' reader gone before the job is done: not 0, as if killed by the pipe
    assert writer.wait(timeout=300) == 141 and writer.stdout.read() == b""


def test_presets_from_the_command_line(model_file, tmp_path):
    result = cli("generate", "--model", model_file, "--prompt", "x", "--preset", "fast", "--steps", "2", "--width",
                 "32", "--height", "32", "--output", tmp_path / "fast.png")
    assert result.returncode == 0, result.stderr
    params = read_parameters(tmp_path / "fast.png")
    assert (params["sampler"], params["schedule"], params["steps"], params["cfg_scale"]) == ("lcm", "sgm_uniform", 2, 1.5)
    result = cli("generate", "--model", model_file, "--prompt", "x", "--preset", "fastest")
    assert result.returncode == 1 and "preset 'fastest' is unknown" in result.stderr


def test_an_sdxl_file_with_its_options(tmp_path):
    from tiny_models import save_sdxl_single_file, tiny_sdxl_parts

    model = save_sdxl_single_file(tiny_sdxl_parts(seed=41), tmp_path / "xl_tiny.safetensors", v_pred=True)
    out = cli("generate", "--prompt", "a red circle", "--model", model, "--steps", "2", "--seed", "3", "--width", "64",
              "--height", "48", "--rescale-cfg", "0.7", "--original-size", "128x96", "--crop-position", "16x8",
              "--noise-schedule", "zsnr", "--output", tmp_path / "xl.png")
    assert out.returncode == 0, out.stderr
    text = Image.open(tmp_path / "xl.png").info["parameters"]
    assert "Noise Schedule: Zero Terminal SNR" in text
    assert "CFG Rescale: 0.7, Original size: 128x96, Crop position: 16x8" in text
    assert json.loads(Image.open(tmp_path / "xl.png").info["sd-desktop"])["family"] == "sdxl"
    bad = cli("generate", "--prompt", "x", "--model", model, "--original-size", "big")
    assert bad.returncode != 0 and "not two numbers of pixels such as 1024x768" in bad.stderr


def test_self_test_does_not_take_a_command_for_its_model(tmp_path, monkeypatch, capsys):
    import argparse

    import sd_desktop.self_test
    from sd_desktop.cli import COMMANDS, build_parser, main

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(commands.choices) == sorted(COMMANDS)  # the list the check reads is the parser's own
    ran = []
    monkeypatch.setattr(sd_desktop.self_test, "run_self_test", lambda model, debug=False: ran.append(model) or 0)
    with pytest.raises(SystemExit) as refused:
        main(["--self-test", "models"])
    assert refused.value.code == 2 and ran == []
    assert "--self-test took 'models' for its MODEL; it runs on its own" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # a models folder (this app's own layout) is not a model
    with pytest.raises(SystemExit):
        main(["--self-test", "models"])
    (tmp_path / "models" / "model_index.json").write_text("{}")  # a diffusers folder so named is
    assert main(["--self-test", "models"]) == 0 and [str(model) for model in ran] == ["models"]
    ran.clear()
    (tmp_path / "models" / "model_index.json").unlink()
    (tmp_path / "models").rmdir()
    (tmp_path / "models").write_bytes(b"")  # a file really named so is the user's model
    assert main(["--self-test", "models"]) == 0 and [str(model) for model in ran] == ["models"]


def test_a1111_sampler_settings_eta_and_ensd_reach_the_image(model_file, tmp_path):
    out = cli("generate", "--prompt", "x", "--model", model_file, "--steps", "2", "--seed", "3", "--sampler", "Euler a",
              "--width", "64", "--height", "64", "--ancestral-eta", "0.5", "--ensd", "31337", "--output", tmp_path / "a.png")
    assert out.returncode == 0, out.stderr
    text = Image.open(tmp_path / "a.png").info["parameters"]
    assert "Eta: 0.5, " in text and "ENSD: 31337, " in text
    bad = cli("generate", "--prompt", "x", "--model", model_file, "--ancestral-eta", "-1")
    assert bad.returncode == 1 and "error: --ancestral-eta must be from 0 to 1 " in bad.stderr


def test_seed_resize_from_reaches_the_image_and_a_bad_one_fails_before_the_load(model_file, tmp_path):
    out = cli("generate", "--prompt", "x", "--model", model_file, "--steps", "2", "--seed", "3", "--width", "64",
              "--height", "64", "--seed-resize-from", "48x64", "--output", tmp_path / "a.png")
    assert out.returncode == 0, out.stderr
    assert "Seed resize from: 48x64, " in Image.open(tmp_path / "a.png").info["parameters"]
    same = cli("generate", "--prompt", "x", "--model", model_file, "--steps", "1", "--width", "64", "--height", "64",
               "--seed-resize-from", "64x64", "--output", tmp_path / "b.png")
    assert same.returncode == 0 and "note: seed resize from 64x64 is the picture's own size" in same.stderr
    bad = cli("generate", "--prompt", "x", "--model", tmp_path / "missing.safetensors", "--seed-resize-from", "4x64")
    assert bad.returncode == 1 and "error: --seed-resize-from must be a width and a height from 8" in bad.stderr
