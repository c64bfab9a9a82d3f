"""Reading tensors from the files people have, lazily, with clear errors.

A `TensorFile` lists its keys and shapes without reading the data, and hands out one tensor at a
time, so a loader can convert each weight to its target dtype and keep only one copy in memory.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Iterable

import torch

from ..errors import ModelLoadError, UnsafeCheckpointError

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_MAX_HEADER = 100 * 1024 * 1024


class TensorFile:
    """Tensors of one file, keyed by name, read on demand."""

    def __init__(self, path: Path, shapes: dict[str, tuple[int, ...]], getter, metadata: dict[str, str]):
        self.path = path
        self.shapes = shapes
        self.metadata = metadata
        self._get = getter

    def keys(self) -> Iterable[str]:
        return self.shapes.keys()

    def __contains__(self, key: str) -> bool:
        return key in self.shapes

    def get(self, key: str) -> torch.Tensor:
        return self._get(key)


def open_tensor_file(path: str | Path) -> TensorFile:
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder, not a weights file")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        return _open_safetensors(path)
    if suffix in PICKLE_SUFFIXES:
        return _open_pickle(path)
    raise ModelLoadError(
        f"{path.name}: unknown model file type '{suffix}'; use a .safetensors or .ckpt file or a diffusers folder"
    )


_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


def _open_safetensors(path: Path) -> TensorFile:
    """Each tensor is read with a plain file read into memory of its own, not memory-mapped: a loader
    that converts the dtype then frees the source tensor at once, where a mapping would keep the whole
    file resident beside the converted copy (a bf16 load of a 2 GB file peaked at 4.2 GB that way)."""
    header, data_start = _check_safetensors_header(path)
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    unknown = sorted({v["dtype"] for v in entries.values()} - set(_SAFETENSORS_DTYPES))
    if unknown:
        raise ModelLoadError(f"{path.name} stores tensors as {', '.join(unknown)}, which sd-desktop cannot read")

    def read(key: str) -> torch.Tensor:
        entry = entries[key]
        tensor = torch.empty(entry["shape"], dtype=_SAFETENSORS_DTYPES[entry["dtype"]])
        start, end = entry["data_offsets"]
        raw = tensor.reshape(-1).view(torch.uint8).numpy()
        if raw.nbytes != end - start:
            raise ModelLoadError(f"{path.name} is corrupt: tensor {key} has the wrong byte size; download it again")
        with open(path, "rb") as f:
            f.seek(data_start + start)
            if f.readinto(memoryview(raw)) != raw.nbytes:
                raise ModelLoadError(f"{path.name} is truncated; download it again")
        return tensor

    shapes = {k: tuple(v["shape"]) for k, v in entries.items()}
    return TensorFile(path, shapes, read, dict(header.get("__metadata__") or {}))


def _check_safetensors_header(path: Path) -> tuple[dict, int]:
    """Validate the header ourselves: safetensors' own errors do not say what to do."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelLoadError(f"{path.name} is empty or truncated ({size} bytes); download it again")
        header_len = int.from_bytes(head, "little")
        if header_len > min(size - 8, _MAX_HEADER):
            raise ModelLoadError(_not_safetensors_message(path, head + f.read(120)))
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError
    except ValueError:
        raise ModelLoadError(_not_safetensors_message(path, head + raw[:120])) from None
    data_end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + data_end > size:
        raise ModelLoadError(
            f"{path.name} is truncated: it should hold {8 + header_len + data_end:,} bytes but has {size:,}; "
            "the download was probably interrupted, download it again"
        )
    return header, 8 + header_len


_PICTURES = ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"))


def _not_safetensors_message(path: Path, start: bytes) -> str:
    text = start.decode("utf-8", "replace").lower()
    picture = next((name for magic, name in _PICTURES if start.startswith(magic)), None)
    if picture == "BMP" and start[6:10] != bytes(4):  # (BMP's reserved bytes: "BM" alone is a weak sign)
        picture = None
    if picture is not None:
        return f"{path.name} is not a valid safetensors file: it is a picture ({picture}), not weights"
    if "git-lfs" in text:
        what = "a Git LFS pointer, not the weights (fetch the real file with git lfs pull)"
    elif "<html" in text or "<!doctype" in text:
        what = "a web page, not weights (the download saved an error page; download it again)"
    elif all(32 <= b < 127 or b in (9, 10, 13) for b in start[:64]):
        what = "text, not weights; choose the model's .safetensors file"
    else:
        what = "corrupt or truncated; download it again"
    return f"{path.name} is not a valid safetensors file: it is {what}"


def _open_pickle(path: Path) -> TensorFile:
    """Pickled checkpoints are read only with weights_only=True: they can never run code."""
    try:
        try:
            data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc).lower() and "zip" not in str(exc).lower():
                raise
            data = torch.load(str(path), map_location="cpu", weights_only=True)  # legacy non-zip format
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"{path.name} was refused: unpickling it would need more than plain tensors "
            f"({_first_line(exc)}), and sd-desktop never runs code from a model file. "
            "Convert it to .safetensors with a tool you trust, or use a .safetensors download"
        ) from None
    except (EOFError, RuntimeError, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{path.name} could not be read as a checkpoint ({_first_line(exc)}); it may be truncated, download it again"
        ) from None
    tensors = _find_state_dict(data)
    if tensors is None:
        raise ModelLoadError(f"{path.name} holds no model weights")
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    return TensorFile(path, shapes, tensors.__getitem__, {})


def _find_state_dict(data) -> dict[str, torch.Tensor] | None:
    """The tensors of a checkpoint: its "state_dict", Real-ESRGAN's "params_ema" (else "params"), or itself."""
    for key in ("state_dict", "params_ema", "params"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict):
        return None
    tensors = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    return tensors or None


def _first_line(exc: BaseException) -> str:
    """The reason in one line. torch's refusal of a pickle opens with a paragraph on loading the file anyway (advice
    sd-desktop does not give), sometimes in terminal bold; the line naming what it refused is the reason."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if line.strip()]
    for line in lines:
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip()[:200]
    for line in lines:
        if "GLOBAL" in line:
            return line[:200]
    return lines[0][:200] if lines else type(exc).__name__
