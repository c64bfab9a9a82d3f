"""Errors a user may see. Each message says what went wrong and what to do about it."""

from __future__ import annotations


class SDDesktopError(Exception):
    """Base of every error sd-desktop shows to a user as one line."""


class ModelLoadError(SDDesktopError):
    """A model file or folder could not be read or is not a supported model."""


class UnsupportedModelError(ModelLoadError):
    """The file is a real checkpoint, but of a family sd-desktop does not support."""


class UnsafeCheckpointError(ModelLoadError):
    """A pickled .ckpt needs more than plain tensors to unpickle; it is refused unread."""


class InvalidRequestError(SDDesktopError, ValueError):
    """A generation request has a value out of range; the message names the field."""


class Cancelled(SDDesktopError):
    """The user asked to stop; nothing half-finished was written."""
