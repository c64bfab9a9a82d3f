"""A finished Image to Image or Inpaint batch as a grid in the canvas's place: click the one to keep working on
(it goes on the canvas); "Keep the canvas" (or Esc, MainWindow.escape) leaves the canvas as it was. Every image is saved and in
the history either way."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from .widgets import tool_button

PATH_ROLE = Qt.ItemDataRole.UserRole
IMAGE_ROLE = Qt.ItemDataRole.UserRole + 1


class BatchGrid(QWidget):
    chosen = Signal(str, object)  # path, QImage; ("", None): keep the canvas

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("batchGrid")
        self.title = QLabel()
        self.keep_button = tool_button("Keep the canvas", "keepCanvasButton",
                                       "Keep the canvas as it is (Esc); the images stay in the history")
        self.keep_button.clicked.connect(lambda: self.chosen.emit("", None))
        self.list = QListWidget()
        self.list.setObjectName("batchList")
        self.list.setAccessibleName("The batch's images")
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setSpacing(8)
        self.list.itemClicked.connect(self._clicked)
        self.list.itemActivated.connect(self._clicked)
        row = QHBoxLayout()
        row.addWidget(self.title, 1)
        row.addWidget(self.keep_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(row)
        layout.addWidget(self.list, 1)

    def show_results(self, results: list) -> None:
        """results: [(path, QImage)] in the order they were made."""
        self.list.clear()
        side = max(96, min(320, (self.width() - 48) // max(min(len(results), 3), 1)))
        self.list.setIconSize(QSize(side, side))
        for index, (path, image) in enumerate(results):
            item = QListWidgetItem(QIcon(QPixmap.fromImage(image)), f"{index + 1}")
            item.setData(PATH_ROLE, path)
            item.setData(IMAGE_ROLE, image)
            item.setToolTip(path)
            self.list.addItem(item)
        self.title.setText(f"{len(results)} images: click the one to keep working on")
        self.list.setFocus()

    def _clicked(self, item: QListWidgetItem) -> None:
        image = item.data(IMAGE_ROLE)
        self.chosen.emit(item.data(PATH_ROLE), image if isinstance(image, QImage) else None)

    def paths(self) -> list[str]:
        return [self.list.item(i).data(PATH_ROLE) for i in range(self.list.count())]
