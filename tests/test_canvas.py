"""CanvasView, driven the way a person drives it: mouse strokes, the wheel, keys, drops."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QMouseEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from sd_desktop.app.ui.canvas import CanvasView

LEFT, MIDDLE, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton, Qt.MouseButton.NoButton


def gradient_image(width=256, height=192) -> QImage:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    shape = (height, width)
    rgb = np.stack([np.broadcast_to(x, shape), np.broadcast_to(y, shape), np.full(shape, 120)], -1)
    rgb = np.ascontiguousarray(rgb.astype(np.uint8))
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def mask_array(view: CanvasView) -> np.ndarray:
    mask = view.maskImage()
    rows = np.frombuffer(mask.constBits(), np.uint8, mask.bytesPerLine() * mask.height())
    return rows.reshape(mask.height(), mask.bytesPerLine())[:, : mask.width()].copy()


@pytest.fixture
def view(qtbot):
    canvas = CanvasView()
    qtbot.addWidget(canvas)
    canvas.resize(640, 480)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.setImage(gradient_image())
    return canvas


def send_mouse(view, kind, view_pos, button, buttons, modifiers=Qt.KeyboardModifier.NoModifier):
    viewport = view.viewport()
    pos = QPointF(view_pos)
    event = QMouseEvent(kind, pos, QPointF(viewport.mapToGlobal(pos)), button, buttons, modifiers)
    QApplication.sendEvent(viewport, event)


def view_pos(view, x, y) -> QPoint:
    return view.mapFromScene(QPointF(x, y))


def drag(view, points, button=LEFT, in_image=True):
    """Press at the first point, move through the others with the button held, release at the last."""
    positions = [view_pos(view, *p) if in_image else QPoint(*p) for p in points]
    send_mouse(view, QEvent.Type.MouseButtonPress, positions[0], button, button)
    for pos in positions[1:]:
        send_mouse(view, QEvent.Type.MouseMove, pos, NONE, button)
    send_mouse(view, QEvent.Type.MouseButtonRelease, positions[-1], button, NONE)


def horizontal_stroke(view, x0, x1, y, moves=10):
    drag(view, [(x0 + (x1 - x0) * i / moves, y) for i in range(moves + 1)])


def test_stroke_lands_on_the_image_pixels_under_the_mouse(view):
    view.setBrushSize(10)
    horizontal_stroke(view, 40, 120, 50)
    mask = mask_array(view)
    assert (mask[50, 45:116] == 255).all()  # the line the mouse followed
    assert (mask[47:54, 80] == 255).all()  # inside the 10 px wide brush
    assert (mask[:40, :] == 0).all() and (mask[61:, :] == 0).all()  # nothing above or below the brush
    assert (mask[:, :30] == 0).all() and (mask[:, 131:] == 0).all()  # nor beyond its round ends
    ys, xs = np.nonzero(mask)
    assert 32 <= xs.min() <= 36 and 124 <= xs.max() <= 128
    assert 43 <= ys.min() <= 46 and 54 <= ys.max() <= 57
    assert view.hasMask()


def test_one_stroke_is_one_undo_command(view, qtbot):
    horizontal_stroke(view, 30, 200, 100, moves=25)
    painted = mask_array(view)
    assert view.undoStack().count() == 1
    with qtbot.waitSignal(view.maskChanged):
        view.undoStack().undo()
    assert not mask_array(view).any() and not view.hasMask()
    view.undoStack().redo()
    assert np.array_equal(mask_array(view), painted)


def test_fast_drag_leaves_no_gaps(view):
    view.setBrushSize(6)
    drag(view, [(20, 20), (220, 20), (220, 170)])  # two moves, each far longer than the brush
    mask = mask_array(view)
    assert (mask[20, 20:221] == 255).all()
    assert (mask[20:171, 220] == 255).all()


def test_eraser_removes_paint_and_is_undoable(view):
    view.setBrushSize(40)
    horizontal_stroke(view, 20, 230, 100)
    before = mask_array(view)
    view.setTool("eraser")
    view.setBrushSize(10)
    drag(view, [(128, 70), (128, 100), (128, 130)])
    mask = mask_array(view)
    assert (mask[85:116, 124:133] == 0).all()  # the eraser's path
    assert (mask[85:116, 100] == 255).all() and (mask[85:116, 160] == 255).all()  # paint beside it stays
    assert view.undoStack().count() == 2
    view.undoStack().undo()
    assert np.array_equal(mask_array(view), before)


def test_clear_and_invert_are_undoable(view, qtbot):
    horizontal_stroke(view, 40, 120, 50)
    painted = mask_array(view)
    with qtbot.waitSignal(view.maskChanged):
        view.clearMask()
    assert not mask_array(view).any()
    view.undoStack().undo()
    assert np.array_equal(mask_array(view), painted)

    view.invertMask()
    assert np.array_equal(mask_array(view), 255 - painted)
    view.undoStack().undo()
    assert np.array_equal(mask_array(view), painted)
    view.undoStack().redo()
    assert np.array_equal(mask_array(view), 255 - painted)
    assert view.undoStack().count() == 2  # stroke, invert (the undone clear was dropped by the new command)


def test_set_mask_image_is_undoable_and_scaled_to_the_image(view):
    small = QImage(64, 48, QImage.Format.Format_Grayscale8)
    small.fill(0)
    for x in range(32):
        for y in range(48):
            small.setPixelColor(x, y, QColor(255, 255, 255))
    view.setMaskImage(small)
    mask = mask_array(view)
    assert mask.shape == (192, 256)
    assert (mask[:, :120] == 255).all() and (mask[:, 136:] == 0).all()
    view.undoStack().undo()
    assert not view.hasMask()


@pytest.mark.parametrize("size", [6, 30])
def test_brush_size_is_the_stroke_width(view, size):
    view.setBrushSize(size)
    horizontal_stroke(view, 60, 200, 96)
    column = mask_array(view)[:, 130]
    width = int((column >= 128).sum())  # half coverage marks the anti-aliased edge
    assert abs(width - size) <= 1


def test_brush_keys_step_the_size(view, qtbot):
    view.setBrushSize(40)
    view.setFocus()
    with qtbot.waitSignal(view.brushSizeChanged) as grown:
        QTest.keyClick(view, Qt.Key.Key_BracketRight)
    assert grown.args == [46]
    QTest.keyClick(view, Qt.Key.Key_BracketLeft)
    assert view.brushSize() == 40
    view.setBrushSize(1)
    QTest.keyClick(view, Qt.Key.Key_BracketLeft)
    assert view.brushSize() == 1
    view.setBrushSize(10_000)
    assert view.brushSize() == 512


def test_strokes_land_right_after_zoom_and_pan(view):
    before = view_pos(view, 100, 100)
    view.setZoom(3.0)
    assert view.zoom() == pytest.approx(3.0)
    drag(view, [(300, 300), (250, 270)], button=MIDDLE, in_image=False)  # pan by (-50, -30) view px
    after = view_pos(view, 100, 100)
    assert after != before
    assert view.mapToScene(QPoint(300, 300)) != view.mapToScene(QPoint(250, 270))
    assert not view.hasMask()  # panning does not paint
    view.setBrushSize(4)
    horizontal_stroke(view, 90, 110, 100)
    mask = mask_array(view)
    assert (mask[100, 91:110] == 255).all()
    assert (mask[95:106, 100] > 0).sum() in (4, 5, 6)
    assert mask.sum() / 255 < 4 * 30  # only the short stroke


def test_wheel_zooms_around_the_cursor(view):
    cursor = view_pos(view, 60, 40)
    zoom = view.zoom()
    viewport = view.viewport()
    for _ in range(3):
        wheel = QWheelEvent(QPointF(cursor), QPointF(viewport.mapToGlobal(cursor)), QPoint(0, 0), QPoint(0, 120),
                            NONE, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(viewport, wheel)
    assert view.zoom() > zoom * 1.5
    under_cursor = view.mapToScene(cursor)
    assert abs(under_cursor.x() - 60) < 1 and abs(under_cursor.y() - 40) < 1
    view.setBrushSize(8)
    horizontal_stroke(view, 50, 70, 40)
    assert (mask_array(view)[40, 51:70] == 255).all()


def test_fit_and_actual_size(view):
    view.setZoom(1.0)
    assert view.zoom() == 1.0
    view.fitInView_()
    top_left, bottom_right = view_pos(view, 0, 0), view_pos(view, 256, 192)
    viewport = view.viewport().rect()
    assert viewport.contains(top_left) and viewport.contains(bottom_right)
    # fitted: the image spans the viewport in one direction, less the padding
    shown_width, shown_height = bottom_right.x() - top_left.x(), bottom_right.y() - top_left.y()
    assert shown_width > viewport.width() - 40 or shown_height > viewport.height() - 40


def test_the_zoom_is_shown_only_while_there_is_something_to_zoom(qtbot):
    from fake_engine import make_window

    window = make_window(qtbot, None, wait_model=False)
    canvas, label = window.canvas, window.canvas_area.zoom_label
    canvas.setImage(gradient_image())
    assert canvas.hasContent() and label.text() == f"{canvas.zoom() * 100:.0f}%"
    canvas.setImage(QImage())  # the canvas emptied: no zoom left to show
    assert not canvas.hasContent() and label.text() == ""
    canvas.setPreviewSize(256, 192)
    canvas.showPreview(gradient_image(32, 24))  # a first txt2img's preview, with the same fitted zoom as before
    assert canvas.hasContent() and label.text() == f"{canvas.zoom() * 100:.0f}%"
    canvas.clearPreview()  # cancelled before its image came
    assert not canvas.hasContent() and label.text() == ""


def test_space_drag_and_pan_tool_pan_instead_of_painting(view):
    view.setFocus()
    start = view_pos(view, 128, 96)
    QTest.keyPress(view, Qt.Key.Key_Space)
    drag(view, [(128, 96), (160, 120)])
    QTest.keyRelease(view, Qt.Key.Key_Space)
    assert view_pos(view, 128, 96) != start
    view.setTool("pan")
    drag(view, [(128, 96), (100, 90)])
    assert not view.hasMask() and view.undoStack().count() == 0
    view.setTool("brush")
    drag(view, [(128, 96), (140, 96)])
    assert view.hasMask()
    with pytest.raises(ValueError):
        view.setTool("lasso")


def test_mask_format_and_reset_on_new_image(view):
    mask = view.maskImage()
    assert mask.format() == QImage.Format.Format_Grayscale8 and mask.size() == view.image().size()
    horizontal_stroke(view, 40, 120, 50)

    view.setImage(gradient_image(), keep_mask=True)  # same size, kept: e.g. an inpainting result
    assert view.hasMask() and view.undoStack().count() == 1
    view.setImage(gradient_image())  # same size, not kept
    assert not view.hasMask() and view.undoStack().count() == 0

    horizontal_stroke(view, 40, 120, 50)
    view.setImage(gradient_image(128, 96), keep_mask=True)  # kept at another size: the mask follows, scaled
    mask = view.maskImage()
    assert mask.size().width() == 128 and mask.size().height() == 96
    assert mask.format() == QImage.Format.Format_Grayscale8
    assert view.hasMask() and view.undoStack().count() == 0
    scaled = mask_array(view)
    assert scaled[25, 40] == 255 and scaled[25, 10].max() == 0 and scaled[60, 40] == 0  # the stroke, at half size
    view.setImage(gradient_image(64, 48))  # not kept: reset
    assert not view.hasMask()


def test_image_round_trips_and_signals(view, qtbot):
    image = gradient_image(64, 32)
    with qtbot.waitSignal(view.imageChanged):
        view.setImage(image)
    shown = view.image()
    assert shown.format() in (QImage.Format.Format_RGB32, QImage.Format.Format_ARGB32)
    assert shown.convertToFormat(QImage.Format.Format_RGB888) == image


def test_preview_fills_the_image_rect_without_changing_the_image(view):
    original = view.image()
    preview = QImage(32, 24, QImage.Format.Format_RGB32)
    preview.fill(QColor(0, 200, 0))
    view.showPreview(preview)
    assert view.image() == original
    shot = view.grab().toImage()
    for x, y in [(5, 5), (250, 186), (128, 96)]:
        assert shot.pixelColor(view_pos(view, x, y)).green() > 180
        assert shot.pixelColor(view_pos(view, x, y)).red() < 20
    view.clearPreview()
    shot = view.grab().toImage()
    assert shot.pixelColor(view_pos(view, 250, 186)).red() > 200  # the gradient is back


def test_preview_without_image_uses_preview_size(qtbot):
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.show()
    qtbot.waitExposed(view)
    preview = QImage(16, 8, QImage.Format.Format_RGB32)
    preview.fill(QColor(0, 0, 230))
    view.showPreview(preview)  # no size given: 8x the preview
    shot = view.grab().toImage()
    assert shot.pixelColor(view_pos(view, 120, 60)).blue() > 200
    assert shot.pixelColor(view_pos(view, 136, 60)).blue() < 100
    assert view.image().isNull()

    view.setPreviewSize(512, 256)
    view.showPreview(preview)
    shot = view.grab().toImage()
    assert shot.pixelColor(view_pos(view, 500, 250)).blue() > 200
    assert shot.pixelColor(view_pos(view, 520, 128)).blue() < 100
    assert view.image().isNull()


def test_without_image_painting_does_nothing(qtbot):
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    drag(view, [(100, 100), (200, 150)], in_image=False)
    assert view.maskImage().isNull() and not view.hasMask()
    assert view.undoStack().count() == 0
    view.clearMask()
    view.invertMask()
    assert view.undoStack().count() == 0


def _drop(view, urls):
    mime = QMimeData()
    mime.setUrls(urls)
    center = view.viewport().rect().center()
    enter = QDragEnterEvent(center, Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(center), Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), drop)
    return drop.isAccepted()


def test_dropping_files_emits_their_paths(view, qtbot, tmp_path):
    paths = [str(tmp_path / "a.png"), str(tmp_path / "b photo.jpg")]
    with qtbot.waitSignal(view.filesDropped) as dropped:
        assert _drop(view, [QUrl.fromLocalFile(p) for p in paths])
    assert dropped.args == [paths]

    received = []
    view.filesDropped.connect(received.append)
    assert not _drop(view, [QUrl("https://example.com/cat.png")])  # not a local file: refused
    assert received == []


def test_large_image_stroke(qtbot):
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    view.setImage(gradient_image(1024, 1024))
    view.setBrushSize(60)
    points = [(100 + 16 * i, 500 + 300 * np.sin(i / 8)) for i in range(51)]  # 50 segments
    drag(view, points)
    mask = mask_array(view)
    for x, y in points[::10]:
        assert mask[int(y), int(x)] == 255
    assert mask[50, 1000] == 0
    assert view.undoStack().count() == 1


def test_mask_visibility_and_accessibility(view):
    assert view.objectName() == "canvasView"
    assert view.accessibleName() and view.toolTip()
    view.setBrushSize(40)
    horizontal_stroke(view, 100, 160, 96)
    red_shown = view.grab().toImage().pixelColor(view_pos(view, 130, 96))
    view.setMaskVisible(False)
    plain = view.grab().toImage().pixelColor(view_pos(view, 130, 96))
    assert red_shown.red() > plain.red() + 30  # the overlay tints the masked area red
    assert view.hasMask()  # hiding the overlay keeps the mask


def test_a_preview_takes_the_shape_being_generated_not_the_old_images(view):
    """The canvas holds a 256x192 image. A txt2img preview for 128x256 is drawn 128x256, the old image hidden
    meanwhile; an img2img preview of the image itself (32x24 latents) fills the image."""
    view.setPreviewSize(128, 256)
    view.showPreview(QImage(16, 32, QImage.Format.Format_RGB32))
    assert view._preview.rect.size().toSize() == QImage(128, 256, QImage.Format.Format_RGB32).size()
    assert not view._image_item.isVisible() and view._content_rect().height() == 256
    view.clearPreview()
    assert view._image_item.isVisible() and view._content_rect().height() == 192
    view.setPreviewSize(256, 192)
    view.showPreview(QImage(32, 24, QImage.Format.Format_RGB32))
    assert view._preview.rect == view._content_rect() and view._image_item.isVisible()


def test_a_soft_brush_paints_grey_edges_that_strokes_only_raise_and_the_eraser_only_lowers(view):
    view.setBrushSize(40)
    view.setBrushHardness(0.25)
    horizontal_stroke(view, 60, 180, 100, moves=30)
    mask = mask_array(view).astype(int)
    column = mask[75:126, 120]  # across the stroke: 255 in the middle, fading out to 0 at the radius
    assert column[25] == 255 and column[0] == 0 and column[-1] == 0
    assert 0 < mask[100 - 14, 120] < 255 and mask[100 - 14, 120] < mask[100 - 8, 120]  # graded, not a step
    assert (np.diff(column[:26]) >= 0).all()  # rising to the middle, though strokes overlap many times
    horizontal_stroke(view, 60, 180, 100, moves=30)  # painting again never lowers what is there
    assert (mask_array(view).astype(int) >= mask).all()
    view.setTool("eraser")
    view.setBrushHardness(1.0)
    horizontal_stroke(view, 60, 180, 100, moves=30)
    assert mask_array(view)[100, 120] == 0  # the hard eraser clears the middle
    assert view.undoStack().count() == 3


def test_the_overlay_toggles_rests_over_a_result_and_comes_back_with_painting(view):
    view.setMaskVisible(True)
    assert view.isMaskVisible() and view.isOverlayShown()
    view.setOverlayShown(False)
    assert not view.isMaskVisible()
    view.setOverlayShown(True)
    view.restOverlay()  # after an inpaint: the result without the overlay
    assert not view.isMaskVisible() and not view.isOverlayShown()
    horizontal_stroke(view, 60, 90, 60)  # the next stroke shows it again
    assert view.isMaskVisible()
    view.setOverlayColour(QColor(0, 200, 255, 200))
    overlay = view._mask_layer.overlay.pixelColor(75, 60)
    assert (overlay.red(), overlay.blue(), overlay.alpha()) == (0, 255, 200)


def test_compare_shows_the_before_left_of_a_divider_dragged_with_the_mouse(view, qtbot):
    assert not view.hasBefore()
    view.setComparing(True)
    assert not view.isComparing()  # nothing to compare with
    before = QImage(256, 192, QImage.Format.Format_RGB32)
    before.fill(QColor(10, 200, 10))
    view.setBefore(before)
    view.setMaskVisible(True)
    with qtbot.waitSignal(view.compareChanged):
        view.setComparing(True)
    assert view.isComparing() and view.compareSplit() == 0.5 and not view.isMaskVisible()
    shot = view.grab().toImage()
    left, right = shot.pixelColor(view_pos(view, 60, 96)), shot.pixelColor(view_pos(view, 200, 96))
    assert left.green() > 150 and left.red() < 60  # the before, left of the divider
    assert right.blue() == 120  # the result (the gradient's blue) right of it
    drag(view, [(128, 96), (64, 96)])  # the divider follows the mouse; nothing is painted
    assert abs(view.compareSplit() - 0.25) < 0.02 and not mask_array(view).any()
    view.setBefore(None)  # a picture from elsewhere: no before, comparing ends
    assert not view.isComparing() and view.isMaskVisible()
