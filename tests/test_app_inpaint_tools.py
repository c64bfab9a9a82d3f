"""The inpainting tools in the window: the mask overlay's toggle (H), its rest over a fresh result, its colour and
opacity from Preferences; the soft brush's hardness (kept across starts); the Soft inpainting check."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from fake_engine import generate_and_wait, make_window
from sd_desktop.core.io.metadata import read_parameters
from sd_desktop.core.request import Mode


def test_overlay_hardness_and_soft_inpainting(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.prompt_edit.setPlainText("a red circle")
    window.parameters.steps_spin.setValue(2)
    generate_and_wait(qtbot, window)
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
    generate_and_wait(qtbot, window)
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


def test_each_mode_keeps_its_size_and_a_picture_never_changes_the_text_to_image_size(qtbot, tiny_model, tmp_path):
    from PySide6.QtGui import QColor, QGuiApplication

    from sd_desktop.core.request import RESIZE_MODES

    window = make_window(qtbot, tiny_model)
    combo = window.parameters.resize_mode_combo  # every mode the engine takes, and only those
    assert [combo.itemData(i) for i in range(combo.count())] == list(RESIZE_MODES)
    settings = window.state.generation
    settings.set_size(128, 96)  # Text to Image
    picture = QImage(400, 300, QImage.Format.Format_RGB32)
    picture.fill(QColor(30, 90, 200))
    path = tmp_path / "wide.png"
    picture.save(str(path))
    window.state.open_image(str(path))  # opened in Text to Image: the size stays
    assert (settings.width, settings.height) == (128, 96)
    window.set_mode(Mode.IMG2IMG)  # into editing: the size takes the picture's shape
    edit = (settings.width, settings.height)
    assert abs(edit[0] / edit[1] - 4 / 3) < 0.05
    settings.set_size(256, 192)  # chosen for this picture (the same shape): kept on the next visits
    window.set_mode(Mode.TXT2IMG)
    assert (settings.width, settings.height) == (128, 96)  # Text to Image's own
    QGuiApplication.clipboard().setImage(picture.scaled(300, 300))
    window.paste_image()  # a square picture pasted in Text to Image: its size stays
    assert (settings.width, settings.height) == (128, 96)
    window.set_mode(Mode.INPAINT)
    assert settings.width == settings.height  # the editing size took the square's shape
    window.paste_image()  # pasting again in the editing mode: the same shape, the size stays
    square = (settings.width, settings.height)
    window.state.open_image(str(path))
    assert abs(settings.width / settings.height - 4 / 3) < 0.05  # a 4:3 picture opened here: not stretched square
    settings.set_size(256, 192)
    window.set_mode(Mode.TXT2IMG)
    assert (settings.width, settings.height) == (128, 96) and square[0] == square[1]
    window.set_mode(Mode.INPAINT)
    assert (settings.width, settings.height) == (256, 192)
    p = window.parameters
    assert p.form.isRowVisible(p.resize_mode_combo)
    p.resize_mode_combo.setCurrentIndex(p.resize_mode_combo.findData("crop and resize"))
    assert settings.current_request().resize_mode == "crop and resize"
    window.set_mode(Mode.TXT2IMG)
    window.close()

    again = make_window(qtbot, tiny_model)  # both sizes kept across a restart
    assert (again.state.generation.width, again.state.generation.height) == (128, 96)
    again.set_mode(Mode.IMG2IMG)
    assert (again.state.generation.width, again.state.generation.height) == (256, 192)


def test_expand_grows_the_canvas_masks_the_border_and_an_inpaint_keeps_the_picture(qtbot, tiny_model):
    from sd_desktop.app.state.qt_images import qimage_to_numpy

    window = make_window(qtbot, tiny_model)
    window.prompt_edit.setPlainText("a red circle")
    window.parameters.steps_spin.setValue(2)
    generate_and_wait(qtbot, window)
    original = qimage_to_numpy(window.state.document.image)

    window.actions.expand.trigger()
    dialog = window.expand_dialog
    dialog.aspect_combo.setCurrentIndex(dialog.aspect_combo.findText("16:9"))
    dialog.aspect_combo.activated.emit(dialog.aspect_combo.currentIndex())
    assert dialog.amounts() == (25, 0, 25, 0) and dialog.size_label.text() == "64×64 → 120×64"
    for side, value in zip(("left", "top", "right", "bottom"), (32, 0, 32, 0)):
        dialog.spins[side].setValue(value)
    assert dialog.aspect_combo.currentText() == "Custom" and dialog.size_label.text().endswith("128×64")
    dialog.content_combo.setCurrentIndex(dialog.content_combo.findData("latent noise"))
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

    settings = window.state.generation
    assert window.mode() == Mode.INPAINT and (settings.width, settings.height) == (128, 64)
    assert (settings.masked_content, settings.strength) == ("latent noise", 1.0)
    assert "Expanded to 128×64" in window.message_bar.text()
    grown = qimage_to_numpy(window.state.document.image)
    assert grown.shape == (64, 128, 3) and np.array_equal(grown[:, 32:96], original)
    mask = qimage_to_numpy(window.canvas.maskImage(), 1)
    assert (mask[:, :32] == 255).all() and (mask[:, 50:78] == 0).all() and window.canvas.isMaskVisible()
    generate_and_wait(qtbot, window)
    result = qimage_to_numpy(window.state.document.image)
    from PIL import Image, ImageFilter

    blurred = np.asarray(Image.fromarray(mask).filter(ImageFilter.GaussianBlur(settings.mask_blur)))
    kept = blurred == 0  # what the mask, softened by the mask blur, leaves alone
    assert kept[:, 56:72].all() and np.array_equal(result[kept], grown[kept]) and np.abs(result[:, :24].astype(int) - grown[:, :24]).mean() > 3


def test_compare_and_back_to_the_original_after_image_to_image(qtbot, tiny_model):
    from sd_desktop.app.state.qt_images import qimage_to_numpy

    window = make_window(qtbot, tiny_model)
    window.prompt_edit.setPlainText("a red circle")
    window.parameters.steps_spin.setValue(2)
    generate_and_wait(qtbot, window)
    assert not window.actions.compare.isEnabled()  # Text to Image: nothing it was made from
    original = qimage_to_numpy(window.state.document.image)
    window.set_mode(Mode.IMG2IMG)
    window.parameters.strength_spin.setValue(0.6)
    generate_and_wait(qtbot, window)
    assert window.actions.compare.isEnabled() and window.actions.back_to_original.isEnabled()
    assert np.array_equal(qimage_to_numpy(window.state.document.before), original)
    window.actions.compare.trigger()  # C
    assert window.canvas.isComparing() and window.actions.compare.isChecked()
    window.actions.compare.trigger()
    assert not window.canvas.isComparing()
    window.actions.back_to_original.trigger()  # try again with another strength
    assert np.array_equal(qimage_to_numpy(window.state.document.image), original)
    assert not window.actions.compare.isEnabled()
    assert window.history_list.count() == 2  # the result stays in the history


def test_at_900_by_600_no_mode_clips_the_settings_on_the_right(qtbot, tiny_model):
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication, QWidget

    window = make_window(qtbot, tiny_model)
    window.resize(900, 600)
    viewport = window.controls_scroll.viewport()
    for mode, hires in ((Mode.TXT2IMG, False), (Mode.TXT2IMG, True), (Mode.IMG2IMG, False), (Mode.INPAINT, False)):
        window.set_mode(mode)
        window.parameters.hires_check.setChecked(hires)
        for _ in range(5):
            QApplication.processEvents()
        assert window.controls_scroll.verticalScrollBar().isVisible()  # (short: the panel scrolls)
        for widget in window.parameters.findChildren(QWidget):
            if widget.isVisible() and widget.width() > 0:
                right = widget.mapTo(viewport, QPoint(widget.width() - 1, 0)).x()
                assert right < viewport.width(), (mode, hires, widget.objectName(), right, viewport.width())
