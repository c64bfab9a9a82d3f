"""Errors a user may see. Each message says what went wrong and what to do about it."""

from __future__ import annotations


class SDDesktopError(Exception):
    """Base of every error sd-desktop shows to a user as one line."""


class ModelLoadError(SDDesktopError):
    """A model file or folder could not be read or is not a supported model."""


class ModelMemoryError(ModelLoadError):
    """Not enough memory to load a model: the file is fine; a smaller precision, or fewer programs open, may do."""


class UnsupportedModelError(ModelLoadError):
    """The file is a real checkpoint, but of a family sd-desktop does not support."""


class UnsafeCheckpointError(ModelLoadError):
    """A pickled .ckpt needs more than plain tensors to unpickle; it is refused unread."""


class InvalidRequestError(SDDesktopError, ValueError):
    """A generation request has a value out of range; the message names the field."""


class Cancelled(SDDesktopError):
    """The user asked to stop; nothing half-finished was written."""


class DeviceError(SDDesktopError, ValueError):
    """A device or precision was asked for that this machine does not have, or that is unknown."""


class NonFiniteOutputError(SDDesktopError):
    """The sampler or the VAE produced NaN or infinity: the image would come out black, so none is made."""


def out_of_memory(exc: BaseException) -> bool:
    """A MemoryError, torch's OutOfMemoryError (CUDA, MPS), or the CPU allocator's RuntimeError."""
    if isinstance(exc, MemoryError) or "OutOfMemoryError" in type(exc).__name__:
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def one_line(exc: BaseException, doing: str | None = None) -> tuple[str, bool]:
    """What a user reads about `exc`, in one line, and whether it is an expected failure (bad input, a
    missing file, no memory) rather than a bug. The app, the CLI, the self-test and the trainer all say
    errors through this; each adds its own frame ("sd-desktop: error: ...")."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if out_of_memory(exc):
        where = f" while {doing}" if doing else ""
        return f"Out of memory{where}: try a smaller size or batch count, or close other programs", True
    if isinstance(exc, SDDesktopError):
        return text or (f"{doing} failed" if doing else type(exc).__name__), True
    if isinstance(exc, OSError):
        detail = text or type(exc).__name__
        return (f"Could not finish {doing}: {detail}" if doing else detail), True
    if isinstance(exc, ValueError) and text:
        return text, True
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__, False
