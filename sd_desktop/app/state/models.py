"""The model catalogue: what the Model list offers (the bundled demo, models found in the models folders,
files opened before, the loaded one), scanned on a pool thread so a slow or network folder never freezes
the window."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

MODEL_SUFFIXES = (".safetensors", ".ckpt")
DEMO_KEY = ""  # the bundled demo model's key; any other key is a path


def demo_model_file() -> Path | None:
    """The bundled demo model; None when not installed. (core.loading.model would import torch here.)"""
    from sd_desktop.resources_path import bundled_model

    return bundled_model()


def is_model_path(path: str | Path) -> bool:
    """A checkpoint file or a diffusers folder (or its model_index.json)."""
    path = Path(path)
    return path.suffix.lower() in MODEL_SUFFIXES or (path / "model_index.json").is_file()


def scan_models(folders: list[str], max_depth: int = 3) -> list[Path]:
    """*.safetensors / *.ckpt files and diffusers folders (model_index.json) under each folder.

    A1111 (models/Stable-diffusion) and ComfyUI (models/checkpoints) users keep models in sub-folders,
    so a few levels are searched. Hidden folders are skipped.
    """
    found: list[Path] = []
    for folder in folders:
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            if (here / "model_index.json").is_file():
                found.append(here)
                dirnames.clear()
                continue
            found.extend(here / name for name in sorted(filenames, key=str.lower)
                         if name.lower().endswith(MODEL_SUFFIXES) and not name.startswith("."))
            depth = len(here.relative_to(root).parts)
            dirnames[:] = [] if depth >= max_depth else sorted((d for d in dirnames if not d.startswith(".")), key=str.lower)
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class ModelEntry:
    key: str  # DEMO_KEY or a path
    label: str
    tooltip: str


class _ScanSignals(QObject):
    done = Signal(int, list)  # generation, [Path]


class _ScanJob(QRunnable):
    def __init__(self, signals: _ScanSignals, generation: int, folders: list[str]):
        super().__init__()
        self.signals, self.generation, self.folders = signals, generation, folders

    def run(self) -> None:
        self.signals.done.emit(self.generation, scan_models(self.folders))


class ModelCatalogue(QObject):
    """The entries of the Model list. `rescan(folders)` looks for models in the background; `changed`
    fires whenever the entries change."""

    changed = Signal()
    scanningChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._signals = _ScanSignals()
        self._signals.done.connect(self._scanned)
        self._generation = 0
        self.scanning = False
        self.found: list[str] = []
        self.recent: list[str] = []
        self.pinned: list[str] = []  # the loaded and the requested model, listed even outside the folders

    def rescan(self, folders: list[str], recent: list[str] | None = None) -> None:
        if recent is not None:
            self.recent = list(recent)
        self._generation += 1
        self.scanning = True
        self.scanningChanged.emit(True)
        self.pool.start(_ScanJob(self._signals, self._generation, list(folders)))

    @Slot(int, list)
    def _scanned(self, generation: int, paths: list) -> None:
        if generation != self._generation:
            return  # a newer scan is on its way
        self.found = [str(p) for p in paths]
        self.scanning = False
        self.scanningChanged.emit(False)
        self.changed.emit()

    def pin(self, *keys: str | None) -> None:
        """Keep these models in the list (the one loaded, the one asked for)."""
        pinned = [k for k in keys if k]
        if pinned != self.pinned:
            self.pinned = pinned
            self.changed.emit()

    def entries(self) -> list[ModelEntry]:
        demo = demo_model_file()
        items = [ModelEntry(DEMO_KEY, f"Demo · {demo.stem}" if demo else "Demo model (not installed)",
                            str(demo) if demo else "The bundled demo model is missing from resources/models")]
        known = {DEMO_KEY}
        candidates = self.found + [p for p in self.recent if Path(p).exists()] + self.pinned
        for path in candidates:
            if path in known or (demo is not None and Path(path) == demo):
                continue
            known.add(path)
            label = Path(path).stem if Path(path).suffix.lower() in MODEL_SUFFIXES else Path(path).name
            items.append(ModelEntry(path, label, path))
        return items

    def stop(self) -> None:
        self.pool.clear()
        self.pool.waitForDone(3000)
