"""Presets: one click (the window) or --preset (the CLI) sets sampler, schedule, steps and CFG; the window names the
preset the values are, else Custom; explicit CLI values win."""

from __future__ import annotations

import pytest

from sd_desktop import core
from sd_desktop.core.presets import PRESETS, apply_preset, preset_named, preset_of


def test_presets_are_registered_samplers_and_round_trip():
    for preset in PRESETS.values():
        assert preset.sampler in core.SAMPLERS and preset.schedule in core.SCHEDULES
        request = apply_preset(core.GenerationRequest(), preset.name)
        assert preset_of(request.sampler, request.schedule, request.steps, request.cfg_scale) == preset.name
        core.check_request(request)
    assert preset_of("euler", "karras", 20, 7.5) is None
    with pytest.raises(core.InvalidRequestError, match="preset 'fastest' is unknown; choose quality, fast, turbo"):
        preset_named("fastest")


def test_the_window_applies_and_names_presets(qtbot):
    from sd_desktop.app.state.generation import GenerationSettings
    from sd_desktop.app.ui.panels.parameters import ParametersPanel

    settings = GenerationSettings()
    panel = ParametersPanel(settings)
    qtbot.addWidget(panel)
    assert panel.preset_combo.currentData() == "quality"  # the defaults are Quality
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findData("fast"))
    panel.preset_combo.activated.emit(panel.preset_combo.currentIndex())
    assert (settings.sampler, settings.schedule, settings.steps, settings.cfg_scale) == ("lcm", "sgm_uniform", 6, 1.5)
    assert panel.steps_spin.value() == 6 and panel.sampler_combo.currentData() == "lcm"
    panel.steps_spin.setValue(8)  # changed by hand: no longer the preset
    assert panel.preset_combo.currentText() == "Custom"
    panel.steps_spin.setValue(6)
    assert panel.preset_combo.currentData() == "fast"
