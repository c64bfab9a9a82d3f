"""The window as a person uses it: type a prompt, Generate, watch the previews, find the image in the
history and on disk; cancel a long run; close mid-run; a broken model file; a bad image."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox

from fake_engine import activate, generate_and_wait, image_array, make_window, output_pngs, wait_idle
from sd_desktop.app.state.qt_images import qimage_to_numpy


def record_previews(window) -> list:
    shown = []
    show = window.canvas.showPreview
    window.canvas.showPreview = lambda image: (shown.append((image.width(), image.height())), show(image))
    return shown


def test_typing_a_prompt_and_generating_shows_each_step_then_saves_the_image(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    assert window.parameters.width_spin.value() == 64  # the model's native size on first load
    assert window.progress_bar.format() == "Ready" and window.progress_bar.value() == 0  # not "Done": nothing ran

    prompt = window.findChild(QPlainTextEdit, "promptEdit")
    prompt.clear()
    qtbot.keyClicks(prompt, "a red circle on a blue background")
    window.findChild(QSpinBox, "stepsSpin").setValue(3)
    window.findChild(QDoubleSpinBox, "seedSpin").setValue(1234)
    window.findChild(QComboBox, "samplerCombo").setCurrentIndex(window.parameters.sampler_combo.findData("euler"))
    formats = []
    bar = window.findChild(QProgressBar, "progressBar")
    bar.valueChanged.connect(lambda _v: formats.append(bar.format()))
    previews = record_previews(window)

    qtbot.mouseClick(window.findChild(QPushButton, "generateButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    wait_idle(qtbot, window)

    assert previews == [(8, 8)] * 3  # one latent-resolution preview per step
    assert any(f.startswith("Step 3/3") and "s/step" in f and "left" in f for f in formats)
    assert "Step 1/3 · estimating time left…" in formats  # no estimate from the first (warm-up) step alone
    files = output_pngs(window)
    assert [f.name for f in files] == ["00000-1234.png"]
    shown = qimage_to_numpy(window.canvas.image())
    assert np.array_equal(shown, image_array(files[0]))  # the final image is on the canvas

    from sd_desktop.core import GenerationRequest, generate, load_model, read_parameters

    params = read_parameters(files[0])
    assert (params["prompt"], params["seed"], params["steps"], params["sampler"]) == (
        "a red circle on a blue background", 1234, 3, "euler")
    # the GUI asked for exactly what the controls say: the engine alone makes the same pixels
    reference = generate(load_model(tiny_model), GenerationRequest(
        prompt="a red circle on a blue background", seed=1234, steps=3, sampler="euler", width=64, height=64))
    assert np.array_equal(np.asarray(reference.images[0]), image_array(files[0]))
    assert window.state.generation.last_seed == 1234 and window.parameters.reuse_seed_button.isEnabled()


def test_ctrl_enter_generates_from_the_prompt_box(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.parameters.steps_spin.setValue(2)
    activate(qtbot, window)
    window.prompt_edit.setFocus()
    qtbot.keyClick(window.prompt_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    assert "\n" not in window.prompt_edit.toPlainText()  # the shortcut, not a new line
    assert len(output_pngs(window)) == 1


def test_cancel_stops_a_long_run_within_a_step_and_the_app_goes_on(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.parameters.steps_spin.setValue(400)
    steps = []
    window.progress_bar.valueChanged.connect(steps.append)
    previews = record_previews(window)
    window.generate_button.click()
    qtbot.waitUntil(lambda: len(previews) >= 2, timeout=30000)
    assert window.cancel_button.isEnabled() and window.generate_button.text() == "Add to queue"

    activate(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    at_cancel = max(steps)
    wait_idle(qtbot, window, timeout=10000)
    assert max(steps) <= at_cancel + 2  # stopped within a step (one may have been in flight)
    assert window.progress_bar.format() == "Cancelled"
    assert output_pngs(window) == [] and window.history_list.count() == 0
    assert window.generate_button.isEnabled()

    window.parameters.steps_spin.setValue(2)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    assert len(output_pngs(window)) == 1


@pytest.mark.slow
def test_closing_mid_run_stops_the_worker_and_keeps_every_finished_image(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.parameters.steps_spin.setValue(60)
    window.parameters.batch_spin.setValue(3)
    window.parameters.seed_spin.setValue(10)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() >= 1, timeout=30000)
    asked = []
    window.confirm = lambda title, text: asked.append(text) or False
    window.close()  # asked first; "No" keeps it running
    assert asked == ["A generation is running — stop it and quit? (Finished images are already saved.)"]
    assert window.isVisible() and window.state.session.busy
    window.confirm = lambda title, text: True
    finished = list(window.state.session.last_output_paths)
    window.close()
    files = output_pngs(window)
    assert set(finished) <= {str(f) for f in files}
    assert [f.name for f in files][: len(finished)] == [f"0000{i}-{10 + i}.png" for i in range(len(finished))]
    for file in files:  # every file on disk is a whole image, no temp files left behind
        assert image_array(file).shape == (64, 64, 3)
    assert not list(window.state.preferences.output_root.glob("*/.*.tmp"))


def test_a_broken_model_file_shows_an_error_and_the_app_still_generates(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + bytes(100))
    window.state.open_model_file(str(broken))
    qtbot.waitUntil(lambda: window.message_bar.isVisible() and window.message_bar.kind() == "error", timeout=30000)
    wait_idle(qtbot, window)
    text = window.message_bar.text()
    assert "broken.safetensors" in text and "Traceback" not in text and "\n" not in text
    assert window.model_combo.currentData() == str(tiny_model)  # the working model is still in use
    assert window.state.session.model_info["path"] == str(tiny_model)
    listed = [window.model_combo.itemData(i) for i in range(window.model_combo.count())]
    assert str(broken) not in listed and str(broken) not in window.state.preferences.recent_models  # not offered again

    window.parameters.steps_spin.setValue(2)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    assert len(output_pngs(window)) == 1


def test_a_bad_image_and_bad_requests_show_messages_not_tracebacks(qtbot, tiny_model, tmp_path, monkeypatch):
    window = make_window(qtbot, tiny_model)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    assert not window.open_image(str(not_an_image))
    assert window.message_bar.kind() == "error" and "notes.png" in window.message_bar.text()

    window.set_mode("img2img")  # nothing on the canvas to start from
    window.generate_button.click()
    assert "no image on the canvas" in window.message_bar.text()
    assert not window.state.session.busy

    window.set_mode("txt2img")
    window.parameters.steps_spin.setValue(2)
    window.parameters.sampler_combo.addItem("Broken", "no-such-sampler")  # a name the registry does not have
    window.parameters.sampler_combo.setCurrentIndex(window.parameters.sampler_combo.count() - 1)
    assert window.state.generation.sampler == "dpmpp_2m"  # refused by the settings, and the combo shows so
    assert window.parameters.sampler_combo.currentData() == "dpmpp_2m"

    import sd_desktop.core.pipelines.generate as pipeline
    from sd_desktop.core.errors import InvalidRequestError

    real_generate = pipeline.generate

    def failing(*args, **kwargs):  # a failure inside the worker
        raise InvalidRequestError("sampler 'plms' is unknown; choose one of dpmpp_2m, euler_a, euler, ddim, ddpm")

    monkeypatch.setattr(pipeline, "generate", failing)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.message_bar.kind() == "error" and "sampler" in window.message_bar.text(),
                    timeout=30000)
    wait_idle(qtbot, window)
    assert "Traceback" not in window.message_bar.text() and "\n" not in window.message_bar.text()
    monkeypatch.setattr(pipeline, "generate", real_generate)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)


def test_first_start_loads_the_demo_model_with_an_example_prompt(qtbot, tiny_model, monkeypatch):
    import sd_desktop.app.state.models as main_window
    import sd_desktop.core.loading.model as core_model

    monkeypatch.setattr(main_window, "demo_model_file", lambda: tiny_model)
    monkeypatch.setattr(core_model, "default_model_path", lambda: tiny_model)
    window = make_window(qtbot)  # no model given: the demo model
    assert window.state.session.current_key == ""
    assert window.model_combo.currentIndex() == 0 and window.model_combo.currentText().startswith("Demo")
    assert window.prompt_edit.toPlainText() == "a red circle on a blue background"
    assert (window.parameters.width_spin.value(), window.parameters.height_spin.value()) == (64, 64)
    assert window.prompt_panel.demo_hint.isVisible()  # what the demo model understands, said under the prompt
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    examples = next(a.menu() for a in help_menu.actions() if a.menu() is not None)
    examples.actions()[2].trigger()
    assert window.state.generation.prompt == "a small yellow triangle in the top left on a black background"
    text = window.shortcuts_text()
    assert "Generate" in text and "Ctrl+PgDown" in text.replace("PgDn", "PgDown") and "Shift+F10" in text
    docs = next(a for a in help_menu.actions() if a.objectName() == "docsAction")  # Help → Documentation (F1)
    assert docs.shortcut().toString() == "F1"
    docs.trigger()
    browser = window.docs_dialog.browser
    assert window.docs_dialog.isVisible() and "Parameters in and out" in browser.toPlainText()
    window.docs_dialog.find.setText("Ctrl+Tab")
    assert window.docs_dialog.find_next() and browser.textCursor().selectedText() == "Ctrl+Tab"
    window.docs_dialog.close()
    window.parameters.steps_spin.setValue(2)
    activate(qtbot, window)
    qtbot.keyClick(window.prompt_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)


@pytest.mark.slow
def test_out_of_the_box_the_window_generates_with_the_bundled_model(qtbot):
    from sd_desktop.core import read_parameters
    from sd_desktop.resources_path import bundled_model
    from sd_desktop.training.judge import judge

    window = make_window(qtbot)  # a first start: no settings, no model given
    assert window.state.session.model_info["path"] == str(bundled_model())
    assert (window.parameters.width_spin.value(), window.parameters.height_spin.value()) == (128, 128)
    window.parameters.seed_spin.setValue(7)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=60000)
    wait_idle(qtbot, window)
    saved = output_pngs(window)[-1]
    assert read_parameters(saved)["prompt"] == "a red circle on a blue background"
    verdict = judge(Image.open(saved).convert("RGB"))
    assert (verdict.background, verdict.object_colour) == ("blue", "red")


def test_the_demo_hint_names_what_the_demo_model_was_trained_on(qtbot, tiny_model):
    from sd_desktop.app.state import generation
    from sd_desktop.training import shapes

    assert (generation.DEMO_COLOURS, generation.DEMO_SHAPES) == (shapes.COLOURS, shapes.SHAPES)
    assert (generation.DEMO_POSITIONS, generation.DEMO_SIZES) == (shapes.POSITIONS, shapes.SIZES)
    for prompt in generation.EXAMPLE_PROMPTS:  # every example uses only words the demo model knows
        known = {*shapes.COLOURS, *shapes.SHAPES, *" ".join(shapes.POSITIONS + shapes.SIZES).split(),
                 "a", "an", "on", "in", "the", "and", "background"}
        assert set(prompt.split()) <= known, prompt
    window = make_window(qtbot, tiny_model)  # another model: no hint
    assert not window.prompt_panel.demo_hint.isVisible()


def test_without_the_demo_model_the_window_says_what_to_do(qtbot, monkeypatch):
    import sd_desktop.app.state.models as main_window

    monkeypatch.setattr(main_window, "demo_model_file", lambda: None)
    window = make_window(qtbot, wait_model=False)
    assert window.message_bar.isVisible() and "demo model is not installed" in window.message_bar.text()
    assert window.message_bar.button("openModelButton") is not None
    assert window.model_combo.itemText(0) == "Demo model (not installed)"
    window.generate_button.click()
    assert "No model is loaded" in window.message_bar.text()


def test_errors_become_one_line_a_user_can_act_on():
    from sd_desktop.app.state.worker import describe_error
    from sd_desktop.core.errors import ModelLoadError

    assert describe_error(MemoryError(), "generating").startswith("Out of memory while generating: try a smaller")
    oom = type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 2.00 GiB\nmore")
    assert describe_error(oom, "generating").startswith("Out of memory")
    assert describe_error(ModelLoadError("x.ckpt: not a model\nsecond line"), "loading") == "x.ckpt: not a model"
    assert "ZeroDivisionError" in describe_error(ZeroDivisionError("boom"), "generating")


@pytest.mark.slow
def test_sd_desktop_opens_the_window_and_exits_cleanly():
    import os
    import subprocess
    import sys

    code = ("from PySide6.QtCore import QTimer\n"
            "from PySide6.QtWidgets import QApplication\n"
            "import sd_desktop.app\n"
            "app = QApplication(['sd-desktop'])\n"
            "QTimer.singleShot(1500, app.closeAllWindows)\n"
            "from sd_desktop.cli import main\n"
            "raise SystemExit(main([]))\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    from pathlib import Path

    assert (Path(os.environ["SD_DESKTOP_CONFIG_DIR"]) / "sd-desktop.ini").is_file()  # settings written on close


def test_last_seed_is_the_batch_base_and_survives_a_restart_and_history_reuses_seeds(qtbot, tiny_model):
    from PySide6.QtWidgets import QApplication

    window = make_window(qtbot, tiny_model)
    window.parameters.steps_spin.setValue(1)
    window.parameters.seed_spin.set_bound_value(500)
    window.parameters.batch_spin.setValue(3)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 3, timeout=60000)
    wait_idle(qtbot, window)
    assert window.state.generation.last_seed == 500  # the batch's base seed, not its last image's (502)
    window.parameters.seed_spin.set_bound_value(None)
    window.parameters.reuse_seed_button.click()
    assert window.state.generation.seed == 500

    oldest = window.history.paths()[-1]  # 500; the newest is 502
    window.history.menu_for(oldest).findChild(type(window.actions.brush), "history_reuseSeed").trigger()
    assert window.state.generation.seed == 500
    window.history.menu_for(window.history.paths()[0]).findChild(type(window.actions.brush), "history_reuseSeed").trigger()
    assert window.state.generation.seed == 502

    # the arrow keys show the image they move to
    window.history_list.setFocus()
    window.history_list.setCurrentRow(0)
    qtbot.keyClick(window.history_list, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.state.document.source == window.history.paths()[1], timeout=5000)
    window.close()
    QApplication.processEvents()

    again = make_window(qtbot, tiny_model)  # a restart: "Last" comes from the history, the newest batch's base
    assert again.state.generation.last_seed == 500 and again.parameters.reuse_seed_button.isEnabled()


def test_the_time_left_is_timed_after_the_first_step(qtbot, tiny_model):
    """The first step pays for warming up (a compiled U-Net compiles there, for minutes): the rate shown is the
    steps' after it, not the first step's time spread over them all."""
    import time

    window = make_window(qtbot, tiny_model)
    model = window.state.session.host.worker.model
    slow_once = []

    def warm_up(_module, _args):
        if not slow_once:
            slow_once.append(time.sleep(2.0))

    hook = model.unet.register_forward_pre_hook(warm_up)
    texts = []
    window.state.session.progressChanged.connect(lambda text, *_: texts.append(text))
    window.parameters.steps_spin.setValue(5)
    try:
        generate_and_wait(qtbot, window)
    finally:
        hook.remove()
    rates = [float(text.split(" s/step")[0].split("· ")[-1]) for text in texts if " s/step" in text]
    assert rates and max(rates) < 0.5, texts  # (with the first step in it: 2 s / 2 steps at least)


def test_extra_resizes_the_seed_from_another_size_and_a_restore_sets_and_clears_it(qtbot, tiny_model):
    """A1111's Resize seed from, behind Extra: both sides set make the image core makes with seed_resize_from and
    say it; one side alone is off; a restored text turns it on (and Extra with it) or off; Extra off clears it."""
    from sd_desktop.core import generate, load_model, read_parameters

    window = make_window(qtbot, tiny_model)
    p, g = window.parameters, window.state.generation
    assert not p.form.isRowVisible(p.rows["seed_resize"])
    p.variation_button.click()
    assert p.form.isRowVisible(p.rows["seed_resize"]) and p.seed_resize_width_spin.text() == "Off"
    p.seed_resize_width_spin.setValue(64)
    assert g.seed_resize_from is None  # (one side alone: off)
    p.seed_resize_height_spin.setValue(128)
    p.seed_spin.setValue(10)
    p.steps_spin.setValue(2)
    g.set_size(64, 64)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=60000)
    wait_idle(qtbot, window)
    path = window.state.session.last_output_paths[0]
    assert read_parameters(path)["request"]["seed_resize_from"] == [64, 128]
    with Image.open(path) as image:
        assert "Seed resize from: 64x128, " in image.info["parameters"]
        made = np.asarray(image.convert("RGB"))
    request = g.build_request()
    assert request.seed_resize_from == (64, 128)
    expected = generate(load_model(tiny_model), request).images[0]
    assert np.array_equal(made, np.asarray(expected.convert("RGB")))
    resized_off = generate(load_model(tiny_model), dataclasses.replace(request, seed_resize_from=None)).images[0]
    assert not np.array_equal(made, np.asarray(resized_off.convert("RGB")))
    p.variation_button.click()  # Extra off: off
    assert (g.seed_resize_width, g.seed_resize_height) == (0, 0) and not p.variation_button.isChecked()
    assert g.restore({"prompt": "x", "seed_resize_from": (512, 768)}) == []
    assert p.variation_button.isChecked() and (p.seed_resize_width_spin.value(), p.seed_resize_height_spin.value()) == (512, 768)
    g.restore({"prompt": "x", "seed_resize_from": None})
    assert g.seed_resize_from is None


def test_extra_shows_the_variation_seed_and_a_batch_counts_it_up_keeping_the_seed(qtbot, tiny_model):
    from sd_desktop.core.io.metadata import read_parameters

    window = make_window(qtbot, tiny_model)
    p = window.parameters
    assert not p.form.isRowVisible(p.rows["variation"])
    p.variation_button.click()  # Extra, as in A1111
    assert p.form.isRowVisible(p.rows["variation"])
    p.variation_seed_spin.setValue(40)
    p.variation_strength_spin.setValue(0.2)
    p.seed_spin.setValue(10)
    p.steps_spin.setValue(2)
    p.batch_spin.setValue(2)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 2, timeout=60000)
    wait_idle(qtbot, window)
    made = sorted((read_parameters(path)["seed"], read_parameters(path)["variation_seed"])
                  for path in window.state.session.last_output_paths)
    assert made == [(10, 40), (10, 41)]  # image i: the seed, variation seed + i (A1111's all_seeds, all_subseeds)
    p.variation_button.click()  # Extra off: the variation off, as A1111's Extra gates it
    assert not p.form.isRowVisible(p.rows["variation"]) and window.state.generation.variation_strength == 0.0
    window.state.generation.variation_strength = 0.3  # (restored from an image): Extra comes on with it
    assert p.variation_button.isChecked() and p.form.isRowVisible(p.rows["variation"])
