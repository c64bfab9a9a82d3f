"""The engine: networks, checkpoint loading, samplers and the generation pipeline.

torch only; this package never imports Qt. Public names are loaded on first use, so
`import sd_desktop.core` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_model": "model",
    "StableDiffusionModel": "model",
    "GenerationRequest": "request",
    "InterpolationRequest": "request",
    "generate": "pipeline",
    "GenerationResult": "pipeline",
    "StepInfo": "pipeline",
    "prepare_interpolation": "interpolation",
    "read_parameters": "metadata",
    "SAMPLERS": "samplers",
    "SDDesktopError": "errors",
    "ModelLoadError": "errors",
    "UnsupportedModelError": "errors",
    "UnsafeCheckpointError": "errors",
    "InvalidRequestError": "errors",
    "Cancelled": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sd_desktop.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
