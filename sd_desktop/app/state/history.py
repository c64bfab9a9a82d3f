"""The history: this session's results and earlier ones from the output folder, newest first.

Earlier results are listed at once and their thumbnails read on a pool thread (decoding a few hundred
PNGs in the GUI thread would freeze it); each arrives through `thumbnailReady`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QImageReader

THUMB = 104
MAX_EARLIER = 400  # newest first; older ones stay on disk


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


def seed_of(path: str) -> int | None:
    """An image's seed: from our file name (NNNNN-SEED.png), else from the parameters it carries."""
    import re

    match = re.fullmatch(r"\d+-(\d+)", Path(path).stem)
    if match:
        return int(match.group(1))
    try:
        from sd_desktop.core.io.metadata import read_parameters

        seed = (read_parameters(path) or {}).get("seed")
    except Exception:  # noqa: BLE001 - an unreadable file has no seed to offer
        return None
    return seed if isinstance(seed, int) and seed >= 0 else None


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


class HistoryModel(QObject):
    """Result paths, newest first. `added(path, index, thumbnail, tooltip, earlier)` / `removed(path)` /
    `thumbnailReady(path, thumbnail, tooltip)` keep a view in step."""

    added = Signal(str, int, QImage, str, bool)
    removed = Signal(str)
    thumbnailReady = Signal(str, QImage, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._paths: list[str] = []
        self._earlier: set[str] = set()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # the worker needs the CPU more
        self._signals = _ThumbnailSignals()
        self._signals.loaded.connect(self._thumbnail_loaded)
        self._batch = 0

    def paths(self) -> list[str]:
        return list(self._paths)

    def __contains__(self, path: str) -> bool:
        return str(path) in self._paths

    def add_result(self, path: str, image: QImage, tooltip: str = "") -> None:
        """A new result goes first."""
        path = str(path)
        if path in self._paths:
            self.remove(path)
        self._paths.insert(0, path)
        self.added.emit(path, 0, image, tooltip or Path(path).name, False)

    def load_folder(self, root: Path) -> None:
        """List earlier results below this session's; thumbnails come in the background."""
        self._batch += 1
        self.pool.clear()
        for path in list(self._earlier):
            self.remove(path)
        paths = [str(p) for p in earlier_results(Path(root)) if str(p) not in self._paths]
        for path in paths:
            self._paths.append(path)
            self._earlier.add(path)
            self.added.emit(path, len(self._paths) - 1, QImage(), Path(path).name, True)
        for start in range(0, len(paths), 16):
            self.pool.start(_ThumbnailJob(self._signals, self._batch, paths[start:start + 16]))

    @Slot(int, str, QImage, str)
    def _thumbnail_loaded(self, batch: int, path: str, image: QImage, tooltip: str) -> None:
        if batch == self._batch and path in self._paths:
            self.thumbnailReady.emit(path, image, tooltip)

    def remove(self, path: str) -> None:
        path = str(path)
        if path in self._paths:
            self._paths.remove(path)
            self._earlier.discard(path)
            self.removed.emit(path)

    def stop(self) -> None:
        self.pool.clear()
        self.pool.waitForDone(3000)
