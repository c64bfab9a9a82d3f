"""The window with an SDXL model: its family's size, its aspect buckets in the size menu, and the prediction and
CFG rescale controls reaching the request and the image."""

from __future__ import annotations

import pytest
from PIL import Image

from fake_engine import generate_and_wait, make_window
from sd_desktop.core.io.metadata import read_parameters


@pytest.fixture(scope="module")
def sdxl_file(tmp_path_factory):
    from tiny_models import save_sdxl_single_file, tiny_sdxl_parts

    return save_sdxl_single_file(tiny_sdxl_parts(seed=42), tmp_path_factory.mktemp("xl") / "tiny_xl.safetensors")


def test_an_sdxl_model_offers_its_size_and_buckets_and_the_prediction_reaches_the_image(qtbot, sdxl_file):
    window = make_window(qtbot, sdxl_file)
    state, parameters = window.state, window.controls.parameters
    assert state.session.model_info["family"] == "sdxl" and "SDXL" in window.model_status.text()
    assert (state.generation.width, state.generation.height) == (1024, 1024)  # the family's size, on loading
    labels = [action.text() for action in parameters.size_menu_button.menu().actions()]
    assert labels == ["1024 × 1024", "1152 × 896", "896 × 1152", "1216 × 832", "832 × 1216", "1344 × 768", "768 × 1344"]
    parameters.size_menu_button.menu().actions()[3].trigger()
    assert (parameters.width_spin.value(), parameters.height_spin.value()) == (1216, 832)

    state.generation.set_size(64, 64)  # (a tiny model: small pictures keep the test fast)
    state.generation.steps = 2
    parameters.prediction_combo.setCurrentIndex(parameters.prediction_combo.findData("v"))
    parameters.rescale_spin.setValue(0.7)
    assert parameters.form.isRowVisible(parameters.prediction_combo)
    assert parameters.form.isRowVisible(parameters.noise_schedule_combo)
    assert parameters.prediction_combo.itemText(0) == "As the model says (epsilon)"  # (what this file says)
    assert parameters.noise_schedule_combo.itemText(0) == "As the model says (default)"
    state.session.modelUnloaded.emit()  # (dropped before another loads): no model to name
    assert parameters.noise_schedule_combo.itemText(0) == "As the model says"
    parameters.set_model(state.session.model_info)
    parameters.noise_schedule_combo.setCurrentIndex(parameters.noise_schedule_combo.findData("zsnr"))
    path = generate_and_wait(qtbot, window)
    params = read_parameters(path)
    assert params["request"]["prediction"] == "v" and params["request"]["rescale_cfg"] == 0.7
    assert params["request"]["noise_schedule"] == "zsnr"
    assert "Noise Schedule: Zero Terminal SNR" in Image.open(path).info["parameters"]
    # restored: a schedule this model does not take stays chosen; the one it takes anyway is "As the model says"
    state.generation.noise_schedule = "auto"
    state.restore_parameters(params)
    assert state.generation.noise_schedule == "zsnr"
    state.restore_parameters({**params, "noise_schedule": "default"})
    assert state.generation.noise_schedule == "auto"
    assert params["family"] == "sdxl"


def test_an_sd1_model_keeps_the_prediction_rows_out_of_the_way_until_they_are_set(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    parameters = window.controls.parameters
    assert not parameters.form.isRowVisible(parameters.prediction_combo)
    assert not parameters.form.isRowVisible(parameters.rescale_spin)
    assert not parameters.form.isRowVisible(parameters.noise_schedule_combo)
    window.state.generation.rescale_cfg = 0.5  # (restored from an image, say): then it shows, to be seen and undone
    assert parameters.form.isRowVisible(parameters.rescale_spin)


def test_the_eta_and_ensd_rows_show_for_the_samplers_they_change_and_reach_the_image(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    parameters, generation = window.controls.parameters, window.state.generation
    visible = lambda: (parameters.form.isRowVisible(parameters.ancestral_eta_spin),
                       parameters.form.isRowVisible(parameters.ensd_spin))
    generation.sampler = "dpmpp_2m"
    assert visible() == (False, False)  # DPM++ 2M adds no noise after the start
    generation.sampler = "dpmpp_2m_sde"
    assert visible() == (True, False)  # its noise comes from a Brownian tree of the seed itself
    generation.sampler = "euler_a"
    assert visible() == (True, True)
    parameters.ensd_spin.setValue(31337)
    parameters.ancestral_eta_spin.setValue(0.5)
    generation.steps = 2
    path = generate_and_wait(qtbot, window)
    assert (read_parameters(path)["ensd"], read_parameters(path)["ancestral_eta"]) == (31337, 0.5)
    assert "Eta: 0.5, " in Image.open(path).info["parameters"] and "ENSD: 31337" in Image.open(path).info["parameters"]
    generation.sampler = "dpmpp_2m"
    assert parameters.form.isRowVisible(parameters.ensd_spin)  # set: shown wherever, to be seen and undone
