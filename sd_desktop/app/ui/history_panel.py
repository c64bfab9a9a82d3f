"""The history dock: the HistoryModel's results as thumbnails, newest first, with a search field (prompt,
model, date or file name), a mode filter, a favourites filter and grouping by batch (one thumbnail per job,
badged with its count). A click shows an image; the context menu does the rest (the batch's grid, favourite,
reuse seed or parameters, open its folder, delete)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QApplication, QComboBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
    QMenu, QToolButton, QVBoxLayout, QWidget,
)

from ..state.history import THUMB, HistoryModel

PATH_ROLE = Qt.ItemDataRole.UserRole
THUMB_ROLE = Qt.ItemDataRole.UserRole + 1
MODE_FILTERS = (("", "All modes"), ("txt2img", "Text to Image"), ("img2img", "Image to Image"),
                ("inpaint", "Inpaint"))


def thumbnail_icon(image: QImage, favourite: bool = False, count: int = 0) -> QIcon:
    """The image centred on a square, so the grid stays even whatever the aspect ratio; a star in the
    corner for a favourite; a batch's image count in the other corner when it stands for its batch."""
    pixmap = QPixmap(THUMB, THUMB)
    pixmap.fill(QColor(0, 0, 0, 0))
    painter = QPainter(pixmap)
    if not image.isNull():
        scaled = QPixmap.fromImage(image).scaled(QSize(THUMB, THUMB), Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation)
        painter.drawPixmap((THUMB - scaled.width()) // 2, (THUMB - scaled.height()) // 2, scaled)
    if favourite:
        font = QFont()
        font.setPixelSize(22)
        painter.setFont(font)
        painter.setPen(QColor(20, 20, 20, 200))
        painter.drawText(QPointF(THUMB - 25, 23), "★")
        painter.setPen(QColor(255, 200, 40))
        painter.drawText(QPointF(THUMB - 26, 22), "★")
    if count > 1:
        font = QFont()
        font.setPixelSize(13)
        font.setBold(True)
        painter.setFont(font)
        text = f"×{count}"
        box = QRectF(THUMB - 10 - 9 * len(text), THUMB - 22, 9 * len(text) + 6, 18)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 20, 200))
        painter.drawRoundedRect(box, 5, 5)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
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
    openFolderRequested = Signal(str)
    reuseSeedRequested = Signal(str)
    deleteRequested = Signal(str)
    batchRequested = Signal(list)  # the paths of one batch, in the order they were made

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
        self.search = QLineEdit()
        self.search.setObjectName("historySearch")
        self.search.setAccessibleName("Search the history")
        self.search.setPlaceholderText("Search prompts, models, dates")
        self.search.setToolTip("Every word must appear in the image's prompt, model, date (2026-11-30) or file name")
        self.search.setClearButtonEnabled(True)
        self.mode_filter = QComboBox()
        self.mode_filter.setObjectName("historyModeFilter")
        self.mode_filter.setAccessibleName("Mode filter")
        self.mode_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode_filter.setMinimumContentsLength(8)  # (the dock stays narrow: a long mode name is elided)
        for value, label in MODE_FILTERS:
            self.mode_filter.addItem(label, value)
        self.favourites_button = QToolButton()
        self.favourites_button.setObjectName("historyFavouritesButton")
        self.favourites_button.setText("★")
        self.favourites_button.setCheckable(True)
        self.favourites_button.setAccessibleName("Favourites only")
        self.favourites_button.setToolTip("Favourites only (a history image's menu stars it)")
        self.group_button = QToolButton()
        self.group_button.setObjectName("historyGroupButton")
        self.group_button.setText("▦")
        self.group_button.setCheckable(True)
        self.group_button.setAccessibleName("Group batches")
        self.group_button.setToolTip("Group batches: one thumbnail per Generate click, with its image count "
                                     "(right-click it to see the whole batch)")
        self.more_button = QToolButton()
        self.more_button.setObjectName("historyMoreButton")
        self.more_button.setText("⋯")
        self.more_button.setAccessibleName("History actions")
        self.more_button.setToolTip("History actions")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        more = QMenu(self.more_button)
        self.clear_action = more.addAction("Clear history except favourites")
        self.clear_action.setObjectName("historyClearAction")
        self.clear_action.setToolTip("Take every image but the favourites out of the list (the files stay)")
        self.clear_action.triggered.connect(self._clear_except_favourites)
        self.more_button.setMenu(more)
        self.search.textChanged.connect(self.apply_filters)
        self.mode_filter.currentIndexChanged.connect(self.apply_filters)
        self.favourites_button.toggled.connect(self.apply_filters)
        self.group_button.toggled.connect(self.apply_filters)
        self._regroup = QTimer(self)  # grouping looks at every entry: done once after a burst of changes
        self._regroup.setSingleShot(True)
        self._regroup.setInterval(150)
        self._regroup.timeout.connect(self.apply_filters)
        self._badges: dict[str, int] = {}  # a shown batch's thumbnail -> its count
        self.empty_label = QLabel("Results appear here.")
        self.empty_label.setObjectName("hintLabel")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        filters = QHBoxLayout()
        filters.setSpacing(4)
        filters.addWidget(self.search, 1)
        filters.addWidget(self.mode_filter)
        filters.addWidget(self.favourites_button)
        filters.addWidget(self.group_button)
        filters.addWidget(self.more_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(filters)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.list, 1)
        self._items: dict[str, QListWidgetItem] = {}
        model.added.connect(self._added)
        model.removed.connect(self._removed)
        model.thumbnailReady.connect(self._thumbnail)
        model.favouriteChanged.connect(self._favourite_changed)
        model.factsChanged.connect(self._facts_changed)
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
            item.setData(THUMB_ROLE, image)
            item.setIcon(thumbnail_icon(image, path in self.model.favourites))
        self._items[path] = item
        self.list.insertItem(index, item)
        if self.group_button.isChecked():
            self.apply_filters()  # a new result leads its batch at once (no flicker of the batch's others)
        elif self._filtering():
            item.setHidden(not self._shows(path))
        if not earlier:
            self.list.setCurrentItem(item)  # a new result becomes the selection
        self._update_empty()

    def _thumbnail(self, path: str, image: QImage, tooltip: str) -> None:
        item = self._items.get(path)
        if item is not None:
            item.setData(THUMB_ROLE, image)
            item.setToolTip(tooltip)
            self._render(path)

    def _render(self, path: str) -> None:
        item = self._items.get(path)
        image = item.data(THUMB_ROLE) if item is not None else None
        if isinstance(image, QImage):
            item.setIcon(thumbnail_icon(image, path in self.model.favourites, self._badges.get(path, 0)))

    def _removed(self, path: str) -> None:
        item = self._items.pop(path, None)
        if item is not None:
            self.list.takeItem(self.list.row(item))
        self._badges.pop(path, None)
        if self.group_button.isChecked():
            self._regroup.start()  # another image may lead the batch now
        self._update_empty()

    # -- search, filters, favourites
    def _filtering(self) -> bool:
        return bool(self.search.text().strip() or self.mode_filter.currentData() or self.favourites_button.isChecked())

    def _shows(self, path: str) -> bool:
        return self.model.matches(path, self.search.text(), self.mode_filter.currentData() or "",
                                  self.favourites_button.isChecked())

    def apply_filters(self, *_args) -> None:
        """Each entry shown or hidden by the search and filters; when grouping, a batch shows as its first
        image that passes them, badged with how many of the batch pass."""
        self._regroup.stop()
        filtering = self._filtering()
        passing = {path: not filtering or self._shows(path) for path in self._items}
        leads: dict[str, str] = {}
        counts: dict[str, int] = {}
        if self.group_button.isChecked():
            for path, ok in passing.items():
                facts = self.model.facts.get(path) or {}
                batch = facts.get("batch")
                if ok and batch:
                    counts[batch] = counts.get(batch, 0) + 1
                    lead = leads.get(batch)
                    if lead is None or (facts.get("batch_index") or 0) < (self.model.facts[lead].get("batch_index") or 0):
                        leads[batch] = path
        for path, item in self._items.items():
            batch = (self.model.facts.get(path) or {}).get("batch")
            item.setHidden(not passing[path] or (batch in leads and leads[batch] != path))
        badges = {lead: counts[batch] for batch, lead in leads.items() if counts[batch] > 1}
        changed = {path for path in badges.keys() | self._badges.keys() if badges.get(path) != self._badges.get(path)}
        self._badges = badges
        for path in changed:
            self._render(path)

    def visible_paths(self) -> list[str]:
        return [path for path in self.paths() if not self._items[path].isHidden()]

    def _facts_changed(self, path: str) -> None:
        item = self._items.get(path)
        if item is None:
            return
        if self.group_button.isChecked():
            self._regroup.start()
        elif self._filtering():
            item.setHidden(not self._shows(path))

    def _favourite_changed(self, path: str, _on: bool) -> None:
        if path in self._items:
            self._render(path)
            self._facts_changed(path)

    def _clear_except_favourites(self) -> None:
        self.model.clear_except_favourites()

    def _update_empty(self) -> None:
        self.empty_label.setVisible(self.list.count() == 0)

    # -- context menu
    def menu_for(self, path: str) -> QMenu:
        menu = QMenu(self)
        members = self.model.batch_members(path)
        entries = [
            ("Show on canvas", self.showRequested, "show"),
            (f"Show the batch ({len(members)} images)", lambda _p: self.batchRequested.emit(members), "batch")
            if len(members) > 1 else None,
            ("Use as init image", self.useAsInitRequested, "init"),
            None,
            ("Set as interpolation A", lambda p: self.interpolationRequested.emit(p, "A"), "interpA"),
            ("Set as interpolation B", lambda p: self.interpolationRequested.emit(p, "B"), "interpB"),
            None,
            ("Copy image", self.copyRequested, "copy"),
            ("Save as…", self.saveAsRequested, "saveAs"),
            ("Remove from favourites" if path in self.model.favourites else "Add to favourites",
             lambda p: self.model.set_favourite(p, p not in self.model.favourites), "favourite"),
            ("Open containing folder", self.openFolderRequested, "openFolder"),
            None,
            ("Restore parameters", self.restoreRequested, "restore"),
            ("Reuse seed", self.reuseSeedRequested, "reuseSeed"),
            None,
            ("Delete…", self.deleteRequested, "delete"),
        ]
        for index, entry in enumerate(entries):
            if entry is None:
                if index > 1:  # (the batch's entry, when there is no batch, leaves no separator)
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
