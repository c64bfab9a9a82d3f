"""The job queue: Generate while a job runs queues the job with the settings it has then; jobs run in order,
can be moved up or removed; Cancel all empties it; Generate forever repeats with new seeds until stopped;
a click while the model loads is queued too."""

from __future__ import annotations

from PySide6.QtCore import Qt

from fake_engine import make_window, output_pngs, wait_idle
from sd_desktop.core import read_parameters


def queue_three(window, prompts, steps=(30, 2, 2)):
    for prompt, count in zip(prompts, steps):
        window.prompt_edit.setPlainText(prompt)
        window.parameters.steps_spin.setValue(count)
        window.generate_button.click()


def test_three_clicks_make_three_images_in_order_with_their_own_settings(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.parameters.seed_spin.set_bound_value(3)
    queue_three(window, ["first", "second", "third"])
    assert len(window.state.queue) == 2 and window.generate_button.text() == "Add to queue (2)"
    assert window.controls.queue_panel.isVisible() and window.controls.queue_panel.list.count() == 2
    assert window.controls.queue_panel.list.item(0).text().startswith("second · Text to Image · 2 steps")
    window.prompt_edit.setPlainText("changed after queueing")  # the queued jobs keep what they had
    qtbot.waitUntil(lambda: window.history_list.count() == 3, timeout=60000)
    wait_idle(qtbot, window)
    prompts = [read_parameters(path)["prompt"] for path in output_pngs(window)]
    assert prompts == ["first", "second", "third"]
    assert not window.controls.queue_panel.isVisible() and window.generate_button.text() == "Generate"


def test_removing_and_moving_queued_jobs(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.parameters.seed_spin.set_bound_value(3)
    queue_three(window, ["first", "second", "third", "fourth"], steps=(40, 2, 2, 2))
    panel = window.controls.queue_panel
    panel.list.setCurrentRow(0)  # "second"
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    panel.list.setCurrentRow(1)  # "fourth"
    qtbot.mouseClick(panel.up_button, Qt.MouseButton.LeftButton)
    assert [job.request.prompt for job in window.state.queue.jobs] == ["fourth", "third"]
    qtbot.waitUntil(lambda: window.history_list.count() == 3, timeout=60000)
    wait_idle(qtbot, window)
    assert [read_parameters(p)["prompt"] for p in output_pngs(window)] == ["first", "fourth", "third"]


def test_cancel_all_empties_the_queue_and_stops_the_running_job(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    queue_three(window, ["first", "second", "third"], steps=(400, 2, 2))
    qtbot.mouseClick(window.controls.queue_panel.cancel_all_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    qtbot.wait(300)  # nothing starts after it
    assert len(window.state.queue) == 0 and not window.state.session.busy
    assert output_pngs(window) == []


def test_generate_forever_repeats_with_new_seeds_until_switched_off(qtbot, tiny_model):
    window = make_window(qtbot, tiny_model)
    window.parameters.steps_spin.setValue(2)
    window.parameters.seed_spin.set_bound_value(11)
    window.controls.forever_button.click()
    assert window.controls.queue_panel.title.text() == "0 queued · Generate forever is on"
    qtbot.waitUntil(lambda: window.history_list.count() >= 3, timeout=60000)
    window.controls.forever_button.click()  # off: the running one finishes, no more start
    wait_idle(qtbot, window)
    qtbot.wait(300)
    made = output_pngs(window)
    seeds = [read_parameters(path)["seed"] for path in made]
    assert len(set(seeds)) == len(seeds) >= 3  # a new seed each time
    assert not window.state.session.busy and len(output_pngs(window)) == len(made)


def test_a_click_while_the_model_loads_is_queued(qtbot, tiny_model, monkeypatch):
    import threading

    import sd_desktop.core.loading.model as loading

    release = threading.Event()
    real_load = loading.load_model

    def slow_load(*args, **kwargs):
        release.wait(20)  # the load takes until the click has been made
        return real_load(*args, **kwargs)

    monkeypatch.setattr(loading, "load_model", slow_load)
    window = make_window(qtbot, tiny_model, wait_model=False)
    qtbot.waitUntil(lambda: window.state.session.busy, timeout=10000)  # loading
    window.prompt_edit.setPlainText("made after the load")
    window.parameters.steps_spin.setValue(2)
    window.generate_button.click()
    assert len(window.state.queue) == 1 and window.state.session.model_info is None
    release.set()
    qtbot.waitUntil(lambda: window.history_list.count() == 1, timeout=60000)
    assert read_parameters(output_pngs(window)[0])["prompt"] == "made after the load"
