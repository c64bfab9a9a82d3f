"""Render resources/icons/sd-desktop.svg to the PNG, ICO and ICNS files beside it.

    python packaging/make_icons.py

PNGs at every size in SIZES (the freedesktop hicolor sizes; the app's window icon uses them too),
sd-desktop.ico (Windows: 16-256) and sd-desktop.icns (macOS: 16-512@2x). Qt's SVG renderer draws, Pillow
writes ICO and ICNS. Run it again after changing the SVG and commit what it writes.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ICONS = ROOT / "resources" / "icons"
SVG = ICONS / "sd-desktop.svg"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def png_path(size: int) -> Path:
    return ICONS / f"sd-desktop-{size}.png"


def render(svg: Path, size: int) -> bytes:
    """The SVG drawn at size x size, as PNG bytes (anti-aliased, transparent outside the shape)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not an SVG Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.convertToFormat(QImage.Format.Format_ARGB32).save(buffer, "PNG")
    return bytes(data.data())


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (QPainter wants one)
    images = {}
    for size in SIZES:
        data = render(SVG, size)
        # through Pillow: stable bytes (no Qt version text chunks), optimised
        image = Image.open(io.BytesIO(data)).convert("RGBA")
        image.save(png_path(size), optimize=True)
        images[size] = image
        print(png_path(size).relative_to(ROOT))
    ico = ICONS / "sd-desktop.ico"
    images[256].save(ico, sizes=[(s, s) for s in ICO_SIZES],
                     append_images=[images[s] for s in ICO_SIZES if s != 256])
    print(ico.relative_to(ROOT))
    icns = ICONS / "sd-desktop.icns"  # up to 512@2x: drawn at 1024, not scaled up from 512
    retina = Image.open(io.BytesIO(render(SVG, 1024))).convert("RGBA")
    retina.save(icns, append_images=[images[s] for s in (16, 32, 64, 128, 256, 512)])
    print(icns.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
