"""Interpolate mode's state: images A and B, the prepared session, the frames computed so far and the one
shown, and what the status line says. Frames are computed by the worker in the background, coarse to fine."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from .document import read_image_file
from .generation import GenerationSettings
from .qt_images import qimage_to_pil
from .session import BUSY, Session
from .worker import coarse_to_fine, frame_key

LETTERS = ("A", "B")


class InterpolationSession(QObject):
    imageChanged = Signal(str, QImage, str)  # letter, image, source
    readyChanged = Signal(bool)
    statusChanged = Signal(str)
    frameShown = Signal(QImage)  # the canvas shows it
    exported = Signal(list)  # paths written

    def __init__(self, session: Session, settings: GenerationSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.settings = session, settings
        self.images = {letter: QImage() for letter in LETTERS}
        self.sources = {letter: "" for letter in LETTERS}
        self.ready = False
        self.frames: dict[float, QImage] = {}
        self.shown: float | None = None
        self.position = 0.0  # where the slider is, 0 = A, 1 = B
        self.id = 0  # the worker's session this state belongs to
        self.status = "Choose A and B, then Prepare."
        self.last_export: list[str] | None = None
        host = session.host
        host.interpolationReady.connect(self._ready)
        host.frameReady.connect(self._frame_ready)
        host.framesPending.connect(self._frames_pending)
        host.exported.connect(self._exported)
        session.modelLoaded.connect(lambda _info: self._model_changed())
        session.modelUnloaded.connect(self._model_changed)
        for signal in (settings.prompt_a_changed, settings.prompt_b_changed):
            signal.connect(self._inputs_changed)
        settings.frames_changed.connect(lambda _count: self.queue_frames() if self.ready else None)

    def set_status(self, text: str) -> None:
        self.status = text
        self.statusChanged.emit(text)

    # ---------------------------------------------------------------- inputs

    def set_image(self, letter: str, image: QImage, source: str = "", prompt: str | None = None) -> None:
        self.images[letter], self.sources[letter] = QImage(image), source
        field = f"prompt_{letter.lower()}"
        if prompt and not getattr(self.settings, field).strip():
            setattr(self.settings, field, prompt)  # a good description makes the morph smoother
        self.imageChanged.emit(letter, self.images[letter], source)
        self._inputs_changed()

    def open_image(self, letter: str, path: str, prompt: str | None = None) -> bool:
        image, error = read_image_file(path)
        if image.isNull():
            self.session.say(f"Could not open {Path(path).name}: {error}.", "error")
            return False
        self.set_image(letter, image, str(path), prompt)
        return True

    def has_images(self) -> bool:
        return all(not self.images[letter].isNull() for letter in LETTERS)

    def _inputs_changed(self, *_args) -> None:
        if self.ready:
            self.drop()
            self.set_status("A, B or a prompt changed: Prepare again.")

    def _model_changed(self) -> None:
        """Frames of another model are gone: the panel asks for Prepare again, never "9 of 9 frames ready"."""
        if self.ready or self.frames:
            self.drop()
            self.set_status("The model changed: Prepare again.")

    def drop(self) -> None:
        self.ready = False
        self.frames.clear()
        self.shown = None
        self.readyChanged.emit(False)

    # ---------------------------------------------------------------- preparing and frames

    def prepare(self) -> None:
        from sd_desktop.core.request import InterpolationRequest

        if self.session.busy:
            self.session.status.emit(BUSY, 4000)
            return
        if self.session.model_info is None:
            self.session.say("No model is loaded yet: choose one in the Model list.", "warning")
            return
        if not self.has_images():
            self.session.say("Choose images A and B first: from the canvas, a file, or a history item's menu.",
                             "warning", timeout_ms=10000)
            return
        request = InterpolationRequest(
            image_a=qimage_to_pil(self.images["A"]), image_b=qimage_to_pil(self.images["B"]),
            prompt_a=self.settings.prompt_a.strip(), prompt_b=self.settings.prompt_b.strip(),
            steps=self.settings.interpolation_steps, prediction=self.settings.prediction,
            noise_schedule=self.settings.noise_schedule)
        self.drop()
        _job, self.id = self.session.host.prepare_interpolation(request)
        self.set_status("Inverting A and B…")

    @Slot(dict)
    def _ready(self, info: dict) -> None:
        if info.get("session") != self.id:
            return
        self.ready = True
        self.readyChanged.emit(True)
        self.set_status(f"Ready ({info['width']}×{info['height']}). Frames are computed in the background; "
                        "drag the slider.")
        self.queue_frames(priority_t=self.position)

    def grid(self) -> list[float]:
        return coarse_to_fine(self.settings.frames)

    def queue_frames(self, priority_t: float | None = None) -> None:
        grid = [t for t in self.grid() if frame_key(t) not in self.frames]
        if priority_t is not None and frame_key(priority_t) not in self.frames:
            self.session.host.request_frames([priority_t], priority=True)
        if grid:
            self.session.host.request_frames(grid, priority=False)

    def nearest_frame(self, t: float) -> float | None:
        if not self.frames:
            return None
        return min(self.frames, key=lambda k: abs(k - t))

    def show(self, key: float) -> None:
        if key != self.shown and key in self.frames:
            self.shown = key
            self.frameShown.emit(self.frames[key])

    def drag(self, t: float) -> None:
        """The slider is held: the nearest frame computed so far."""
        self.position = t
        nearest = self.nearest_frame(t)
        if nearest is not None:
            self.show(nearest)

    def choose(self, t: float) -> None:
        """Released, clicked or keyed: this exact frame (the nearest at once, the exact one when it comes)."""
        self.position = t
        if not self.ready:
            return
        key = frame_key(t)
        if key in self.frames:
            self.show(key)
            return
        self.drag(t)
        self.session.host.request_frames([t], priority=True)

    @Slot(int, float, QImage)
    def _frame_ready(self, session: int, t: float, image: QImage) -> None:
        if session != self.id or not self.ready:
            return
        key = frame_key(t)
        self.frames[key] = image
        here = frame_key(self.position)
        if key == here or self.shown is None or (self.nearest_frame(self.position) == key and here not in self.frames):
            self.show(key)

    @Slot(int, int)
    def _frames_pending(self, session: int, pending: int) -> None:
        if session != self.id or not self.ready:
            return
        count = self.settings.frames
        done = len({frame_key(t) for t in self.grid()} & set(self.frames))
        self.set_status(f"{done} of {count} frames ready" + (" · computing more in the background" if pending else ""))

    # ---------------------------------------------------------------- export

    def export(self, formats: list[str], options: dict | None = None) -> None:
        """Frames and animations to a new folder; `options`: duration_ms, loop, ping_pong (the worker's)."""
        if not self.ready:
            self.session.say("Prepare the interpolation first.", "info", timeout_ms=5000)
            return
        if self.session.busy:
            self.session.status.emit(BUSY, 4000)
            return
        self.session.host.export_interpolation(self.settings.frames, self.session.output_folder(), formats, options)

    @Slot(list)
    def _exported(self, paths: list) -> None:
        self._frames_pending(self.id, 0)  # the status line says the frames again, not the export's progress
        if paths:
            self.last_export = paths
            self.exported.emit(paths)
