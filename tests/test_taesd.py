"""TAESD: our tiny decoder and encoder equal to diffusers' AutoencoderTiny on random weights (<= 1e-4), loaded from
diffusers' single file and from the original taesd_decoder / taesd_encoder layout (.pth and .safetensors)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sd_desktop.core.errors import UnsupportedModelError
from sd_desktop.core.loading.taesd import load_taesd


@pytest.fixture(scope="module")
def reference():
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    model = AutoencoderTiny()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # (off its initial values)
    return model.eval()


def test_our_tiny_autoencoder_equals_diffusers(reference, tmp_path):
    from safetensors.torch import save_file

    save_file(reference.state_dict(), str(tmp_path / "diffusion_pytorch_model.safetensors"))
    ours = load_taesd(tmp_path / "diffusion_pytorch_model.safetensors")
    latents = torch.randn(2, 4, 8, 12)
    pictures = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = reference.decode(latents).sample  # diffusers gives [-1, 1]
        encoded = reference.encode(pictures * 2 - 1).latents  # and takes [-1, 1]
    decoded = ours.decoder(latents)  # ours: [0, 1], unclamped here for the comparison
    assert (decoded * 2 - 1 - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max().item())
    assert (ours.encode(pictures) - encoded).abs().max() <= 1e-4 * max(1.0, encoded.abs().max().item())
    assert ours.decode(latents).min() >= 0 and ours.decode(latents).max() <= 1
    assert sum(p.numel() for p in ours.decoder.parameters()) < 1.3e6


def test_the_original_layout_loads_from_pth_and_safetensors(reference, tmp_path):
    from safetensors.torch import save_file

    state = reference.state_dict()
    decoder = {f"{int(k.split('.')[2]) + 1}.{'.'.join(k.split('.')[3:])}": v for k, v in state.items()
               if k.startswith("decoder.layers.")}
    encoder = {f"{k.split('.')[2]}.{'.'.join(k.split('.')[3:])}": v for k, v in state.items()
               if k.startswith("encoder.layers.")}
    torch.save(decoder, tmp_path / "taesd_decoder.pth")
    save_file(encoder, str(tmp_path / "taesd_encoder.safetensors"))
    both = load_taesd(tmp_path / "taesd_decoder.pth", tmp_path / "taesd_encoder.safetensors")
    only = load_taesd(tmp_path / "taesd_decoder.pth")
    latents = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        expected = (reference.decode(latents).sample + 1) / 2
    assert torch.allclose(both.decoder(latents), expected, atol=1e-5) and only.encoder is None
    assert both.encoder is not None and both.latent_channels == 4
    save_file({"foo.weight": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(UnsupportedModelError, match="other.safetensors: unexpected key 'foo.weight'"):
        load_taesd(tmp_path / "other.safetensors")


def test_a_model_decodes_and_previews_with_its_taesd(reference, tmp_path):
    from safetensors.torch import save_file

    from sd_desktop import core
    from sd_desktop.core.io.infotext import format_parameters, parse_parameters
    from sd_desktop.core.io.metadata import request_from_parameters

    from tiny_models import save_diffusers_folder, tiny_parts

    model = core.load_model(save_diffusers_folder(tiny_parts(seed=53), tmp_path / "m"), device="cpu", dtype="fp32")
    request = core.GenerationRequest(prompt="a red circle", steps=3, seed=4, width=64, height=48, taesd_decode=True)
    with pytest.raises(core.InvalidRequestError, match="taesd_decode asks for a TAESD decode, but none is loaded"):
        core.generate(model, request)
    save_file(reference.state_dict(), str(tmp_path / "taesd.safetensors"))
    model.use_taesd(tmp_path / "taesd.safetensors", previews=True)
    steps, previews = [], []
    result = core.generate(model, request, on_step=lambda info: (previews if info.preview is not None else steps)
                           .append(info.step if info.preview is None else info.preview.shape))
    assert steps == [1, 2, 3]  # progress at every step, at once
    # full-size previews from the tiny decoder (the linear ones are 1/8), the newest of them as they are decoded
    assert previews and set(previews) == {(48, 64, 3)}
    expected = (model.taesd.decode(result.latents)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
    assert np.abs(expected.astype(int) - np.asarray(result.images[0]).astype(int)).max() <= 1
    plain = core.generate(model, dataclasses.replace(request, taesd_decode=False))
    assert torch.equal(plain.latents, result.latents)  # the same sampling; only the decode differs
    text = format_parameters(request, seed=4, width=64, height=48, model_name="m", model_hash=None, mode="txt2img")
    assert "Decoder: TAESD" in text and request_from_parameters(parse_parameters(text)).taesd_decode is True
    other = tmp_path / "other.safetensors"
    state = {k: (v[:, :3].contiguous() if k == "decoder.layers.0.weight" else v) for k, v in reference.state_dict().items()
             if k.startswith("decoder.")}
    save_file(state, str(other))
    with pytest.raises(UnsupportedModelError, match="decodes 3-channel latents"):
        model.use_taesd(other)


def test_the_window_uses_a_taesd_from_the_models_folders(qtbot, tiny_model, reference):
    from safetensors.torch import save_file

    from fake_engine import generate_and_wait, make_window
    from sd_desktop.core.io.metadata import read_parameters

    folder = tiny_model.parent / "vae_approx"  # ComfyUI's place in the models folder
    folder.mkdir(exist_ok=True)
    decoder = {f"{int(k.split('.')[2]) + 1}.{'.'.join(k.split('.')[3:])}": v for k, v in reference.state_dict().items()
               if k.startswith("decoder.layers.")}
    save_file(decoder, str(folder / "taesd_decoder.safetensors"))
    window = make_window(qtbot, tiny_model)
    prefs = window.state.preferences
    prefs.models_folders = [str(tiny_model.parent)]
    prefs.preview_mode = "taesd"
    sizes = []
    window.state.session.preview.connect(lambda image: sizes.append((image.width(), image.height())))
    window.prompt_edit.setPlainText("a red circle")
    window.parameters.steps_spin.setValue(2)
    window.parameters.taesd_check.setChecked(True)
    generate_and_wait(qtbot, window)
    assert sizes and set(sizes) == {(64, 64)}  # full-size previews (the quick ones are 8x8 here)
    assert read_parameters(window.history.paths()[0])["taesd_decode"] is True
    prefs.preview_mode = "quick"
    sizes.clear()
    window.parameters.taesd_check.setChecked(False)
    generate_and_wait(qtbot, window)
    assert set(sizes) == {(8, 8)} and read_parameters(window.history.paths()[0])["taesd_decode"] is False
    (folder / "taesd_decoder.safetensors").unlink()  # (the tiny model's folder is shared with other tests)
    folder.rmdir()


def test_a_taesd_that_cannot_be_read_leaves_previews_quick_and_fails_only_its_decode(qtbot, tiny_model, tmp_path):
    """A bad file found in a models folder: previews go on quick with a note that names it; a job that decodes with
    TAESD fails with one line that names the file and what to use instead; with no TAESD at all, the window's
    error names its own checkbox and setting, not the CLI's flag."""
    from fake_engine import generate_and_wait, make_window, wait_idle

    models = tmp_path / "models"
    bad = models / "VAE-taesd" / "taesd_decoder.safetensors"  # A1111's place
    bad.parent.mkdir(parents=True)
    bad.write_text("this is not a network")
    window = make_window(qtbot, tiny_model)
    prefs = window.state.preferences
    prefs.models_folders = [str(models)]
    prefs.preview_mode = "taesd"
    window.prompt_edit.setPlainText("a red circle")
    window.parameters.steps_spin.setValue(2)
    generate_and_wait(qtbot, window)  # an image, with quick previews
    assert window.message_bar.kind() == "info" and str(bad) in window.message_bar.text()
    assert window.message_bar.text().endswith("or remove it; the previews stay quick")
    assert "choose the model" not in window.message_bar.text()

    window.parameters.taesd_check.setChecked(True)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.message_bar.kind() == "error", timeout=30000)
    wait_idle(qtbot, window)
    text = window.message_bar.text()
    assert str(bad) in text and "madebyollin/taesd" in text and "\n" not in text and "Traceback" not in text

    bad.unlink()
    window.generate_button.click()
    qtbot.waitUntil(lambda: "Fast decode (TAESD) needs" in window.message_bar.text(), timeout=30000)
    wait_idle(qtbot, window)
    assert "--taesd" not in window.message_bar.text() and "Preferences" in window.message_bar.text()
    assert len(window.history.paths()) == 1


def test_taesd_previews_never_hold_the_sampler_up(reference, tmp_path):
    """The first preview's decode blocks until the sampler has done its last step: it gets there, so it never
    waited for a preview; the estimates overtaken meanwhile are dropped, the newest is shown."""
    import threading

    from safetensors.torch import save_file

    from sd_desktop import core

    from tiny_models import save_diffusers_folder, tiny_parts

    model = core.load_model(save_diffusers_folder(tiny_parts(seed=54), tmp_path / "m"), device="cpu", dtype="fp32")
    save_file(reference.state_dict(), str(tmp_path / "taesd.safetensors"))
    model.use_taesd(tmp_path / "taesd.safetensors", previews=True)
    last_step_done = threading.Event()
    decode = model.taesd.decode
    seen = []

    def slow_decode(latents):
        seen.append(last_step_done.wait(timeout=20))
        return decode(latents)

    model.taesd.decode = slow_decode

    def on_step(info):
        if info.preview is None and info.step == info.total:
            last_step_done.set()

    core.generate(model, core.GenerationRequest(prompt="x", steps=6, seed=1, width=64, height=48), on_step=on_step)
    assert seen[0] is True and len(seen) <= 2  # (the first decode, and at most the newest estimate after it)
