"""Live mode in the window: changes make new pictures with the held seed, a change mid-run cancels the old one,
nothing is saved or added to the history until Keep."""

from __future__ import annotations

from fake_engine import make_window, output_pngs, wait_idle


def test_live_regenerates_on_changes_without_flooding_the_history_and_keep_saves(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    state, controls = window.state, window.controls
    state.generation.seed = None
    state.generation.steps = 3
    state.generation.prompt = "a red circle on a blue background"
    images, outcomes = [], []
    state.live.imageChanged.connect(images.append)
    state.session.host.jobEnded.connect(lambda _id, outcome: outcomes.append(outcome))
    controls.live_button.click()
    assert state.live.on and state.generation.seed is not None  # the seed is held
    qtbot.waitUntil(lambda: len(images) >= 1 and images[-1] is not None, timeout=30000)
    wait_idle(qtbot, window)
    qtbot.wait(500)  # (past the debounce: holding the seed does not cancel the first picture)
    assert outcomes == ["done"] and not state.session.busy
    assert output_pngs(window) == [] and len(state.history.paths()) == 0  # nothing saved, nothing listed
    assert window.canvas_area.canvas._preview.isVisible()  # the live picture over the canvas, after the job

    seen = len(images)
    started = []
    state.session.jobChanged.connect(lambda kind: kind and started.append(kind))
    for text in ("a green", "a green square", "a green square on a white background"):  # typing: debounced
        state.generation.prompt = text
    qtbot.waitUntil(lambda: len(images) > seen, timeout=30000)
    wait_idle(qtbot, window)
    assert started == ["generate"]  # one picture for the three edits
    assert state.live.latest["pil"].info["parameters"].startswith("a green square on a white background")

    assert controls.keep_button.isEnabled()
    controls.keep_button.click()
    assert len(output_pngs(window)) == 1 and len(state.history.paths()) == 1
    assert not controls.keep_button.isEnabled() and state.live.keep() is None  # kept once: no second copy
    assert len(output_pngs(window)) == 1
    assert "Generating" not in window.statusBar().currentMessage()  # Live's pictures leave the status bar alone

    state.generation.steps = 40  # a long run, then a change mid-run: the old run stops at its next step
    qtbot.waitUntil(lambda: state.session.live_running, timeout=10000)
    state.generation.cfg_scale = 3.0
    qtbot.waitUntil(lambda: state.live.latest is not None and "CFG scale: 3.0" in state.live.latest["parameters"],
                    timeout=60000)
    controls.live_button.click()
    assert not state.live.on and not controls.keep_button.isEnabled()
    assert len(output_pngs(window)) == 1


def test_a_real_model_goes_live_on_the_fast_preset_shown_in_the_controls(qtbot, tiny_model):
    from sd_desktop.core.presets import PRESETS

    window = make_window(qtbot, tiny_model)
    state = window.state
    for key, value in PRESETS["quality"].values().items():
        setattr(state.generation, key, value)
    window.controls.live_button.click()
    assert {key: getattr(state.generation, key) for key in PRESETS["fast"].values()} == PRESETS["fast"].values()
    assert window.controls.parameters.preset_combo.currentData() == "fast"
    qtbot.waitUntil(lambda: state.live.latest is not None, timeout=30000)
    wait_idle(qtbot, window)
    assert "lcm-lora-sdv1-5" in window.message_bar.text() and window.message_bar.isVisible()  # still said after a picture
    window.controls.live_button.click()
    wait_idle(qtbot, window)
    assert output_pngs(window) == []


def test_live_goes_off_in_interpolate(qtbot, tiny_model):
    from sd_desktop.core.request import Mode

    window = make_window(qtbot, tiny_model)
    state = window.state
    state.generation.steps = 2
    window.controls.live_button.click()
    qtbot.waitUntil(lambda: state.live.latest is not None, timeout=30000)
    state.generation.mode = Mode.INTERPOLATE
    wait_idle(qtbot, window)
    assert not state.live.on and not window.controls.live_button.isChecked()
    assert not window.controls.keep_button.isEnabled() and not window.canvas_area.canvas._preview.isVisible()


def test_a_model_loaded_while_live_is_on_gets_the_fast_preset_too(qtbot, tiny_model, tmp_path):
    """As if Live were switched on with it: turned on during a load (no model yet to tell), or a model switch."""
    import shutil

    from sd_desktop.core.presets import PRESETS

    window = make_window(qtbot, tiny_model)
    state = window.state
    state.generation.steps = 2
    window.controls.live_button.click()
    qtbot.waitUntil(lambda: state.live.latest is not None, timeout=30000)
    wait_idle(qtbot, window)
    for key, value in PRESETS["quality"].values().items():  # back to Quality by hand, then another model
        setattr(state.generation, key, value)
    qtbot.wait(600)  # (past the debounce: the picture those changes make)
    wait_idle(qtbot, window, timeout=60000)
    other = tmp_path / "other.safetensors"
    shutil.copy(tiny_model, other)
    state.open_model_file(str(other))
    qtbot.waitUntil(lambda: (state.session.model_info or {}).get("path") == str(other), timeout=30000)
    assert window.controls.parameters.preset_combo.currentData() == "fast"
    window.controls.live_button.click()
    wait_idle(qtbot, window)


def test_live_says_it_waits_while_generate_forever_runs(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    state = window.state
    state.generation.steps = 2
    messages = []
    state.status.connect(lambda text, _ms: messages.append(text))
    window.controls.forever_button.click()
    qtbot.waitUntil(lambda: state.session.busy, timeout=10000)
    window.controls.live_button.click()
    qtbot.waitUntil(lambda: any("Live waits: Generate forever" in text for text in messages), timeout=10000)
    window.controls.forever_button.click()
    window.controls.live_button.click()
    wait_idle(qtbot, window, timeout=60000)


def test_a_note_is_said_once_while_live_runs_not_at_each_picture(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    state = window.state
    state.generation.steps, state.generation.cfg_scale = 2, 1.0
    state.generation.negative_prompt = "blurry"  # (unused at CFG 1: a note)
    said = []
    state.message.connect(lambda text, *_: "negative prompt" in text and said.append(text))
    pictures = []
    state.live.imageChanged.connect(lambda image: image is not None and pictures.append(image))
    window.controls.live_button.click()
    qtbot.waitUntil(lambda: len(pictures) == 1, timeout=30000)
    state.generation.prompt = "a green square"
    qtbot.waitUntil(lambda: len(pictures) == 2, timeout=30000)
    wait_idle(qtbot, window)
    assert len(said) == 1
    window.controls.live_button.click()
    wait_idle(qtbot, window)


def test_live_holds_a_random_variation_seed_as_it_holds_the_seed(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    state = window.state
    state.generation.steps = 2
    state.generation.variation_seed = None
    state.generation.variation_strength = 0.3
    window.controls.live_button.click()
    held = state.generation.variation_seed
    assert held is not None  # one picture that changes with the prompt, not new noise at every change
    qtbot.waitUntil(lambda: state.live.latest is not None, timeout=30000)
    state.generation.variation_strength = 0.0
    state.generation.variation_seed = None
    state.generation.variation_strength = 0.5  # a strength set while Live is on holds one too
    assert state.generation.variation_seed is not None
    window.controls.live_button.click()
    wait_idle(qtbot, window)
