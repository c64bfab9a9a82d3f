"""The history dock: the HistoryModel's results as thumbnails, newest first. A click shows an image; the
context menu does the rest."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QApplication, QLabel, QListWidget, QListWidgetItem, QMenu, QVBoxLayout, QWidget,
)

from ..state.history import THUMB, HistoryModel

PATH_ROLE = Qt.ItemDataRole.UserRole


def thumbnail_icon(image: QImage) -> QIcon:
    """The image centred on a square, so the grid stays even whatever the aspect ratio."""
    pixmap = QPixmap(THUMB, THUMB)
    pixmap.fill(QColor(0, 0, 0, 0))
    if not image.isNull():
        scaled = QPixmap.fromImage(image).scaled(QSize(THUMB, THUMB), Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation)
        painter = QPainter(pixmap)
        painter.drawPixmap((THUMB - scaled.width()) // 2, (THUMB - scaled.height()) // 2, scaled)
        painter.end()
    icon = QIcon(pixmap)
    icon.addPixmap(pixmap, QIcon.Mode.Selected)  # the selection shows as a frame, not a tint over the picture
    return icon


class HistoryPanel(QWidget):
    showRequested = Signal(str)
    useAsInitRequested = Signal(str)
    interpolationRequested = Signal(str, str)  # path, "A" or "B"
    copyRequested = Signal(str)
    saveAsRequested = Signal(str)
    restoreRequested = Signal(str)
    reuseSeedRequested = Signal(str)
    deleteRequested = Signal(str)

    def __init__(self, model: HistoryModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.list = QListWidget()
        self.list.setObjectName("historyList")
        self.list.setAccessibleName("History")
        self.list.setToolTip("Every result, newest first. Click to show it; right-click for more.")
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setGridSize(QSize(THUMB + 10, THUMB + 10))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setUniformItemSizes(True)
        self.list.setSpacing(2)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.itemClicked.connect(lambda item: self.showRequested.emit(item.data(PATH_ROLE)))
        self.list.itemActivated.connect(lambda item: self.showRequested.emit(item.data(PATH_ROLE)))
        self.list.currentItemChanged.connect(self._current_changed)
        self.empty_label = QLabel("Results appear here.")
        self.empty_label.setObjectName("hintLabel")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.list, 1)
        self._items: dict[str, QListWidgetItem] = {}
        model.added.connect(self._added)
        model.removed.connect(self._removed)
        model.thumbnailReady.connect(self._thumbnail)
        self._update_empty()

    def paths(self) -> list[str]:
        return [self.list.item(i).data(PATH_ROLE) for i in range(self.list.count())]

    def item_for(self, path: str) -> QListWidgetItem | None:
        return self._items.get(str(path))

    def _added(self, path: str, index: int, image: QImage, tooltip: str, earlier: bool) -> None:
        item = QListWidgetItem()
        item.setData(PATH_ROLE, path)
        item.setToolTip(tooltip)
        item.setSizeHint(QSize(THUMB + 8, THUMB + 8))
        if not image.isNull():
            item.setIcon(thumbnail_icon(image))
        self._items[path] = item
        self.list.insertItem(index, item)
        if not earlier:
            self.list.setCurrentItem(item)  # a new result becomes the selection
        self._update_empty()

    def _thumbnail(self, path: str, image: QImage, tooltip: str) -> None:
        item = self._items.get(path)
        if item is not None:
            item.setIcon(thumbnail_icon(image))
            item.setToolTip(tooltip)

    def _removed(self, path: str) -> None:
        item = self._items.pop(path, None)
        if item is not None:
            self.list.takeItem(self.list.row(item))
        self._update_empty()

    def _update_empty(self) -> None:
        self.empty_label.setVisible(self.list.count() == 0)

    # -- context menu
    def menu_for(self, path: str) -> QMenu:
        menu = QMenu(self)
        entries = [
            ("Show on canvas", self.showRequested, "show"),
            ("Use as init image", self.useAsInitRequested, "init"),
            None,
            ("Set as interpolation A", lambda p: self.interpolationRequested.emit(p, "A"), "interpA"),
            ("Set as interpolation B", lambda p: self.interpolationRequested.emit(p, "B"), "interpB"),
            None,
            ("Copy image", self.copyRequested, "copy"),
            ("Save as…", self.saveAsRequested, "saveAs"),
            ("Restore parameters", self.restoreRequested, "restore"),
            ("Reuse seed", self.reuseSeedRequested, "reuseSeed"),
            None,
            ("Delete…", self.deleteRequested, "delete"),
        ]
        for entry in entries:
            if entry is None:
                menu.addSeparator()
                continue
            text, target, name = entry
            action = QAction(text, menu)
            action.setObjectName(f"history_{name}")
            emit = target.emit if hasattr(target, "emit") else target
            action.triggered.connect(lambda _=False, e=emit: e(path))
            menu.addAction(action)
        return menu

    def _current_changed(self, item: QListWidgetItem | None, _previous) -> None:
        """The arrow keys show the image they move to (a click shows it through itemClicked; a new result
        selected by the program is already on the canvas)."""
        if item is not None and self.list.hasFocus() and QApplication.mouseButtons() == Qt.MouseButton.NoButton:
            self.showRequested.emit(item.data(PATH_ROLE))

    def _context_menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None and self.list.currentItem() is not None:  # the Menu key or Shift+F10: the current image
            item = self.list.currentItem()
            pos = self.list.visualItemRect(item).center()
        if item is None:
            return
        self.menu_for(item.data(PATH_ROLE)).exec(self.list.viewport().mapToGlobal(pos))
