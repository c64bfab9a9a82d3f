"""Upscalers: ESRGAN-family networks (arch), their files (files), ncnn conversion (ncnn), tiled upscaling (run)
and where they are found (catalogue)."""

from .files import Upscaler, load_upscaler
from .run import carry_parameters, upscale_image

__all__ = ["Upscaler", "carry_parameters", "load_upscaler", "upscale_image"]
