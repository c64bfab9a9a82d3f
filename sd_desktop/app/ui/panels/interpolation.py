"""Interpolate mode: image slots A and B, their prompts, a frame count, Prepare, the slider, Export; bound to
the InterpolationSession and GenerationSettings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QFrame, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
    QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget,
)

from ...state.interpolation import InterpolationSession
from ..binding import bind

SLIDER_STEPS = 1000
THUMB = 84
EXPORT_FORMATS = {"gif": "Animated GIF", "webp": "Animated WebP", "frames": "PNG frames"}


def _local_image_paths(mime) -> list[str]:
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


class ImageSlot(QFrame):
    """One end of the interpolation: an image (from the canvas, the history, a file or a drop) and a prompt."""

    fromCanvasRequested = Signal()
    openRequested = Signal()
    fileDropped = Signal(str)

    def __init__(self, letter: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.letter = letter
        self.image = QImage()
        self.source = ""
        self.setObjectName(f"interpolationSlot{letter}")
        self.setAccessibleName(f"Interpolation image {letter}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAcceptDrops(True)

        self.thumb = QLabel(f"{letter}\n(empty)")
        self.thumb.setObjectName(f"slot{letter}Thumbnail")
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setFixedSize(THUMB, THUMB)
        self.thumb.setFrameShape(QFrame.Shape.StyledPanel)
        self.thumb.setToolTip(f"Image {letter}: drop an image here, or use the buttons, "
                              f"or a history item's menu (Set as interpolation {letter})")
        canvas = QPushButton("From canvas")
        canvas.setObjectName(f"slot{letter}FromCanvasButton")
        canvas.setToolTip(f"Use the image on the canvas as {letter}")
        canvas.clicked.connect(self.fromCanvasRequested)
        browse = QPushButton("Open…")
        browse.setObjectName(f"slot{letter}OpenButton")
        browse.setToolTip(f"Open an image file as {letter}")
        browse.clicked.connect(self.openRequested)
        self.prompt_edit = QLineEdit()
        self.prompt_edit.setObjectName(f"slot{letter}PromptEdit")
        self.prompt_edit.setAccessibleName(f"Prompt for {letter}")
        self.prompt_edit.setPlaceholderText(f"Prompt for {letter} (optional)")
        self.prompt_edit.setToolTip(f"What image {letter} shows; a good description makes the morph smoother")

        title = QLabel(f"Image {letter}")
        title.setObjectName("sectionLabel")
        buttons = QVBoxLayout()
        buttons.setSpacing(4)
        buttons.addWidget(title)
        buttons.addWidget(canvas)
        buttons.addWidget(browse)
        buttons.addStretch(1)
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 6, 6, 6)
        grid.setSpacing(6)
        grid.addWidget(self.thumb, 0, 0)
        grid.addLayout(buttons, 0, 1)
        grid.addWidget(self.prompt_edit, 1, 0, 1, 2)

    def show_image(self, image: QImage, source: str = "") -> None:
        self.image = QImage(image)
        self.source = source
        if image.isNull():
            self.thumb.setText(f"{self.letter}\n(empty)")
            self.thumb.setPixmap(QPixmap())
        else:
            pixmap = QPixmap.fromImage(image).scaled(QSize(THUMB - 4, THUMB - 4), Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.SmoothTransformation)
            self.thumb.setPixmap(pixmap)
            self.thumb.setToolTip(f"Image {self.letter}: {Path(source).name if source else 'from the canvas'} "
                                  f"({image.width()}×{image.height()})")

    def has_image(self) -> bool:
        return not self.image.isNull()

    def dragEnterEvent(self, event):
        if _local_image_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = _local_image_paths(event.mimeData())
        if paths:
            self.fileDropped.emit(paths[0])
            event.acceptProposedAction()


class InterpolationPanel(QWidget):
    prepareRequested = Signal()
    positionDragged = Signal(float)  # while the slider is held: show the nearest computed frame
    positionChosen = Signal(float)  # released, clicked or keyed: compute this exact frame
    exportRequested = Signal(list, dict)  # formats, options (duration_ms, loop, ping_pong)

    def __init__(self, interpolation: InterpolationSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.slot_a, self.slot_b = ImageSlot("A"), ImageSlot("B")
        self.frames_spin = QSpinBox()
        self.frames_spin.setObjectName("frameCountSpin")
        self.frames_spin.setAccessibleName("Frame count")
        self.frames_spin.setToolTip("How many frames the exported sequence has (A and B included)")
        self.frames_spin.setRange(2, 240)

        self.steps_spin = QSpinBox()
        self.steps_spin.setObjectName("interpolationStepsSpin")
        self.steps_spin.setAccessibleName("Interpolation steps")
        self.steps_spin.setToolTip("DDIM steps for inverting A and B and for every frame: more is slower and "
                                   "closer to the originals at the ends")
        self.steps_spin.setRange(2, 200)

        # the window puts Prepare where Generate is in the other modes
        self.prepare_button = QPushButton("Prepare")
        self.prepare_button.setObjectName("prepareInterpolationButton")
        self.prepare_button.setAccessibleName("Prepare interpolation")
        self.prepare_button.setToolTip("Invert A and B to noise (about two generations' work), then move the slider "
                                       "(Ctrl+Enter)")

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("interpolationSlider")
        self.slider.setAccessibleName("Interpolation position")
        self.slider.setToolTip("From A (left) to B (right). Dragging shows the nearest computed frame; "
                               "releasing computes the exact position.")
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setPageStep(SLIDER_STEPS // 8)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self._value_changed)
        self.slider.sliderReleased.connect(lambda: self.positionChosen.emit(self.position()))

        self.readout = QLabel("")
        self.readout.setObjectName("interpolationReadout")
        self.readout.setAccessibleName("Interpolation position")
        self.play_button = QPushButton("Play")
        self.play_button.setObjectName("playInterpolationButton")
        self.play_button.setToolTip("Play the frames from A to B, round and round (again to stop)")
        self.play_button.setCheckable(True)
        self.play_button.setEnabled(False)
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(125)  # 8 frames a second
        self.play_timer.timeout.connect(self._play_step)
        self.play_button.toggled.connect(lambda on: self.play_timer.start() if on else self.play_timer.stop())
        self.slider.sliderPressed.connect(lambda: self.play_button.setChecked(False))
        self.status_label = QLabel("Choose A and B, then Prepare.")
        self.status_label.setObjectName("hintLabel")
        self.status_label.setWordWrap(True)

        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("exportInterpolationButton")
        self.export_button.setAccessibleName("Export interpolation")
        self.export_button.setToolTip("Save the frames as an animated GIF, an animated WebP and/or PNG frames "
                                      "(in a new folder in the output folder): formats, frame duration, loop, "
                                      "ping-pong")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.open_export_dialog)

        ends = QHBoxLayout()
        ends.addWidget(QLabel("A"))
        ends.addWidget(self.slider, 1)
        ends.addWidget(QLabel("B"))
        playing = QHBoxLayout()
        playing.addWidget(self.readout, 1)
        playing.addWidget(self.play_button)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Frames", self.frames_spin)
        form.addRow("Steps", self.steps_spin)
        export_row = QHBoxLayout()
        export_row.addWidget(self.status_label, 1)
        export_row.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignTop)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.slot_a)
        layout.addWidget(self.slot_b)
        layout.addLayout(form)
        layout.addLayout(ends)
        layout.addLayout(playing)
        layout.addLayout(export_row)
        self.prepare_button.clicked.connect(self.prepareRequested)

        settings = interpolation.settings
        self.settings = settings
        settings.frames_changed.connect(lambda _count: self._show_readout())
        bind(settings, "frames", self.frames_spin)
        bind(settings, "interpolation_steps", self.steps_spin)
        bind(settings, "prompt_a", self.slot_a.prompt_edit)
        bind(settings, "prompt_b", self.slot_b.prompt_edit)
        interpolation.imageChanged.connect(lambda letter, image, source: self.slot(letter).show_image(image, source))
        interpolation.readyChanged.connect(self.set_ready)
        interpolation.statusChanged.connect(self.status_label.setText)
        self.status_label.setText(interpolation.status)
        self.prepareRequested.connect(interpolation.prepare)
        self.positionDragged.connect(interpolation.drag)
        self.positionChosen.connect(interpolation.choose)
        self.exportRequested.connect(interpolation.export)

    def open_export_dialog(self) -> None:
        dialog = ExportDialog(self)
        if dialog.exec():
            self.exportRequested.emit(dialog.formats(), dialog.options())

    def slot(self, letter: str) -> ImageSlot:
        return self.slot_a if letter.upper() == "A" else self.slot_b

    def position(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def set_position(self, t: float) -> None:
        self.slider.setValue(round(t * SLIDER_STEPS))

    def set_ready(self, ready: bool) -> None:
        self.slider.setEnabled(ready)
        self.export_button.setEnabled(ready)
        self.play_button.setEnabled(ready)
        if not ready:
            self.play_button.setChecked(False)
        self._show_readout()

    def frame_index(self) -> int:
        """The frame (0-based) of the frame count that the slider is nearest to."""
        return round(self.position() * (max(self.settings.frames, 2) - 1))

    def _show_readout(self) -> None:
        count = max(self.settings.frames, 2)
        self.readout.setText(f"t = {self.position():.2f} · frame {self.frame_index() + 1} of {count}")

    def _play_step(self) -> None:
        """The next frame of the count, from A to B and round again."""
        count = max(self.settings.frames, 2)
        self.set_position(((self.frame_index() + 1) % count) / (count - 1))

    def _value_changed(self, _value: int) -> None:
        self._show_readout()
        if self.slider.isSliderDown():
            self.positionDragged.emit(self.position())
        else:  # a click on the groove, the keyboard, or set_position
            self.positionChosen.emit(self.position())


class ExportDialog(QDialog):
    """What Export writes: which formats, each frame's duration, loop or once, and ping-pong (A to B and back)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export the interpolation")
        self.setObjectName("exportDialog")
        self.checks = {}
        form = QFormLayout()
        for key, label in EXPORT_FORMATS.items():
            check = QCheckBox(label)
            check.setObjectName(f"export_{key}")
            check.setChecked(key == "gif")
            self.checks[key] = check
            form.addRow("" if key != "gif" else "Write", check)
        self.duration_spin = QSpinBox()
        self.duration_spin.setObjectName("frameDurationSpin")
        self.duration_spin.setRange(20, 5000)
        self.duration_spin.setSingleStep(10)
        self.duration_spin.setValue(120)
        self.duration_spin.setSuffix(" ms")
        self.duration_spin.setToolTip("How long each frame shows in the animation")
        self.loop_check = QCheckBox("Loop for ever")
        self.loop_check.setObjectName("loopCheck")
        self.loop_check.setChecked(True)
        self.ping_pong_check = QCheckBox("Ping-pong (A to B, then back)")
        self.ping_pong_check.setObjectName("pingPongCheck")
        form.addRow("Frame duration", self.duration_spin)
        form.addRow("", self.loop_check)
        form.addRow("", self.ping_pong_check)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        for check in self.checks.values():
            check.toggled.connect(lambda _on: buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(
                bool(self.formats())))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def formats(self) -> list[str]:
        return [key for key, check in self.checks.items() if check.isChecked()]

    def options(self) -> dict:
        return {"duration_ms": self.duration_spin.value(), "loop": self.loop_check.isChecked(),
                "ping_pong": self.ping_pong_check.isChecked()}
