"""The job queue (ComfyUI's, Krita AI Diffusion's, InvokeAI's): Generate while a job runs, or while the model
loads, adds a job here instead of refusing. Each job holds the request as it was when queued (settings,
canvas image and mask), so changing the controls afterwards changes only later jobs. AppState starts the
next job when the worker is free; "Generate forever" queues the same job again, with a new seed, whenever
the queue runs dry."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from sd_desktop.core.request import GenerationRequest, Mode
from sd_desktop.core.sampling.registry import SAMPLERS


@dataclass(frozen=True)
class QueuedJob:
    id: int
    request: GenerationRequest
    count: int  # images, one after another (the batch count)
    mode: Mode

    def label(self) -> str:
        """"a red circle on a blue… · Text to Image · 20 steps, DPM++ 2M, seed 7 ×4"."""
        prompt = self.request.prompt or "(no prompt)"
        prompt = prompt if len(prompt) <= 40 else prompt[:39] + "…"
        sampler = SAMPLERS[self.request.sampler].label if self.request.sampler in SAMPLERS else self.request.sampler
        mode = {Mode.TXT2IMG: "Text to Image", Mode.IMG2IMG: "Image to Image", Mode.INPAINT: "Inpaint"}.get(
            self.mode, str(self.mode))
        times = f" ×{self.count}" if self.count > 1 else ""
        return f"{prompt} · {mode} · {self.request.steps} steps, {sampler}, seed {self.request.seed}{times}"


class JobQueue(QObject):
    changed = Signal()  # jobs added, removed, reordered, or forever switched
    foreverChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.jobs: list[QueuedJob] = []
        self._next_id = 1
        self.forever: QueuedJob | None = None  # the job "Generate forever" repeats, with new seeds

    def __len__(self) -> int:
        return len(self.jobs)

    def add(self, request: GenerationRequest, count: int, mode: Mode) -> QueuedJob:
        job = QueuedJob(self._next_id, request, int(count), mode)
        self._next_id += 1
        self.jobs.append(job)
        self.changed.emit()
        return job

    def pop(self) -> QueuedJob | None:
        """The next job to run; when none waits and forever is on, the forever job with a new seed."""
        if self.jobs:
            job = self.jobs.pop(0)
            self.changed.emit()
            return job
        if self.forever is not None:
            seed = secrets.randbelow(2**32 - self.forever.count)
            return dataclasses.replace(self.forever, request=dataclasses.replace(self.forever.request, seed=seed))
        return None

    def remove(self, job_id: int) -> None:
        self.jobs = [job for job in self.jobs if job.id != job_id]
        self.changed.emit()

    def move_up(self, job_id: int) -> None:
        index = next((i for i, job in enumerate(self.jobs) if job.id == job_id), 0)
        if index > 0:
            self.jobs[index - 1], self.jobs[index] = self.jobs[index], self.jobs[index - 1]
            self.changed.emit()

    def clear(self) -> None:
        """Every waiting job gone, and forever off."""
        self.jobs.clear()
        self.set_forever(None)
        self.changed.emit()

    def set_forever(self, job: QueuedJob | None) -> None:
        if (job is None) != (self.forever is None) or job is not None:
            self.forever = job
            self.foreverChanged.emit(job is not None)
            self.changed.emit()
