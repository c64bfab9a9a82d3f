"""The canvas: the current image, an inpainting mask painted above it, and the live preview.

Scene coordinates are image pixels: the image sits at the scene origin and one scene unit is one
image pixel, so a mouse position mapped to the scene is directly a point on the mask.

Layers, bottom to top: the image (a pixmap item), the preview (scaled into the image's rect), the
mask overlay (translucent red), the brush outline. The mask itself is a Format_Grayscale8 QImage
(255 = repaint); its red overlay is an ARGB32 image kept in sync one dirty rectangle at a time, so a
stroke on a large image only touches the pixels the brush passed over.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QPainter,
    QPen,
    QPixmap,
    QTransform,
    QUndoStack,
)
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from .canvas_layers import (SHARP_ZOOM, BrushOutline, CompareLayer, MaskLayer, MaskReplaceCommand, MaskStrokeCommand,
                            PreviewLayer, blank_mask, local_files, mask_array)

TOOLS = ("brush", "eraser", "pan")
MIN_BRUSH, MAX_BRUSH = 1, 512
MIN_ZOOM, MAX_ZOOM = 0.02, 64.0
BRUSH_STEP = 1.15  # [ and ] change the brush size by ~15%
WHEEL_ZOOM_BASE = 1.0015  # per 1/8 degree: one 120-unit notch zooms by ~20%
FIT_PADDING = 16  # view pixels left around the image by "fit"
SCENE_EXTENT = 100_000  # a scene much larger than any image, so the image can be panned anywhere

BACKGROUND = QColor(0x1E, 0x1F, 0x22)
HINT_COLOR = QColor(0x8A, 0x8D, 0x93)
ACCENT = QColor(0x4C, 0x9A, 0xFF)
EMPTY_HINT = "Open an image (Ctrl+O), drop one here, or Generate"


class CanvasView(QGraphicsView):
    imageChanged = Signal()
    contentChanged = Signal()  # an image or a preview came or went (hasContent)
    maskChanged = Signal()
    filesDropped = Signal(list)
    brushSizeChanged = Signal(int)
    overlayShownChanged = Signal(bool)
    compareChanged = Signal(bool)
    compareAvailableChanged = Signal(bool)
    zoomChanged = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("canvasView")
        self.setAccessibleName("Canvas")
        self.setAccessibleDescription(
            "The current image. Left-drag paints the inpainting mask, wheel zooms, "
            "middle-drag or Space+drag pans; drop image files here to open them."
        )
        self.setToolTip(
            "Canvas: left-drag paints the mask (B brush, E eraser, [ ] size) · wheel zooms · "
            "middle-drag or Space+drag pans · Ctrl+0 fit, Ctrl+1 100% · drop images here"
        )
        self._scene = QGraphicsScene(self)
        self._scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)  # four items, one of them moving
        self._scene.setSceneRect(-SCENE_EXTENT, -SCENE_EXTENT, 2 * SCENE_EXTENT, 2 * SCENE_EXTENT)
        self.setScene(self._scene)

        self._image = QImage()
        self._image_item = QGraphicsPixmapItem()
        self._image_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self._preview = PreviewLayer()
        self._preview.setVisible(False)
        self._mask_layer = MaskLayer()
        self._compare = CompareLayer()
        self._compare.setVisible(False)
        self._comparing = False
        self._splitting = False
        self._outline = BrushOutline()
        self._outline.setVisible(False)
        for z, item in enumerate((self._image_item, self._compare, self._preview, self._mask_layer, self._outline)):
            item.setZValue(z)
            self._scene.addItem(item)

        self._undo = QUndoStack(self)
        self._undo.setUndoLimit(200)
        self._tool = "brush"
        self._brush_size = 32
        self._brush_hardness = 1.0
        self._mask_wanted, self._overlay_on = False, True
        self._preview_size: QSize | None = None
        self._stroke: dict | None = None  # while the left button paints: before-mask, touched rect, last point
        self._pan_last: QPointF | None = None
        self._space_held = False
        self._auto_fit = True  # keep fitting on resize until the person zooms or pans
        self._drop_hover = False
        self._pointer_inside = False

        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(BACKGROUND)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # zoom anchors are done by hand
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self._mask_layer.reset(blank_mask(QSize(0, 0)))
        self._update_cursor()

    # ---- image and preview -------------------------------------------------------------------

    def undoStack(self) -> QUndoStack:
        return self._undo

    def image(self) -> QImage:
        return QImage(self._image)

    def hasImage(self) -> bool:
        return not self._image.isNull()

    def setImage(self, image: QImage, *, keep_mask: bool = False) -> None:
        """Replace the image. With keep_mask the mask survives (scaled to an image of another size)."""
        old_size = self._image.size()
        if image is None or image.isNull():
            image = QImage()
        else:
            wanted = QImage.Format.Format_ARGB32 if image.hasAlphaChannel() else QImage.Format.Format_RGB32
            image = image if image.format() == wanted else image.convertToFormat(wanted)
        self._stroke = None
        self._image = image
        self._image_item.setPixmap(QPixmap.fromImage(image) if not image.isNull() else QPixmap())
        self.clearPreview()
        if keep_mask and image.size() != old_size and not image.isNull() and self.hasMask():
            # a result of another size than its picture (a size rounded to 8, Back to the Original): the mask follows
            self._undo.clear()
            scaled = self._mask_layer.mask.scaled(image.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation)
            self._mask_layer.reset(scaled.convertToFormat(QImage.Format.Format_Grayscale8))
            self.maskChanged.emit()
        elif not (keep_mask and image.size() == old_size):
            self._undo.clear()  # the old commands hold patches of a mask that no longer exists
            self._mask_layer.reset(blank_mask(image.size()))
            self.maskChanged.emit()
        if image.size() != old_size and not image.isNull():
            self.fitInView_()
        self._update_cursor()
        self.viewport().update()
        self.imageChanged.emit()
        self.contentChanged.emit()

    def setPreviewSize(self, width: int, height: int) -> None:
        """The rect a preview fills while there is no image yet (txt2img): the size being generated."""
        self._preview_size = QSize(int(width), int(height)) if width > 0 and height > 0 else None

    def showPreview(self, image: QImage) -> None:
        """A step's preview (latent resolution) over the canvas: in the canvas image's rect when it is of
        that image (Image to Image, Inpaint: the same shape); otherwise in its own shape, the size being
        generated, with the old image hidden meanwhile, never stretched into the old image's shape."""
        if image is None or image.isNull():
            self.clearPreview()
            return
        def shaped_like(size: QSize) -> bool:  # the preview's shape, within a latent pixel's rounding
            return abs(size.width() * image.height() - size.height() * image.width()) <= 8 * image.height()

        own = QRectF(0, 0, image.width() * 8, image.height() * 8)
        if self._preview_size is not None and shaped_like(self._preview_size):
            own = QRectF(QRect(QPoint(0, 0), self._preview_size))
        of_image = self.hasImage() and shaped_like(self._image.size())
        rect = QRectF(self._image.rect()) if of_image else own
        first_rect = not self._preview.isVisible() or rect != self._preview.rect
        self._image_item.setVisible(of_image or not self.hasImage())
        was_empty = not self.hasContent()
        self._preview.show_image(image, rect)
        if was_empty:
            self.contentChanged.emit()
        if first_rect and not of_image:
            self.fitInView_()
            self.viewport().update()  # the empty-state hint goes away

    def clearPreview(self) -> None:
        self._image_item.setVisible(True)
        if self._preview.isVisible():
            self._preview.setVisible(False)
            self._preview.pixmap = QPixmap()
            self.viewport().update()
            if not self.hasImage():
                self.contentChanged.emit()  # a cancelled first preview: the canvas is empty again

    def hasContent(self) -> bool:
        """An image or a preview is shown (what the zoom applies to)."""
        return self._content_rect() is not None

    def _content_rect(self) -> QRectF | None:
        if self._preview.isVisible() and not self._image_item.isVisible():
            return QRectF(self._preview.rect)  # a preview of another shape than the canvas image's
        if self.hasImage():
            return QRectF(self._image.rect())
        if self._preview.isVisible():
            return QRectF(self._preview.rect)
        return None

    # ---- mask --------------------------------------------------------------------------------

    def maskImage(self) -> QImage:
        return QImage(self._mask_layer.mask)

    def hasMask(self) -> bool:
        mask = self._mask_layer.mask
        return not mask.isNull() and mask.width() > 0 and bool(mask_array(mask).any())

    def setMaskImage(self, mask: QImage) -> None:
        if not self.hasImage() or mask is None or mask.isNull():
            return
        if mask.size() != self._image.size():
            mask = mask.scaled(
                self._image.size(), Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        mask = mask.convertToFormat(QImage.Format.Format_Grayscale8)
        self._undo.push(MaskReplaceCommand(self, self.maskImage(), mask, "Set mask"))

    def clearMask(self) -> None:
        if self.hasImage() and self.hasMask():
            self._undo.push(MaskReplaceCommand(self, self.maskImage(), blank_mask(self._image.size()), "Clear mask"))

    def invertMask(self) -> None:
        if not self.hasImage():
            return
        inverted = self._mask_layer.mask.copy()
        inverted.invertPixels()
        self._undo.push(MaskReplaceCommand(self, self.maskImage(), inverted, "Invert mask"))

    def setMaskVisible(self, visible: bool) -> None:
        """Whether the mode has a mask (Inpaint); the overlay shows when also switched on and not resting."""
        self._mask_wanted = bool(visible)
        self._apply_mask_visibility()

    def isMaskVisible(self) -> bool:
        return self._mask_layer.isVisible()

    def setOverlayShown(self, shown: bool) -> None:
        """The user's toggle of the mask overlay (the mask itself stays and is used either way)."""
        shown = bool(shown)
        if shown != self._overlay_on:
            self._overlay_on = shown
            self.overlayShownChanged.emit(shown)
        self._apply_mask_visibility()

    def isOverlayShown(self) -> bool:
        return self._overlay_on

    def restOverlay(self) -> None:
        """Hide the overlay over a fresh result: the next stroke (or the toggle, H) brings it back."""
        self.setOverlayShown(False)

    # ---- before / after ----------------------------------------------------------------------

    def setBefore(self, before: QImage | None) -> None:
        """The picture the shown result was made from (None or null: none; comparing stops)."""
        before = QImage() if before is None else QImage(before)
        self._compare.show_before(before, QRectF(self._image_item.boundingRect()))
        self.compareAvailableChanged.emit(not before.isNull())
        if before.isNull() and self._comparing:
            self.setComparing(False)

    def hasBefore(self) -> bool:
        return not self._compare.before.isNull()

    def setComparing(self, on: bool) -> None:
        """Before / after: the original left of a divider (drag to move it), the result right of it."""
        on = bool(on) and self.hasBefore()
        if on != self._comparing:
            self._comparing = on
            self._compare.set_split(0.5)
            self._compare.setVisible(on)
            self._mask_layer.setVisible(self._mask_wanted and self._overlay_on and not on)
            self._update_cursor()
            self.compareChanged.emit(on)

    def isComparing(self) -> bool:
        return self._comparing

    def compareSplit(self) -> float:
        return self._compare.split

    def _split_to(self, view_pos: QPointF) -> None:
        rect = self._compare.rect
        if rect.width() > 0:
            self._compare.set_split((self._to_scene(view_pos).x() - rect.left()) / rect.width())

    def setOverlayColour(self, colour: QColor) -> None:
        self._mask_layer.set_colour(colour)

    def _apply_mask_visibility(self) -> None:
        self._mask_layer.setVisible(self._mask_wanted and self._overlay_on and not self._comparing)

    def setBrushHardness(self, hardness: float) -> None:
        """1: a hard brush (the default); lower: full strength only in the middle, fading to the edge (soft
        masks for soft inpainting)."""
        self._brush_hardness = min(1.0, max(0.0, float(hardness)))

    def brushHardness(self) -> float:
        return self._brush_hardness

    def _put_mask_patch(self, top_left: QPoint, patch: QImage) -> None:
        self._mask_layer.put(top_left, patch)
        self.maskChanged.emit()

    def _replace_mask(self, mask: QImage) -> None:
        self._mask_layer.reset(mask)
        self.maskChanged.emit()

    # ---- tools -------------------------------------------------------------------------------

    def setTool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; expected one of {', '.join(TOOLS)}")
        self._tool = tool
        self._update_cursor()

    def tool(self) -> str:
        return self._tool

    def setBrushSize(self, px: int) -> None:
        px = max(MIN_BRUSH, min(MAX_BRUSH, int(round(px))))
        if px != self._brush_size:
            self._brush_size = px
            self._update_outline()
            self.brushSizeChanged.emit(px)

    def brushSize(self) -> int:
        return self._brush_size

    def stepBrushSize(self, direction: int) -> None:
        """One step of [ or ]: about 15% bigger or smaller, and at least one pixel."""
        size = self._brush_size
        if direction > 0:
            self.setBrushSize(max(size + 1, round(size * BRUSH_STEP)))
        else:
            self.setBrushSize(min(size - 1, round(size / BRUSH_STEP)))

    # ---- zoom and pan ------------------------------------------------------------------------

    def zoom(self) -> float:
        return self.transform().m11()

    def setZoom(self, factor: float) -> None:
        self._auto_fit = False
        self._zoom_around(QPointF(self.viewport().rect().center()), factor)

    def fitInView_(self) -> None:
        rect = self._content_rect()
        if rect is None or rect.isEmpty():
            return
        area = self.viewport().rect()
        padded = area.adjusted(FIT_PADDING, FIT_PADDING, -FIT_PADDING, -FIT_PADDING)
        if padded.width() > 0 and padded.height() > 0:
            area = padded
        factor = min(area.width() / rect.width(), area.height() / rect.height())
        self._set_zoom_value(factor)
        self.centerOn(rect.center())
        self._auto_fit = True

    def _set_zoom_value(self, factor: float) -> None:
        factor = max(MIN_ZOOM, min(MAX_ZOOM, float(factor)))
        if factor == self.zoom():
            return
        self.setTransform(QTransform.fromScale(factor, factor))
        sharp = factor >= SHARP_ZOOM
        self._image_item.setTransformationMode(
            Qt.TransformationMode.FastTransformation if sharp else Qt.TransformationMode.SmoothTransformation
        )
        self._update_outline()
        self.zoomChanged.emit(factor)

    def _zoom_around(self, view_pos: QPointF, factor: float) -> None:
        """Zoom keeping the image point under view_pos where it is."""
        anchor = self._to_scene(view_pos)
        self._set_zoom_value(factor)
        moved = self.viewportTransform().map(anchor) - view_pos
        self._scroll_by(moved.x(), moved.y())

    def _scroll_by(self, dx: float, dy: float) -> None:
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(dx))
        v.setValue(v.value() + round(dy))

    def _to_scene(self, view_pos: QPointF) -> QPointF:
        inverse, _ = self.viewportTransform().inverted()
        return inverse.map(QPointF(view_pos))

    # ---- events ------------------------------------------------------------------------------

    def wheelEvent(self, event):
        steps = event.angleDelta().y() or event.angleDelta().x()
        if steps:
            self._auto_fit = False
            self._zoom_around(event.position(), self.zoom() * WHEEL_ZOOM_BASE**steps)
            self._move_outline(event.position())
        event.accept()

    def _pans(self, event) -> bool:
        if event.button() == Qt.MouseButton.MiddleButton:
            return True
        return event.button() == Qt.MouseButton.LeftButton and (self._tool == "pan" or self._space_held)

    def mousePressEvent(self, event):
        if self._comparing and event.button() == Qt.MouseButton.LeftButton and not self._space_held:
            self._splitting = True  # while comparing, a left drag moves the divider (nothing is painted)
            self._split_to(event.position())
        elif self._pans(event):
            self._pan_last = event.position()
            self._auto_fit = False
            self._update_cursor()
        elif event.button() == Qt.MouseButton.LeftButton and self._tool in ("brush", "eraser"):
            if self.hasImage():
                self._begin_stroke(self._to_scene(event.position()))
        else:
            super().mousePressEvent(event)
            return
        event.accept()

    def mouseMoveEvent(self, event):
        pos = event.position()
        if self._splitting:
            self._split_to(pos)
        elif self._pan_last is not None:
            delta = pos - self._pan_last
            self._pan_last = pos
            self._scroll_by(-delta.x(), -delta.y())
        elif self._stroke is not None:
            if event.buttons() & Qt.MouseButton.LeftButton:
                self._continue_stroke(self._to_scene(pos))
            else:  # the release went elsewhere (focus change, a grab)
                self._end_stroke()
        self._move_outline(pos)
        event.accept()

    def mouseReleaseEvent(self, event):
        if self._splitting and event.button() == Qt.MouseButton.LeftButton:
            self._splitting = False
        elif self._pan_last is not None and event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._pan_last = None
            self._update_cursor()
        elif self._stroke is not None and event.button() == Qt.MouseButton.LeftButton:
            self._continue_stroke(self._to_scene(event.position()))
            self._end_stroke()
        else:
            super().mouseReleaseEvent(event)
            return
        event.accept()

    def keyPressEvent(self, event):
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self._update_cursor()
        elif key == Qt.Key.Key_BracketLeft:
            self.stepBrushSize(-1)
        elif key == Qt.Key.Key_BracketRight:
            self.stepBrushSize(+1)
        elif key == Qt.Key.Key_Space:
            pass
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event):
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self._update_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event):
        self._space_held = False  # the key release will go to another widget
        self._update_cursor()
        super().focusOutEvent(event)

    def viewportEvent(self, event):
        kind = event.type()
        if kind == QEvent.Type.Leave:
            self._pointer_inside = False
            self._outline.setVisible(False)
        elif kind == QEvent.Type.Enter:
            self._pointer_inside = True
        elif kind == QEvent.Type.ToolTip and self.hasImage():
            return True  # help for the empty canvas only: no tooltip popping up over a painting
        return super().viewportEvent(event)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self._auto_fit:
            self.fitInView_()

    def scrollContentsBy(self, dx, dy):
        super().scrollContentsBy(dx, dy)
        if self._content_rect() is None or self._drop_hover:
            self.viewport().update()  # the hint and drop frame live in view coordinates

    def dragEnterEvent(self, event):
        if local_files(event.mimeData()):
            event.acceptProposedAction()
            self._drop_hover = True
            self.viewport().update()
        else:
            event.ignore()

    def dragMoveEvent(self, event):
        if local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event):
        self._drop_hover = False
        self.viewport().update()
        event.accept()

    def dropEvent(self, event):
        self._drop_hover = False
        self.viewport().update()
        files = local_files(event.mimeData())
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.filesDropped.emit(files)

    # ---- strokes -----------------------------------------------------------------------------

    def _begin_stroke(self, point: QPointF) -> None:
        value = 255 if self._tool == "brush" else 0  # fixed for the whole stroke
        self._stroke = {"before": QImage(self._mask_layer.mask), "rect": QRect(), "last": point, "value": value}
        if not self._overlay_on:  # painting shows the mask again
            self.setOverlayShown(True)
        self._paint(point, point)

    def _continue_stroke(self, point: QPointF) -> None:
        if point != self._stroke["last"]:
            self._paint(self._stroke["last"], point)
            self._stroke["last"] = point

    def _paint(self, a: QPointF, b: QPointF) -> None:
        touched = self._mask_layer.paint_segment(a, b, self._brush_size, self._stroke["value"], self._brush_hardness)
        self._stroke["rect"] = self._stroke["rect"].united(touched)

    def _end_stroke(self) -> None:
        stroke, self._stroke = self._stroke, None
        rect = stroke["rect"]
        if rect.isEmpty():  # entirely outside the image
            return
        text = "Brush stroke" if stroke["value"] else "Eraser stroke"
        before, after = stroke["before"].copy(rect), self._mask_layer.mask.copy(rect)
        self._undo.push(MaskStrokeCommand(self, rect.topLeft(), before, after, text))
        self.maskChanged.emit()

    # ---- cursor and painting of the view -----------------------------------------------------

    def _update_cursor(self) -> None:
        panning = self._tool == "pan" or self._space_held or self._pan_last is not None
        if self._pan_last is not None:
            shape = Qt.CursorShape.ClosedHandCursor
        elif panning:
            shape = Qt.CursorShape.OpenHandCursor
        elif self.hasImage():
            shape = Qt.CursorShape.CrossCursor
        else:
            shape = Qt.CursorShape.ArrowCursor
        self.viewport().setCursor(shape)
        if panning or not self.hasImage():
            self._outline.setVisible(False)

    def _update_outline(self) -> None:
        self._outline.set_diameter(self._brush_size * self.zoom())

    def _move_outline(self, view_pos: QPointF) -> None:
        paints = self.hasImage() and self._tool != "pan" and not self._space_held and self._pan_last is None
        self._outline.setVisible(paints)
        if paints:
            self._outline.setPos(self._to_scene(view_pos))

    def drawBackground(self, painter, rect):
        painter.fillRect(rect, BACKGROUND)
        content = self._content_rect()
        if content is None:
            return
        # A soft shadow a few view pixels wide, so the image lifts off the background at any zoom.
        px = 1 / max(self.zoom(), 1e-6)
        painter.setPen(Qt.PenStyle.NoPen)
        for i, alpha in enumerate((10, 14, 20, 28, 40), start=0):
            grow = (5 - i) * px
            painter.setBrush(QColor(0, 0, 0, alpha))
            painter.drawRect(content.adjusted(-grow, -grow + px, grow, grow + 2 * px))

    def drawForeground(self, painter, rect):
        if self._content_rect() is not None and not self._drop_hover:
            return
        painter.save()
        painter.resetTransform()  # from here on, view pixels
        area = QRectF(self.viewport().rect())
        if self._drop_hover:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(ACCENT, 2, Qt.PenStyle.DashLine))
            painter.setBrush(QColor(ACCENT.red(), ACCENT.green(), ACCENT.blue(), 28))
            painter.drawRoundedRect(area.adjusted(8, 8, -8, -8), 10, 10)
        if self._content_rect() is None:
            if not self._drop_hover:  # a quiet drop zone, so the empty canvas says what it is for
                painter.setRenderHint(QPainter.RenderHint.Antialiasing)
                faint = QColor(HINT_COLOR.red(), HINT_COLOR.green(), HINT_COLOR.blue(), 70)
                painter.setPen(QPen(faint, 1.5, Qt.PenStyle.DashLine))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                zone = QRectF(0, 0, min(area.width() - 48, 460), min(area.height() - 48, 220))
                zone.moveCenter(area.center())
                painter.drawRoundedRect(zone, 12, 12)
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.15)
            painter.setFont(font)
            painter.setPen(ACCENT if self._drop_hover else HINT_COLOR)
            centred = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(area.adjusted(24, 24, -24, -24), centred, EMPTY_HINT)
        painter.restore()
