"""The app's state layer on its own and where it meets the worker: bindings, the one-way signal path from the
worker thread, scanning off the GUI thread, model switches, and closing while a model loads."""

from __future__ import annotations

import threading
import time
import types
import weakref

import pytest
import torch
from PySide6.QtCore import SIGNAL, Qt

from fake_engine import make_window, wait_idle


def test_no_widget_connects_to_the_worker_thread_only_its_host_does(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    host = window.state.session.host
    worker = host.worker
    meta = worker.metaObject()
    signals = [bytes(meta.method(i).methodSignature()).decode() for i in range(meta.methodOffset(), meta.methodCount())
               if meta.method(i).methodType() == meta.method(i).MethodType.Signal]
    assert "finished(QVariantList)" in signals and "preview(QImage)" in signals
    for signature in signals:  # one receiver each: the host, which relays it (_kick: the worker's own slot)
        assert worker.receivers(SIGNAL(signature)) == 1, signature
    relays = {name: getattr(host, name) for name in host.RELAYED}
    assert set(relays) | {"jobEnded", "_kick"} == {s.split("(")[0] for s in signals}  # (jobEnded: the host's slot)
    for name, receiver in relays.items():  # ... and that one receiver is the host: without it, none is left
        getattr(worker, name).disconnect(receiver)
        assert worker.receivers(SIGNAL(next(s for s in signals if s.startswith(name + "(")))) == 0, name
    assert worker.thread() is host.thread and window.thread() is not host.thread


def test_models_folders_are_scanned_off_the_gui_thread(qtbot, tmp_path, monkeypatch):
    import sd_desktop.app.state.models as models

    seen = []
    real_scan = models.scan_models

    def scan(folders, max_depth=3):
        seen.append(threading.current_thread() is threading.main_thread())
        time.sleep(0.3)  # a slow network folder: the window keeps working meanwhile
        return real_scan(folders, max_depth)

    monkeypatch.setattr(models, "scan_models", scan)
    (tmp_path / "m.safetensors").write_bytes(b"")
    catalogue = models.ModelCatalogue()
    changes = []
    catalogue.changed.connect(lambda: changes.append(1))
    started = time.perf_counter()
    catalogue.rescan([str(tmp_path)])
    assert time.perf_counter() - started < 0.2 and catalogue.scanning
    qtbot.waitUntil(lambda: not catalogue.scanning, timeout=5000)
    assert seen == [False] and changes == [1]
    assert [entry.label for entry in catalogue.entries()][1:] == ["m"]
    catalogue.stop()


def test_bound_controls_and_settings_stay_equal_both_ways(qtbot, tiny_model):
    from sd_desktop.core.request import Mode

    window = make_window(qtbot, tiny_model)
    generation, panel = window.state.generation, window.parameters
    panel.steps_spin.setValue(13)
    panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findData("ddim"))
    window.prompt_edit.setPlainText("typed")
    assert (generation.steps, generation.sampler, generation.prompt) == (13, "ddim", "typed")
    rows_before = panel.steps_spin.geometry()
    # DDIM has its own timesteps: the row stays (no jump), disabled, and says so
    assert panel.form.isRowVisible(panel.schedule_combo) and not panel.schedule_combo.isEnabled()
    assert panel.schedule_combo.shown_text() == "(sampler's own)"
    panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findData("euler"))
    assert panel.schedule_combo.isEnabled() and panel.schedule_combo.shown_text() == "Karras"
    assert panel.steps_spin.geometry() == rows_before
    panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findData("ddim"))
    generation.cfg_scale, generation.seed, generation.mode = 3.5, 99, Mode.INPAINT
    assert (panel.cfg_spin.value(), panel.seed_spin.value(), window.mode_tabs.currentIndex()) == (3.5, 99, 2)
    assert all(widget.isVisible() for widget in window.canvas_area.mask_tools) and window.actions.brush.isEnabled()
    generation.seed = None
    assert panel.seed_spin.text() == "Random"
    with pytest.raises(ValueError):
        generation.steps = 0  # the settings hold only what a request can take


def test_size_fields_hold_only_sizes_the_engine_makes(qtbot, tiny_model):
    """Typed sizes are rounded to a multiple of 8 (at least 64) when the field is left, visibly."""
    window = make_window(qtbot, tiny_model)
    box = window.parameters.width_spin
    for typed, held in (("100", 96), ("42", 64), ("1000", 1000), ("517", 520)):
        box.setFocus()
        box.selectAll()
        qtbot.keyClicks(box, typed)
        qtbot.keyClick(box, Qt.Key.Key_Enter)
        assert (box.value(), box.text(), window.state.generation.width) == (held, f"{held} px", held), typed
    notes = window.state.generation.restore({"prompt": "x", "width": 100, "height": 200})
    assert (window.state.generation.width, notes) == (96, ["width 100 → 96"])


def test_the_wheel_over_an_unfocused_field_scrolls_the_panel_instead(qtbot, tiny_model):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    window = make_window(qtbot, tiny_model)
    window.resize(900, 600)
    panel = window.parameters
    steps, sampler = panel.steps_spin.value(), panel.sampler_combo.currentIndex()

    def wheel(widget):
        centre = QPointF(widget.rect().center())
        event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, -120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(widget, event)

    window.prompt_edit.setFocus()
    scroll = window.controls_scroll.verticalScrollBar()
    scroll.setValue(0)
    wheel(panel.steps_spin)
    wheel(panel.sampler_combo)
    assert (panel.steps_spin.value(), panel.sampler_combo.currentIndex()) == (steps, sampler)
    assert scroll.maximum() > 0 and scroll.value() > 0  # the panel scrolled instead
    panel.steps_spin.setFocus()
    wheel(panel.steps_spin)
    assert panel.steps_spin.value() == steps - 1  # a focused field takes the wheel


def test_the_sampler_list_is_the_registry(qtbot, monkeypatch):
    import dataclasses

    from sd_desktop.app.state.generation import GenerationSettings
    from sd_desktop.app.ui.panels.parameters import ParametersPanel
    from sd_desktop.core.sampling.registry import SAMPLERS, SCHEDULES

    monkeypatch.setitem(SAMPLERS, "euler_test", dataclasses.replace(SAMPLERS["euler"], name="euler_test",
                                                                    label="Euler Test"))
    panel = ParametersPanel(GenerationSettings())
    qtbot.addWidget(panel)
    combo = panel.sampler_combo
    assert [(combo.itemData(i), combo.itemText(i)) for i in range(combo.count())] == [
        (name, spec.label) for name, spec in SAMPLERS.items()]
    schedules = panel.schedule_combo
    assert [schedules.itemData(i) for i in range(schedules.count())] == list(SCHEDULES)


class FakeModel:
    """What the worker reads of a loaded model."""

    def __init__(self, device: str):
        self.name, self.path, self.native_size, self.is_inpainting = f"on-{device}", None, 64, False
        self.family = types.SimpleNamespace(name="sd1", label="Stable Diffusion 1.x")
        self.device, self.dtype = torch.device(device), torch.float16


@pytest.mark.parametrize("device, frees_first", [("cuda", True), ("mps", True), ("cpu", False)])
def test_a_model_switch_frees_the_old_model_first_on_gpus(qtbot, monkeypatch, device, frees_first):
    """A GPU rarely holds two models; on a CPU the old one stays until the new one has loaded, so a file that
    fails to load leaves a working model."""
    import sd_desktop.core.loading.model as loading
    import sd_desktop.core.runtime.devices as devices
    from sd_desktop.app.state.worker import Gate, Job, Worker

    worker = Worker(Gate())
    old = FakeModel(device)
    worker.model = old
    old_alive = weakref.ref(old)
    del old
    freed, during_load = [], []
    monkeypatch.setattr(devices, "resolve_device", lambda choice: torch.device(device))
    monkeypatch.setattr(devices, "release_device_memory", lambda where: freed.append(str(where)))

    def load(path, **kwargs):
        during_load.append((worker.model is not None, old_alive() is not None))
        return FakeModel(device)

    monkeypatch.setattr(loading, "load_model", load)
    unloaded = []
    worker.modelUnloaded.connect(lambda: unloaded.append(1))
    worker.loadModel(Job("load"), "other.safetensors", device)
    assert worker.model is not None and worker.model.name == f"on-{device}"
    if frees_first:
        assert during_load == [(False, False)] and freed == [device] and unloaded == [1]
    else:
        assert during_load == [(True, True)] and freed == [] and unloaded == []


@pytest.mark.slow
def test_closing_the_window_while_a_model_loads_stops_the_load_and_the_thread(qtbot, tiny_model, monkeypatch):
    import sd_desktop.core.loading.tensor_files as tensor_files

    real_get = tensor_files.TensorFile.get

    def slow_get(self, key):  # a big file on a slow disk: the tiny model's ~350 tensors take over 30 s
        time.sleep(0.1)
        return real_get(self, key)

    monkeypatch.setattr(tensor_files.TensorFile, "get", slow_get)
    window = make_window(qtbot, tiny_model, wait_model=False)
    session = window.state.session
    qtbot.waitUntil(lambda: session.busy, timeout=5000)
    time.sleep(0.5)  # well into reading the tensors
    started = time.perf_counter()
    window.close()
    assert session.host.thread.isFinished()  # never "QThread: Destroyed while thread is still running"
    assert time.perf_counter() - started < 5
    from sd_desktop.app.state import worker as worker_module

    assert session.host not in worker_module._still_running


def test_device_and_precision_errors_read_as_what_they_are():
    from sd_desktop.app.state.worker import describe_error
    from sd_desktop.core.runtime.devices import resolve_dtype

    try:
        resolve_dtype("fp8", torch.device("cpu"))
    except Exception as exc:  # noqa: BLE001
        line = describe_error(exc, "loading x.safetensors")
    assert line == "unknown precision 'fp8'; use auto, fp32, fp16 or bf16"


def test_compile_is_offered_only_where_it_works(qtbot):
    from sd_desktop.app.state.preferences import AppSettings, compile_offered
    from sd_desktop.app.ui.preferences_dialog import PreferencesDialog

    assert compile_offered("cpu") and compile_offered("cuda") and compile_offered("auto", "linux", "x86_64")
    assert not compile_offered("mps") and not compile_offered("auto", "darwin", "arm64")
    prefs = AppSettings()
    prefs.compile_unet = True
    dialog = PreferencesDialog(prefs)
    qtbot.addWidget(dialog)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("mps"))
    assert not dialog.compile_check.isEnabled() and not dialog.compile_check.isChecked()
    assert "does not work on Apple's MPS" in dialog.compile_check.toolTip()
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    assert dialog.compile_check.isEnabled()
    assert "compiles" in dialog.compile_check.toolTip() and "MPS" not in dialog.compile_check.toolTip()


def test_a_failed_load_after_the_gpu_was_cleared_says_no_model_is_loaded(qtbot, tiny_model, tmp_path, monkeypatch):
    import sd_desktop.core.runtime.devices as devices

    window = make_window(qtbot, tiny_model)
    monkeypatch.setattr(devices, "resolve_device", lambda choice: torch.device("cuda"))  # as on a GPU machine
    monkeypatch.setattr(devices, "release_device_memory", lambda where: None)
    broken = tmp_path / "broken.safetensors"
    broken.write_text("not a model")
    window.state.open_model_file(str(broken))
    qtbot.waitUntil(lambda: window.message_bar.kind() == "error", timeout=30000)
    wait_idle(qtbot, window)
    assert window.message_bar.text().endswith("(no model is loaded now: choose one in the Model list)")
    assert window.state.session.model_info is None and window.model_status.text() == "No model"
    window.generate_button.click()
    assert "No model is loaded" in window.message_bar.text()


def test_the_token_counter_counts_as_the_encoder_reads_the_prompt(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    panel = window.prompt_panel
    window.prompt_edit.setPlainText("a " * 76)
    qtbot.waitUntil(lambda: panel.prompt_count.text() == "76/150", timeout=5000)
    window.prompt_edit.setPlainText("(a:1.5) BREAK b")  # weights are not tokens; BREAK closes a chunk
    qtbot.waitUntil(lambda: panel.prompt_count.text() == "76/150", timeout=5000)
    window.parameters.emphasis_combo.setCurrentIndex(window.parameters.emphasis_combo.findData("None"))
    qtbot.waitUntil(lambda: panel.prompt_count.text() != "76/150", timeout=5000)  # brackets and BREAK as words
    assert panel.negative_count.text() == "0/75"


def test_clip_skip_and_emphasis_reach_the_request_and_the_image(qtbot, tiny_model):
    from sd_desktop.core import read_parameters

    window = make_window(qtbot, tiny_model)
    window.parameters.clip_skip_spin.setValue(2)
    window.parameters.emphasis_combo.setCurrentIndex(window.parameters.emphasis_combo.findData("No norm"))
    window.parameters.steps_spin.setValue(2)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    params = read_parameters(window.history.paths()[0])
    assert (params["clip_skip"], params["emphasis"]) == (2, "No norm")


def test_the_noise_source_reaches_the_request_and_the_image(qtbot, tiny_model):
    from sd_desktop.core import read_parameters

    window = make_window(qtbot, tiny_model)
    combo = window.parameters.rng_combo
    combo.setCurrentIndex(combo.findData("nv"))
    assert window.state.generation.rng == "nv" and window.state.generation.build_request().rng == "nv"
    window.parameters.steps_spin.setValue(2)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    assert read_parameters(window.history.paths()[0])["rng"] == "nv"


COMFY_WITH_LORA = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 77, "steps": 14, "cfg": 6, "sampler_name": "dpmpp_2m",
                                               "scheduler": "ddim_uniform", "denoise": 1, "model": ["10", 0],
                                               "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "dreamshaper_8.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 96, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a (red:1.3) kite", "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "fog", "clip": ["10", 1]}},
    "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "kites.safetensors", "strength_model": 1,
                                                  "strength_clip": 1, "model": ["4", 0], "clip": ["4", 1]}},
}


def test_restoring_a_comfyui_image_says_what_was_not_restored_and_a_plain_image_withdraws_the_offer(
        qtbot, tiny_model, tmp_path):
    import json

    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(COMFY_WITH_LORA))
    comfy = tmp_path / "ComfyUI_00007_.png"
    Image.new("RGB", (64, 96), (40, 90, 200)).save(comfy, pnginfo=info)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (64, 64)).save(plain)

    window = make_window(qtbot, tiny_model)
    window.parameters.sampler_combo.setCurrentIndex(window.parameters.sampler_combo.findData("euler"))
    window.open_image(str(comfy))
    assert "(ComfyUI)" in window.message_bar.text() and window.message_bar.button("restoreParametersButton")
    window.open_image(str(plain))  # the next image has none: the offer goes
    assert not window.message_bar.isVisible()

    window.open_image(str(comfy))
    qtbot.mouseClick(window.message_bar.button("restoreParametersButton"), Qt.MouseButton.LeftButton)
    values = window.state.generation
    assert (values.prompt, values.negative_prompt, values.seed, values.steps) == (
        "a (red:1.3) kite <lora:kites:1>", "fog", 77, 14)  # the LoRA loader as A1111's tag
    assert (values.sampler, values.emphasis, values.width, values.height) == ("dpmpp_2m", "ComfyUI", 64, 96)
    assert values.schedule == "karras"  # kept, and said so:
    assert window.message_bar.text() == ("Not restored: schedule ddim_uniform → using Karras; LoRA kites (not in "
                                         "your LoRA folders). It was made with the model “dreamshaper_8”.")
    assert window.message_bar.kind() == "warning"


def test_pasting_an_infotext_into_the_prompt_offers_to_fill_every_field(qtbot, tiny_model):
    from PySide6.QtCore import QMimeData

    window = make_window(qtbot, tiny_model)
    text = ("a tin robot, (rust:1.1)\nNegative prompt: people\nSteps: 13, Sampler: DPM++ SDE, Schedule type: "
            "Exponential, CFG scale: 5.5, Seed: 4242, Size: 128x64, Clip skip: 2, RNG: CPU, Hires upscale: 2, "
            "Hires resize: 512x256, "
            "Version: v1.10.1")
    mime = QMimeData()
    mime.setText(text)
    window.prompt_edit.setPlainText("")
    window.prompt_edit.insertFromMimeData(mime)  # what Ctrl+V does
    assert window.prompt_edit.toPlainText() == text  # pasted as it was
    qtbot.mouseClick(window.message_bar.button("fillParametersButton"), Qt.MouseButton.LeftButton)
    values = window.state.generation
    assert (values.prompt, values.negative_prompt) == ("a tin robot, (rust:1.1)", "people")
    assert window.prompt_edit.toPlainText() == "a tin robot, (rust:1.1)"
    assert (values.steps, values.sampler, values.schedule, values.cfg_scale, values.seed) == (
        13, "dpmpp_sde", "exponential", 5.5, 4242)
    assert (values.width, values.height, values.clip_skip, values.rng) == (128, 64, 2, "cpu")
    assert values.hires_fix and values.hires_scale == 2.0  # A1111's Hires fix, restored
    assert window.message_bar.text() == "Not restored: Hires fix's resize."
    mime.setText("just a prompt, Steps: no")
    window.prompt_edit.insertFromMimeData(mime)
    assert "pasted text" not in window.message_bar.text()  # not an infotext: no offer


def test_keyboard_mode_switching_image_paste_into_the_prompt_and_the_view_menu(qtbot, tiny_model):
    from PySide6.QtGui import QGuiApplication, QImage

    from fake_engine import activate
    from sd_desktop.core.request import Mode

    window = make_window(qtbot, tiny_model)
    activate(qtbot, window)
    window.prompt_edit.setFocus()
    assert window.mode() == Mode.TXT2IMG
    qtbot.keyClick(window.prompt_edit, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
    assert window.mode() == Mode.IMG2IMG
    qtbot.keyClick(window.prompt_edit, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert window.mode() == Mode.INPAINT
    qtbot.keyClick(window.prompt_edit, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.prompt_edit, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.prompt_edit, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
    assert window.mode() == Mode.INTERPOLATE  # round

    window.set_mode(Mode.IMG2IMG)
    window.prompt_edit.setFocus()
    window.prompt_edit.setPlainText("a cat")
    picture = QImage(48, 40, QImage.Format.Format_RGB32)
    picture.fill(Qt.GlobalColor.darkGreen)
    QGuiApplication.clipboard().setImage(picture)
    qtbot.keyClick(window.prompt_edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.image().size() == picture.size()  # on the canvas, even with the prompt focused
    assert window.prompt_edit.toPlainText() == "a cat"
    QGuiApplication.clipboard().setText("a dog")  # text still pastes as text
    qtbot.keyClick(window.prompt_edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert "a dog" in window.prompt_edit.toPlainText()

    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert all(action.isEnabled() for action in view.actions() if action.isCheckable())
    assert "Controls" not in [action.text() for action in view.actions()]


def test_the_canvas_tools_wrap_instead_of_hiding_at_1024_px(qtbot, tiny_model):
    from PySide6.QtWidgets import QApplication

    from sd_desktop.core.request import Mode

    window = make_window(qtbot, tiny_model)
    window.set_mode(Mode.INPAINT)
    area = window.canvas_area
    for width in (1024, 1400):
        window.resize(width, 700)
        QApplication.processEvents()
        qtbot.wait(50)
        bar = area.toolbar
        for widget in (*area.mask_tools[1:], area.fit_button, area.actual_size_button):
            rect = widget.geometry() if widget.parentWidget() is bar else widget.geometry().translated(
                widget.parentWidget().pos())
            assert widget.isVisible() and bar.rect().contains(rect), (width, widget.objectName(), rect, bar.rect())
        assert area.stack.geometry().top() >= bar.geometry().bottom()  # the rows push the canvas down


def test_a_precision_this_cpu_emulates_is_said_over_the_canvas(qtbot, tiny_model, monkeypatch):
    import sd_desktop.core.runtime.devices as devices

    monkeypatch.setattr(devices, "_cpu_flags", lambda cpuinfo=None: {"sse4_2", "avx2", "fma"})  # an AVX2-only CPU
    window = make_window(qtbot, tiny_model)
    window.state.preferences.precision = "bf16"
    window.state.load_model(str(tiny_model))
    qtbot.waitUntil(lambda: "bfloat16 is emulated on this CPU" in window.message_bar.text(), timeout=30000)
    wait_idle(qtbot, window)
    assert window.state.session.model_info["dtype"] == "bfloat16"  # said, not changed


def test_a_model_that_failed_for_want_of_memory_stays_in_the_list(qtbot, tiny_model, tmp_path, monkeypatch):
    """Only a file that is not a model leaves the Model list: one that ran out of memory is fine (a smaller
    precision may load it), as is one on a drive not mounted now."""
    import shutil

    import sd_desktop.core.loading.model as loading
    from sd_desktop.core.errors import ModelMemoryError

    window = make_window(qtbot, tiny_model)
    big = tmp_path / "big.safetensors"
    shutil.copy(tiny_model, big)

    def no_memory(*_args, **_kwargs):
        raise ModelMemoryError("not enough memory to load big.safetensors on the CPU in float32: close other programs")

    monkeypatch.setattr(loading, "load_model", no_memory)
    window.state.open_model_file(str(big))
    qtbot.waitUntil(lambda: window.message_bar.kind() == "error", timeout=30000)
    wait_idle(qtbot, window)
    assert str(big) in window.state.preferences.recent_models
    assert str(big) in [window.model_combo.itemData(i) for i in range(window.model_combo.count())]
