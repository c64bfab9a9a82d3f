"""The desktop app (PySide6): `state/` holds what the window shows and does (no QtWidgets), `ui/` the widgets
that bind to it and lay it out. `from sd_desktop.app import MainWindow`; Qt is imported on first use."""

from __future__ import annotations

__all__ = ["MainWindow", "run_app"]


def __getattr__(name: str):
    if name == "MainWindow":
        from .ui.main_window import MainWindow

        return MainWindow
    if name == "run_app":
        from .main import run_app

        return run_app
    raise AttributeError(f"module 'sd_desktop.app' has no attribute {name!r}")
