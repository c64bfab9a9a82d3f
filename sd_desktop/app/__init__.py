"""The desktop app (PySide6). `from sd_desktop.app import MainWindow`; Qt is imported on first use."""

from __future__ import annotations

__all__ = ["MainWindow", "run_app"]


def __getattr__(name: str):
    if name == "MainWindow":
        from .main_window import MainWindow

        return MainWindow
    if name == "run_app":
        from .main import run_app

        return run_app
    raise AttributeError(f"module 'sd_desktop.app' has no attribute {name!r}")
