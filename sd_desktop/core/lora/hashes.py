"""The short hashes A1111 writes for LoRAs ("Lora hashes") and embeddings ("TI hashes"), and finds files by
when an image's names do not match the files on this machine. No torch: the window's scan uses them.

- An embedding, or a LoRA that is not a .safetensors: the first 12 hex digits of the whole file's sha256.
- A LoRA .safetensors: kohya's `sshs_model_hash` from its header when written, else the sha256 of the bytes
  after the header (sd-webui-additional-networks' hash, which A1111 took over): renaming the file or editing
  its metadata keeps the hash.

Hashes are remembered per file, size and modification time; `load_cache`/`save_cache` keep them on disk, so a
folder of LoRAs is read once, not at every start.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from pathlib import Path

_CACHE: dict[tuple[str, str, int, float], str] = {}  # (kind, path, size, mtime) -> 12 hex digits
_LOCK = threading.Lock()  # the window's scan thread and the generation worker both hash
BLOCK = 1 << 20


def _key(kind: str, path: Path) -> tuple[str, str, int, float]:
    stat = path.stat()
    return kind, str(path.resolve()), stat.st_size, stat.st_mtime


def _sha256(f, start: int = 0) -> str:
    f.seek(start)
    digest = hashlib.sha256()
    for block in iter(lambda: f.read(BLOCK), b""):
        digest.update(block)
    return digest.hexdigest()[:12]


def _cached(kind: str, path: Path, compute) -> str:
    """The hash of `kind` for the file as it is now, computed by compute(open file) once and remembered."""
    key = _key(kind, path)
    if key not in _CACHE:
        with open(path, "rb") as f:
            digest = compute(f)
        with _LOCK:
            _CACHE[key] = digest
    return _CACHE[key]


def file_hash(path: str | Path) -> str:
    """The first 12 hex digits of the file's sha256 (an embedding's "TI hashes" entry)."""
    return _cached("file", Path(path).expanduser(), _sha256)


def lora_hash(path: str | Path) -> str:
    """A LoRA's "Lora hashes" entry, as A1111 computes it (see the module's text)."""
    path = Path(path).expanduser()
    if path.suffix.lower() != ".safetensors":
        return file_hash(path)
    return _cached("lora", path, _safetensors_hash)


def _safetensors_hash(f) -> str:
    try:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length)) if length < (64 << 20) else {}
    except (struct.error, ValueError):
        return _sha256(f)  # not a safetensors file after all: the whole file
    written = (header.get("__metadata__") or {}).get("sshs_model_hash") if isinstance(header, dict) else None
    if isinstance(written, str) and len(written) >= 12 and all(c in "0123456789abcdefABCDEF" for c in written[:12]):
        return written[:12].lower()
    return _sha256(f, 8 + length)


def known(kind: str, path: str | Path) -> str | None:
    """The hash already computed for a file as it is now (kind "lora" or "file"), without reading it."""
    path = Path(path).expanduser()
    if kind == "lora" and path.suffix.lower() != ".safetensors":
        kind = "file"
    try:
        return _CACHE.get(_key(kind, path))
    except OSError:
        return None


def load_cache(file: str | Path) -> None:
    """Hashes saved by `save_cache`; a missing or damaged file is no cache."""
    try:
        rows = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    with _LOCK:
        for row in rows if isinstance(rows, list) else []:
            if (isinstance(row, list) and len(row) == 5 and all(isinstance(v, str) for v in (row[0], row[1], row[4]))
                    and isinstance(row[2], int) and isinstance(row[3], (int, float))):
                _CACHE[(row[0], row[1], row[2], float(row[3]))] = row[4]


def save_cache(file: str | Path) -> None:
    """Every hash computed so far, for the next start. Written whole or not at all."""
    from ..io.files import write_text_atomic

    with _LOCK:
        rows = [[kind, path, size, mtime, digest] for (kind, path, size, mtime), digest in _CACHE.items()]
    try:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(file, json.dumps(rows))
    except OSError:
        pass  # a cache: the next start computes the hashes again
