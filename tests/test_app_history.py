"""The history worth browsing: search by prompt, model, date; a mode filter; favourites (kept across starts,
a favourites-only filter, "clear history except favourites"); thumbnails cached on disk."""

from __future__ import annotations

from fake_engine import make_window, wait_idle


def make(window, qtbot, prompt, steps=1):
    count = window.history_list.count()
    window.prompt_edit.setPlainText(prompt)
    window.parameters.steps_spin.setValue(steps)
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == count + 1, timeout=30000)
    wait_idle(qtbot, window)
    return window.history.paths()[0]


def test_search_filters_and_favourites(qtbot, tiny_model):
    from sd_desktop.core.request import Mode

    window = make_window(qtbot, tiny_model)
    red = make(window, qtbot, "a red circle")
    blue = make(window, qtbot, "a blue square")
    window.set_mode(Mode.IMG2IMG)
    edited = make(window, qtbot, "a red square, edited")
    panel = window.history
    panel.search.setText("red")
    assert panel.visible_paths() == [edited, red]
    panel.search.setText("RED square")  # every word, any case
    assert panel.visible_paths() == [edited]
    panel.search.setText("tiny")  # the model's name
    assert len(panel.visible_paths()) == 3
    panel.search.clear()
    panel.mode_filter.setCurrentIndex(panel.mode_filter.findData("img2img"))
    assert panel.visible_paths() == [edited]
    panel.mode_filter.setCurrentIndex(0)

    {a.objectName(): a for a in panel.menu_for(blue).actions()}["history_favourite"].trigger()
    assert blue in window.state.history.favourites
    assert "Remove from favourites" in [a.text() for a in panel.menu_for(blue).actions()]
    panel.favourites_button.setChecked(True)
    assert panel.visible_paths() == [blue]
    panel.favourites_button.setChecked(False)
    panel.clear_action.trigger()  # the list keeps the favourite; every file stays
    assert panel.paths() == [blue] and all(__import__("os").path.exists(p) for p in (red, blue, edited))
    window.close()

    again = make_window(qtbot, tiny_model)  # a restart: favourites remembered, earlier images searchable
    assert blue in again.state.history.favourites
    qtbot.waitUntil(lambda: not again.state.history.pool.activeThreadCount(), timeout=10000)
    again.history.search.setText("square")
    qtbot.waitUntil(lambda: again.history.visible_paths() == [edited, blue], timeout=10000)
    cache = again.state.history.thumbnail_cache
    assert len(list(cache.rglob("*.jpg"))) == 3  # thumbnails kept: the next start decodes nothing
