"""Settings survive a restart of the window; Preferences (output folder, models folders); the history
dock (earlier results, its context menu); the small pure helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QGuiApplication

from fake_engine import make_window, output_pngs, wait_idle
from sd_desktop.app.state.app import fitted_size
from sd_desktop.app.state.qt_images import numpy_to_qimage, pil_to_qimage, qimage_to_numpy, qimage_to_pil
from sd_desktop.app.state.models import scan_models
from sd_desktop.app.ui.preferences_dialog import PreferencesDialog


def test_every_control_window_geometry_and_model_survive_a_restart(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model)
    window.prompt_edit.setPlainText("a green square\non two lines")
    window.negative_prompt_edit.setPlainText("text")
    p = window.parameters
    p.sampler_combo.setCurrentIndex(p.sampler_combo.findData("euler_a"))
    p.steps_spin.setValue(7)
    p.cfg_spin.setValue(5.5)
    p.seed_spin.setValue(4294967295)  # A1111 seeds are 32-bit unsigned
    window.state.generation.set_size(64, 128)
    p.batch_spin.setValue(3)
    p.strength_spin.setValue(0.4)
    p.mask_blur_spin.setValue(9)
    p.full_res_check.setChecked(True)
    window.interpolation.frames_spin.setValue(12)
    window.canvas.setBrushSize(40)
    window.set_mode("inpaint")
    window.history_dock.hide()
    window.resize(760, 560)  # within the offscreen screen (800x800), which restoreGeometry clamps to
    before = window.state.generation.persistent()
    window.close()

    ini = QSettings(str(window.state.preferences.q.fileName()), QSettings.Format.IniFormat)
    assert ini.fileName().endswith("sd-desktop.ini")  # SD_DESKTOP_CONFIG_DIR is honoured

    again = make_window(qtbot)  # no model given: the last one
    assert again.state.session.current_key == str(tiny_model)
    assert again.state.generation.persistent() == before
    assert again.mode() == "inpaint" and again.mode_tabs.currentIndex() == 2
    assert again.prompt_edit.toPlainText() == "a green square\non two lines"
    assert int(again.parameters.seed_spin.value()) == 4294967295
    assert (again.width(), again.height()) == (760, 560)
    assert not again.history_dock.isVisible()  # docks come back as they were


def test_preferences_set_the_output_folder_and_models_folders(qtbot, tiny_model, tmp_path, monkeypatch):
    monkeypatch.delenv("SD_DESKTOP_OUTPUT_DIR")
    chosen = tmp_path / "my outputs"
    models = tmp_path / "models" / "Stable-diffusion"
    (models / "sub").mkdir(parents=True)
    (models / "sub" / "other.safetensors").write_bytes(tiny_model.read_bytes())
    (models / "old.ckpt").write_bytes(b"")
    (models / "notes.txt").write_text("not a model")
    diffusers = models / "my-diffusers-model"
    diffusers.mkdir()
    (diffusers / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))

    window = make_window(qtbot, tiny_model)
    dialog = PreferencesDialog(window.state.preferences, window)
    dialog.output_edit.setText(str(chosen))
    dialog.add_models_folder(str(tmp_path / "models"))
    dialog.accept()
    window.apply_preferences()
    qtbot.waitUntil(lambda: not window.state.catalogue.scanning, timeout=10000)  # scanned off the GUI thread
    assert window.state.preferences.output_root == chosen
    entries = [window.model_combo.itemText(i) for i in range(window.model_combo.count())]
    assert {"other", "old", "my-diffusers-model"} <= set(entries) and "notes" not in entries
    assert entries[-1] == "Open…"

    window.parameters.steps_spin.setValue(2)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    assert len(list(chosen.glob("*/*.png"))) == 1  # saved where Preferences said
    wait_idle(qtbot, window)  # the model list is disabled while a job runs

    index = window.model_combo.findText("other")
    window.model_combo.setCurrentIndex(index)
    window.model_combo.activated.emit(index)  # as a click on the item does
    qtbot.waitUntil(lambda: window.state.session.model_info["path"].endswith("other.safetensors"), timeout=30000)
    window.close()
    again = make_window(qtbot)
    assert again.model_combo.currentText() == "other"
    assert again.state.preferences.models_folders == [str(tmp_path / "models")]


def test_the_precision_chosen_in_preferences_reloads_the_model_in_it(qtbot, tiny_model, monkeypatch):
    import sd_desktop.core.loading.model as core_model

    asked = []
    real_load = core_model.load_model

    def recording_load(path=None, **kwargs):  # compiling for real would take minutes: record the wish
        assert callable(kwargs.pop("should_stop"))  # closing the window stops a load between tensors
        asked.append(kwargs)
        return real_load(path, **{**kwargs, "compile": False})

    monkeypatch.setattr(core_model, "load_model", recording_load)
    window = make_window(qtbot, tiny_model)
    assert window.state.preferences.precision == "auto" and not window.state.preferences.compile_unet
    assert asked[-1] == {"device": "auto", "dtype": "auto", "compile": False}

    def choose_and_accept(dialog):
        dialog.precision_combo.setCurrentIndex(dialog.precision_combo.findData("fp32"))
        dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
        dialog.compile_check.setChecked(True)
        dialog.accept()
        return True

    monkeypatch.setattr(PreferencesDialog, "exec", choose_and_accept)
    window.state.session.model_info["dtype"] = "was reloaded?"
    window.show_preferences()
    qtbot.waitUntil(lambda: window.state.session.model_info["dtype"] == "float32", timeout=30000)
    assert window.state.preferences.precision == "fp32" and window.state.preferences.device == "cpu" and window.state.preferences.compile_unet
    assert asked[-1] == {"device": "cpu", "dtype": "fp32", "compile": True}
    window.close()
    again = make_window(qtbot)
    assert again.state.session.model_info["dtype"] == "float32"  # kept for the next start


def test_the_output_dir_variable_overrides_preferences(qtbot, tiny_model, tmp_path):
    window = make_window(qtbot, tiny_model, wait_model=False)
    window.state.preferences.output_folder_setting = str(tmp_path / "ignored")
    assert window.state.preferences.output_root == Path(os.environ["SD_DESKTOP_OUTPUT_DIR"])  # the variable wins
    assert window.state.session.output_folder().parent == Path(os.environ["SD_DESKTOP_OUTPUT_DIR"])
    wait_idle(qtbot, window)


def test_history_lists_earlier_results_and_its_menu_acts_on_them(qtbot, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # the Trash Qt moves files to
    window = make_window(qtbot, tiny_model)
    window.parameters.steps_spin.setValue(2)
    window.parameters.seed_spin.setValue(21)
    window.prompt_edit.setPlainText("first")
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=30000)
    wait_idle(qtbot, window)
    window.parameters.seed_spin.setValue(22)
    window.prompt_edit.setPlainText("second")
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 2, timeout=30000)
    window.close()

    window = make_window(qtbot, tiny_model)
    files = output_pngs(window)
    assert window.history.paths() == [str(f) for f in reversed(files)]  # earlier results, newest first
    qtbot.waitUntil(lambda: "second" in window.history_list.item(0).toolTip(), timeout=10000)
    first, second = str(files[0]), str(files[1])

    window.history_list.itemClicked.emit(window.history.item_for(first))  # click: show it on the canvas
    assert window.canvas.image().width() == 64 and window.state.document.source == first

    menu = window.history.menu_for(first)
    actions = {a.objectName(): a for a in menu.actions()}
    assert {"history_init", "history_interpA", "history_interpB", "history_copy", "history_saveAs",
            "history_restore", "history_delete"} <= set(actions)
    actions["history_restore"].trigger()
    assert window.prompt_panel.prompt() == "first" and window.state.generation.seed == 21

    actions["history_copy"].trigger()
    assert QGuiApplication.clipboard().image().width() == 64

    window.history.menu_for(second).actions()[3].trigger()  # Set as interpolation A
    assert window.mode() == "interpolate" and window.interpolation.slot_a.has_image()
    assert window.interpolation.slot_a.prompt_edit.text() == "second"  # its prompt helps the inversion

    {a.objectName(): a for a in window.history.menu_for(first).actions()}["history_init"].trigger()
    assert window.mode() == "img2img" and window.state.document.source == first

    asked = []
    window.choose = lambda title, text, choices: asked.append(choices) and None
    {a.objectName(): a for a in window.history.menu_for(first).actions()}["history_delete"].trigger()
    assert asked == [["Move to Trash", "Remove from history only"]] and files[0].exists()  # Cancel keeps it
    window.choose = lambda title, text, choices: "Remove from history only"
    window.history.showRequested.emit(second)
    {a.objectName(): a for a in window.history.menu_for(second).actions()}["history_delete"].trigger()
    assert files[1].exists() and window.history.paths() == [first]
    assert window.state.document.source == first  # the canvas moved on from the removed image
    window.choose = lambda title, text, choices: "Move to Trash"
    {a.objectName(): a for a in window.history.menu_for(first).actions()}["history_delete"].trigger()
    assert not files[0].exists() and window.history.paths() == []
    trashed = list((tmp_path / "xdg-data" / "Trash" / "files").iterdir())
    assert [p.name for p in trashed] == [files[0].name]  # in the Trash, not gone


def test_image_conversions_round_trip_exactly():
    rng = np.random.default_rng(0)
    for shape in [(7, 13, 3), (5, 6, 4), (9, 11)]:  # odd widths: rows padded to 4 bytes inside QImage
        array = rng.integers(0, 256, shape, dtype=np.uint8)
        image = numpy_to_qimage(array)
        channels = 1 if len(shape) == 2 else shape[2]
        assert np.array_equal(qimage_to_numpy(image, channels), array)
    from PIL import Image

    pil = Image.fromarray(rng.integers(0, 256, (10, 15, 3), dtype=np.uint8))
    assert np.array_equal(np.asarray(qimage_to_pil(pil_to_qimage(pil))), np.asarray(pil))
    with pytest.raises(ValueError):
        numpy_to_qimage(np.zeros((4, 4, 3), np.float32))


def test_scan_models_and_fitted_size(tmp_path):
    (tmp_path / "a" / "b" / "c" / "d").mkdir(parents=True)
    (tmp_path / "top.safetensors").write_bytes(b"")
    (tmp_path / "a" / "b" / "deep.CKPT").write_bytes(b"")
    (tmp_path / "a" / "b" / "c" / "d" / "too-deep.safetensors").write_bytes(b"")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.safetensors").write_bytes(b"")
    found = [p.name for p in scan_models([str(tmp_path), str(tmp_path / "missing")])]
    assert found == ["top.safetensors", "deep.CKPT"]
    assert fitted_size(1024, 768, 512) == (512, 384)
    assert fitted_size(100, 50, 512) == (96, 64)  # multiples of 8, at least 64


def test_a_device_this_machine_lacks_falls_back_to_the_cpu_and_is_disabled_in_preferences(qtbot, tiny_model,
                                                                                         monkeypatch):
    import torch

    from sd_desktop.app.state.preferences import AppSettings

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: CUDA is not a device it lacks")
    prefs = AppSettings()
    prefs.device = "cuda"  # saved on another machine, or chosen by mistake
    window = make_window(qtbot, tiny_model, preferences=prefs)
    assert window.state.session.model_info["device"] == "cpu"  # a model, not "no model loaded"
    text = window.message_bar.text()
    assert text.startswith("The CUDA GPU chosen in Preferences cannot be used (") and "runs on the CPU" in text
    window.message_bar.button("useAutomaticDeviceButton").click()
    assert window.state.preferences.device == "auto" and not window.message_bar.isVisible()

    dialog = PreferencesDialog(window.state.preferences, window,
                               unavailable_devices=window.state.session.model_info["unavailable_devices"])
    combo = dialog.device_combo
    cuda = combo.model().item(combo.findData("cuda"))
    assert not cuda.isEnabled() and cuda.text() == "CUDA GPU — not available here"
    assert "CUDA" in cuda.toolTip()
    assert combo.model().item(combo.findData("cpu")).isEnabled()


def test_without_a_file_manager_the_folder_path_is_shown(qtbot, tiny_model, monkeypatch, tmp_path):
    from PySide6.QtGui import QDesktopServices

    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: False))
    window = make_window(qtbot, tiny_model)
    window.actions.open_output.trigger()
    assert window.message_bar.text() == f"No file manager opened; the folder is {window.state.preferences.output_root}"
    window.history.openFolderRequested.emit(str(tmp_path / "2026-11-30" / "00001-7.png"))  # a history image's menu
    assert window.message_bar.text() == f"No file manager opened; the folder is {tmp_path / '2026-11-30'}"


def test_status_messages_never_run_under_the_model_label(qtbot, tiny_model):
    """A long status message and a long model name at 900 px: both end with "…" in their own space, the whole
    texts kept (currentMessage, tooltip), and the message grows back when the window does."""
    window = make_window(qtbot, tiny_model)
    window.resize(900, 600)
    bar, label = window.statusBar(), window.model_status
    assert label.toolTip().startswith(label.text() + "\n")  # the whole label, then the model's file
    label.setText("realisticVisionV60B1_v51HyperVAE-inpainting · SD 1.x inpainting · cpu bfloat16 · 512 px")
    message = "Generating 4 images… " + "a status message that goes on about what is happening now " * 3
    bar.showMessage(message, 0)
    qtbot.waitUntil(lambda: label.width() > 0 and label.x() > 0, timeout=5000)
    qtbot.waitUntil(lambda: super(type(bar), bar).currentMessage().endswith("…"), timeout=5000)
    drawn = super(type(bar), bar).currentMessage()  # what Qt paints
    assert bar.currentMessage() == message and message.startswith(drawn[:-1])
    assert bar.fontMetrics().horizontalAdvance(drawn) < label.x()  # ends before the label starts
    assert label.width() <= label.widest and label.shown_text().endswith("…") and label.shown_text() != label.text()
    window.resize(2400, 600)
    qtbot.waitUntil(lambda: super(type(bar), bar).currentMessage() == message, timeout=5000)
    bar.clearMessage()
    assert bar.currentMessage() == ""


def test_the_documentation_comes_from_the_installed_metadata_without_a_checkout(monkeypatch, tmp_path):
    """Installed from a wheel there is no README beside the package: the metadata's long description is it."""
    import sd_desktop
    from sd_desktop.app.ui import docs_dialog

    (tmp_path / "sd_desktop").mkdir()
    monkeypatch.setattr(sd_desktop, "__file__", str(tmp_path / "sd_desktop" / "__init__.py"))
    text, folder = docs_dialog.readme()
    assert folder is None and text.startswith("# sd-desktop") and "Parameters in and out" in text
