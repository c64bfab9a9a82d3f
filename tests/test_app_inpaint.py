"""Painting a mask with the mouse, undo/redo through the window's shortcuts, and inpainting with it;
image to image from the canvas; opening, dropping and pasting images."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QSlider, QTabBar, QToolButton

from fake_engine import activate, drag_on_canvas, image_array, make_window, output_pngs, two_colour_image
from sd_desktop.app.state.qt_images import qimage_to_numpy


def click_tab(qtbot, window, label: str) -> None:
    tabs = window.findChild(QTabBar, "modeTabs")
    index = [tabs.tabText(i) for i in range(tabs.count())].index(label)
    qtbot.mouseClick(tabs, Qt.MouseButton.LeftButton, pos=tabs.tabRect(index).center())
    assert tabs.currentIndex() == index


def mask_array(window) -> np.ndarray:
    return qimage_to_numpy(window.canvas.maskImage(), channels=1)


def test_paint_a_stroke_undo_redo_and_inpaint_with_it(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    source = two_colour_image(tmp_path / "start.png")
    assert window.open_image(str(source))
    click_tab(qtbot, window, "Inpaint")
    qtbot.waitUntil(window.findChild(QToolButton, "brushButton").isVisible)  # the tool bar lays out on the next turn
    assert window.findChild(QSlider, "brushSizeSlider").isVisible()
    assert window.parameters.strength_spin.isVisible() and window.parameters.full_res_check.isVisible()
    window.findChild(QSlider, "brushSizeSlider").setValue(8)
    assert window.canvas.brushSize() == 8

    drag_on_canvas(window.canvas, [(10, 32), (20, 32), (30, 32)])
    mask = mask_array(window)
    assert mask.shape == (64, 64)
    assert mask[32, 10] == 255 and mask[32, 20] == 255 and mask[32, 30] == 255  # along the stroke
    assert mask[5, 60] == 0 and mask[60, 5] == 0  # far from it
    assert window.canvas.undoStack().count() == 1  # one stroke, one undo step

    activate(qtbot, window)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not window.canvas.hasMask()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(mask_array(window), mask)

    qtbot.keyClick(window.canvas, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.zoom() == pytest.approx(1.0)
    qtbot.keyClick(window.canvas, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.zoom() > 2  # a 64 px image fitted into the view

    # the ] and [ shortcuts change the brush by ~15%; E and B switch tools
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketRight)
    assert window.canvas.brushSize() == 9 and window.brush_size_slider.value() == 9
    qtbot.keyClick(window.canvas, Qt.Key.Key_E)
    assert window.canvas.tool() == "eraser" and window.eraser_button.isChecked()
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    assert window.canvas.tool() == "brush"

    window.parameters.steps_spin.setValue(3)
    window.parameters.seed_spin.setValue(5)
    window.parameters.strength_spin.setValue(1.0)
    window.parameters.mask_blur_spin.setValue(0)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    result = image_array(output_pngs(window)[0])
    original = image_array(source)
    keep = mask == 0
    assert np.array_equal(result[keep], original[keep])  # unmasked pixels are the original's
    assert np.abs(result[mask == 255].astype(int) - original[mask == 255]).mean() > 5  # the stroke was repainted
    assert np.array_equal(mask_array(window), mask)  # the mask stays for another try

    from sd_desktop.core import GenerationRequest, generate, load_model, read_parameters

    assert read_parameters(output_pngs(window)[0])["mode"] == "inpaint"

    reference = generate(load_model(tiny_model), GenerationRequest(
        prompt=window.prompt_panel.prompt(), seed=5, steps=3, width=64, height=64, strength=1.0, mask_blur=0,
        init_image=Image.open(source).convert("RGB"), mask=Image.fromarray(mask)))
    assert np.array_equal(np.asarray(reference.images[0]), result)


def test_clear_and_invert_mask_buttons_are_undoable(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    window.open_image(str(two_colour_image(tmp_path / "a.png")))
    window.set_mode("inpaint")
    drag_on_canvas(window.canvas, [(5, 5), (6, 6)])
    painted = mask_array(window)
    qtbot.mouseClick(window.findChild(QToolButton, "invertMaskButton"), Qt.MouseButton.LeftButton)
    assert np.array_equal(mask_array(window), 255 - painted)
    qtbot.mouseClick(window.findChild(QToolButton, "clearMaskButton"), Qt.MouseButton.LeftButton)
    assert not window.canvas.hasMask()
    window.actions.undo.trigger()
    window.actions.undo.trigger()
    assert np.array_equal(mask_array(window), painted)


def test_mask_tools_show_only_in_inpaint_and_left_drag_pans_elsewhere(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    window.open_image(str(two_colour_image(tmp_path / "a.png")))
    for mode in ("txt2img", "img2img", "interpolate"):
        window.set_mode(mode)
        qtbot.waitUntil(lambda: not window.brush_button.isVisible() and not window.clear_mask_button.isVisible())
        assert window.canvas.tool() == "pan"
        drag_on_canvas(window.canvas, [(10, 10), (30, 30)])
        assert not window.canvas.hasMask()
    window.set_mode("txt2img")
    assert not window.parameters.strength_spin.isVisible() and not window.parameters.mask_blur_spin.isVisible()
    window.set_mode("img2img")
    assert window.parameters.strength_spin.isVisible() and not window.parameters.mask_blur_spin.isVisible()


def test_image_to_image_starts_from_the_canvas_image(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    source = two_colour_image(tmp_path / "start.png", size=96)
    click_tab(qtbot, window, "Image to Image")
    window.open_image(str(source))
    assert (window.parameters.width_spin.value(), window.parameters.height_spin.value()) == (96, 96)
    window.parameters.steps_spin.setValue(4)
    window.parameters.seed_spin.setValue(9)
    window.parameters.strength_spin.setValue(0.5)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)


    from sd_desktop.core import GenerationRequest, generate, load_model

    reference = generate(load_model(tiny_model), GenerationRequest(
        prompt=window.prompt_panel.prompt(), seed=9, steps=4, strength=0.5, width=96, height=96,
        init_image=Image.open(source).convert("RGB")))
    assert np.array_equal(np.asarray(reference.images[0]), image_array(output_pngs(window)[0]))


def test_dropping_an_a1111_png_offers_to_restore_its_parameters(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    text = ("a cat in a hat\nNegative prompt: blurry\nSteps: 12, Sampler: Euler a, Schedule type: Karras, "
            "CFG scale: 6, Seed: 777, Size: 64x128, Model hash: abc, Model: other")
    path = two_colour_image(tmp_path / "from-a1111.png", parameters=text)

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    viewport = window.canvas.viewport()
    centre = QPointF(viewport.rect().center())
    actions = Qt.DropAction.CopyAction
    with warnings.catch_warnings():  # PySide marks the only QPoint constructor deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(centre.toPoint(), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, enter)
    drop = QDropEvent(centre, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, drop)

    assert window.canvas.image().width() == 64  # the image is on the canvas
    button = window.message_bar.button("restoreParametersButton")
    assert button is not None and window.message_bar.isVisible()
    assert window.prompt_panel.prompt() != "a cat in a hat"  # nothing changes until asked
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    values = window.state.generation
    assert window.prompt_panel.prompt() == "a cat in a hat" and window.prompt_panel.negative_prompt() == "blurry"
    assert (values.steps, values.sampler, values.schedule, values.cfg_scale, values.seed) == (12, "euler_a", "karras", 6.0, 777)
    assert (window.parameters.steps_spin.value(), window.parameters.seed_spin.value()) == (12, 777)  # the widgets show it
    assert (values.width, values.height) == (64, 128)
    assert "other" in window.message_bar.text()  # the note: it was made with another model


def test_paste_from_the_clipboard_and_save_with_metadata(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    image = QImage(40, 24, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.green)
    QGuiApplication.clipboard().setImage(image)
    activate(qtbot, window)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.image().size() == image.size()

    window.parameters.steps_spin.setValue(2)
    window.generate_button.click()  # a result carries parameters; Save keeps them
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    target = window.state.save_canvas_image(str(tmp_path / "copy.png"))
    from sd_desktop.core import read_parameters

    saved, original = read_parameters(target), read_parameters(output_pngs(window)[0])
    assert saved["seed"] == original["seed"] and saved["prompt"] == original["prompt"]
    assert np.array_equal(image_array(target), image_array(output_pngs(window)[0]))
    as_jpeg = window.state.save_canvas_image(str(tmp_path / "copy.jpg"))  # a JPEG: the infotext in EXIF
    with Image.open(as_jpeg) as image:
        assert image.format == "JPEG"
    assert (read_parameters(as_jpeg)["seed"], read_parameters(as_jpeg)["prompt"]) == (original["seed"], original["prompt"])
    window.state.show_file(str(as_jpeg))  # and saved again from the JPEG, it keeps them
    again = read_parameters(window.state.save_canvas_image(str(tmp_path / "again.webp")))
    assert (again["seed"], again["prompt"]) == (original["seed"], original["prompt"])


def test_an_image_to_image_batch_shows_as_a_grid_and_a_click_takes_one(qtbot, tiny_model, tmp_path):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage

    from fake_engine import make_window, wait_idle
    from sd_desktop.core.request import Mode

    window = make_window(qtbot, tiny_model)
    start = QImage(64, 64, QImage.Format.Format_RGB32)
    start.fill(Qt.GlobalColor.darkCyan)
    window.state.set_canvas_image(start)
    window.set_mode(Mode.IMG2IMG)
    window.parameters.steps_spin.setValue(2)
    window.parameters.batch_spin.setValue(3)
    texts = []
    window.progress_bar.valueChanged.connect(lambda _v: texts.append(window.progress_bar.format()))
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 3, timeout=60000)
    wait_idle(qtbot, window)
    assert any(t.startswith("Image 2/3 · step 2/2") for t in texts)  # the batch's image, then its step
    area = window.canvas_area
    assert area.stack.currentWidget() is area.batch_grid
    made = list(reversed(window.history.paths()))  # oldest first: the batch's order
    assert area.batch_grid.paths() == made
    area.batch_grid.list.itemClicked.emit(area.batch_grid.list.item(1))
    assert area.stack.currentWidget() is area.canvas and window.state.document.source == made[1]
    assert window.canvas.hasBefore()  # the chosen result can be compared with what it was made from
    window.generate_button.click()  # again, from the chosen one; then Esc keeps the canvas
    qtbot.waitUntil(lambda: window.history_list.count() == 6, timeout=60000)
    wait_idle(qtbot, window)
    assert area.stack.currentWidget() is area.batch_grid
    window.escape()
    assert area.stack.currentWidget() is area.canvas
