"""`run_app`: the desktop app's entry point (sd-desktop / sd-desktop gui / python -m sd_desktop)."""

from __future__ import annotations

import sys

DESKTOP_FILE_NAME = "io.github.sd_desktop.sd_desktop"  # packaging/linux/: the .desktop entry's and AppStream's id


def run_app(argv: list[str] | None = None) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from .ui.main_window import MainWindow
    from .state.preferences import APPLICATION, ORGANIZATION, AppSettings
    from .ui.theme import apply_theme

    app = QApplication.instance()
    if app is None:
        # fractional display scales (125%, 150%) drawn as they are, not rounded
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(list(sys.argv if argv is None else ["sd-desktop", *argv]))
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("sd-desktop")
    app.setOrganizationName(ORGANIZATION)
    app.setDesktopFileName(DESKTOP_FILE_NAME)  # Wayland's app id: the taskbar finds the entry and its icon
    app.setWindowIcon(app_icon())
    apply_theme(app, AppSettings().theme)
    window = MainWindow()
    window.show()
    return app.exec()


def app_icon():
    """The window and taskbar icon: resources/icons' PNGs at every size (an empty icon if they are missing)."""
    from PySide6.QtGui import QIcon

    from sd_desktop.resources_path import resource

    icon = QIcon()
    try:
        files = sorted(resource("icons").glob("sd-desktop-*.png"))
    except FileNotFoundError:
        files = []
    for path in files:
        icon.addFile(str(path))
    return icon


if __name__ == "__main__":
    raise SystemExit(run_app())
