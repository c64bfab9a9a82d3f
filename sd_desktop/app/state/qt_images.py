"""PIL images and uint8 numpy arrays <-> QImage.

QImage (unlike QPixmap) may be made in any thread, so the worker builds them and sends them over
signals. Every QImage returned here owns its pixels (a copy), so the source buffer may be freed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage

_FORMATS = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}


def numpy_to_qimage(array: np.ndarray) -> QImage:
    """uint8 [h, w] (grey), [h, w, 3] (RGB) or [h, w, 4] (RGBA) -> QImage."""
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in _FORMATS:
        raise ValueError(f"expected an array of shape HxW, HxWx3 or HxWx4, got {array.shape}")
    array = np.ascontiguousarray(array)
    height, width, channels = array.shape
    image = QImage(array.data, width, height, width * channels, _FORMATS[channels])
    return image.copy()  # detach from the numpy buffer


def pil_to_qimage(image: Image.Image) -> QImage:
    if image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() or image.mode == "P" else "RGB")
    return numpy_to_qimage(np.asarray(image))


def qimage_to_numpy(image: QImage, channels: int = 3) -> np.ndarray:
    """QImage -> uint8 [h, w] (channels=1), [h, w, 3] or [h, w, 4]; a copy."""
    if image.isNull():
        raise ValueError("the image is empty")
    converted = image.convertToFormat(_FORMATS[channels])
    width, height, stride = converted.width(), converted.height(), converted.bytesPerLine()
    buffer = np.frombuffer(converted.constBits(), dtype=np.uint8, count=stride * height)
    rows = buffer.reshape(height, stride)[:, : width * channels]  # rows may be padded to 4 bytes
    array = rows.reshape(height, width, channels).copy()
    return array[..., 0] if channels == 1 else array


def qimage_to_pil(image: QImage, mode: str = "RGB") -> Image.Image:
    """QImage -> PIL in mode "RGB", "RGBA" or "L"."""
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    return Image.fromarray(qimage_to_numpy(image, channels))  # the shape decides L / RGB / RGBA
