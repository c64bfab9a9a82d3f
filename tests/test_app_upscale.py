"""Image → Upscale… in the window: the dialog (scale, upscaler following the scale, the result's size), the job on
the worker with "Tile n/m" progress, the result saved with the source's parameters and A1111's postprocessing
line, in the history and on the canvas."""

from __future__ import annotations

from PIL import Image

from fake_engine import generate_and_wait, make_window, wait_idle
from sd_desktop.core.io.metadata import read_parameters


def test_upscale_the_canvas_image(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.prompt_edit.setPlainText("a red circle")
    window.parameters.steps_spin.setValue(1)
    generate_and_wait(qtbot, window)
    source = window.history.paths()[0]

    window.actions.upscale.trigger()
    dialog = window.upscale_dialog
    assert dialog.isVisible() and dialog.size_label.text() == "64×64 → 128×128"
    assert dialog.model_combo.currentText() == "realesr-animevideov3-x2"  # the scale's own model
    dialog.scale_spin.setValue(3)
    assert dialog.model_combo.currentText() == "realesr-animevideov3-x3" and dialog.size_label.text().endswith("192×192")
    dialog.scale_spin.setValue(2)
    seen = []
    window.state.session.progressChanged.connect(lambda text, *_: seen.append(text))
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: window.history_list.count() == 2, timeout=30000)
    wait_idle(qtbot, window)

    result = window.history.paths()[0]
    with Image.open(result) as image:
        assert image.size == (128, 128) and image.mode == "RGB"
        assert image.info["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: realesr-animevideov3-x2"
    assert read_parameters(result)["prompt"] == "a red circle"
    assert read_parameters(result)["seed"] == read_parameters(source)["seed"]
    assert result.endswith(f"-{read_parameters(source)['seed']}.png")  # numbered with the source's seed
    assert "batch" in read_parameters(source) and "batch" not in read_parameters(result)  # not one of its batch
    assert window.state.document.source == result and window.state.document.image.width() == 128
    assert any(text.startswith("Tile 1/1") for text in seen) and "Done" in seen
    window.close()


def test_upscale_without_an_image_says_so(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.actions.upscale.trigger()
    assert "no image on the canvas" in window.statusBar().currentMessage()
    assert not window.state.upscale_canvas("whatever.safetensors", 2)


def test_hires_fix_in_the_window(qtbot, tiny_model):
    """The Hires fix check shows its rows (and the denoising strength) in Text to Image only; a run comes out
    at the larger size with A1111's keys in its text; restoring that text turns it on again."""
    from sd_desktop.core.request import Mode

    window = make_window(qtbot, tiny_model)
    p = window.parameters
    visible = lambda widget: p.form.isRowVisible(widget)  # noqa: E731
    assert visible(p.hires_check) and not visible(p.hires_scale_spin) and not visible(p.strength_spin)
    p.hires_check.setChecked(True)
    assert all(visible(w) for w in (p.hires_scale_spin, p.hires_upscaler_combo, p.hires_steps_spin, p.strength_spin))
    assert p.hires_steps_spin.text() == "Same as Steps"
    p.hires_scale_spin.setValue(1.5)
    p.hires_upscaler_combo.setCurrentIndex(p.hires_upscaler_combo.findData("Lanczos"))
    assert "realesr-animevideov3-x2" in [p.hires_upscaler_combo.itemData(i) for i in range(p.hires_upscaler_combo.count())]
    p.strength_spin.setValue(0.5)
    assert all(visible(w) for w in (p.hires_sampler_combo, p.hires_schedule_combo, p.hires_cfg_spin))
    assert (p.hires_sampler_combo.currentText(), p.hires_cfg_spin.text()) == ("Same as Sampler", "Same as CFG scale")
    p.hires_sampler_combo.setCurrentIndex(p.hires_sampler_combo.findData("euler"))
    p.hires_cfg_spin.setValue(4.0)
    window.set_mode(Mode.IMG2IMG)
    assert not visible(p.hires_check) and not visible(p.hires_scale_spin)
    assert window.state.generation.current_request().hires_fix is False  # never outside Text to Image
    window.set_mode(Mode.TXT2IMG)

    window.prompt_edit.setPlainText("a blue square")
    p.steps_spin.setValue(2)
    generate_and_wait(qtbot, window)
    path = window.history.paths()[0]
    with Image.open(path) as image:
        assert image.size == (96, 96)  # 64 x 1.5
        assert ("Denoising strength: 0.5, Hires upscale: 1.5, Hires upscaler: Lanczos, Hires sampler: Euler, "
                "Hires CFG Scale: 4.0, ") in image.info["parameters"]
    request = read_parameters(path)["request"]
    assert (request["hires_sampler"], request["hires_schedule"], request["hires_cfg"]) == ("euler", None, 4.0)

    p.hires_check.setChecked(False)
    p.hires_upscaler_combo.setCurrentIndex(0)
    p.hires_sampler_combo.setCurrentIndex(0)
    p.hires_cfg_spin.setValue(p.hires_cfg_spin.minimum())  # "Same as CFG scale"
    assert window.state.generation.hires_cfg is None
    window.state.restore_parameters_from(path)
    settings = window.state.generation
    assert (settings.hires_fix, settings.hires_scale, settings.hires_upscaler) == (True, 1.5, "Lanczos")
    assert (settings.hires_sampler, settings.hires_cfg, p.hires_sampler_combo.currentText()) == ("euler", 4.0, "Euler")
    window.close()
