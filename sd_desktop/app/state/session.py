"""The engine as the window sees it: the worker host, the loaded model and the running job.

Everything here runs in the GUI thread and only talks to the worker through WorkerHost's queued signals.
What a user should read comes out as `message` (the bar over the canvas) and `status` (the status bar).
"""

from __future__ import annotations

import datetime
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from . import models
from .models import DEMO_KEY
from .preferences import AppSettings
from .worker import WorkerHost

BUSY = "Busy: wait for the running job, or press Esc to cancel it."
NOTE_MS = 15000  # how long a job's note stays over the canvas


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


class Session(QObject):
    busyChanged = Signal(bool)
    jobChanged = Signal(str)  # the running job's kind ("" = none)
    deviceFellBack = Signal(str, str)  # the device asked for, why not: the model loaded on the CPU
    progressChanged = Signal(str, int, int)  # text, value, maximum (0 = unknown: a busy bar)
    modelLoaded = Signal(dict)  # model_info
    modelUnloaded = Signal()
    preview = Signal(QImage)
    resultsReady = Signal(list)  # [{"path", "seed", "image", "parameters", "mode"}], saved already
    liveReady = Signal(list)  # a live job's results: as resultsReady's, not saved ("path" ""), with "pil"
    jobFailed = Signal(str)
    modelFileRefused = Signal(str)  # a model file that is there but did not load as a model
    message = Signal(str, str, list, int)  # text, kind, actions [(label, callback, objectName)], timeout ms
    status = Signal(str, int)  # status bar text, timeout ms

    def __init__(self, preferences: AppSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.preferences = preferences
        self.host = WorkerHost(self)
        self.model_info: dict | None = None
        self.current_key: str | None = None  # DEMO_KEY or a path; None = nothing loaded
        self.requested_key: str | None = None
        self.job_kind = ""
        self.generating_mode = ""
        self.generating_count = 1
        self.live_running = False  # the running job is Live mode's (core.app.state.live): its image is not saved
        self.live_notes: set[str] = set()  # the notes Live's pictures have said (each once)
        self.last_output_paths: list[str] = []
        host = self.host
        host.busyChanged.connect(self.busyChanged)
        host.jobStarted.connect(self._job_started)
        host.jobEnded.connect(self._job_ended)
        host.modelLoaded.connect(self._model_loaded)
        host.modelUnloaded.connect(self._model_unloaded)
        host.progress.connect(self._progress)
        host.preview.connect(self._preview)
        host.finished.connect(self._finished)
        host.failed.connect(self._failed)
        host.deviceFellBack.connect(self.deviceFellBack)
        host.modelFileRefused.connect(self.modelFileRefused)
        host.cancelled.connect(lambda text: None if self.live_running else self.status.emit(text, 5000))
        host.notice.connect(self._notice)

    @Slot(str)
    def _notice(self, text: str) -> None:
        """Over the canvas: the status bar's "Saved …" would replace it as the job ends, a second later with a small
        model. Live's pictures say a note once, not at each picture (until a job of another kind runs)."""
        if self.live_running:
            if text in self.live_notes:
                return
            self.live_notes.add(text)
        self.say(f"Note: {text}", "info", timeout_ms=NOTE_MS)

    @property
    def busy(self) -> bool:
        return self.host.busy

    def say(self, text: str, kind: str = "info", actions=(), timeout_ms: int = 0) -> None:
        self.message.emit(text, kind, list(actions), timeout_ms)

    def output_folder(self) -> Path:
        from sd_desktop.core.io.outputs import dated_folder

        return dated_folder(self.preferences.output_root, datetime.date.today())

    # ---------------------------------------------------------------- models

    def load_model(self, key: str | None) -> bool:
        """DEMO_KEY (or None) = the demo model. The current model stays in use if this one fails to load
        (on a GPU it is dropped first, to make room). False when the load could not be started."""
        key = str(key or DEMO_KEY)
        if self.busy:
            self.say("Wait for the running job to finish (or press Esc) before changing the model.", "info",
                     timeout_ms=6000)
            return False
        if key == DEMO_KEY and models.demo_model_file() is None:
            self.say("The bundled demo model is not installed; choose another model (Open…).", "warning")
            return False
        self.requested_key = key
        prefs = self.preferences
        self.host.load_model(key or None, prefs.device, prefs.precision, prefs.compile_unet)
        return True

    def use_model(self, model) -> None:
        """A model built elsewhere (benchmarks, tests) becomes the worker's."""
        self.requested_key = str(getattr(model, "path", "") or "")
        self.host.use_model(model)

    @Slot(str, dict)
    def _model_loaded(self, name: str, info: dict) -> None:
        self.model_info = info
        self.current_key = self.requested_key if self.requested_key is not None else info["path"]
        self.preferences.last_model = self.current_key
        self.status.emit(f"Loaded {name}", 5000)
        self.modelLoaded.emit(info)

    @Slot()
    def _model_unloaded(self) -> None:
        """A GPU load dropped the old model first (core.runtime.devices.frees_before_loading)."""
        self.model_info = None
        self.current_key = None
        self.modelUnloaded.emit()

    # ---------------------------------------------------------------- jobs

    def generate(self, request, count: int, mode: str) -> bool:
        if self.busy:
            self.status.emit(BUSY, 4000)
            return False
        self.generating_mode = mode
        self.generating_count = max(int(count), 1)
        self.host.generate(request, count, self.output_folder(), self.preferences.addon_folders(),
                           self.preferences.models_folders, self.preferences.preview_mode)
        return True

    def generate_live(self, request, mode: str) -> bool:
        """One image that is not saved (core's result comes back with liveReady): Live mode's."""
        if self.busy:
            return False
        self.generating_mode, self.generating_count, self.live_running = mode, 1, True
        self.host.generate(request, 1, "", self.preferences.addon_folders(), self.preferences.models_folders,
                           self.preferences.preview_mode)
        return True

    def upscale(self, image, chunks: dict, upscaler_path: str, scale: float) -> bool:
        """The image (PIL) upscaled on the worker; the result comes as a generation's does (resultsReady)."""
        if self.busy:
            self.status.emit(BUSY, 4000)
            return False
        self.generating_mode, self.generating_count = "upscale", 1
        self.host.upscale(image, chunks, upscaler_path, scale, self.output_folder())
        return True

    def cancel_live(self) -> None:
        """Stop the running live picture at its next step, quietly: nothing else (queued jobs, background frames)."""
        self.host.cancel_running()

    def cancel(self) -> None:
        self.host.cancel()
        if self.busy:
            self.progressChanged.emit("Cancelling…", 0, 1)
            self.status.emit("Cancelling after the current step…", 3000)

    def shutdown(self) -> bool:
        return self.host.shutdown()

    @Slot(int, str, str)
    def _job_started(self, _job_id: int, kind: str, label: str) -> None:
        self.job_kind = kind
        self.progressChanged.emit(f"{label}…", 0, 0 if kind == "load" else 1)  # loading: no steps to count
        if not self.live_running:  # (Live's pictures come and go: the progress bar says it; its status would stay)
            self.status.emit(f"{label}…", 0)
            self.live_notes.clear()
        self.jobChanged.emit(kind)

    @Slot(int, str)
    def _job_ended(self, _job_id: int, outcome: str) -> None:
        kind, self.job_kind = self.job_kind, ""
        live, self.live_running = self.live_running, False
        if live and outcome == "cancelled":  # a live image overtaken by a change (the next starts), or Live off
            self.progressChanged.emit("Ready", 0, 1)
            self.jobChanged.emit("")
            return
        text = {"done": "Done", "cancelled": "Cancelled", "failed": "Failed"}[outcome]
        if kind == "load" and outcome == "done":
            self.progressChanged.emit("Ready", 0, 1)  # nothing has run yet: not "Done"
        else:
            self.progressChanged.emit(text, 1 if outcome == "done" else 0, 1)
        if outcome == "done" and kind in ("load", "prepare"):
            self.status.emit("", 0)  # (a generation leaves "Saved …" showing)
        self.jobChanged.emit("")

    @Slot(int, int, float)
    def _progress(self, step: int, total: int, seconds_per_step: float) -> None:
        noun = {"prepare": "Inverting", "export": "Frame", "upscale": "Tile"}.get(self.job_kind, "Step")
        count = self.generating_count if self.job_kind == "generate" else 1
        if count > 1 and total % count == 0:  # "Image 2/4 · step 7/20": the batch's image, and its step
            per = total // count
            image = min(max(step - 1, 0) // per + 1, count)
            where = f"Image {image}/{count} · step {step - (image - 1) * per}/{per}"
        else:
            where = f"{noun} {step}/{total}"
        if step < 2 and total > 2:  # the first step pays for warming up: no estimate from it alone
            self.progressChanged.emit(f"{where} · estimating time left…", step, max(total, 1))
            return
        left = format_seconds(seconds_per_step * (total - step))
        unit = {"export": "frame", "upscale": "tile"}.get(self.job_kind, "step")
        rate = f"{seconds_per_step:.2f} s/{unit}"
        self.progressChanged.emit(f"{where} · {rate} · {left} left", step, max(total, 1))

    @Slot(QImage)
    def _preview(self, image: QImage) -> None:
        if self.job_kind == "generate":
            self.preview.emit(image)

    @Slot(list)
    def _finished(self, results: list) -> None:
        if self.live_running:
            self.liveReady.emit(results)
            return
        self.last_output_paths.extend(result["path"] for result in results)
        if results:
            self.status.emit(f"Saved {results[-1]['path']}", 8000)
        self.resultsReady.emit(results)

    @Slot(str)
    def _failed(self, message: str) -> None:
        if self.job_kind == "load" and self.model_info is None and self.current_key is None:
            message += " (no model is loaded now: choose one in the Model list)"
        self.say(message, "error")
        self.status.emit(message, 10000)
        self.jobFailed.emit(message)
