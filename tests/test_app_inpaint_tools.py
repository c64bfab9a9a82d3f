"""The inpainting tools in the window: the mask overlay's toggle (H), its rest over a fresh result, its colour and
opacity from Preferences; the soft brush's hardness (kept across starts); the Soft inpainting check."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from fake_engine import make_window, wait_idle
from sd_desktop.core.io.metadata import read_parameters
from sd_desktop.core.request import Mode


def test_overlay_hardness_and_soft_inpainting(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.prompt_edit.setPlainText("a red circle")
    window.parameters.steps_spin.setValue(2)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    wait_idle(qtbot, window)
    window.set_mode(Mode.INPAINT)
    canvas, area, p = window.canvas, window.canvas_area, window.parameters
    assert canvas.isMaskVisible() and window.actions.mask_overlay.isChecked()
    window.actions.mask_overlay.trigger()  # H
    assert not canvas.isMaskVisible() and not window.actions.mask_overlay.isChecked()
    window.actions.mask_overlay.trigger()
    assert canvas.isMaskVisible()

    assert p.form.isRowVisible(p.soft_check) and not p.soft_check.isChecked()
    assert p.form.isRowVisible(p.masked_content_combo) and not p.form.isRowVisible(p.padding_spin)
    p.full_res_check.setChecked(True)
    assert p.form.isRowVisible(p.padding_spin)
    p.full_res_check.setChecked(False)
    p.masked_content_combo.setCurrentIndex(p.masked_content_combo.findData("latent noise"))
    p.soft_check.setChecked(True)
    area.hardness_spin.setValue(30)
    assert canvas.brushHardness() == 0.3
    mask = QImage(64, 64, QImage.Format.Format_Grayscale8)
    mask.fill(0)
    for x in range(16, 48):  # a soft ramp, as a soft brush paints
        for y in range(64):
            mask.setPixel(x, y, 0xFF000000 | (int((x - 16) / 32 * 255) * 0x010101))
    canvas.setMaskImage(mask)
    assert window.state.generation.current_request().soft_inpainting
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 2, timeout=30000)
    wait_idle(qtbot, window)
    params = read_parameters(window.history.paths()[0])
    assert params["soft_inpainting"] is True and params["masked_content"] == "latent noise"
    assert not canvas.isMaskVisible() and canvas.hasMask()  # the result shown without the overlay; the mask kept
    assert not window.actions.mask_overlay.isChecked()
    window.actions.mask_overlay.trigger()  # H brings it back
    assert canvas.isMaskVisible()

    prefs = window.state.preferences
    prefs.mask_colour, prefs.mask_opacity = "#00c8ff", 80
    window.apply_preferences()
    colour = canvas._mask_layer.colour
    assert (colour.name(), colour.alpha()) == ("#00c8ff", 204)
    window.close()

    again = make_window(qtbot, tiny_model)  # hardness and soft inpainting kept
    assert again.canvas_area.hardness_spin.value() == 30 and again.canvas.brushHardness() == 0.3
    assert again.state.generation.soft_inpainting and again.canvas._mask_layer.colour.name() == "#00c8ff"
