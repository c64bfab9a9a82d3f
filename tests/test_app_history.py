"""The history worth browsing: search by prompt, model, date; a mode filter; favourites (kept across starts,
a favourites-only filter, "clear history except favourites"); thumbnails cached on disk."""

from __future__ import annotations

from fake_engine import generate_and_wait, make_window, wait_idle


def make(window, qtbot, prompt, steps=1):
    window.prompt_edit.setPlainText(prompt)
    window.parameters.steps_spin.setValue(steps)
    return generate_and_wait(qtbot, window)


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


def test_grouping_by_batch(qtbot, tiny_model):
    """One Generate click of 3 images shows as one badged thumbnail when grouped; its menu opens the batch's grid;
    the grouping survives a restart (read from the files) and a deleted lead hands over to the next image."""
    from PySide6.QtWidgets import QApplication

    from sd_desktop.core.io.metadata import read_parameters

    window = make_window(qtbot, tiny_model)
    single = make(window, qtbot, "a green circle")
    window.parameters.batch_spin.setValue(3)
    window.parameters.seed_spin.set_bound_value(700)
    window.prompt_edit.setPlainText("a red square")
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == 4, timeout=60000)
    wait_idle(qtbot, window)
    newest, middle, first = window.history.paths()[:3]
    records = [read_parameters(path)["batch"] for path in (first, middle, newest)]
    assert [r["index"] for r in records] == [0, 1, 2] and {r["size"] for r in records} == {3}
    assert {r["seed"] for r in records} == {700} and len({r["id"] for r in records}) == 1
    assert read_parameters(single)["batch"]["size"] == 1 and read_parameters(single)["batch"]["id"] != records[0]["id"]

    panel = window.history
    assert panel.visible_paths() == [newest, middle, first, single]  # not grouped by default
    panel.group_button.setChecked(True)
    assert panel.visible_paths() == [first, single]  # the batch stands as its first image
    assert panel._badges == {first: 3}
    badged = panel.item_for(first).icon().pixmap(104, 104).toImage()
    plain = panel.item_for(single).icon().pixmap(104, 104).toImage()
    assert badged.pixelColor(104 - 20, 104 - 12) != plain.pixelColor(104 - 20, 104 - 12)  # the "×3" badge drawn
    actions = {a.objectName(): a for a in panel.menu_for(first).actions()}
    assert actions["history_batch"].text() == "Show the batch (3 images)"
    assert "history_batch" not in {a.objectName() for a in panel.menu_for(single).actions()}
    actions["history_batch"].trigger()
    grid = window.canvas_area.batch_grid
    assert window.canvas_area.stack.currentWidget() is grid and grid.paths() == [first, middle, newest]
    grid.list.itemClicked.emit(grid.list.item(1))  # a click puts that one on the canvas
    assert window.canvas_area.stack.currentWidget() is window.canvas and window.state.document.source == middle
    assert not window.canvas.hasBefore()  # (a history image: nothing to compare it with here)

    panel.search.setText("green")  # the filters still apply; a batch with no match is not shown at all
    assert panel.visible_paths() == [single]
    panel.search.clear()
    window.state.history.remove(first)  # out of the list: the next image of the batch stands for it
    qtbot.waitUntil(lambda: panel.visible_paths() == [middle, single], timeout=5000)
    assert panel._badges == {middle: 2}
    window.close()
    QApplication.processEvents()

    again = make_window(qtbot, tiny_model)  # a restart: grouped as before, from what the files say
    assert again.history.group_button.isChecked()
    qtbot.waitUntil(lambda: again.history.visible_paths() == [first, single], timeout=10000)
    assert again.history._badges == {first: 3}
    again.history.group_button.setChecked(False)
    assert again.history.visible_paths() == [newest, middle, first, single]
