"""Upscalers: ESRGAN-family networks (arch), their files (files), ncnn conversion (ncnn), tiled upscaling (run)
and where they are found (catalogue, which imports no torch: the window lists upscalers without it)."""

__all__ = ["Upscaler", "carry_parameters", "load_upscaler", "upscale_image"]


def __getattr__(name: str):  # torch only when something that needs it is asked for
    if name in ("Upscaler", "load_upscaler"):
        from . import files

        return getattr(files, name)
    if name in ("carry_parameters", "upscale_image"):
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
