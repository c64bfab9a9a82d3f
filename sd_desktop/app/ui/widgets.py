"""Small widget makers the panels share: a section title, a named control, a text tool button."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QComboBox, QLabel, QToolButton, QWidget


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


class WheelGuard(QObject):
    """Spin boxes and lists take the mouse wheel only when they have the keyboard focus; otherwise the wheel
    scrolls the panel they are in (a pass over the settings never changes Steps or the sampler)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            area = watched.parentWidget()
            while area is not None and not isinstance(area, QAbstractScrollArea):
                area = area.parentWidget()
            if area is not None:
                QCoreApplication.sendEvent(area.viewport(), event)
            return True
        return False

    def guard(self, root: QWidget) -> None:
        """Every spin box and combo box under `root`: wheel only when focused, and no focus from the wheel."""
        for widget in root.findChildren(QAbstractSpinBox) + root.findChildren(QComboBox):
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            widget.installEventFilter(self)
