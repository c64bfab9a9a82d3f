"""The picture on the canvas: its image and the file it came from (whose parameters it carries)."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QImageReader

log = logging.getLogger(__name__)


def read_image_file(path: str) -> tuple[QImage, str]:
    """(image, "") or (null image, why not)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    image = reader.read()
    if image.isNull():
        if not Path(path).exists():
            return image, f"{Path(path).name} does not exist"
        return image, f"{Path(path).name} is not an image sd-desktop can read ({reader.errorString()})"
    return image, ""


def read_parameters_quietly(path: str | None) -> dict | None:
    """The generation parameters a file carries; None when it has none or cannot be read (a damaged chunk is
    not worth more than a log line here)."""
    if not path:
        return None
    from sd_desktop.core.io.metadata import read_parameters

    try:
        return read_parameters(path)
    except Exception as exc:  # noqa: BLE001
        log.info("no parameters read from %s: %s", path, exc)
        return None


class Document(QObject):
    """`imageChanged(image, keep_mask)` tells the canvas what to show; keep_mask keeps an inpainting mask
    over a result of the same size."""

    imageChanged = Signal(QImage, bool)
    beforeChanged = Signal(QImage)  # the picture an Image to Image / Inpaint result was made from (null: none)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.image = QImage()
        self.source: str | None = None  # the file the image came from, if any
        self.before = QImage()

    def set_image(self, image: QImage, source: str | None = None, keep_mask: bool = False,
                  before: QImage | None = None) -> None:
        """`before`: what this result was made from (the compare view and "Back to the Original"); any other
        picture forgets it."""
        self.image = QImage(image)
        self.source = str(source) if source else None
        self.imageChanged.emit(self.image, keep_mask)
        self.before = QImage(before) if before is not None else QImage()
        self.beforeChanged.emit(self.before)

    def parameters(self) -> dict | None:
        return read_parameters_quietly(self.source)

    def has_image(self) -> bool:
        return not self.image.isNull()
