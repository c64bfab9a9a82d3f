"""The desktop app (PySide6). `from sd_desktop.app import MainWindow`; Qt is imported on first use."""

from __future__ import annotations

import sys

__all__ = ["MainWindow", "run_app"]


def _make_singletons_immortal() -> None:
    """Work around PySide6 6.12's abi3 wheels on CPython < 3.12.

    They return None from every void method without a new reference (harmless since 3.12, where
    None is immortal), so on 3.11 each call such as `label.setText(...)` takes one reference from
    None; after a few thousand calls the interpreter aborts with "deallocating None". Giving None
    (and the bools, to be safe) a reference count no program can use up is what 3.12 does itself.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    import ctypes

    for singleton in (None, True, False):
        count = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt is a PyObject's first field
        if count.value < 2**40:
            count.value += 2**60


_make_singletons_immortal()


def __getattr__(name: str):
    if name == "MainWindow":
        from .main_window import MainWindow

        return MainWindow
    if name == "run_app":
        from .main import run_app

        return run_app
    raise AttributeError(f"module 'sd_desktop.app' has no attribute {name!r}")
