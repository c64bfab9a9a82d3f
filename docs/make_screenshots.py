"""The README's screenshots: the real window, the bundled demo model, real results (nothing staged).

    QT_QPA_PLATFORM=offscreen python docs/make_screenshots.py
    # -> docs/screenshot-, history-, queue-, upscale-, hires-, expand-, compare-{dark,light}.png

Settings and images go to a temporary folder. The window generates a few prompts through its own
worker (as a user clicking Generate would), then is grabbed in the dark and in the light theme.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = [
    ("a yellow triangle on a purple background", 11),
    ("a white square in the top right and a red circle in the bottom left on a black background", 12),
    ("a large orange circle on a green background", 13),
    ("a blue square on a yellow background", 14),
    ("a green triangle on a white background", 15),
    ("a purple circle in the top left on an orange background", 16),
    ("a red circle on a blue background", 17),
]


def main() -> None:
    temp = Path(tempfile.mkdtemp(prefix="sd-desktop-shots-"))
    os.environ["SD_DESKTOP_CONFIG_DIR"] = str(temp / "config")
    os.environ["SD_DESKTOP_OUTPUT_DIR"] = str(temp / "outputs")
    from PySide6.QtWidgets import QApplication

    from sd_desktop.app.main import app_icon
    from sd_desktop.app import MainWindow
    from sd_desktop.app.ui.theme import apply_theme

    app = QApplication(sys.argv)
    app.setWindowIcon(app_icon())
    apply_theme(app, "dark")
    window = MainWindow()
    window.resize(1400, 880)
    window.show()

    def wait(condition, timeout=120.0):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for the window")
            app.processEvents()
            time.sleep(0.01)

    wait(lambda: window.state.session.model_info is not None and not window.state.session.busy)
    for prompt, seed in PROMPTS:
        window.prompt_edit.setPlainText(prompt)
        window.parameters.seed_spin.setValue(seed)
        count = window.history_list.count()
        window.generate_button.click()
        wait(lambda: window.history_list.count() > count and not window.state.session.busy)
    window.canvas.fitInView_()
    out = Path(__file__).resolve().parent

    def both_themes(name, grab):
        """grab() in the dark, then the light theme, saved as docs/NAME-THEME.png."""
        for theme in ("dark", "light"):
            window.set_theme(theme)
            for _ in range(20):
                app.processEvents()
                time.sleep(0.02)
            grab().save(str(out / f"{name}-{theme}.png"))
            print(out / f"{name}-{theme}.png")

    both_themes("screenshot", lambda: window.grab())

    # the history: a batch of three grouped (a "×3" badge), two favourites starred, a search for "circle"
    from PySide6.QtCore import QRect

    window.prompt_edit.setPlainText("a red circle on a white background")
    window.parameters.batch_spin.setValue(3)
    count = window.history_list.count()
    window.generate_button.click()
    wait(lambda: window.history_list.count() == count + 3 and not window.state.session.busy)
    window.parameters.batch_spin.setValue(1)
    history = window.history
    history.group_button.setChecked(True)
    for path in history.paths()[1:3]:
        window.state.history.set_favourite(path, True)
    history.search.setText("circle")
    dock = window.history_dock
    both_themes("history", lambda: dock.grab(QRect(0, 0, dock.width(), 420)))
    history.search.clear()

    # the queue: three clicks while a long job runs; the lower left of the window, in both themes
    window.parameters.steps_spin.setValue(60)
    for prompt, _seed in PROMPTS[:3]:
        window.prompt_edit.setPlainText(prompt)
        window.generate_button.click()
    window.controls.queue_panel.list.setCurrentRow(1)
    wait(lambda: window.progress_bar.value() >= 3)
    both_themes("queue", lambda: window.grab(QRect(0, window.height() - 320, 420, 320)))
    window.state.cancel_all()
    wait(lambda: not window.state.session.busy)

    # Image → Upscale…: the dialog over the window, then the result on the canvas (x4, the bundled model)
    window.show_upscale()
    dialog = window.upscale_dialog
    dialog.scale_spin.setValue(4)
    both_themes("upscale-dialog", lambda: dialog.grab())
    count = window.history_list.count()
    dialog.accept()
    wait(lambda: window.history_list.count() > count and not window.state.session.busy)
    window.canvas.fitInView_()
    both_themes("upscale", lambda: window.grab())

    # the Hires fix rows of Text to Image
    window.parameters.steps_spin.setValue(20)
    window.parameters.hires_check.setChecked(True)
    panel = window.controls
    both_themes("hires", lambda: panel.grab())
    window.parameters.hires_check.setChecked(False)

    # Expand: a demo picture grown to 16:9, its border masked; then the painted result compared with it
    window.state.show_file(history.paths()[-1])
    window.show_expand()
    dialog = window.expand_dialog
    dialog.aspect_combo.setCurrentIndex(dialog.aspect_combo.findText("16:9"))
    dialog.aspect_combo.activated.emit(dialog.aspect_combo.currentIndex())
    dialog.content_combo.setCurrentIndex(dialog.content_combo.findData("fill"))
    both_themes("expand-dialog", lambda: dialog.grab())
    dialog.accept()
    window.canvas.fitInView_()
    both_themes("expand", lambda: window.grab())
    count = window.history_list.count()
    window.generate_button.click()
    wait(lambda: window.history_list.count() > count and not window.state.session.busy)
    window.canvas.setComparing(True)
    window.canvas.fitInView_()
    both_themes("compare", lambda: window.grab())
    window.close()


if __name__ == "__main__":
    main()
