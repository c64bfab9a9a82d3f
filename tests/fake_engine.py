"""What the app tests share: a tiny real model file (built once per session), images, and helpers
that drive the window as a person would (mouse events on the canvas, waiting for the worker)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

TINY_NATIVE = 64  # stored in the file's metadata, so the app's default size is small
_cache: dict[str, Path] = {}


def tiny_model_file(folder: Path) -> Path:
    """A tiny SD 1.x single file (random weights), written once per test session and copied on request."""
    if "model" not in _cache:
        from safetensors.torch import save_file
        from tiny_models import ldm_state_dict, tiny_parts

        path = Path(folder) / "tiny-sd.safetensors"
        save_file(ldm_state_dict(tiny_parts()), str(path),
                  metadata={"sd_desktop": json.dumps({"native_size": TINY_NATIVE})})
        _cache["model"] = path
    source = _cache["model"]
    if source.parent != Path(folder):
        target = Path(folder) / source.name
        if not target.exists():
            shutil.copyfile(source, target)
        return target
    return source


def two_colour_image(path: Path, size: int = 64, left=(220, 30, 30), right=(30, 40, 220), parameters: str | None = None) -> Path:
    array = np.zeros((size, size, 3), np.uint8)
    array[:, : size // 2] = left
    array[:, size // 2:] = right
    info = None
    if parameters is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", parameters)
    Image.fromarray(array).save(path, pnginfo=info)
    return path


def image_array(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).copy()


def make_window(qtbot, model_path: Path | None = None, *, wait_model: bool = True, **kwargs):
    from sd_desktop.app import MainWindow

    window = MainWindow(model_path=model_path, **kwargs)
    window.confirm = lambda title, text: True  # (a test that asks replaces it; no modal dialog blocks a run)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    if wait_model:
        qtbot.waitUntil(lambda: window.state.session.model_info is not None and not window.state.session.busy, timeout=30000)
    return window


def activate(qtbot, window) -> None:
    window.activateWindow()
    window.raise_()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def wait_idle(qtbot, window, timeout: int = 30000) -> None:
    qtbot.waitUntil(lambda: not window.state.session.busy, timeout=timeout)


def generate_and_wait(qtbot, window, timeout: int = 30000) -> str:
    """Click Generate, wait for one more image in the history and for the job's end; the newest image's path."""
    count = window.history_list.count()
    window.generate_button.click()
    qtbot.waitUntil(lambda: window.history_list.count() == count + 1, timeout=timeout)
    wait_idle(qtbot, window)
    return window.history.paths()[0]


def output_pngs(window) -> list[Path]:
    root = window.state.preferences.output_root
    return sorted(root.glob("*/*.png")) if root.is_dir() else []


def drag_on_canvas(canvas, points, button=None) -> None:
    """Press at the first image point, move through the rest, release at the last: one stroke."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    button = button or Qt.MouseButton.LeftButton
    viewport = canvas.viewport()

    def send(kind, scene_point, buttons):
        local = QPointF(canvas.mapFromScene(QPointF(*scene_point)))
        event = QMouseEvent(kind, local, QPointF(viewport.mapToGlobal(local.toPoint())),
                            button if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton,
                            buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(viewport, event)

    send(QEvent.Type.MouseButtonPress, points[0], button)
    for point in points[1:]:
        send(QEvent.Type.MouseMove, point, button)
    send(QEvent.Type.MouseButtonRelease, points[-1], Qt.MouseButton.NoButton)
