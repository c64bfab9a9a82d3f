"""Small widget makers the panels share: a section title, a named control, a text tool button."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QToolButton


def section(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionLabel")  # the theme's style sheet sets these apart
    return label


def named(widget, name: str, accessible: str, tip: str):
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    widget.setToolTip(tip)
    return widget


def tool_button(text: str, name: str, tip: str, accessible: str | None = None) -> QToolButton:
    """A text-only tool button; its accessible name is `accessible`, else the tip up to a colon
    ("Brush: paint ..." -> "Brush")."""
    button = named(QToolButton(), name, accessible or tip.split(":")[0], tip)
    button.setText(text)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button
