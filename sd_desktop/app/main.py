"""`run_app`: the desktop app's entry point (sd-desktop / sd-desktop gui / python -m sd_desktop)."""

from __future__ import annotations

import sys


def run_app(argv: list[str] | None = None) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .settings import APPLICATION, ORGANIZATION, AppSettings
    from .theme import apply_theme

    app = QApplication.instance()
    if app is None:
        # fractional display scales (125%, 150%) drawn as they are, not rounded
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(list(sys.argv if argv is None else ["sd-desktop", *argv]))
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("sd-desktop")
    app.setOrganizationName(ORGANIZATION)
    app.setDesktopFileName("sd-desktop")
    apply_theme(app, AppSettings().theme)
    window = MainWindow()
    window.show()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(run_app())
