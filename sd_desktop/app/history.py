"""The history dock: thumbnails of this session's results and earlier ones from the output folder.

Earlier results are listed at once and their thumbnails read on a pool thread (decoding a few hundred
PNGs in the GUI thread would freeze it). A click shows an image; the context menu does the rest.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QImageReader, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QLabel, QListWidget, QListWidgetItem, QMenu, QVBoxLayout, QWidget

THUMB = 104
MAX_EARLIER = 400  # newest first; older ones stay on disk
PATH_ROLE = Qt.ItemDataRole.UserRole
EARLIER_ROLE = Qt.ItemDataRole.UserRole + 1  # listed from the output folder, not made this session


def earlier_results(root: Path, limit: int = MAX_EARLIER) -> list[Path]:
    """PNGs in root/<date>/, newest folder and number first."""
    if not root.is_dir():
        return []
    found: list[Path] = []
    for folder in sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True):
        found.extend(sorted((p for p in folder.glob("*.png") if not p.name.startswith(".")), reverse=True))
        if len(found) >= limit:
            break
    return found[:limit]


def describe(path: str, parameters_text: str | None = None) -> str:
    """A tooltip: the prompt, seed and size the image carries, and its file name.

    With `parameters_text` (the A1111 text a fresh result carries) no file is read: this runs in the
    GUI thread for new results, and on the thumbnail pool for earlier ones.
    """
    try:
        from sd_desktop.core.io.metadata import parse_parameters, read_parameters

        params = parse_parameters(parameters_text) if parameters_text else (read_parameters(path) or {})
    except Exception:  # noqa: BLE001 - a tooltip never fails a thumbnail
        params = {}
    lines = []
    if params.get("prompt"):
        prompt = str(params["prompt"])
        lines.append(prompt if len(prompt) < 160 else prompt[:157] + "…")
    details = [f"{key} {params[key]}" for key in ("seed", "steps") if params.get(key) is not None]
    if params.get("width") and params.get("height"):
        details.append(f"{params['width']}×{params['height']}")
    if details:
        lines.append(", ".join(details))
    lines.append(Path(path).name)
    return "\n".join(lines)


def read_thumbnail(path: str, size: int = THUMB) -> QImage:
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    original = reader.size()
    if original.isValid() and original.width() > 0 and original.height() > 0:
        reader.setScaledSize(original.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


class _ThumbnailSignals(QObject):
    loaded = Signal(int, str, QImage, str)  # batch, path, thumbnail, tooltip


class _ThumbnailJob(QRunnable):
    def __init__(self, signals: _ThumbnailSignals, batch: int, paths: list[str]):
        super().__init__()
        self.signals, self.batch, self.paths = signals, batch, paths

    def run(self) -> None:
        for path in self.paths:
            self.signals.loaded.emit(self.batch, path, read_thumbnail(path), describe(path))


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
    deleteRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
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
        self.empty_label = QLabel("Results appear here.")
        self.empty_label.setObjectName("hintLabel")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.list, 1)

        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # the worker needs the CPU more
        self._signals = _ThumbnailSignals()
        self._signals.loaded.connect(self._thumbnail_loaded)
        self._batch = 0
        self._items: dict[str, QListWidgetItem] = {}
        self._update_empty()

    # -- contents
    def paths(self) -> list[str]:
        return [self.list.item(i).data(PATH_ROLE) for i in range(self.list.count())]

    def item_for(self, path: str) -> QListWidgetItem | None:
        return self._items.get(str(path))

    def _new_item(self, path: str, tooltip: str) -> QListWidgetItem:
        item = QListWidgetItem()
        item.setData(PATH_ROLE, path)
        item.setToolTip(tooltip)
        item.setSizeHint(QSize(THUMB + 8, THUMB + 8))
        self._items[path] = item
        return item

    def add_result(self, path: str, image: QImage, tooltip: str = "") -> None:
        """A new result goes first and becomes the selection."""
        path = str(path)
        if path in self._items:
            self.remove_path(path)
        item = self._new_item(path, tooltip or Path(path).name)
        item.setIcon(thumbnail_icon(image))
        self.list.insertItem(0, item)
        self.list.setCurrentItem(item)
        self._update_empty()

    def load_folder(self, root: Path) -> None:
        """List earlier results below this session's; thumbnails come in the background."""
        self._batch += 1
        self.pool.clear()
        for path in list(self._items):
            if self._items[path].data(EARLIER_ROLE):
                self.remove_path(path)
        paths = [str(p) for p in earlier_results(Path(root)) if str(p) not in self._items]
        for path in paths:
            item = self._new_item(path, Path(path).name)
            item.setData(EARLIER_ROLE, True)
            self.list.addItem(item)
        for start in range(0, len(paths), 16):
            self.pool.start(_ThumbnailJob(self._signals, self._batch, paths[start:start + 16]))
        self._update_empty()

    def _thumbnail_loaded(self, batch: int, path: str, image: QImage, tooltip: str) -> None:
        item = self._items.get(path)
        if batch == self._batch and item is not None:
            item.setIcon(thumbnail_icon(image))
            item.setToolTip(tooltip)

    def remove_path(self, path: str) -> None:
        item = self._items.pop(str(path), None)
        if item is not None:
            self.list.takeItem(self.list.row(item))
        self._update_empty()

    def _update_empty(self) -> None:
        self.empty_label.setVisible(self.list.count() == 0)

    def stop(self) -> None:
        self.pool.clear()
        self.pool.waitForDone(3000)

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

    def _context_menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        self.menu_for(item.data(PATH_ROLE)).exec(self.list.viewport().mapToGlobal(pos))
