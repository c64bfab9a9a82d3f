"""The engine: model families, networks, checkpoint loading, samplers and the pipelines.

torch only; this package never imports Qt. Public names are loaded on first use, so
`import sd_desktop.core` stays cheap. The sub-packages (see the README's layout): families, nn, loading,
sampling, pipelines, io, runtime, text.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_model": "loading.model",
    "StableDiffusionModel": "loading.model",
    "GenerationRequest": "request",
    "InterpolationRequest": "request",
    "Mode": "request",
    "LoraRef": "request",
    "MASKED_CONTENT": "request",
    "check_request": "pipelines.generate",
    "resolve_extra_networks": "lora.tags",
    "generate": "pipelines.generate",
    "GenerationResult": "pipelines.generate",
    "StepInfo": "pipelines.generate",
    "prepare_interpolation": "pipelines.interpolation",
    "read_parameters": "io.metadata",
    "SAMPLERS": "sampling.registry",
    "SCHEDULES": "sampling.registry",
    "FAMILIES": "families",
    "SDDesktopError": "errors",
    "ModelLoadError": "errors",
    "UnsupportedModelError": "errors",
    "UnsafeCheckpointError": "errors",
    "InvalidRequestError": "errors",
    "DeviceError": "errors",
    "NonFiniteOutputError": "errors",
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
