"""The history: this session's results and earlier ones from the output folder (up to 10,000), newest first.

Earlier results are listed at once (file names only) and their thumbnails and parameters read on a pool
thread, newest first; each arrives through `thumbnailReady`. Thumbnails are kept in a disk cache (keyed by
file, size and time), so a folder is decoded once. Each entry's prompt, model, mode and date feed the
search and filters; favourites (a star) are remembered by the caller.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QImageReader

THUMB = 104
MAX_EARLIER = 10_000  # newest first; older ones stay on disk


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


def describe(path: str, parameters_text: str | None = None, params: dict | None = None) -> str:
    """A tooltip: the prompt, seed and size the image carries, and its file name.

    With `parameters_text` (the A1111 text a fresh result carries) or `params` no file is read: this runs
    in the GUI thread for new results, and on the thumbnail pool for earlier ones.
    """
    if params is None:
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


def cached_thumbnail(path: str, cache: Path | None, size: int = THUMB) -> QImage:
    """The thumbnail from the disk cache, else read (and then cached)."""
    if cache is None:
        return read_thumbnail(path, size)
    try:
        stat = os.stat(path)
    except OSError:
        return QImage()
    key = hashlib.sha1(f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{size}".encode("utf-8", "replace")).hexdigest()
    cached = cache / key[:2] / f"{key}.jpg"
    image = QImage(str(cached)) if cached.is_file() else QImage()
    if image.isNull():
        image = read_thumbnail(path, size)
        if not image.isNull():
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                image.convertToFormat(QImage.Format.Format_RGB32).save(str(cached), "JPG", 88)
            except OSError:
                pass  # a cache: the next start reads the image again
    return image


def entry_facts(path: str, params: dict | None) -> dict:
    """What the search and filters look at: prompt, model, mode, date (the folder's name), seed; and the job
    the image came from when our JSON says it ("batch": its id, "batch_index", "batch_size", "batch_seed")."""
    params = params or {}
    batch = params.get("batch") if isinstance(params.get("batch"), dict) else {}
    return {"prompt": str(params.get("prompt") or ""), "model": str(params.get("model") or ""),
            "mode": str(params.get("mode") or ""), "date": Path(path).parent.name,
            "seed": params.get("seed"), "batch": str(batch.get("id") or ""), "batch_index": batch.get("index", 0),
            "batch_size": batch.get("size", 1), "batch_seed": batch.get("seed")}


def base_seed_of(path: str) -> int | None:
    """The base seed of the job an image came from (what "Last" reuses), else its own seed."""
    try:
        from sd_desktop.core.io.metadata import read_parameters

        batch = (read_parameters(path) or {}).get("batch") or {}
    except Exception:  # noqa: BLE001 - an unreadable file: its name may still say the seed
        batch = {}
    seed = batch.get("seed")
    return seed if isinstance(seed, int) and seed >= 0 else seed_of(path)


def read_thumbnail(path: str, size: int = THUMB) -> QImage:
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    original = reader.size()
    if original.isValid() and original.width() > 0 and original.height() > 0:
        reader.setScaledSize(original.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


class _ThumbnailSignals(QObject):
    loaded = Signal(int, str, QImage, str, dict)  # batch, path, thumbnail, tooltip, entry_facts


class _ThumbnailJob(QRunnable):
    def __init__(self, signals: _ThumbnailSignals, batch: int, paths: list[str], cache: Path | None):
        super().__init__()
        self.signals, self.batch, self.paths, self.cache = signals, batch, paths, cache
        self.stopped = False

    def run(self) -> None:
        for path in self.paths:
            if self.stopped:
                return
            params = _parameters(path)
            self.signals.loaded.emit(self.batch, path, cached_thumbnail(path, self.cache), describe(path, params=params),
                                     entry_facts(path, params))


def _parameters(path: str) -> dict:
    try:
        from sd_desktop.core.io.metadata import read_parameters

        return read_parameters(path) or {}
    except Exception:  # noqa: BLE001 - a tooltip never fails a thumbnail
        return {}


class HistoryModel(QObject):
    """Result paths, newest first. `added(path, index, thumbnail, tooltip, earlier)` / `removed(path)` /
    `thumbnailReady(path, thumbnail, tooltip)` / `favouriteChanged(path, on)` / `factsChanged(path)` keep a
    view in step; `facts[path]` holds what `matches` searches."""

    added = Signal(str, int, QImage, str, bool)
    removed = Signal(str)
    thumbnailReady = Signal(str, QImage, str)
    favouriteChanged = Signal(str, bool)
    factsChanged = Signal(str)

    def __init__(self, parent: QObject | None = None, thumbnail_cache: Path | None = None):
        super().__init__(parent)
        self._paths: list[str] = []
        self._known: set[str] = set()
        self._earlier: set[str] = set()
        self.facts: dict[str, dict] = {}
        self._batches: dict[str, set[str]] = {}  # batch id -> its paths in the history
        self.favourites: set[str] = set()
        self.thumbnail_cache = thumbnail_cache
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # the worker needs the CPU more
        self._signals = _ThumbnailSignals()
        self._signals.loaded.connect(self._thumbnail_loaded)
        self._batch = 0
        self._jobs: list[_ThumbnailJob] = []

    def paths(self) -> list[str]:
        return list(self._paths)

    def __contains__(self, path: str) -> bool:
        return str(path) in self._known

    def add_result(self, path: str, image: QImage, tooltip: str = "", params: dict | None = None) -> None:
        """A new result goes first."""
        path = str(path)
        if path in self._known:
            self.remove(path)
        self._paths.insert(0, path)
        self._known.add(path)
        self._set_facts(path, entry_facts(path, params))
        self.added.emit(path, 0, image, tooltip or Path(path).name, False)

    def load_folder(self, root: Path) -> None:
        """List earlier results below this session's; thumbnails come in the background."""
        self._batch += 1
        self._stop_jobs()
        for path in list(self._earlier):
            self.remove(path)
        paths = [str(p) for p in earlier_results(Path(root)) if str(p) not in self._known]
        for path in paths:
            self._paths.append(path)
            self._known.add(path)
            self._earlier.add(path)
            self._set_facts(path, entry_facts(path, None))
            self.added.emit(path, len(self._paths) - 1, QImage(), Path(path).name, True)
        for start in range(0, len(paths), 32):
            job = _ThumbnailJob(self._signals, self._batch, paths[start:start + 32], self.thumbnail_cache)
            job.setAutoDelete(False)
            self._jobs.append(job)
            self.pool.start(job)

    @Slot(int, str, QImage, str, dict)
    def _thumbnail_loaded(self, batch: int, path: str, image: QImage, tooltip: str, facts: dict) -> None:
        if batch == self._batch and path in self._known:
            self._set_facts(path, facts)
            self.thumbnailReady.emit(path, image, tooltip)
            self.factsChanged.emit(path)

    def remove(self, path: str) -> None:
        path = str(path)
        if path in self._known:
            self._paths.remove(path)
            self._known.discard(path)
            self._earlier.discard(path)
            self._set_facts(path, None)
            self.removed.emit(path)

    def _set_facts(self, path: str, facts: dict | None) -> None:
        old = (self.facts.pop(path, None) or {}).get("batch")
        if old and old in self._batches:
            self._batches[old].discard(path)
            if not self._batches[old]:
                del self._batches[old]
        if facts is not None:
            self.facts[path] = facts
            if facts.get("batch"):
                self._batches.setdefault(facts["batch"], set()).add(path)

    # -- batches: the images of one job (one click), as our JSON records them
    def batch_members(self, path: str) -> list[str]:
        """The history's images from the job `path` came from, in the order they were made ([path] alone when
        the file does not say, or the job's other images are gone)."""
        batch = (self.facts.get(str(path)) or {}).get("batch")
        if not batch or batch not in self._batches:
            return [str(path)] if str(path) in self._known else []
        return sorted(self._batches[batch], key=lambda p: self.facts[p].get("batch_index") or 0)

    # -- search, filters, favourites
    def matches(self, path: str, text: str = "", mode: str = "", favourites_only: bool = False) -> bool:
        """Whether an entry shows: every word of `text` in its prompt, model, date or file name (any case),
        its mode `mode` ("" any), a favourite when `favourites_only`."""
        if favourites_only and path not in self.favourites:
            return False
        facts = self.facts.get(path) or {}
        if mode and facts.get("mode") and facts["mode"] != mode:  # (an unknown mode shows: not read yet, or
            return False                                             # an image from an app that does not say)
        haystack = " ".join([facts.get("prompt", ""), facts.get("model", ""), facts.get("date", ""),
                             Path(path).name]).casefold()
        return all(word in haystack for word in text.casefold().split())

    def set_favourite(self, path: str, on: bool) -> None:
        path = str(path)
        if (path in self.favourites) != on:
            (self.favourites.add if on else self.favourites.discard)(path)
            self.favouriteChanged.emit(path, on)

    def clear_except_favourites(self) -> int:
        """Take every entry but the favourites out of the history (the files stay). Returns how many."""
        gone = [path for path in self._paths if path not in self.favourites]
        for path in gone:
            self.remove(path)
        return len(gone)

    def _stop_jobs(self) -> None:
        for job in self._jobs:
            job.stopped = True
        self.pool.clear()
        self.pool.waitForDone(3000)
        self._jobs.clear()

    def stop(self) -> None:
        self._stop_jobs()
