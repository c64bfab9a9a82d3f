"""The LoRAs and embeddings the window offers: what the LoRA and embedding folders hold, scanned on a pool
thread (core.lora.catalogue reads safetensors headers only), and the prompt text that uses one.

After the list, the same thread hashes every file as A1111 does (core.lora.hashes), remembered on disk in
`hash_cache`, so that restoring an image finds a renamed LoRA by the hash its infotext gives."""

from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

import threading
from pathlib import Path

from sd_desktop.core.lora import hashes
from sd_desktop.core.lora.catalogue import FAMILIES, AddonInfo, scan_addons


def prompt_text(entry: AddonInfo, weight: float = 1.0, emphasis: str = "Original") -> str:
    """What inserting it into a prompt writes: A1111's tag for a LoRA; for an embedding its word, or
    ComfyUI's `embedding:name` when prompts are read as ComfyUI reads them (a bare word is a word there)."""
    if entry.kind == "lora":
        return f"<lora:{entry.name}:{weight:g}>"
    return f"embedding:{entry.name}" if emphasis == "ComfyUI" else entry.name


def size_text(size: int) -> str:
    """"144 MB", "9.6 MB", "25 KB": a file's size in the list."""
    if size >= 2**20:
        megabytes = size / 2**20
        return f"{megabytes:.0f} MB" if megabytes >= 10 else f"{megabytes:.1f} MB"
    return f"{max(1, round(size / 2**10))} KB"


def list_label(entry: AddonInfo) -> str:
    """Two lines: the name, then kind · family · size ("ink" / "LoRA · SD 1.x · 144 MB")."""
    kind = "LoRA" if entry.kind == "lora" else "Embedding"
    return f"{entry.name}\n" + " · ".join(part for part in (kind, entry.family, size_text(entry.size)) if part)


def fits(entry: AddonInfo, model_addons: str | None) -> bool:
    """False when the file says it was made for another family than the loaded model's (which would refuse
    it); True when it fits, or either side is unknown."""
    return not (entry.family and model_addons and FAMILIES.get(model_addons) not in (None, entry.family))


def describe(entry: AddonInfo, model_addons: str | None = None) -> str:
    """A tooltip: kind, family, size, trigger words, file."""
    kind = "LoRA" if entry.kind == "lora" else "Embedding"
    lines = [f"{kind} for {entry.family}" if entry.family else f"{kind} (the file does not say for which model)",
             size_text(entry.size)]
    if not fits(entry, model_addons):
        lines.insert(1, f"The loaded model takes {FAMILIES[model_addons]} {kind}s: this one would be refused")
    if entry.vectors:
        lines.append(f"{entry.vectors} vector{'s' if entry.vectors > 1 else ''}: takes {entry.vectors} "
                     f"token{'s' if entry.vectors > 1 else ''} of a prompt")
    if entry.triggers:
        lines.append("Trained on: " + ", ".join(entry.triggers))
    lines.append(entry.path)
    return "\n".join(lines)


class _ScanSignals(QObject):
    done = Signal(int, list)  # generation, [AddonInfo]
    hashed = Signal(int)  # generation


class _ScanJob(QRunnable):
    def __init__(self, signals: _ScanSignals, generation: int, loras: list[str], embeddings: list[str],
                 hash_cache: str | None, stop: threading.Event):
        super().__init__()
        self.signals, self.generation, self.loras, self.embeddings = signals, generation, loras, embeddings
        self.hash_cache, self.stop = hash_cache, stop

    def run(self) -> None:
        entries = scan_addons(self.loras, self.embeddings)
        self.signals.done.emit(self.generation, entries)
        if self.hash_cache:
            hashes.load_cache(self.hash_cache)
        fresh = False
        for entry in entries:
            if self.stop.is_set():  # the window is closing: what is hashed so far is kept
                break
            kind = "lora" if entry.kind == "lora" else "file"
            if hashes.known(kind, entry.path) is None:
                try:
                    (hashes.lora_hash if kind == "lora" else hashes.file_hash)(entry.path)
                    fresh = True
                except OSError:
                    continue  # gone or unreadable: found by name or not at all
        if fresh and self.hash_cache:
            hashes.save_cache(self.hash_cache)
        if not self.stop.is_set():
            self.signals.hashed.emit(self.generation)


class AddonCatalogue(QObject):
    """`rescan(lora_folders, embedding_folders)` looks in the background; `changed` fires with new entries."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None, hash_cache: str | Path | None = None):
        super().__init__(parent)
        self.hash_cache = str(hash_cache) if hash_cache else None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._signals = _ScanSignals()
        self._signals.done.connect(self._scanned)
        self._signals.hashed.connect(self._hashed)
        self._generation = 0
        self.entries: list[AddonInfo] = []
        self.scanning = False
        self.hashing = False  # until every listed file's hash is known (core.lora.hashes.known)
        self._stop = threading.Event()

    def rescan(self, lora_folders: list[str], embedding_folders: list[str]) -> None:
        self._generation += 1
        self.scanning = self.hashing = True
        self.pool.start(_ScanJob(self._signals, self._generation, list(lora_folders), list(embedding_folders),
                                 self.hash_cache, self._stop))

    @Slot(int, list)
    def _scanned(self, generation: int, entries: list) -> None:
        if generation != self._generation:
            return
        self.entries = list(entries)
        self.scanning = False
        self.changed.emit()

    @Slot(int)
    def _hashed(self, generation: int) -> None:
        if generation == self._generation:
            self.hashing = False

    def names(self, kind: str) -> list[str]:
        return [entry.name for entry in self.entries if entry.kind == kind]

    def stop(self) -> None:
        self._stop.set()
        self.pool.clear()
        self.pool.waitForDone(3000)
