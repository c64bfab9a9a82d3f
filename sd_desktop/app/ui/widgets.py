"""Small widget makers the panels share: a section title, a named control, a text tool button; the wheel
guard, a wrapping layout, and the status bar's one-line labels that shorten with "…" instead of overlapping."""

from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QAbstractScrollArea, QAbstractSpinBox, QComboBox, QLabel, QLayout, QSizePolicy, QStatusBar, QToolButton, QWidget,
)


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


class FlowLayout(QLayout):
    """Widgets in a row that wraps onto more rows when the width runs out (no hidden overflow). A widget
    with the property flowStretch set takes the rest of its row (a group that sits at the right)."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 4):
        super().__init__(parent)
        self._items = []
        self.setSpacing(spacing)
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item) -> None:  # noqa: N802 - Qt's names
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self):  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        margins = self.contentsMargins()
        return size + QSize(margins.left() + margins.right(), margins.top() + margins.bottom())

    def _arrange(self, rect: QRect, apply: bool) -> int:
        margins = self.contentsMargins()
        area = rect.adjusted(margins.left(), margins.top(), -margins.right(), -margins.bottom())
        rows, row, row_width = [], [], 0
        for item in self._items:
            widget = item.widget()
            if widget is not None and not widget.isVisibleTo(widget.parentWidget()):
                continue
            hint = item.sizeHint()
            needed = hint.width() + (self.spacing() if row else 0)
            if row and row_width + needed > area.width():
                rows.append(row)
                row, row_width, needed = [], 0, hint.width()
            row.append((item, hint))
            row_width += needed
        if row:
            rows.append(row)
        y = area.y()
        for row in rows:
            height = max(hint.height() for _, hint in row)
            used = sum(hint.width() for _, hint in row) + self.spacing() * (len(row) - 1)
            stretchers = [item for item, _ in row if item.widget() is not None and item.widget().property("flowStretch")]
            extra = max(0, area.width() - used) // max(len(stretchers), 1) if stretchers else 0
            x = area.x()
            for item, hint in row:
                width = hint.width() + (extra if item in stretchers else 0)
                if apply:
                    item.setGeometry(QRect(QPoint(x, y + (height - hint.height()) // 2), QSize(width, hint.height())))
                x += width + self.spacing()
            y += height + self.spacing()
        return y - self.spacing() - area.y() + margins.top() + margins.bottom() if rows else 0


class ElidedLabel(QLabel):
    """One line that asks for at most `widest` pixels and, given less, ends its text with "…" (the status bar's
    model label: a long model name never pushes the status messages under it)."""

    def __init__(self, text: str = "", widest: int = 420, parent: QWidget | None = None):
        super().__init__(text, parent)
        self.widest = widest
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(min(self.fontMetrics().horizontalAdvance(self.text()) + 8, self.widest), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(min(60, self.sizeHint().width()), super().minimumSizeHint().height())

    def shown_text(self) -> str:
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width())

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
                         self.shown_text())


class ElidingStatusBar(QStatusBar):
    """A status bar whose messages end with "…" where they would run into its permanent widgets (Qt's own cut
    them off mid-word); `currentMessage()` is still the whole text, and a resize shortens or lengthens them."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._full, self._until = "", 0.0

    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 - Qt's name
        self._full = text
        self._until = time.monotonic() + timeout / 1000 if timeout else 0.0
        super().showMessage(self._elided(text), timeout)

    def currentMessage(self) -> str:  # noqa: N802 - Qt's name
        return self._full if super().currentMessage() else ""

    def clearMessage(self) -> None:  # noqa: N802 - Qt's name
        self._full = ""
        super().clearMessage()

    def room(self) -> int:
        """The width left of the permanent widgets (and the size grip)."""
        lefts = [w.geometry().left() for w in self.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
                 if w.isVisible() and w.width() > 0 and w.geometry().left() > 0]
        return min(lefts, default=self.width()) - 12

    def _elided(self, text: str) -> str:
        return self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, max(self.room(), 20))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def event(self, event) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.LayoutRequest:  # a permanent widget grew or shrank
            self._fit()
        return handled

    def _fit(self) -> None:
        if super().currentMessage() and self._elided(self._full) != super().currentMessage():
            left = int((self._until - time.monotonic()) * 1000) if self._until else 0
            if self._until and left <= 0:
                return
            super().showMessage(self._elided(self._full), left)
