"""The side panel: the model list, the mode tabs, the prompt, the parameters (or the interpolation panel),
Generate / Prepare / Cancel and the progress bar, bound to the AppState."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (QComboBox, QFrame, QHBoxLayout, QProgressBar, QPushButton, QScrollArea, QSizePolicy,
                               QTabBar, QToolButton, QVBoxLayout, QWidget)

from sd_desktop.core.families import supported_labels
from sd_desktop.core.request import Mode

from ..state.app import AppState
from ..state.models import DEMO_KEY
from .panels.interpolation import InterpolationPanel
from .panels.parameters import ParametersPanel
from .panels.prompt import PromptPanel
from .queue_panel import QueuePanel
from .widgets import WheelGuard, named, section

OPEN_MODEL = "__open__"
MODES = tuple(Mode)


class ControlsPanel(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.setObjectName("controlsPanel")
        families = supported_labels()
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("modelCombo")
        self.model_combo.setAccessibleName("Model")
        self.model_combo.setToolTip(f"The model to use ({families}). Open… picks a file; "
                                    "Preferences adds folders of models (AUTOMATIC1111, ComfyUI).")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)

        self.mode_tabs = QTabBar()
        self.mode_tabs.setObjectName("modeTabs")
        self.mode_tabs.setAccessibleName("Mode")
        self.mode_tabs.setToolTip("Text to Image: from a prompt · Image to Image: change the canvas image · "
                                  "Inpaint: repaint the masked part · Interpolate: morph image A into B")
        for mode in MODES:
            self.mode_tabs.addTab(mode.label)
        self.mode_tabs.setExpanding(True)
        self.mode_tabs.setUsesScrollButtons(False)
        self.mode_tabs.setDrawBase(False)

        self.prompt_panel = PromptPanel(state.generation)
        state.tokens.counted.connect(self.prompt_panel.show_counts)
        self.prompt_panel.infotextPasted.connect(state.offer_pasted_parameters)
        self.parameters = ParametersPanel(state.generation)
        self.parameters.useImageSizeRequested.connect(state.use_canvas_image_size)
        self.interpolation = InterpolationPanel(state.interpolation)
        self.parameters_title = section("Settings")

        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generateButton")
        self.generate_button.setAccessibleName("Generate")
        self.generate_button.setToolTip("Generate with these settings (Ctrl+Enter)")
        self.prepare_button = self.interpolation.prepare_button
        for button in (self.generate_button, self.prepare_button):
            button.setProperty("primary", True)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setAccessibleName("Cancel")
        self.cancel_button.setToolTip("Stop the running job after the current step (Esc)")
        self.cancel_button.clicked.connect(state.cancel)
        self.forever_button = named(QToolButton(), "generateForeverButton", "Generate forever",
                                    "Generate forever: these settings again and again, each time with a new seed, "
                                    "until you switch it off")
        self.forever_button.setText("∞")
        self.forever_button.setCheckable(True)
        self.forever_button.toggled.connect(self._forever_toggled)
        state.queue.foreverChanged.connect(self._forever_changed)
        self.live_button = named(QToolButton(), "liveButton", "Live",
                                 "Live: every change (the prompt, a setting, the canvas, a mask stroke) makes a new "
                                 "picture with the same seed, shown over the canvas and not saved; Keep saves it. "
                                 "A real model runs with the Fast preset (an LCM or Turbo model or LoRA wants it)")
        self.live_button.setText("Live")
        self.live_button.setCheckable(True)
        self.live_button.toggled.connect(state.live.set_on)
        state.live.changed.connect(lambda on: self.live_button.isChecked() != on and self.live_button.setChecked(on))
        self.keep_button = named(QToolButton(), "keepLiveButton", "Keep",
                                 "Keep: save the live picture and add it to the history (Ctrl+K)")
        self.keep_button.setText("Keep")
        self.keep_button.setShortcut("Ctrl+K")
        self.keep_button.setEnabled(False)
        self.keep_button.clicked.connect(state.live.keep)
        state.live.keepable.connect(self.keep_button.setEnabled)
        state.queue.changed.connect(self._queue_changed)
        self.queue_panel = QueuePanel(state.queue, state.cancel_all)
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progressBar")
        self.progress_bar.setAccessibleName("Progress")
        self.progress_bar.setToolTip("Step, seconds per step and time left")
        self.progress_bar.setTextVisible(True)
        self.show_progress("Ready", 0, 1)
        self._lay_out()
        self.wheel_guard = WheelGuard(self)
        self.wheel_guard.guard(self)

        state.catalogue.changed.connect(self.refresh_models)
        state.session.modelLoaded.connect(lambda _info: self.refresh_models())
        state.session.progressChanged.connect(self.show_progress)
        state.session.busyChanged.connect(self._busy_changed)
        state.session.jobChanged.connect(self._job_changed)
        state.session.jobFailed.connect(lambda _message: self.select_model(state.session.current_key))
        state.generation.mode_changed.connect(self._mode_changed)
        self.mode_tabs.currentChanged.connect(lambda index: setattr(state.generation, "mode", MODES[index]))
        self.model_combo.activated.connect(self._model_chosen)
        self.refresh_models()
        self._mode_changed(state.generation.mode)
        self._busy_changed(False)

    def _lay_out(self) -> None:
        scroll_content = QWidget()
        scroll_layout = QVBoxLayout(scroll_content)
        scroll_layout.setContentsMargins(10, 8, 10, 8)
        scroll_layout.setSpacing(10)
        for widget in (self.prompt_panel, self.parameters_title, self.parameters, self.interpolation):
            scroll_layout.addWidget(widget)
        scroll_layout.addStretch(1)
        scroll = self.scroll = QScrollArea()
        scroll.setObjectName("controlsScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(scroll_content)
        # room for the content and a vertical scroll bar beside it, so a short window clips nothing on the right;
        # again whenever the rows change (a mode's longer labels, the hires fix's rows)
        self._fit_scroll_width()
        scroll_content.installEventFilter(self)

        model_row = QHBoxLayout()
        model_row.setContentsMargins(10, 8, 10, 0)
        model_row.setSpacing(8)
        model_label = section("Model")
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
        buttons.addWidget(self.forever_button)
        buttons.addWidget(self.live_button)
        buttons.addWidget(self.keep_button)
        bottom = QVBoxLayout()
        bottom.setContentsMargins(10, 8, 10, 10)
        bottom.setSpacing(6)
        bottom.addLayout(buttons)
        bottom.addWidget(self.progress_bar)
        bottom.addWidget(self.queue_panel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(model_row)
        layout.addLayout(tabs_row)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)
        layout.addWidget(scroll, 1)
        layout.addLayout(bottom)
        self.setMinimumWidth(340)

    def _fit_scroll_width(self) -> None:
        content = self.scroll.widget()
        self.scroll.setMinimumWidth(content.minimumSizeHint().width() + self.scroll.verticalScrollBar().sizeHint().width())

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.scroll.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._fit_scroll_width()
        return super().eventFilter(watched, event)

    # ---------------------------------------------------------------- models

    def refresh_models(self) -> None:
        combo, session = self.model_combo, self.state.session
        combo.blockSignals(True)
        combo.clear()
        for entry in self.state.catalogue.entries():
            combo.addItem(entry.label, entry.key)
            combo.setItemData(combo.count() - 1, entry.tooltip, Qt.ItemDataRole.ToolTipRole)
        combo.insertSeparator(combo.count())
        combo.addItem("Open…", OPEN_MODEL)
        combo.setItemData(combo.count() - 1, "Choose a model file or diffusers folder", Qt.ItemDataRole.ToolTipRole)
        combo.blockSignals(False)
        self.select_model(session.current_key if session.current_key is not None else session.requested_key)

    def select_model(self, key: str | None) -> None:
        index = self.model_combo.findData(key) if key is not None else -1
        if index >= 0:
            self.model_combo.blockSignals(True)
            self.model_combo.setCurrentIndex(index)
            self.model_combo.blockSignals(False)

    def _model_chosen(self, index: int) -> None:
        key = self.model_combo.itemData(index)
        current = self.state.session.current_key
        if key == OPEN_MODEL:
            self.select_model(current)
            self.state.wants.emit("open_model")
        elif key != current and not self.state.load_model(key if key is not None else DEMO_KEY):
            self.select_model(current)

    # ---------------------------------------------------------------- modes and jobs

    def _mode_changed(self, mode: Mode) -> None:
        if self.mode_tabs.currentIndex() != MODES.index(mode):
            self.mode_tabs.setCurrentIndex(MODES.index(mode))
        interpolate = mode == Mode.INTERPOLATE
        self.prompt_panel.setVisible(not interpolate)
        self.parameters.setVisible(not interpolate)
        self.parameters_title.setText("Interpolation" if interpolate else "Settings")
        self.interpolation.setVisible(interpolate)
        self.generate_button.setVisible(not interpolate)
        self.prepare_button.setVisible(interpolate)

    def show_progress(self, text: str, value: int, maximum: int) -> None:
        self.progress_bar.setRange(0, maximum)
        self.progress_bar.setValue(value)
        self.progress_bar.setFormat(text)

    def _busy_changed(self, busy: bool) -> None:
        for widget in (self.model_combo, self.prepare_button):  # (Generate queues while busy)
            widget.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self._queue_changed()

    def _job_changed(self, kind: str) -> None:
        self._queue_changed()

    def _queue_changed(self) -> None:
        waiting = len(self.state.queue)
        if self.state.session.busy:
            text = "Add to queue" + (f" ({waiting})" if waiting else "")
        else:
            text = "Generate"
        self.generate_button.setText(text)
        self.generate_button.setToolTip("Generate with these settings (Ctrl+Enter); while a job runs, the job "
                                        "waits in the queue with the settings it has now")

    def _forever_toggled(self, on: bool) -> None:
        if on != (self.state.queue.forever is not None):
            self.state.generate_forever(on, self.forever_mask())

    def _forever_changed(self, on: bool) -> None:
        if self.forever_button.isChecked() != on:
            self.forever_button.blockSignals(True)
            self.forever_button.setChecked(on)
            self.forever_button.blockSignals(False)

    def forever_mask(self):
        """The canvas mask, for Generate forever in Inpaint (the window sets this)."""
        return None
