"""The centre of the window: the message bar, the canvas tools (a tool bar: what does not fit goes into its
» menu) and the canvas, which shows the Document and, in Inpaint, the mask being painted."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSpinBox, QStackedWidget, QVBoxLayout, QWidget

from sd_desktop.core.request import Mode

from ..state.app import AppState
from .canvas import CanvasView
from .message_bar import MessageBar
from .batch_grid import BatchGrid
from .binding import bind
from .widgets import FlowLayout, section, tool_button

HINTS = {Mode.IMG2IMG: "The canvas image is the starting point."}


class CanvasArea(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.setObjectName("centre")
        self.canvas = CanvasView()
        self.message_bar = MessageBar()
        self.brush_button = tool_button("Brush", "brushButton", "Brush: paint the area to repaint (B)")
        self.eraser_button = tool_button("Eraser", "eraserButton", "Eraser: unpaint (E)")
        for button in (self.brush_button, self.eraser_button):
            button.setCheckable(True)
        self.brush_button.setChecked(True)
        self.brush_button.clicked.connect(lambda: self.set_tool("brush"))
        self.eraser_button.clicked.connect(lambda: self.set_tool("eraser"))
        self.brush_size_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_size_slider.setObjectName("brushSizeSlider")
        self.brush_size_slider.setAccessibleName("Brush size")
        self.brush_size_slider.setToolTip("Brush size in image pixels ([ and ] change it)")
        self.brush_size_slider.setRange(1, 256)
        self.brush_size_slider.setFixedWidth(120)
        self.brush_size_label = QLabel()
        self.brush_size_label.setMinimumWidth(44)
        self.hardness_spin = QSpinBox()
        self.hardness_spin.setObjectName("brushHardnessSpin")
        self.hardness_spin.setAccessibleName("Brush hardness")
        self.hardness_spin.setToolTip("Brush hardness: 100% paints a hard edge; lower fades it out, for soft masks "
                                      "(Soft inpainting uses the grey levels)")
        self.hardness_spin.setRange(0, 100)
        self.hardness_spin.setSuffix(" %")
        self.clear_mask_button = tool_button("Clear mask", "clearMaskButton", "Clear the mask (undoable)", "Clear mask")
        self.clear_mask_button.clicked.connect(self.canvas.clearMask)
        self.invert_mask_button = tool_button("Invert mask", "invertMaskButton",
                                              "Invert the mask: repaint everything but the painted part")
        self.invert_mask_button.clicked.connect(self.canvas.invertMask)
        self.fit_button = tool_button("Fit", "fitButton", "Fit the image in the view (Ctrl+0)", "Fit")
        self.fit_button.clicked.connect(self.canvas.fitInView_)
        self.actual_size_button = tool_button("100%", "actualSizeButton", "Show at 100% (Ctrl+1)", "100%")
        self.actual_size_button.clicked.connect(lambda: self.canvas.setZoom(1.0))
        self.zoom_label = QLabel("")
        self.zoom_label.setObjectName("hintLabel")
        self.zoom_label.setMinimumWidth(48)
        self.canvas.zoomChanged.connect(self._show_zoom)
        self.canvas.contentChanged.connect(self._show_zoom)  # an emptied canvas has no zoom to show
        self.batch_grid = BatchGrid()
        self.batch_grid.chosen.connect(self._batch_chosen)
        self._lay_out()

        generation = state.generation
        self.canvas.setBrushSize(generation.brush_size)
        self._brush_size_changed(self.canvas.brushSize())
        self.canvas.brushSizeChanged.connect(self._brush_size_changed)
        self.brush_size_slider.valueChanged.connect(self.canvas.setBrushSize)
        generation.brush_size_changed.connect(self.canvas.setBrushSize)
        bind(generation, "brush_hardness", self.hardness_spin)
        self.canvas.setBrushHardness(generation.brush_hardness / 100)
        generation.brush_hardness_changed.connect(lambda value: self.canvas.setBrushHardness(value / 100))
        self.apply_mask_colour()
        state.session.resultsReady.connect(self._results)
        self.canvas.filesDropped.connect(state.open_files)
        state.document.imageChanged.connect(self._show_image)
        state.document.beforeChanged.connect(self.canvas.setBefore)
        state.session.preview.connect(self.canvas.showPreview)
        state.live.imageChanged.connect(self._live_image)
        state.session.jobChanged.connect(self._job_changed)
        state.batchFinished.connect(self.show_batch)
        state.message.connect(self.message_bar.show_message)
        state.dismissMessage.connect(self._dismiss_stale)
        state.withdrawOffer.connect(self.message_bar.withdraw)
        generation.mode_changed.connect(self._mode_changed)
        self._mode_changed(generation.mode)

    def _show_zoom(self) -> None:
        shown = self.canvas.hasContent()
        self.zoom_label.setText(f"{self.canvas.zoom() * 100:.0f}%" if shown else "")

    def _lay_out(self) -> None:
        # a row that wraps when the canvas is narrow (a QToolBar outside a main window's tool areas hides what
        # does not fit behind an overflow button that does nothing)
        self.toolbar = QWidget()
        self.toolbar.setObjectName("canvasToolbar")
        flow = FlowLayout(self.toolbar)
        self.mask_tools = [section("Mask "), self.brush_button, self.eraser_button, QLabel(" Size "),
                           self.brush_size_slider, self.brush_size_label, QLabel(" Hardness "), self.hardness_spin,
                           self.clear_mask_button, self.invert_mask_button]
        self.hint = QLabel("")
        self.hint.setObjectName("hintLabel")
        zoom = QWidget()  # the zoom group wraps as one, and sits at the right of its row
        zoom.setProperty("flowStretch", True)
        zoom_row = QHBoxLayout(zoom)
        zoom_row.setContentsMargins(0, 0, 0, 0)
        zoom_row.setSpacing(4)
        zoom_row.addStretch(1)
        for widget in (self.zoom_label, self.fit_button, self.actual_size_button):
            zoom_row.addWidget(widget)
        for widget in (*self.mask_tools, self.hint, zoom):
            flow.addWidget(widget)
        toolbar_row = QHBoxLayout()
        toolbar_row.setContentsMargins(6, 2, 6, 2)
        toolbar_row.addWidget(self.toolbar)
        message_row = QVBoxLayout()
        message_row.setContentsMargins(8, 6, 8, 0)
        message_row.addWidget(self.message_bar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(message_row)
        layout.addLayout(toolbar_row)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.canvas)
        self.stack.addWidget(self.batch_grid)
        layout.addWidget(self.stack, 1)

    def _show_image(self, image: QImage, keep_mask: bool) -> None:
        self.canvas.setImage(image, keep_mask=keep_mask)

    def show_batch(self, results: list) -> None:
        """A finished batch as a grid over the canvas: a click puts that image on the canvas."""
        self.batch_grid.show_results(results)
        self.stack.setCurrentWidget(self.batch_grid)

    def _batch_chosen(self, path: str, image) -> None:
        self.stack.setCurrentWidget(self.canvas)
        if path:
            self.state.take_from_batch(path, image)

    def _job_changed(self, kind: str) -> None:
        if kind:
            self.stack.setCurrentWidget(self.canvas)  # a new job: its previews show on the canvas
        if kind == "generate":
            request_size = (self.state.generation.width, self.state.generation.height)
            self.canvas.setPreviewSize(*request_size)
        elif not kind:
            self.canvas.clearPreview()
            self._live_image(self.state.live.latest and self.state.live.latest["image"])  # the live picture stays

    def _live_image(self, image) -> None:
        """Live mode's newest picture over the canvas (the preview layer), or none."""
        if image is None:
            self.canvas.clearPreview()
        else:
            self.canvas.setPreviewSize(image.width(), image.height())
            self.canvas.showPreview(image)

    def _dismiss_stale(self) -> None:
        if self.message_bar.kind() in ("error", "warning"):
            self.message_bar.dismiss()

    def apply_mask_colour(self) -> None:
        """Preferences' mask colour and opacity on the overlay."""
        prefs = self.state.preferences
        colour = QColor(prefs.mask_colour)
        colour.setAlpha(round(prefs.mask_opacity * 255 / 100))
        self.canvas.setOverlayColour(colour)

    def _results(self, _results: list) -> None:
        if self.state.session.generating_mode == Mode.INPAINT:
            self.canvas.restOverlay()  # the result without the mask over it, until the next stroke

    def _brush_size_changed(self, size: int) -> None:
        self.brush_size_slider.blockSignals(True)
        self.brush_size_slider.setValue(min(size, self.brush_size_slider.maximum()))
        self.brush_size_slider.blockSignals(False)
        self.brush_size_label.setText(f"{size} px")
        self.state.generation.brush_size = size

    def _mode_changed(self, mode: Mode) -> None:
        inpaint = mode == Mode.INPAINT
        for action in self.mask_tools:
            action.setVisible(inpaint)
        self.canvas.setMaskVisible(inpaint)
        self.canvas.setTool(("eraser" if self.eraser_button.isChecked() else "brush") if inpaint else "pan")
        self.hint.setText(HINTS.get(mode, ""))
        self.hint.setVisible(mode in HINTS)

    def set_tool(self, tool: str) -> None:
        if self.state.generation.mode != Mode.INPAINT:
            return
        self.canvas.setTool(tool)
        self.brush_button.setChecked(tool == "brush")
        self.eraser_button.setChecked(tool == "eraser")

    def mask(self) -> QImage | None:
        """The painted mask, or None when nothing is painted."""
        return self.canvas.maskImage() if self.canvas.hasMask() else None
