"""The canvas's layers (mask, preview, brush outline) and the undo commands of mask edits (ui.canvas)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QUndoCommand
from PySide6.QtWidgets import QGraphicsItem

if TYPE_CHECKING:
    from .canvas import CanvasView

OVERLAY_COLOR = QColor(255, 40, 40, 110)
SHARP_ZOOM = 2.0  # from this zoom on, show pixels as squares instead of smoothing them


def local_files(mime) -> list[str]:
    if mime is None or not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def mask_array(mask: QImage) -> np.ndarray:
    """A read-only (height, width) uint8 view of a Grayscale8 image, without its row padding."""
    rows = np.frombuffer(mask.constBits(), np.uint8, mask.bytesPerLine() * mask.height())
    return rows.reshape(mask.height(), mask.bytesPerLine())[:, : mask.width()]


def blank_mask(size: QSize) -> QImage:
    mask = QImage(size, QImage.Format.Format_Grayscale8)
    mask.fill(0)
    return mask


class MaskLayer(QGraphicsItem):
    """The mask and its red overlay. Every change to the mask goes through refresh(rect)."""

    def __init__(self):
        super().__init__()
        self.mask = QImage()
        self.overlay = QImage()
        self.colour = QColor(OVERLAY_COLOR)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # exposedRect = dirty rect

    def reset(self, mask: QImage) -> None:
        self.prepareGeometryChange()
        self.mask = QImage(mask)  # implicitly shared: painting on it later detaches
        self.overlay = QImage(mask.size(), QImage.Format.Format_ARGB32_Premultiplied)
        self.refresh(self.mask.rect())

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.mask.width(), self.mask.height())

    def paint(self, painter, option, widget=None):
        rect = option.exposedRect.toAlignedRect().intersected(self.overlay.rect())
        if rect.isEmpty():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, painter.worldTransform().m11() < SHARP_ZOOM)
        painter.drawImage(rect, self.overlay, rect)

    def refresh(self, rect: QRect) -> None:
        """Recolour the overlay inside rect from the mask: overlay colour with alpha scaled by the mask."""
        rect = rect.intersected(self.mask.rect())
        if rect.isEmpty():
            return
        alpha = self.mask.copy(rect)
        alpha.reinterpretAsFormat(QImage.Format.Format_Alpha8)  # same bytes: grey level becomes coverage
        painter = QPainter(self.overlay)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.fillRect(rect, self.colour)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
        painter.drawImage(rect.topLeft(), alpha)
        painter.end()
        self.update(QRectF(rect))

    def set_colour(self, colour: QColor) -> None:
        """The overlay's colour and opacity (its alpha), from Preferences."""
        self.colour = QColor(colour)
        self.refresh(self.mask.rect())

    def paint_segment(self, a: QPointF, b: QPointF, diameter: float, value: int, hardness: float = 1.0) -> QRect:
        """Draw one anti-aliased round segment a->b (a dot when a == b); return the mask rect it touched.
        hardness < 1: a soft brush, full strength within hardness × the radius, fading to nothing at the
        radius; a brush raises the mask to it (never lowers it), the eraser (value 0) lowers it."""
        if hardness < 1.0:
            return self._soft_segment(a, b, diameter, value, max(0.0, hardness))
        colour = QColor(value, value, value)
        painter = QPainter(self.mask)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if a == b:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawEllipse(a, diameter / 2, diameter / 2)
        else:
            round_pen = QPen(colour, diameter, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
            painter.setPen(round_pen)
            painter.drawLine(a, b)
        painter.end()
        reach = diameter / 2 + 2  # + anti-aliasing fringe
        touched = QRectF(a, b).normalized().adjusted(-reach, -reach, reach, reach).toAlignedRect()
        touched = touched.intersected(self.mask.rect())
        self.refresh(touched)
        return touched

    def _soft_segment(self, a: QPointF, b: QPointF, diameter: float, value: int, hardness: float) -> QRect:
        radius = diameter / 2
        touched = QRectF(a, b).normalized().adjusted(-radius - 1, -radius - 1, radius + 1, radius + 1).toAlignedRect()
        touched = touched.intersected(self.mask.rect())
        if touched.isEmpty():
            return touched
        ys, xs = np.mgrid[touched.top():touched.bottom() + 1, touched.left():touched.right() + 1].astype(np.float32)
        xs += 0.5
        ys += 0.5
        ax, ay, dx, dy = a.x(), a.y(), b.x() - a.x(), b.y() - a.y()
        length2 = dx * dx + dy * dy
        along = np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0, 1) if length2 > 0 else 0.0
        distance = np.hypot(xs - (ax + along * dx), ys - (ay + along * dy))  # to the segment
        inner = radius * hardness
        strength = np.clip((radius - distance) / max(radius - inner, 1e-6), 0, 1)
        strength = strength * strength * (3 - 2 * strength)  # smoothstep: no visible ring
        pixels = mask_array(self.mask)  # (read-only view; written back through a copy below)
        region = pixels[touched.top():touched.bottom() + 1, touched.left():touched.right() + 1].astype(np.float32)
        if value:
            region = np.maximum(region, strength * value)
        else:
            region = np.minimum(region, (1 - strength) * 255)
        patch = np.ascontiguousarray(np.round(region).astype(np.uint8))
        image = QImage(patch.data, patch.shape[1], patch.shape[0], patch.strides[0], QImage.Format.Format_Grayscale8)
        painter = QPainter(self.mask)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.drawImage(touched.topLeft(), image)
        painter.end()
        self.refresh(touched)
        return touched

    def put(self, top_left: QPoint, patch: QImage) -> None:
        painter = QPainter(self.mask)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.drawImage(top_left, patch)
        painter.end()
        self.refresh(QRect(top_left, patch.size()))


class CompareLayer(QGraphicsItem):
    """Before / after: the picture a result was made from, drawn over the result left of a divider at `split`
    (0..1 of the width), with the divider line; dragging on the canvas moves it (ui.canvas)."""

    def __init__(self):
        super().__init__()
        self.before = QPixmap()
        self.rect = QRectF()
        self.split = 0.5

    def show_before(self, before: QImage, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self.before = QPixmap.fromImage(before) if not before.isNull() else QPixmap()
        self.rect = QRectF(rect)
        self.update()

    def set_split(self, split: float) -> None:
        self.split = min(1.0, max(0.0, float(split)))
        self.update()

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-4, 0, 4, 0)

    def paint(self, painter, option, widget=None):
        if self.before.isNull() or self.rect.isEmpty():
            return
        x = self.rect.left() + self.rect.width() * self.split
        painter.save()
        painter.setClipRect(QRectF(self.rect.left(), self.rect.top(), x - self.rect.left(), self.rect.height()))
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(self.rect, self.before, QRectF(self.before.rect()))  # (another size: scaled to fit)
        painter.restore()
        scale = painter.worldTransform().m11() or 1.0
        for colour, width in ((QColor(0, 0, 0, 160), 4.0), (QColor(255, 255, 255), 2.0)):
            painter.setPen(QPen(colour, width / scale))
            painter.drawLine(QPointF(x, self.rect.top()), QPointF(x, self.rect.bottom()))
        # "Before" and "After" beside the divider's top, at screen size whatever the zoom
        top = painter.worldTransform().map(QPointF(x, self.rect.top()))
        painter.save()
        painter.resetTransform()
        metrics = painter.fontMetrics()
        for text, right_of in (("Before", False), ("After", True)):
            width = metrics.horizontalAdvance(text) + 12
            box = QRectF(top.x() + 6 if right_of else top.x() - 6 - width, top.y() + 6, width, metrics.height() + 4)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 150))
            painter.drawRoundedRect(box, 4, 4)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


class PreviewLayer(QGraphicsItem):
    """A per-step preview (often 1/8 resolution) drawn smoothly scaled to fill a rect."""

    def __init__(self):
        super().__init__()
        self.rect = QRectF()
        self.pixmap = QPixmap()

    def show_image(self, image: QImage, rect: QRectF) -> None:
        if rect != self.rect:
            self.prepareGeometryChange()
            self.rect = rect
        self.pixmap = QPixmap.fromImage(image)
        self.setVisible(True)
        self.update()

    def boundingRect(self) -> QRectF:
        return self.rect

    def paint(self, painter, option, widget=None):
        if self.pixmap.isNull():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(self.rect, self.pixmap, QRectF(self.pixmap.rect()))


class BrushOutline(QGraphicsItem):
    """The brush's circle under the mouse, drawn in view pixels (so its line stays 1 px at any zoom)."""

    def __init__(self):
        super().__init__()
        self.diameter = 10.0  # view pixels
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_diameter(self, diameter: float) -> None:
        if diameter != self.diameter:
            self.prepareGeometryChange()
            self.diameter = diameter

    def boundingRect(self) -> QRectF:
        r = self.diameter / 2 + 3
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter, option, widget=None):
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        r = max(self.diameter / 2, 1.5)
        painter.setPen(QPen(QColor(0, 0, 0, 150), 3))  # dark halo: visible on light images
        painter.drawEllipse(QPointF(0, 0), r, r)
        painter.setPen(QPen(QColor(255, 255, 255, 230), 1.2))
        painter.drawEllipse(QPointF(0, 0), r, r)


class MaskStrokeCommand(QUndoCommand):
    """One press..release of the brush or eraser. Holds only the rect the stroke touched, before and after."""

    def __init__(self, canvas: "CanvasView", top_left: QPoint, before: QImage, after: QImage, text: str):
        super().__init__(text)
        self._canvas, self._top_left, self._before, self._after = canvas, top_left, before, after
        self._painted_live = True  # the stroke is already on the mask when it is pushed

    def redo(self):
        if self._painted_live:
            self._painted_live = False
            return
        self._canvas._put_mask_patch(self._top_left, self._after)

    def undo(self):
        self._canvas._put_mask_patch(self._top_left, self._before)


class MaskReplaceCommand(QUndoCommand):
    """Clear, invert, or set the whole mask."""

    def __init__(self, canvas: "CanvasView", before: QImage, after: QImage, text: str):
        super().__init__(text)
        self._canvas, self._before, self._after = canvas, before, after

    def redo(self):
        self._canvas._replace_mask(self._after)

    def undo(self):
        self._canvas._replace_mask(self._before)
