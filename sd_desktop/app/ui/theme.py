"""Two looks: a calm dark theme, and a light one that follows the system's palette.

Both use the Fusion style (the same metrics on every platform) and one small style sheet that
reads its colours from the palette, so every widget stays legible in both.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

ACCENT = QColor(88, 132, 232)


def dark_palette() -> QPalette:
    p = QPalette()
    window, base, alt, text = QColor(37, 38, 42), QColor(27, 28, 31), QColor(44, 45, 50), QColor(228, 229, 232)
    button, mid = QColor(50, 52, 58), QColor(70, 72, 80)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: alt,
        QPalette.ColorRole.ToolTipBase: QColor(52, 54, 60),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor(130, 133, 140),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: button,
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Light: QColor(80, 82, 90),
        QPalette.ColorRole.Midlight: QColor(62, 64, 70),
        QPalette.ColorRole.Mid: mid,
        QPalette.ColorRole.Dark: QColor(22, 23, 25),
        QPalette.ColorRole.Shadow: QColor(10, 10, 12),
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(120, 160, 245),
        QPalette.ColorRole.LinkVisited: QColor(160, 140, 240),
    }
    for role, color in roles.items():
        p.setColor(role, color)
    disabled = QColor(118, 120, 126)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Button, QColor(44, 45, 50))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor(70, 72, 80))
    return p


def light_palette(system: QPalette) -> QPalette:
    """The platform's own palette (the user's light theme); Fusion's light one if the platform's is dark."""
    if system.color(QPalette.ColorRole.Window).lightness() >= 128:
        return QPalette(system)
    style = QStyleFactory.create("Fusion")
    return style.standardPalette() if style is not None else QPalette()


_system_palette: QPalette | None = None


STYLE_SHEET = """
QToolTip { padding: 4px 6px; }
QDockWidget::title { padding: 6px 8px; }
QPlainTextEdit { border: 1px solid palette(mid); border-radius: 4px; background: palette(base); padding: 2px; }
QPlainTextEdit:focus { border-color: palette(highlight); }
QPushButton { background: palette(button); border: 1px solid palette(mid); border-radius: 4px; padding: 5px 12px; }
QPushButton:hover { background: palette(midlight); }
QPushButton:pressed { background: palette(dark); }
QPushButton:disabled { border-color: palette(midlight); }
QPushButton:checked { background: palette(highlight); color: palette(highlighted-text); }
QPushButton::menu-indicator { subcontrol-position: right center; subcontrol-origin: padding; right: 4px; }
QPushButton[primary="true"] { background: palette(highlight); color: palette(highlighted-text); font-weight: 600;
    font-size: 11pt; padding: 8px 18px; border: none; border-radius: 5px; }
QPushButton[primary="true"]:hover { background: #6b96f0; }
QPushButton[primary="true"]:disabled { background: palette(midlight); color: palette(window-text); }
QPushButton#cancelButton { padding: 8px 14px; }
QProgressBar { border: 1px solid palette(mid); border-radius: 4px; text-align: center; min-height: 18px; }
QProgressBar::chunk { background: palette(highlight); border-radius: 3px; }
QLabel#sectionLabel { font-weight: 600; }
QLabel#hintLabel { color: palette(placeholder-text); }
QFrame#messageBar[kind="info"] { background: rgba(88, 132, 232, 45); border: 1px solid rgba(88, 132, 232, 150); border-radius: 5px; }
QFrame#messageBar[kind="warning"] { background: rgba(230, 170, 40, 50); border: 1px solid rgba(230, 170, 40, 170); border-radius: 5px; }
QFrame#messageBar[kind="error"] { background: rgba(225, 70, 70, 50); border: 1px solid rgba(225, 70, 70, 170); border-radius: 5px; }
QTabBar#modeTabs::tab { padding: 6px 8px; }
QListWidget#historyList { background: palette(base); border: none; }
QListWidget#historyList::item { border-radius: 4px; padding: 2px; }
QListWidget#historyList::item:selected { background: palette(highlight); }
QListWidget#historyList:focus { border: 2px solid palette(highlight); border-radius: 4px; }
QPushButton:focus { border: 2px solid palette(highlight); }
QPushButton[primary="true"]:focus { border: 2px solid palette(highlighted-text); }
QToolButton:focus { border: 1px solid palette(highlight); border-radius: 3px; }
QToolButton:checked { background: palette(highlight); color: palette(highlighted-text); border-radius: 3px; }
"""


def apply_theme(app: QApplication, name: str = "dark") -> None:
    """name: "dark" or "light" (the system palette)."""
    global _system_palette
    if _system_palette is None:
        _system_palette = QPalette(app.palette())  # what the platform gave us, before any change
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if name == "dark" else light_palette(_system_palette))
    app.setStyleSheet(STYLE_SHEET)
