"""Interpolate mode: choose A and B, Prepare (inversion in the worker), drag the slider (nearest frame at
once, frames filled in coarse-to-fine in the background), release (the exact frame), export."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QPushButton, QSlider, QStyle, QStyleOptionSlider

from fake_engine import image_array, make_window, two_colour_image, wait_idle
from sd_desktop.app.state.qt_images import qimage_to_numpy
from sd_desktop.app.state.worker import coarse_to_fine, frame_key


def handle_centre(slider: QSlider) -> QPoint:
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    rect = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                         QStyle.SubControl.SC_SliderHandle, slider)
    return rect.center()


def test_coarse_to_fine_order():
    assert coarse_to_fine(5) == [0.0, 1.0, 0.5, 0.25, 0.75]
    order = coarse_to_fine(9)
    assert order[:3] == [0.0, 1.0, 0.5] and sorted(order) == [i / 8 for i in range(9)]
    assert sorted(coarse_to_fine(7)) == [i / 6 for i in range(7)]


@pytest.mark.slow
def test_prepare_drag_release_and_export(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    path_a = two_colour_image(tmp_path / "a.png", left=(230, 20, 20), right=(20, 20, 230))
    path_b = two_colour_image(tmp_path / "b.png", left=(20, 200, 40), right=(240, 240, 40))
    window.state.set_interpolation_image("A", str(path_a))
    window.state.set_interpolation_image("B", str(path_b))
    assert window.mode() == "interpolate"
    assert not window.prompt_panel.isVisible() and window.interpolation.isVisible()
    window.interpolation.slot_a.prompt_edit.setText("red and blue")
    window.interpolation.frames_spin.setValue(5)
    window.interpolation.steps_spin.setValue(3)
    slider = window.findChild(QSlider, "interpolationSlider")
    assert not slider.isEnabled()

    qtbot.mouseClick(window.findChild(QPushButton, "prepareInterpolationButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(slider.isEnabled, timeout=30000)
    grid = {frame_key(t) for t in coarse_to_fine(5)}
    qtbot.waitUntil(lambda: grid <= set(window.state.interpolation.frames), timeout=30000)  # computed in the background
    assert window.state.interpolation.shown == 0.0  # the slider sits at A: its frame is shown first
    panel = window.interpolation
    assert panel.readout.text() == "t = 0.00 · frame 1 of 5"
    panel.play_button.click()  # Play steps through the frames
    qtbot.waitUntil(lambda: panel.frame_index() >= 2, timeout=5000)
    panel.play_button.click()
    assert not panel.play_timer.isActive() and window.state.interpolation.shown in grid
    assert panel.readout.text().endswith(f"frame {panel.frame_index() + 1} of 5")
    panel.set_position(0.0)

    # drag: the nearest computed frame shows at once, with no work asked of the worker
    qtbot.mousePress(slider, Qt.MouseButton.LeftButton, pos=handle_centre(slider))
    target = QPoint(round(slider.width() * 0.6), slider.height() // 2)
    qtbot.mouseMove(slider, target)
    assert slider.isSliderDown() and 0.4 < window.interpolation.position() < 0.8
    nearest = window.state.interpolation.nearest_frame(window.interpolation.position())
    assert nearest in grid and window.state.interpolation.shown == nearest
    assert np.array_equal(qimage_to_numpy(window.canvas.image()), qimage_to_numpy(window.state.interpolation.frames[nearest]))

    # release: the exact position is computed and shown
    qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=target)
    exact = frame_key(window.interpolation.position())
    assert exact not in grid
    qtbot.waitUntil(lambda: window.state.interpolation.shown == exact, timeout=30000)

    # the same frame from the engine alone
    from sd_desktop.core import InterpolationRequest, load_model, prepare_interpolation

    prepared = prepare_interpolation(load_model(tiny_model), InterpolationRequest(
        image_a=Image.open(path_a).convert("RGB"), image_b=Image.open(path_b).convert("RGB"),
        prompt_a="red and blue", prompt_b="", steps=3))
    assert np.array_equal(np.asarray(prepared.frame(exact)), qimage_to_numpy(window.canvas.image()))
    assert np.array_equal(np.asarray(prepared.frame(0.5)), qimage_to_numpy(window.state.interpolation.frames[0.5]))

    from sd_desktop.app.ui.panels.interpolation import ExportDialog

    dialog = ExportDialog(window.interpolation)
    dialog.checks["frames"].setChecked(True)
    dialog.duration_spin.setValue(200)
    dialog.ping_pong_check.setChecked(True)
    assert dialog.formats() == ["gif", "frames"]
    window.interpolation.exportRequested.emit(dialog.formats(), dialog.options())
    qtbot.waitUntil(lambda: window.state.interpolation.last_export is not None, timeout=30000)
    wait_idle(qtbot, window)
    paths = window.state.interpolation.last_export
    frames = [p for p in paths if p.endswith(".png")]
    assert len(frames) == 5 and any(p.endswith("interpolation.gif") for p in paths)
    with Image.open([p for p in paths if p.endswith(".gif")][0]) as gif:
        assert gif.n_frames == 8 and gif.info["duration"] == 200  # ping-pong: A..B..back, 200 ms a frame
        assert gif.info.get("loop") == 0  # for ever
    assert "frames ready" in window.interpolation.status_label.text()  # the export's progress is gone
    assert np.array_equal(image_array(frames[2]), np.asarray(prepared.frame(0.5)))


@pytest.mark.slow
def test_changing_an_input_asks_to_prepare_again_and_cancel_stops_background_frames(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    window.state.set_interpolation_image("A", str(two_colour_image(tmp_path / "a.png")))
    window.state.set_interpolation_image("B", str(two_colour_image(tmp_path / "b.png", left=(0, 0, 0))))
    window.interpolation.frames_spin.setValue(33)
    window.interpolation.steps_spin.setValue(20)
    window.state.interpolation.prepare()
    qtbot.waitUntil(lambda: window.state.interpolation.ready and len(window.state.interpolation.frames) >= 2, timeout=30000)
    window.state.cancel()  # Esc also stops the background frames
    count = len(window.state.interpolation.frames)
    qtbot.wait(500)
    assert len(window.state.interpolation.frames) <= count + 1 and len(window.state.interpolation.frames) < 33
    wait_idle(qtbot, window)
    assert not window.generate_button.isVisible() and window.prepare_button.isVisible()  # Interpolate: Prepare
    assert window.prepare_button.isEnabled() and not window.cancel_button.isEnabled()  # idle again after Esc

    window.interpolation.slot_b.prompt_edit.setText("something else")
    assert not window.interpolation.slider.isEnabled()
    assert "Prepare again" in window.interpolation.status_label.text()

    window.state.interpolation.prepare()
    qtbot.waitUntil(lambda: window.state.interpolation.ready, timeout=30000)
    wait_idle(qtbot, window)
    window.state.load_model(str(tiny_model))  # another model (here: the same file again)
    qtbot.waitUntil(lambda: "The model changed: Prepare again." in window.interpolation.status_label.text(),
                    timeout=30000)
    assert not window.state.interpolation.ready and not window.interpolation.slider.isEnabled()


def test_prepare_without_images_says_so(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.set_mode("interpolate")
    assert window.prepare_button.isVisible() and not window.generate_button.isVisible()
    window.interpolation.prepare_button.click()
    assert "Choose images A and B" in window.message_bar.text()
    assert not window.state.session.busy
