"""The main window: controls on the left, the canvas in the centre, the history on the right.

It wires widgets, settings and the worker together with signals. Everything slow happens in the
worker (worker.py); this module only builds requests, shows what comes back, and keeps settings.
"""

from __future__ import annotations

import datetime
import logging
import re
import secrets
import shutil
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QGuiApplication, QImage, QImageReader, QKeySequence
from PySide6.QtWidgets import (
    QApplication, QComboBox, QDockWidget, QFileDialog, QFrame, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
    QProgressBar, QPushButton, QScrollArea, QSizePolicy, QSlider, QTabBar, QToolBar, QToolButton, QVBoxLayout, QWidget,
)

from .canvas import CanvasView
from .history import HistoryPanel, describe
from .panels.interpolation import InterpolationPanel
from .panels.parameters import ParametersPanel
from .panels.prompt import EXAMPLE_PROMPT, PromptPanel
from .qt_images import qimage_to_pil
from .settings import THEMES, AppSettings, PreferencesDialog, scan_models
from .worker import WorkerHost, coarse_to_fine, frame_key

log = logging.getLogger(__name__)

MODES = ("txt2img", "img2img", "inpaint", "interpolate")
MODE_LABELS = ("Text to Image", "Image to Image", "Inpaint", "Interpolate")
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff);;All files (*)"
MODEL_FILTER = "Stable Diffusion models (*.safetensors *.ckpt);;All files (*)"
MODEL_SUFFIXES = (".safetensors", ".ckpt")
OPEN_MODEL = "__open__"
BRUSH_STEP = 1.15


def demo_model_file() -> Path | None:
    """The bundled demo model; None when not installed. (core.model would import torch here.)"""
    from sd_desktop.resources_path import bundled_model

    return bundled_model()


def fitted_size(width: int, height: int, limit: int) -> tuple[int, int]:
    """An image's size scaled to fit `limit` on its longer side, in multiples of 8 (at least 64)."""
    scale = min(1.0, limit / max(width, height, 1))
    return max(64, round(width * scale / 8) * 8), max(64, round(height * scale / 8) * 8)


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


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


class MessageBar(QFrame):
    """A non-modal bar above the canvas: errors, notices and offers (e.g. Restore parameters)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.setAccessibleName("Message")
        self.label = QLabel()
        self.label.setObjectName("messageLabel")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(6)
        close = QToolButton()
        close.setObjectName("messageCloseButton")
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addLayout(self.buttons)
        layout.addWidget(close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self._kind = "info"
        self.hide()

    def show_message(self, text: str, kind: str = "info", actions=(), timeout_ms: int = 0) -> None:
        """actions: (label, callback, objectName) buttons; each also dismisses the bar."""
        self._kind = kind
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        while self.buttons.count():
            widget = self.buttons.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        for label, callback, name in actions:
            button = QPushButton(label)
            button.setObjectName(name)
            button.clicked.connect(lambda _=False, c=callback: (self.dismiss(), c()))
            self.buttons.addWidget(button)
        self._timer.stop()
        if timeout_ms:
            self._timer.start(timeout_ms)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""

    def kind(self) -> str:
        return self._kind

    def button(self, name: str) -> QPushButton | None:
        return self.findChild(QPushButton, name)

    def dismiss(self) -> None:
        self._timer.stop()
        self.hide()


class MainWindow(QMainWindow):
    """sd-desktop's window. model_path: load this model instead of the last one / the demo;
    model: use this ready StableDiffusionModel (benchmarks); load_model=False: load nothing at start."""

    def __init__(self, *, model_path: str | Path | None = None, model=None, load_model: bool = True,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("sd-desktop")
        self.setAccessibleName("sd-desktop")
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.settings = AppSettings()
        self.model_info: dict | None = None
        self.current_model_key: str | None = None  # "" = demo, else a path; None = nothing loaded
        self._requested_model_key: str | None = None
        self._job_kind = ""
        self._job_label = ""
        self._canvas_source: str | None = None  # the file the canvas image came from (its parameters)
        self._interp_session = 0
        self._interp_ready = False
        self._frames: dict[float, QImage] = {}
        self._shown_frame: float | None = None
        self._closed = False
        self.last_output_paths: list[str] = []

        self._build_widgets()
        self._build_actions()
        self._build_layout()
        self._restore_settings()

        self.host = WorkerHost(self)
        worker = self.host.worker
        # The worker's signals come from its thread. Their receivers must be @Slot-decorated methods of
        # this QObject: PySide6 runs other callables (lambdas, undecorated replacements) in the sender's thread.
        queued = Qt.ConnectionType.QueuedConnection
        for signal, slot in ((worker.jobStarted, self._job_started), (worker.jobEnded, self._job_ended),
                             (worker.modelLoaded, self._model_loaded), (worker.progress, self._progress),
                             (worker.preview, self._preview), (worker.finished, self._finished),
                             (worker.failed, self._failed), (worker.cancelled, self._cancelled),
                             (worker.notice, self._notice), (worker.interpolationReady, self._interpolation_ready),
                             (worker.frameReady, self._frame_ready), (worker.framesPending, self._frames_pending),
                             (worker.exported, self._exported)):
            signal.connect(slot, queued)
        self.host.busyChanged.connect(self._busy_changed)

        self.refresh_models()
        self.history.load_folder(self.settings.output_root)
        self._busy_changed(False)
        if model is not None:
            self._requested_model_key = str(getattr(model, "path", "") or "")
            self.host.use_model(model)
        elif load_model:
            self._load_startup_model(model_path)

    # ================================================================== building

    def _build_widgets(self) -> None:
        self.canvas = CanvasView()
        self.canvas.filesDropped.connect(self.open_files)
        self.canvas.brushSizeChanged.connect(self._canvas_brush_size_changed)
        self.message_bar = MessageBar()

        self.model_combo = QComboBox()
        self.model_combo.setObjectName("modelCombo")
        self.model_combo.setAccessibleName("Model")
        self.model_combo.setToolTip("The Stable Diffusion 1.x model to use. Open… picks a file; "
                                    "Preferences adds folders of models (AUTOMATIC1111, ComfyUI).")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.activated.connect(self._model_chosen)

        self.mode_tabs = QTabBar()
        self.mode_tabs.setObjectName("modeTabs")
        self.mode_tabs.setAccessibleName("Mode")
        self.mode_tabs.setToolTip("Text to Image: from a prompt · Image to Image: change the canvas image · "
                                  "Inpaint: repaint the masked part · Interpolate: morph image A into B")
        for label in MODE_LABELS:
            self.mode_tabs.addTab(label)
        self.mode_tabs.setExpanding(True)
        self.mode_tabs.setUsesScrollButtons(False)
        self.mode_tabs.setDrawBase(False)
        self.mode_tabs.currentChanged.connect(lambda index: self.set_mode(MODES[index]))

        self.prompt_panel = PromptPanel()
        self.prompt_edit = self.prompt_panel.prompt_edit
        self.negative_prompt_edit = self.prompt_panel.negative_edit
        self.parameters = ParametersPanel()
        self.parameters.useImageSizeRequested.connect(self.use_canvas_image_size)
        self.interpolation = InterpolationPanel()
        self.interpolation.prepareRequested.connect(self.prepare_interpolation)
        self.interpolation.positionDragged.connect(self._position_dragged)
        self.interpolation.positionChosen.connect(self._position_chosen)
        self.interpolation.exportRequested.connect(self.export_interpolation)
        self.interpolation.frames_spin.valueChanged.connect(self._frame_count_changed)
        for letter in "AB":
            slot = self.interpolation.slot(letter)
            slot.fromCanvasRequested.connect(lambda l=letter: self.set_interpolation_from_canvas(l))
            slot.openRequested.connect(lambda l=letter: self._open_interpolation_file(l))
            slot.fileDropped.connect(lambda path, l=letter: self.set_interpolation_image(l, path))
            slot.changed.connect(self._interpolation_inputs_changed)
            slot.prompt_edit.textChanged.connect(self._interpolation_inputs_changed)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generateButton")
        self.generate_button.setAccessibleName("Generate")
        self.generate_button.setToolTip("Generate with these settings (Ctrl+Enter)")
        self.generate_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.generate_button.clicked.connect(self.generate)
        self.prepare_button = self.interpolation.prepare_button
        for button in (self.generate_button, self.prepare_button):
            button.setProperty("primary", True)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setAccessibleName("Cancel")
        self.cancel_button.setToolTip("Stop the running job after the current step (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progressBar")
        self.progress_bar.setAccessibleName("Progress")
        self.progress_bar.setToolTip("Step, seconds per step and time left")
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("Ready")
        self.progress_bar.setTextVisible(True)

        self.history = HistoryPanel()
        self.history_list = self.history.list
        self.history.showRequested.connect(self.show_file)
        self.history.useAsInitRequested.connect(self.use_as_init_image)
        self.history.interpolationRequested.connect(lambda path, letter: self.set_interpolation_image(letter, path))
        self.history.copyRequested.connect(self.copy_file_image)
        self.history.saveAsRequested.connect(self.save_file_as)
        self.history.restoreRequested.connect(self.restore_parameters_from)
        self.history.deleteRequested.connect(self.delete_result)

        # canvas tools
        self.brush_button = self._tool_button("Brush", "brushButton", "Brush: paint the area to repaint (B)")
        self.eraser_button = self._tool_button("Eraser", "eraserButton", "Eraser: unpaint (E)")
        self.brush_button.setCheckable(True)
        self.eraser_button.setCheckable(True)
        self.brush_button.setChecked(True)
        self.brush_button.clicked.connect(lambda: self.set_tool("brush"))
        self.eraser_button.clicked.connect(lambda: self.set_tool("eraser"))
        self.brush_size_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_size_slider.setObjectName("brushSizeSlider")
        self.brush_size_slider.setAccessibleName("Brush size")
        self.brush_size_slider.setToolTip("Brush size in image pixels ([ and ] change it)")
        self.brush_size_slider.setRange(1, 256)
        self.brush_size_slider.setValue(self.canvas.brushSize())
        self.brush_size_slider.setFixedWidth(120)
        self.brush_size_slider.valueChanged.connect(self.canvas.setBrushSize)
        self.brush_size_label = QLabel(f"{self.canvas.brushSize()} px")
        self.brush_size_label.setMinimumWidth(44)
        self.clear_mask_button = self._tool_button("Clear mask", "clearMaskButton", "Clear the mask (undoable)")
        self.clear_mask_button.clicked.connect(self.canvas.clearMask)
        self.invert_mask_button = self._tool_button("Invert mask", "invertMaskButton",
                                                    "Invert the mask: repaint everything but the painted part")
        self.invert_mask_button.clicked.connect(self.canvas.invertMask)
        self.fit_button = self._tool_button("Fit", "fitButton", "Fit the image in the view (Ctrl+0)")
        self.fit_button.clicked.connect(self.canvas.fitInView_)
        self.actual_size_button = self._tool_button("100%", "actualSizeButton", "Show at 100% (Ctrl+1)")
        self.actual_size_button.clicked.connect(lambda: self.canvas.setZoom(1.0))
        self.zoom_label = QLabel("")
        self.zoom_label.setObjectName("hintLabel")
        self.zoom_label.setMinimumWidth(48)
        if hasattr(self.canvas, "zoomChanged"):
            self.canvas.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))

    def _tool_button(self, text: str, name: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setObjectName(name)
        button.setAccessibleName(text)
        button.setToolTip(tip)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        return button

    def _action(self, text: str, slot, shortcut=None, tip: str = "", name: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        if name:
            action.setObjectName(name)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work even where the menu bar is hidden
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.open_action = a("&Open Image…", self.open_image_dialog, QKeySequence.StandardKey.Open,
                             "Open an image onto the canvas", "openImageAction")
        self.save_action = a("&Save Image As…", self.save_image_dialog, QKeySequence.StandardKey.Save,
                             "Save the canvas image with its parameters", "saveImageAction")
        self.open_model_action = a("Open &Model…", self.open_model_dialog, None,
                                   "Load a .safetensors / .ckpt file or a diffusers folder", "openModelAction")
        self.preferences_action = a("&Preferences…", self.show_preferences, QKeySequence.StandardKey.Preferences,
                                    "Output folder, models folders, theme", "preferencesAction")
        self.open_output_action = a("Show &Output Folder", self.open_output_folder, None,
                                    "Open the folder where images are saved", "openOutputFolderAction")
        self.quit_action = a("&Quit", self.close, QKeySequence.StandardKey.Quit, "", "quitAction")

        self.undo_action = self.canvas.undoStack().createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Undo)])
        self.undo_action.setObjectName("undoAction")
        self.redo_action = self.canvas.undoStack().createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.redo_action.setObjectName("redoAction")
        self.addAction(self.undo_action)
        self.addAction(self.redo_action)
        self.paste_action = a("&Paste Image", self.paste_image, QKeySequence.StandardKey.Paste,
                              "Paste an image from the clipboard onto the canvas", "pasteImageAction")
        self.copy_action = a("&Copy Image", self.copy_canvas_image, QKeySequence.StandardKey.Copy,
                             "Copy the canvas image", "copyImageAction")
        self.restore_action = a("Restore Parameters from &Image…", self.restore_parameters_dialog, None,
                                "Read the parameters stored in a PNG into the controls", "restoreParametersAction")
        self.clear_mask_action = a("C&lear Mask", self.canvas.clearMask, None, "", "clearMaskAction")
        self.invert_mask_action = a("&Invert Mask", self.canvas.invertMask, None, "", "invertMaskAction")

        self.fit_action = a("&Fit to Window", self.canvas.fitInView_, "Ctrl+0", "", "fitAction")
        self.actual_size_action = a("&Actual Size (100%)", lambda: self.canvas.setZoom(1.0), "Ctrl+1", "",
                                    "actualSizeAction")

        self.generate_action = a("&Generate", self.generate, ["Ctrl+Return", "Ctrl+Enter"],
                                 "Generate (in Interpolate: Prepare)", "generateAction")
        self.cancel_action = a("&Cancel", self.cancel, "Esc", "Stop the running job", "cancelAction")
        self.brush_action = a("&Brush", lambda: self.set_tool("brush"), "B", "", "brushAction")
        self.eraser_action = a("&Eraser", lambda: self.set_tool("eraser"), "E", "", "eraserAction")
        self.smaller_brush_action = a("S&maller Brush", lambda: self.step_brush(-1), "[", "", "smallerBrushAction")
        self.larger_brush_action = a("L&arger Brush", lambda: self.step_brush(+1), "]", "", "largerBrushAction")

        self.theme_group = QActionGroup(self)
        self.theme_actions = {}
        for key, label in THEMES.items():
            action = QAction(label, self, checkable=True)
            action.setObjectName(f"theme_{key}")
            action.triggered.connect(lambda _=False, k=key: self.set_theme(k))
            self.theme_group.addAction(action)
            self.theme_actions[key] = action

    def _build_layout(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for action in (self.open_action, self.save_action, None, self.open_model_action, self.open_output_action,
                       None, self.preferences_action, None, self.quit_action):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)
        edit_menu = menu.addMenu("&Edit")
        for action in (self.undo_action, self.redo_action, None, self.copy_action, self.paste_action, None,
                       self.clear_mask_action, self.invert_mask_action, None, self.restore_action):
            edit_menu.addSeparator() if action is None else edit_menu.addAction(action)
        image_menu = menu.addMenu("&Image")
        for action in (self.generate_action, self.cancel_action, None, self.brush_action, self.eraser_action,
                       self.smaller_brush_action, self.larger_brush_action):
            image_menu.addSeparator() if action is None else image_menu.addAction(action)
        self.view_menu = menu.addMenu("&View")
        self.view_menu.addAction(self.fit_action)
        self.view_menu.addAction(self.actual_size_action)
        self.view_menu.addSeparator()
        theme_menu = self.view_menu.addMenu("&Theme")
        for action in self.theme_actions.values():
            theme_menu.addAction(action)
        self.view_menu.addSeparator()
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self._action("&About sd-desktop", self.show_about))

        # left: controls
        controls = QWidget()
        controls.setObjectName("controlsPanel")
        scroll_content = QWidget()
        scroll_layout = QVBoxLayout(scroll_content)
        scroll_layout.setContentsMargins(10, 8, 10, 8)
        scroll_layout.setSpacing(10)
        scroll_layout.addWidget(self.prompt_panel)
        self.parameters_title = QLabel("Settings")
        self.parameters_title.setObjectName("sectionLabel")
        scroll_layout.addWidget(self.parameters_title)
        scroll_layout.addWidget(self.parameters)
        scroll_layout.addWidget(self.interpolation)
        scroll_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setObjectName("controlsScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(scroll_content)

        model_row = QHBoxLayout()
        model_row.setContentsMargins(10, 8, 10, 0)
        model_row.setSpacing(8)
        model_label = QLabel("Model")
        model_label.setObjectName("sectionLabel")
        model_label.setBuddy(self.model_combo)
        model_row.addWidget(model_label)
        model_row.addWidget(self.model_combo, 1)
        tabs_row = QHBoxLayout()
        tabs_row.setContentsMargins(6, 6, 6, 0)
        tabs_row.addWidget(self.mode_tabs)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.prepare_button, 1)
        buttons.addWidget(self.cancel_button)
        bottom = QVBoxLayout()
        bottom.setContentsMargins(10, 8, 10, 10)
        bottom.setSpacing(6)
        bottom.addLayout(buttons)
        bottom.addWidget(self.progress_bar)
        controls_layout = QVBoxLayout(controls)
        controls_layout.setContentsMargins(0, 0, 0, 0)
        controls_layout.setSpacing(0)
        controls_layout.addLayout(model_row)
        controls_layout.addLayout(tabs_row)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        controls_layout.addWidget(line)
        controls_layout.addWidget(scroll, 1)
        controls_layout.addLayout(bottom)
        controls.setMinimumWidth(340)

        self.controls_dock = QDockWidget("Controls", self)
        self.controls_dock.setObjectName("controlsDock")
        self.controls_dock.setWidget(controls)
        self.controls_dock.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        self.controls_dock.setTitleBarWidget(QWidget())  # a side panel, not a floating palette
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.controls_dock)

        self.history_dock = QDockWidget("History", self)
        self.history_dock.setObjectName("historyDock")
        self.history_dock.setWidget(self.history)
        self.history_dock.setMinimumWidth(140)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.history_dock)
        self.view_menu.addAction(self.controls_dock.toggleViewAction())
        self.view_menu.addAction(self.history_dock.toggleViewAction())

        # centre: message bar, canvas tools (a tool bar: what does not fit goes into its » menu), canvas
        self.canvas_toolbar = QToolBar("Canvas tools")
        self.canvas_toolbar.setObjectName("canvasToolbar")
        self.canvas_toolbar.setIconSize(QSize(16, 16))
        mask_label = QLabel("Mask ")
        mask_label.setObjectName("sectionLabel")
        size_label = QLabel(" Size ")
        self.mask_tool_actions = [self.canvas_toolbar.addWidget(widget) for widget in (
            mask_label, self.brush_button, self.eraser_button, size_label, self.brush_size_slider,
            self.brush_size_label, self.clear_mask_button, self.invert_mask_button)]
        self.canvas_hint = QLabel("")
        self.canvas_hint.setObjectName("hintLabel")
        self.canvas_hint_action = self.canvas_toolbar.addWidget(self.canvas_hint)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.canvas_toolbar.addWidget(spacer)
        for widget in (self.zoom_label, self.fit_button, self.actual_size_button):
            self.canvas_toolbar.addWidget(widget)
        toolbar = QHBoxLayout()
        toolbar.setContentsMargins(6, 2, 6, 2)
        toolbar.addWidget(self.canvas_toolbar)
        centre = QWidget()
        centre.setObjectName("centre")
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.setSpacing(0)
        message_holder = QVBoxLayout()
        message_holder.setContentsMargins(8, 6, 8, 0)
        message_holder.addWidget(self.message_bar)
        centre_layout.addLayout(message_holder)
        centre_layout.addLayout(toolbar)
        centre_layout.addWidget(self.canvas, 1)
        self.setCentralWidget(centre)

        self.model_status = QLabel("No model")
        self.model_status.setObjectName("modelStatus")
        self.statusBar().addPermanentWidget(self.model_status)
        self.resize(1400, 880)

    # ================================================================== settings

    def _restore_settings(self) -> None:
        values = self.settings.controls
        self.first_start = not values
        if self.first_start:
            self.prompt_panel.set_prompts(EXAMPLE_PROMPT, "")
        else:
            self.prompt_panel.set_prompts(values.get("prompt", ""), values.get("negative_prompt", ""))
            self.parameters.set_values(values)
            if isinstance(values.get("frames"), int):
                self.interpolation.frames_spin.setValue(values["frames"])
            if isinstance(values.get("interpolation_steps"), int):
                self.interpolation.steps_spin.setValue(values["interpolation_steps"])
            if isinstance(values.get("brush_size"), int):
                self.canvas.setBrushSize(values["brush_size"])
            for letter in "AB":
                prompt = values.get(f"prompt_{letter.lower()}")
                if isinstance(prompt, str):
                    self.interpolation.slot(letter).prompt_edit.setText(prompt)
        mode = values.get("mode", "txt2img")
        index = MODES.index(mode) if mode in MODES else 0
        self.mode_tabs.setCurrentIndex(index)
        self.set_mode(MODES[index])
        geometry, state = self.settings.get_bytes("window/geometry"), self.settings.get_bytes("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self.theme_actions.get(self.settings.theme, self.theme_actions["dark"]).setChecked(True)

    def control_values(self) -> dict:
        values = self.parameters.values()
        values["seed"] = int(self.parameters.seed_spin.value())  # -1 = random, kept as chosen
        values.update(prompt=self.prompt_edit.toPlainText(), negative_prompt=self.negative_prompt_edit.toPlainText(),
                      mode=self.mode(), frames=self.interpolation.frames_spin.value(),
                      interpolation_steps=self.interpolation.steps_spin.value(),
                      brush_size=self.canvas.brushSize(),
                      prompt_a=self.interpolation.slot_a.prompt_edit.text(),
                      prompt_b=self.interpolation.slot_b.prompt_edit.text())
        return values

    def save_settings(self) -> None:
        self.settings.controls = self.control_values()
        self.settings.q.setValue("window/geometry", self.saveGeometry())
        self.settings.q.setValue("window/state", self.saveState())
        if self.current_model_key is not None:
            self.settings.last_model = self.current_model_key
        self.settings.sync()

    def set_theme(self, name: str) -> None:
        from .theme import apply_theme

        self.settings.theme = name
        self.theme_actions[name].setChecked(True)
        app = QApplication.instance()
        if app is not None:
            apply_theme(app, name)

    def show_preferences(self) -> None:
        loaded_with = (self.settings.device, self.settings.precision, self.settings.compile_unet)
        dialog = PreferencesDialog(self.settings, self)
        if dialog.exec():
            self.apply_preferences()
            now = (self.settings.device, self.settings.precision, self.settings.compile_unet)
            if now != loaded_with and self.model_info is not None:
                if self.host.busy:
                    self.show_message("The new device, precision and compile settings apply when a model is next loaded.", "info",
                                      timeout_ms=6000)
                else:
                    self.load_model(self.current_model_key)  # they apply at once

    def apply_preferences(self) -> None:
        """After the Preferences dialog wrote the settings: rescan models, reload history, theme."""
        self.refresh_models()
        self.history.load_folder(self.settings.output_root)
        self.set_theme(self.settings.theme)

    # ================================================================== models

    def refresh_models(self) -> None:
        combo = self.model_combo
        combo.blockSignals(True)
        combo.clear()
        demo = demo_model_file()
        combo.addItem(f"Demo · {demo.stem}" if demo else "Demo model (not installed)", "")
        combo.setItemData(0, str(demo) if demo else "The bundled demo model is missing from resources/models",
                          Qt.ItemDataRole.ToolTipRole)
        known = {""}
        entries = [str(p) for p in scan_models(self.settings.models_folders)]
        entries += [p for p in self.settings.recent_models if Path(p).exists()]
        for key in (self.current_model_key, self._requested_model_key):
            if key:
                entries.append(key)
        for path in entries:
            if path in known or (demo is not None and Path(path) == demo):
                continue
            known.add(path)
            combo.addItem(Path(path).stem if Path(path).suffix.lower() in MODEL_SUFFIXES else Path(path).name, path)
            combo.setItemData(combo.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
        combo.insertSeparator(combo.count())
        combo.addItem("Open…", OPEN_MODEL)
        combo.setItemData(combo.count() - 1, "Choose a model file or diffusers folder", Qt.ItemDataRole.ToolTipRole)
        self._select_model_item(self.current_model_key if self.current_model_key is not None
                                else self._requested_model_key)
        combo.blockSignals(False)

    def _select_model_item(self, key: str | None) -> None:
        if key is None:
            return
        index = self.model_combo.findData(key)
        if index >= 0:
            self.model_combo.blockSignals(True)
            self.model_combo.setCurrentIndex(index)
            self.model_combo.blockSignals(False)

    def _load_startup_model(self, model_path) -> None:
        if model_path is not None:
            self.load_model(str(model_path))
            return
        last = self.settings.last_model
        if last and Path(last).exists():
            self.load_model(last)
        elif demo_model_file() is not None:
            self.load_model("")
        else:
            self.show_message(
                "The bundled demo model is not installed, so there is nothing to generate with yet. "
                "Open a Stable Diffusion 1.x model (.safetensors / .ckpt), or add your models folder in Preferences.",
                "warning",
                actions=[("Open Model…", self.open_model_dialog, "openModelButton"),
                         ("Preferences…", self.show_preferences, "preferencesButton")])

    def load_model(self, path: str | None) -> None:
        """"" or None = the demo model. The current model stays in use if this one fails to load."""
        key = str(path or "")
        if self.host.busy:
            self.show_message("Wait for the running job to finish (or press Esc) before changing the model.", "info",
                              timeout_ms=6000)
            self._select_model_item(self.current_model_key)
            return
        if key == "" and demo_model_file() is None:
            self.show_message("The bundled demo model is not installed; choose another model (Open…).", "warning")
            self._select_model_item(self.current_model_key)
            return
        self._requested_model_key = key
        if key and key not in [self.model_combo.itemData(i) for i in range(self.model_combo.count())]:
            self.refresh_models()
        self._select_model_item(key)
        self.host.load_model(key or None, self.settings.device, self.settings.precision, self.settings.compile_unet)

    def _model_chosen(self, index: int) -> None:
        key = self.model_combo.itemData(index)
        if key == OPEN_MODEL:
            self._select_model_item(self.current_model_key)
            self.open_model_dialog()
        elif key != self.current_model_key:
            self.load_model(key)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", str(Path.home()), MODEL_FILTER)
        if path:
            self.open_model_file(path)

    def open_model_file(self, path: str) -> None:
        path = str(Path(path))
        if Path(path).name == "model_index.json":
            path = str(Path(path).parent)
        self.settings.add_recent_model(path)
        self.load_model(path)

    @Slot(str, dict)
    def _model_loaded(self, name: str, info: dict) -> None:
        self.model_info = info
        self.current_model_key = self._requested_model_key if self._requested_model_key is not None else info["path"]
        self.settings.last_model = self.current_model_key
        self.refresh_models()
        native = int(info.get("native_size") or 512)
        if self.settings.get_str("model/native_size") != str(native):  # first load, or a model of another size
            self.parameters.set_size(native, native)
            self.settings.q.setValue("model/native_size", str(native))
        kind = "inpainting model" if info.get("inpainting") else info.get("family", "")
        self.model_status.setText(f"{name} · {kind} · {info.get('device')} {info.get('dtype')} · {native} px")
        self.model_status.setToolTip(info.get("path", ""))
        self.statusBar().showMessage(f"Loaded {name}", 5000)
        if self.message_bar.kind() == "warning" and "demo model" in self.message_bar.text():
            self.message_bar.dismiss()
        self._drop_interpolation()

    # ================================================================== modes and tools

    def mode(self) -> str:
        return MODES[self.mode_tabs.currentIndex()]

    def set_mode(self, mode: str) -> None:
        if self.mode_tabs.currentIndex() != MODES.index(mode):
            self.mode_tabs.setCurrentIndex(MODES.index(mode))  # comes back here through currentChanged
            return
        interpolate = mode == "interpolate"
        inpaint = mode == "inpaint"
        self.prompt_panel.setVisible(not interpolate)
        self.parameters.set_mode(mode)
        self.parameters.setVisible(not interpolate)
        self.parameters_title.setText("Interpolation" if interpolate else "Settings")
        self.interpolation.setVisible(interpolate)
        self.generate_button.setVisible(not interpolate)
        self.prepare_button.setVisible(interpolate)
        for action in self.mask_tool_actions:
            action.setVisible(inpaint)
        for action in (self.brush_action, self.eraser_action, self.smaller_brush_action, self.larger_brush_action,
                       self.clear_mask_action, self.invert_mask_action):
            action.setEnabled(inpaint)
        self.canvas.setMaskVisible(inpaint)
        self.canvas.setTool(("eraser" if self.eraser_button.isChecked() else "brush") if inpaint else "pan")
        hints = {
            "txt2img": "",
            "img2img": "The canvas image is the starting point.",
            "inpaint": "",
            "interpolate": "",
        }
        self.canvas_hint.setText(hints[mode])
        self.canvas_hint_action.setVisible(bool(hints[mode]))
        self.generate_action.setToolTip("Prepare the interpolation" if interpolate else "Generate")

    def set_tool(self, tool: str) -> None:
        if self.mode() != "inpaint":
            return
        self.canvas.setTool(tool)
        self.brush_button.setChecked(tool == "brush")
        self.eraser_button.setChecked(tool == "eraser")

    def step_brush(self, direction: int) -> None:
        size = self.canvas.brushSize()
        new = max(size + 1, round(size * BRUSH_STEP)) if direction > 0 else min(size - 1, round(size / BRUSH_STEP))
        self.canvas.setBrushSize(new)

    def _canvas_brush_size_changed(self, size: int) -> None:
        self.brush_size_slider.blockSignals(True)
        self.brush_size_slider.setValue(min(size, self.brush_size_slider.maximum()))
        self.brush_size_slider.blockSignals(False)
        self.brush_size_label.setText(f"{size} px")

    # ================================================================== generating

    def build_request(self):
        """The controls as a GenerationRequest (the seed resolved, so it can be reused); raises ValueError."""
        from sd_desktop.core.request import GenerationRequest

        values = self.parameters.values()
        mode = self.mode()
        init = mask = None
        if mode in ("img2img", "inpaint"):
            image = self.canvas.image()
            if image.isNull():
                raise ValueError("There is no image on the canvas to start from: open one (Ctrl+O), drop one, "
                                 "paste one, or use a history item's “Use as init image”.")
            init = qimage_to_pil(image)
            if mode == "inpaint":
                if not self.canvas.hasMask():
                    raise ValueError("Paint the area to repaint on the canvas first (Brush, B).")
                mask = qimage_to_pil(self.canvas.maskImage(), "L")
        seed = values["seed"] if values["seed"] is not None else secrets.randbelow(2**32)
        return GenerationRequest(
            prompt=self.prompt_panel.prompt(), negative_prompt=self.prompt_panel.negative_prompt(), seed=seed,
            steps=values["steps"], cfg_scale=values["cfg_scale"], sampler=values["sampler"],
            schedule=values["schedule"], width=values["width"], height=values["height"], batch_size=1,
            init_image=init, mask=mask, strength=values["strength"], mask_blur=values["mask_blur"],
            inpaint_full_res=values["inpaint_full_res"],
        )

    def generate(self) -> None:
        if self.mode() == "interpolate":
            self.prepare_interpolation()
            return
        if self.host.busy:
            self.statusBar().showMessage("Busy: wait for the running job, or press Esc to cancel it.", 4000)
            return
        if self.model_info is None:
            self.show_message("No model is loaded yet: choose one in the Model list (or Open… a model file).", "warning")
            return
        try:
            request = self.build_request()
        except ValueError as exc:
            self.show_message(str(exc), "warning", timeout_ms=10000)
            return
        if self.message_bar.kind() in ("error", "warning"):
            self.message_bar.dismiss()
        if hasattr(self.canvas, "setPreviewSize"):
            self.canvas.setPreviewSize(request.width, request.height)
        self._generating_mode = self.mode()
        self.host.generate(request, self.parameters.values()["batch_count"], self.output_folder())

    def output_folder(self) -> Path:
        return self.settings.output_root / datetime.date.today().isoformat()

    def cancel(self) -> None:
        if self.host.busy or self._interp_ready:
            self.host.cancel()
            if self.host.busy:
                self.progress_bar.setFormat("Cancelling…")
                self.statusBar().showMessage("Cancelling after the current step…", 3000)

    @Slot(bool)
    def _busy_changed(self, busy: bool) -> None:
        self.generate_button.setEnabled(not busy)
        self.generate_button.setText("Generating…" if busy and self._job_kind == "generate" else "Generate")
        self.cancel_button.setEnabled(busy)
        self.cancel_action.setEnabled(True)
        self.model_combo.setEnabled(not busy)
        self.interpolation.prepare_button.setEnabled(not busy)
        self.open_model_action.setEnabled(not busy)

    @Slot(int, str, str)
    def _job_started(self, _job_id: int, kind: str, label: str) -> None:
        self._job_kind, self._job_label = kind, label
        self.progress_bar.setRange(0, 0 if kind == "load" else 1)  # loading: no steps to count
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(f"{label}…")
        self.statusBar().showMessage(f"{label}…")
        if kind == "generate":
            self.generate_button.setText("Generating…")

    @Slot(int, str)
    def _job_ended(self, _job_id: int, outcome: str) -> None:
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1 if outcome == "done" else 0)
        self.progress_bar.setFormat({"done": "Done", "cancelled": "Cancelled", "failed": "Failed"}[outcome])
        if outcome != "done" and self._job_kind == "generate":
            self.canvas.clearPreview()
        if outcome == "done" and self._job_kind in ("load", "prepare"):
            self.statusBar().clearMessage()  # (a generation leaves "Saved …" showing)
        self.generate_button.setText("Generate")
        self._job_kind = ""

    @Slot(int, int, float)
    def _progress(self, step: int, total: int, seconds_per_step: float) -> None:
        noun = {"prepare": "Inverting", "export": "Frame"}.get(self._job_kind, "Step")
        left = format_seconds(seconds_per_step * (total - step))
        rate = f"{seconds_per_step:.2f} s/step" if self._job_kind != "export" else f"{seconds_per_step:.1f} s/frame"
        self.progress_bar.setFormat(f"{noun} {step}/{total} · {rate} · {left} left")
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(step)

    @Slot(QImage)
    def _preview(self, image: QImage) -> None:
        if self._job_kind == "generate":
            self.canvas.showPreview(image)

    @Slot(list)
    def _finished(self, results: list) -> None:
        keep_mask = getattr(self, "_generating_mode", "") == "inpaint"
        for result in results:
            tooltip = describe(result["path"], result.get("parameters") or None)
            self.history.add_result(result["path"], result["image"], tooltip)
            self.parameters.set_last_seed(result["seed"])
            self.last_output_paths.append(result["path"])
            self.canvas.setImage(result["image"], keep_mask=keep_mask)
            self._canvas_source = result["path"]
        if results:
            self.statusBar().showMessage(f"Saved {results[-1]['path']}", 8000)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._select_model_item(self.current_model_key)
        self.show_message(message, "error")
        self.statusBar().showMessage(message, 10000)

    @Slot(str)
    def _cancelled(self, message: str) -> None:
        self.statusBar().showMessage(message, 5000)

    @Slot(str)
    def _notice(self, message: str) -> None:
        self.statusBar().showMessage(f"Note: {message}", 8000)

    def show_message(self, text: str, kind: str = "info", actions=(), timeout_ms: int = 0) -> None:
        self.message_bar.show_message(text, kind, actions, timeout_ms)

    # ================================================================== images on the canvas

    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", str(self.settings.output_root), IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_files(self, paths: list) -> None:
        """Dropped files: a model file loads the model, an image opens on the canvas."""
        for path in paths:
            if Path(path).suffix.lower() in MODEL_SUFFIXES or (Path(path) / "model_index.json").is_file():
                self.open_model_file(path)
                return
        if paths:
            self.open_image(paths[0])

    def open_image(self, path: str, offer_restore: bool = True) -> bool:
        image, error = read_image_file(path)
        if image.isNull():
            self.show_message(f"Could not open the image: {error}.", "error")
            return False
        self.set_canvas_image(image, source=str(path))
        if offer_restore:
            self.offer_restore(str(path))
        return True

    def set_canvas_image(self, image: QImage, source: str | None = None) -> None:
        """A new image from outside (open, paste, drop, history): shown, and sized for img2img/inpaint."""
        self.canvas.setImage(image)
        self._canvas_source = source
        if self.mode() in ("img2img", "inpaint"):
            self.use_canvas_image_size()
        elif self.mode() == "txt2img":
            self.statusBar().showMessage("To change this image, switch to Image to Image or Inpaint.", 6000)

    def use_canvas_image_size(self) -> None:
        image = self.canvas.image()
        if image.isNull():
            return
        native = int((self.model_info or {}).get("native_size") or 512)
        self.parameters.set_size(*fitted_size(image.width(), image.height(), max(2 * native, 256)))

    def offer_restore(self, path: str) -> None:
        """A PNG that carries parameters (ours or AUTOMATIC1111's): offer to restore them."""
        params = self._read_parameters(path)
        if not params:
            return
        prompt = str(params.get("prompt") or "").strip()
        short = (prompt[:70] + "…") if len(prompt) > 70 else prompt
        self.show_message(f"{Path(path).name} carries generation parameters" + (f": “{short}”" if short else "") + ".",
                          "info", actions=[("Restore parameters", lambda: self.restore_parameters(params),
                                            "restoreParametersButton")])

    def _read_parameters(self, path: str) -> dict | None:
        from sd_desktop.core.io.metadata import read_parameters

        try:
            return read_parameters(path)
        except Exception as exc:  # noqa: BLE001 - a damaged chunk is not worth more than a log line
            log.info("no parameters read from %s: %s", path, exc)
            return None

    def paste_image(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            image = QGuiApplication.clipboard().image()
            if not image.isNull():
                self.set_canvas_image(image)
                return
        if mime is not None and mime.hasUrls():
            files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
            if files:
                self.open_files(files)
                return
        self.statusBar().showMessage("The clipboard holds no image.", 4000)

    def copy_canvas_image(self) -> None:
        image = self.canvas.image()
        if not image.isNull():
            QGuiApplication.clipboard().setImage(image)
            self.statusBar().showMessage("Image copied", 3000)

    def save_image_dialog(self) -> None:
        if self.canvas.image().isNull():
            self.statusBar().showMessage("There is no image to save.", 4000)
            return
        name = Path(self._canvas_source).name if self._canvas_source else "image.png"
        suggested = str(self.settings.output_root / name)
        path, _ = QFileDialog.getSaveFileName(self, "Save image", suggested, "PNG (*.png);;JPEG (*.jpg);;WebP (*.webp)")
        if path:
            self.save_canvas_image(path)

    def save_canvas_image(self, path: str) -> Path | None:
        """The canvas image; a PNG keeps the parameters of the result (or file) it came from."""
        from sd_desktop.core.io.metadata import save_png_atomic, text_chunks
        from PIL import PngImagePlugin

        image = self.canvas.image()
        if image.isNull():
            return None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".png")
        try:
            pil = qimage_to_pil(image, "RGBA" if image.hasAlphaChannel() else "RGB")
            if path.suffix.lower() == ".png":
                info = PngImagePlugin.PngInfo()
                if self._canvas_source and Path(self._canvas_source).suffix.lower() == ".png":
                    for key, value in text_chunks(self._canvas_source).items():
                        if key in ("parameters", "sd-desktop"):
                            info.add_itxt(key, value)
                save_png_atomic(pil, path, info)
            else:
                pil.convert("RGB").save(path, quality=95)
        except Exception as exc:  # noqa: BLE001
            self.show_message(f"Could not save {path.name}: {exc}", "error")
            return None
        self.statusBar().showMessage(f"Saved {path}", 6000)
        return path

    # ================================================================== history

    def show_file(self, path: str) -> None:
        image, error = read_image_file(path)
        if image.isNull():
            self.show_message(f"Could not show {Path(path).name}: {error}.", "error")
            return
        self.canvas.setImage(image)
        self._canvas_source = str(path)

    def use_as_init_image(self, path: str) -> None:
        if self.mode() not in ("img2img", "inpaint"):
            self.set_mode("img2img")
        image, error = read_image_file(path)
        if image.isNull():
            self.show_message(f"Could not open {Path(path).name}: {error}.", "error")
            return
        self.set_canvas_image(image, source=str(path))

    def copy_file_image(self, path: str) -> None:
        image, _ = read_image_file(path)
        if not image.isNull():
            QGuiApplication.clipboard().setImage(image)
            self.statusBar().showMessage("Image copied", 3000)

    def save_file_as(self, path: str) -> None:
        target, _ = QFileDialog.getSaveFileName(self, "Save image as", str(Path.home() / Path(path).name), "PNG (*.png)")
        if target:
            try:
                shutil.copyfile(path, target)  # a byte copy keeps the parameters
                self.statusBar().showMessage(f"Saved {target}", 6000)
            except OSError as exc:
                self.show_message(f"Could not save {Path(target).name}: {exc}", "error")

    def confirm(self, title: str, text: str) -> bool:
        """Asks a yes/no question (tests replace this)."""
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def delete_result(self, path: str) -> None:
        if not self.confirm("Delete image", f"Delete {Path(path).name} from the disk? This cannot be undone."):
            return
        try:
            Path(path).unlink(missing_ok=True)
        except OSError as exc:
            self.show_message(f"Could not delete {Path(path).name}: {exc}", "error")
            return
        self.history.remove_path(path)
        if self._canvas_source == str(path):
            self._canvas_source = None
        self.statusBar().showMessage(f"Deleted {Path(path).name}", 4000)

    def restore_parameters_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Restore parameters from an image", str(self.settings.output_root),
                                              "PNG (*.png);;All files (*)")
        if path:
            self.restore_parameters_from(path)

    def restore_parameters_from(self, path: str) -> None:
        params = self._read_parameters(path)
        if not params:
            self.show_message(f"{Path(path).name} carries no generation parameters.", "info", timeout_ms=6000)
            return
        self.restore_parameters(params)

    def restore_parameters(self, params: dict) -> None:
        """Prompt, negative prompt and every setting the parameters hold, into the controls."""
        from sd_desktop.core.io.metadata import request_from_parameters

        request = request_from_parameters(params)
        if "prompt" in params or "negative_prompt" in params:
            self.prompt_panel.set_prompts(request.prompt if "prompt" in params else None,
                                          request.negative_prompt if "negative_prompt" in params else None)
        fields = ("sampler", "schedule", "steps", "cfg_scale", "seed", "width", "height", "strength", "mask_blur",
                  "inpaint_full_res")
        self.parameters.set_values({key: getattr(request, key) for key in fields if key in params})
        made_with = params.get("model")
        loaded = (self.model_info or {}).get("name")
        note = f" It was made with the model “{made_with}”." if made_with and loaded and made_with != loaded else ""
        self.statusBar().showMessage("Parameters restored." + note, 8000)
        if note:
            self.show_message("Parameters restored." + note, "info", timeout_ms=10000)

    # ================================================================== interpolation

    def set_interpolation_image(self, letter: str, path: str) -> None:
        image, error = read_image_file(path)
        if image.isNull():
            self.show_message(f"Could not open {Path(path).name}: {error}.", "error")
            return
        params = self._read_parameters(path) or {}
        self.interpolation.slot(letter).set_image(image, str(path), prompt=params.get("prompt"))
        self.set_mode("interpolate")

    def set_interpolation_from_canvas(self, letter: str) -> None:
        image = self.canvas.image()
        if image.isNull():
            self.show_message("There is no image on the canvas.", "info", timeout_ms=5000)
            return
        prompt = None
        if self._canvas_source:
            prompt = (self._read_parameters(self._canvas_source) or {}).get("prompt")
        self.interpolation.slot(letter).set_image(image, self._canvas_source or "", prompt=prompt)

    def _open_interpolation_file(self, letter: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Open image {letter}", str(self.settings.output_root), IMAGE_FILTER)
        if path:
            self.set_interpolation_image(letter, path)

    def _interpolation_inputs_changed(self, *_args) -> None:
        if self._interp_ready:
            self._drop_interpolation()
            self.interpolation.status_label.setText("A, B or a prompt changed: Prepare again.")

    def _drop_interpolation(self) -> None:
        self._interp_ready = False
        self._frames.clear()
        self._shown_frame = None
        self.interpolation.set_ready(False)

    def prepare_interpolation(self) -> None:
        from sd_desktop.core.request import InterpolationRequest

        if self.host.busy:
            self.statusBar().showMessage("Busy: wait for the running job, or press Esc to cancel it.", 4000)
            return
        if self.model_info is None:
            self.show_message("No model is loaded yet: choose one in the Model list.", "warning")
            return
        a, b = self.interpolation.slot_a, self.interpolation.slot_b
        if not (a.has_image() and b.has_image()):
            self.show_message("Choose images A and B first: from the canvas, a file, or a history item's menu.",
                              "warning", timeout_ms=10000)
            return
        request = InterpolationRequest(
            image_a=qimage_to_pil(a.image), image_b=qimage_to_pil(b.image), prompt_a=a.prompt_edit.text().strip(),
            prompt_b=b.prompt_edit.text().strip(), steps=self.interpolation.steps_spin.value(),
        )
        self._drop_interpolation()
        _job, self._interp_session = self.host.prepare_interpolation(request)
        self.interpolation.status_label.setText("Inverting A and B…")

    @Slot(dict)
    def _interpolation_ready(self, info: dict) -> None:
        if info.get("session") != self._interp_session:
            return
        self._interp_ready = True
        self.interpolation.set_ready(True)
        self.interpolation.status_label.setText(f"Ready ({info['width']}×{info['height']}). Frames are computed in "
                                                "the background; drag the slider.")
        self._queue_frames(priority_t=self.interpolation.position())

    def _queue_frames(self, priority_t: float | None = None) -> None:
        grid = [t for t in coarse_to_fine(self.interpolation.frames_spin.value()) if frame_key(t) not in self._frames]
        if priority_t is not None and frame_key(priority_t) not in self._frames:
            self.host.request_frames([priority_t], priority=True)
        if grid:
            self.host.request_frames(grid, priority=False)

    def _frame_count_changed(self, _count: int) -> None:
        if self._interp_ready:
            self._queue_frames()

    def nearest_frame(self, t: float) -> float | None:
        if not self._frames:
            return None
        return min(self._frames, key=lambda k: abs(k - t))

    def _show_frame(self, key: float) -> None:
        if key != self._shown_frame and key in self._frames:
            self._shown_frame = key
            self.canvas.setImage(self._frames[key])
            self._canvas_source = None

    def _position_dragged(self, t: float) -> None:
        nearest = self.nearest_frame(t)
        if nearest is not None:
            self._show_frame(nearest)

    def _position_chosen(self, t: float) -> None:
        if not self._interp_ready:
            return
        key = frame_key(t)
        if key in self._frames:
            self._show_frame(key)
            return
        self._position_dragged(t)  # the nearest at once, the exact one when it comes
        self.host.request_frames([t], priority=True)

    @Slot(int, float, QImage)
    def _frame_ready(self, session: int, t: float, image: QImage) -> None:
        if session != self._interp_session or not self._interp_ready:
            return
        key = frame_key(t)
        self._frames[key] = image
        position = self.interpolation.position()
        if key == frame_key(position) or (self._shown_frame is None) or (
                self.nearest_frame(position) == key and frame_key(position) not in self._frames):
            self._show_frame(key)

    @Slot(int, int)
    def _frames_pending(self, session: int, pending: int) -> None:
        if session != self._interp_session or not self._interp_ready:
            return
        count = self.interpolation.frames_spin.value()
        grid = {frame_key(t) for t in coarse_to_fine(count)}
        done = len(grid & set(self._frames))
        self.interpolation.status_label.setText(f"{done} of {count} frames ready" +
                                                (" · computing more in the background" if pending else ""))

    def export_interpolation(self, formats: list) -> None:
        if not self._interp_ready:
            self.show_message("Prepare the interpolation first.", "info", timeout_ms=5000)
            return
        if self.host.busy:
            self.statusBar().showMessage("Busy: wait for the running job, or press Esc to cancel it.", 4000)
            return
        folder = self.output_folder()
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in folder.iterdir() for m in [re.match(r"interpolation-(\d+)$", p.name)] if m]
        target = folder / f"interpolation-{max(numbers, default=0) + 1:03d}"
        self.host.export_interpolation(self.interpolation.frames_spin.value(), target, formats)

    @Slot(list)
    def _exported(self, paths: list) -> None:
        if not paths:
            return
        folder = str(Path(paths[0]).parent)
        self.last_export = paths
        self.show_message(f"Exported {len(paths)} file{'s' if len(paths) != 1 else ''} to {folder}", "info",
                          actions=[("Open Folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(folder)),
                                    "openExportFolderButton")], timeout_ms=15000)

    # ================================================================== misc

    def open_output_folder(self) -> None:
        folder = self.settings.output_root
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def show_about(self) -> None:
        from sd_desktop import __version__

        QMessageBox.about(self, "About sd-desktop",
                          f"<b>sd-desktop {__version__}</b><p>Local Stable Diffusion 1.x image generation and editing, "
                          "written from scratch in PyTorch.</p>")

    def sizeHint(self) -> QSize:
        return QSize(1400, 880)

    def closeEvent(self, event) -> None:
        if not self._closed:
            self._closed = True
            self.save_settings()
            self.host.shutdown()  # cancels; a finished image is already on disk
            self.history.stop()
        super().closeEvent(event)
