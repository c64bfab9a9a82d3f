"""The message bar above the canvas: errors, notices and offers (e.g. Restore parameters), never modal."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget


class MessageBar(QFrame):
    """A non-modal bar above the canvas: errors, notices and offers (e.g. Restore parameters)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.setAccessibleName("Message")
        self.label = QLabel()
        self.label.setObjectName("messageLabel")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(6)
        close = QToolButton()
        close.setObjectName("messageCloseButton")
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addLayout(self.buttons)
        layout.addWidget(close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self._kind = "info"
        self.hide()

    def show_message(self, text: str, kind: str = "info", actions=(), timeout_ms: int = 0) -> None:
        """actions: (label, callback, objectName) buttons; each also dismisses the bar."""
        self._kind = kind
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        while self.buttons.count():
            widget = self.buttons.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        for label, callback, name in actions:
            button = QPushButton(label)
            button.setObjectName(name)
            button.clicked.connect(lambda _=False, c=callback: (self.dismiss(), c()))
            self.buttons.addWidget(button)
        self._timer.stop()
        if timeout_ms:
            self._timer.start(timeout_ms)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""

    def kind(self) -> str:
        return self._kind

    def button(self, name: str) -> QPushButton | None:
        return self.findChild(QPushButton, name)

    def withdraw(self, name: str) -> None:
        """Hide the bar if it is showing the offer whose button is called `name` (an offer gone stale)."""
        shown = (self.buttons.itemAt(i).widget() for i in range(self.buttons.count()))
        if self.isVisible() and any(widget is not None and widget.objectName() == name for widget in shown):
            self.dismiss()

    def dismiss(self) -> None:
        self._timer.stop()
        self.hide()
