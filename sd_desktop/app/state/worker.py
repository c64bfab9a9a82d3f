"""The one thread that runs the engine.

`Worker` is a QObject living in its own QThread. It owns the model and runs one job at a time:
load a model, generate, prepare an interpolation, export one. Its slots are reached only through
queued signals, and it answers only through signals carrying Python values, numpy arrays or QImages,
so the GUI thread never runs torch and never waits.

`WorkerHost` lives in the GUI thread: it starts the thread, turns method calls into queued signals,
keeps a cancel Event per job (that `should_stop` reads, so Cancel lands within one step; a load stops
between tensors) and stops the thread on close. It re-emits every signal of the worker from the GUI
thread, so nothing outside this module connects to an object that lives in the worker thread.

Interpolation frames are computed in the background between jobs: the worker keeps a queue of
positions t and computes one frame per turn of its event loop, so new requests (a slider released,
a job) get in between. A pending job makes the running frame stop at its next step.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Qt, Signal, Slot
from PySide6.QtGui import QImage

from .qt_images import numpy_to_qimage, pil_to_qimage

log = logging.getLogger(__name__)

_job_ids = itertools.count(1)


@dataclasses.dataclass
class Job:
    kind: str  # "load" | "generate" | "prepare" | "export"
    id: int = dataclasses.field(default_factory=lambda: next(_job_ids))
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)


class Gate:
    """How many jobs were submitted and have not ended; background frames yield while any are."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending = 0

    def enter(self) -> None:
        with self._lock:
            self._pending += 1

    def leave(self) -> None:
        with self._lock:
            self._pending = max(0, self._pending - 1)

    @property
    def busy(self) -> bool:
        return self._pending > 0


def frame_key(t: float) -> float:
    """Frames are cached by t rounded as the engine's cache rounds it."""
    return round(float(t), 6)


def coarse_to_fine(count: int) -> list[float]:
    """The positions i / (count - 1) ordered ends first, then middle, quarters, eighths ..."""
    if count < 2:
        return [0.0]
    last = count - 1
    order, seen = [0, last], {0, last}
    intervals = collections.deque([(0, last)])
    while intervals:
        lo, hi = intervals.popleft()
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        if mid not in seen:
            seen.add(mid)
            order.append(mid)
        intervals.extend([(lo, mid), (mid, hi)])
    return [i / last for i in order]


def describe_error(exc: BaseException, doing: str) -> str:
    """One line a user can act on (core.errors.one_line), framed for the window."""
    from sd_desktop.core.errors import one_line

    line, expected = one_line(exc, doing)
    if expected:
        return line
    return f"Unexpected error while {doing} ({line}); the app is still usable."


def model_sizes(model) -> list[tuple[int, int]]:
    """The sizes the window offers for a model: its family's (SDXL's aspect buckets ...) when the model is of the
    family's size, else its own square (the demo model's)."""
    family = model.family
    if model.native_size in (family.native_size, family.native_size_v) and family.sizes:
        return list(family.sizes)
    return [(model.native_size, model.native_size)]


def model_info(model) -> dict:
    from sd_desktop.core.runtime.devices import unavailable_devices

    return {
        "name": model.name,
        "path": str(model.path) if model.path else "",
        "family": model.family.name,
        "family_label": model.family.label,
        "addons": model.family.addons,  # the LoRAs and embeddings it takes ("sd1"; core.lora.catalogue.FAMILIES)
        "unavailable_devices": unavailable_devices(),  # the Preferences dialog disables these, with the reason
        "native_size": int(model.native_size),
        "sizes": [list(size) for size in model_sizes(model)],
        "prediction": model.config.prediction,
        "zero_snr": bool(model.config.zero_snr),
        "device": model.device.type,
        "dtype": str(model.dtype).removeprefix("torch."),
        "inpainting": bool(model.is_inpainting),
        "compiled": model.compiled,
    }


def warm_imports() -> None:
    """Import the generation code along with the model, so a first Generate does not pay for it
    (importing holds the GIL for long stretches, which the GUI thread would feel)."""
    import sd_desktop.core.io.outputs  # noqa: F401
    import sd_desktop.core.pipelines.generate  # noqa: F401
    import sd_desktop.core.pipelines.interpolation  # noqa: F401


class Worker(QObject):
    jobStarted = Signal(int, str, str)  # job id, kind, what it does ("Loading sd-v1-5")
    jobEnded = Signal(int, str)  # job id, "done" | "cancelled" | "failed"
    modelLoaded = Signal(str, dict)  # name, model_info()
    modelUnloaded = Signal()  # the old model was dropped to make room (GPUs) before a load
    progress = Signal(int, int, float)  # step, total, seconds per step
    preview = Signal(QImage)  # the current estimate, at latent resolution
    finished = Signal(list)  # [{"path", "seed", "image": QImage, "parameters", "record" (our JSON), "mode",
    #                            "before": the init as used, QImage or None}] saved already
    failed = Signal(str)  # one line
    deviceFellBack = Signal(str, str)  # the device asked for, why it cannot be used (the model loads on the CPU)
    modelFileRefused = Signal(str)  # a model file that is there but could not be loaded as a model
    cancelled = Signal(str)
    notice = Signal(str)  # something worth telling (a size rounded to a multiple of 8)
    interpolationReady = Signal(dict)  # {"session", "width", "height", "steps"}
    frameReady = Signal(int, float, QImage)  # session, t, frame
    framesPending = Signal(int, int)  # session, frames still queued in the background
    exported = Signal(list)  # paths written
    _kick = Signal()

    def __init__(self, gate: Gate):
        super().__init__()
        self.gate = gate
        self.model = None
        self.compiled_shapes: set[tuple] = set()  # (width, height, batch) a compiled U-Net has run: no compile again
        self.prepared = None
        self.session = 0
        self.frame_queue: collections.deque[float] = collections.deque()
        self.background_cancel = threading.Event()
        self._kick.connect(self._background_step, Qt.ConnectionType.QueuedConnection)

    # ---------------------------------------------------------------- jobs

    def _run(self, job: Job, doing: str, label: str, work) -> None:
        self.jobStarted.emit(job.id, job.kind, label)
        outcome = "done"
        try:
            from sd_desktop.core.errors import Cancelled

            try:
                work()
            except Cancelled:
                outcome = "cancelled"
                self.cancelled.emit(f"{label}: cancelled")
        except BaseException as exc:  # noqa: BLE001 - the worker must survive anything a job raises
            outcome = "failed"
            log.error("%s failed:\n%s", doing, traceback.format_exc())
            self.failed.emit(describe_error(exc, doing))
        finally:
            self.gate.leave()
            self.jobEnded.emit(job.id, outcome)
            self._kick.emit()  # resume background frames

    def _require_model(self):
        if self.model is None:
            from sd_desktop.core.errors import SDDesktopError

            raise SDDesktopError("No model is loaded: choose one in the model list (or Open… a model file).")
        return self.model

    @Slot(object, str, str, str, bool)
    def loadModel(self, job: Job, path: str, device: str = "auto", precision: str = "auto",
                  compile_unet: bool = False) -> None:
        label = f"Loading {Path(path).name if path else 'the demo model'}"

        def work():
            from sd_desktop.core.loading.model import load_model
            from sd_desktop.core.runtime.devices import (frees_before_loading, release_device_memory, resolve_device,
                                                       slow_precision_note)
            from sd_desktop.core.runtime.threads import fit_threads

            nonlocal device
            from sd_desktop.core.errors import DeviceError, ModelLoadError, ModelMemoryError

            try:
                target = resolve_device(device)
            except DeviceError as error:  # a device this machine lacks: the CPU, said, never no model at all
                self.deviceFellBack.emit(device, str(error).split(";")[0])
                device, target = "cpu", resolve_device("cpu")
            if self.model is not None and frees_before_loading(target):
                # a GPU rarely holds two models: this one goes first (on a CPU the old one stays until the
                # new one has loaded, so a file that fails leaves the model in use)
                old_device = self.model.device
                self.model = None
                self._drop_interpolation()
                self.modelUnloaded.emit()
                release_device_memory(old_device)
            try:
                model = load_model(path or None, device=device, dtype=precision, compile=compile_unet,
                                   should_stop=job.cancel.is_set)
            except ModelLoadError as error:  # the file itself refused (not memory, not a missing drive)
                if not isinstance(error, ModelMemoryError) and path and Path(path).exists():
                    self.modelFileRefused.emit(path)
                raise
            fit_threads(model)  # on this thread, which runs the model (core.runtime.threads)
            self.model, self.compiled_shapes = model, set()
            self._drop_interpolation()
            warm_imports()
            self.modelLoaded.emit(model.name, model_info(model))
            note = slow_precision_note(model.device, model.dtype)
            if note is not None:  # (chosen in Preferences: said, not changed)
                self.notice.emit(note)

        self._run(job, f"loading {Path(path).name if path else 'the demo model'}", label, work)

    @Slot(object, object)
    def useModel(self, job: Job, model) -> None:
        """A model built elsewhere (benchmarks, tests) becomes the worker's."""

        def work():
            self.model, self.compiled_shapes = model, set()
            self._drop_interpolation()
            warm_imports()
            self.modelLoaded.emit(model.name, model_info(model))

        self._run(job, "setting the model", "Setting the model", work)

    @Slot(object, object, int, str, object)
    def generate(self, job: Job, request, count: int, folder: str, addon_folders=((), (), (), "quick")) -> None:
        """`count` runs with seeds seed, seed+1, ...; each image is saved as soon as it is finished (`folder` "":
        not saved, and handed over as "pil" too: Live mode's). The
        prompt's LoRA tags and embedding words are looked up in `addon_folders` (LoRA folders, embedding folders,
        models folders, the preview mode): a hires fix's upscaler and a TAESD in the models folders too."""

        def work():
            from sd_desktop.core.errors import Cancelled
            from sd_desktop.core.io.outputs import save_numbered
            from sd_desktop.core.lora.tags import resolve_extra_networks
            from sd_desktop.core.pipelines.generate import BatchTag, generate, nth_image

            model = self._require_model()
            nonlocal request
            loras, embeddings, models_folders, previews = addon_folders
            request, notes = resolve_extra_networks(request, loras, embeddings, text_widths=model.text_widths)
            notes += self._use_taesd(model, models_folders, request.taesd_decode, previews)
            tag = BatchTag.alone(request)  # the whole click: count runs, grouped as one in the history
            for note in notes:
                self.notice.emit(note)
            steps_done = [0]
            started = time.perf_counter()
            first: list = []  # when the first step ended, and its count: the rate is timed from there, since the
            # first step pays for warming up (a compile: minutes), which the steps after it do not
            for index in range(count):
                if job.cancel.is_set():
                    raise Cancelled("generation cancelled")
                run = nth_image(request, index * request.batch_size)  # (this run's first image of the job)
                base = steps_done[0]

                def on_step(info, base=base):
                    if compiling is not None:  # (its first step ran: that size is compiled now)
                        self.compiled_shapes.add(compiling)
                    if info.picture_only:  # a TAESD preview after its step: the progress went on already
                        self.preview.emit(numpy_to_qimage(info.preview))
                        return
                    steps_done[0] = base + info.step
                    total = info.total * count
                    now = time.perf_counter()
                    first[:] = first or [now, steps_done[0]]
                    since, done = first
                    seconds = ((now - since) / (steps_done[0] - done) if steps_done[0] > done
                               else (now - started) / max(steps_done[0], 1))
                    self.progress.emit(steps_done[0], total, seconds)
                    if info.preview is not None:
                        self.preview.emit(numpy_to_qimage(info.preview))

                batch = dataclasses.replace(tag, first=index * request.batch_size, size=count * request.batch_size)
                result = generate(model, run, on_step=on_step, should_stop=job.cancel.is_set, batch=batch,
                                  upscaler_dirs=models_folders)
                for note in result.notes:
                    self.notice.emit(note)
                out = []
                init = result.request.init_image  # (as the engine fitted it: the compare view's "before")
                before = pil_to_qimage(init.convert("RGB")) if init is not None else None
                for image, seed in zip(result.images, result.seeds):
                    path = save_numbered(image, Path(folder), seed) if folder else ""  # before anyone hears of it
                    out.append({"path": str(path), "seed": seed, "image": pil_to_qimage(image), "mode": result.mode,
                                "parameters": image.info.get("parameters", ""), "record": image.info.get("sd-desktop"),
                                "index": index, "count": count, "before": before, **({} if folder else {"pil": image})})
                self.finished.emit(out)

        label = "Generating" if count == 1 else f"Generating {count} images"
        compiling = None  # the size a compiled U-Net meets for the first time (a guess: a hires fix compiles again)
        if self.model is not None and self.model.compiled:
            shape = (request.width, request.height, request.batch_size)
            if shape not in self.compiled_shapes:
                label, compiling = "Compiling the U-Net for this size (minutes on a CPU), then generating", shape
        self._run(job, "generating", label, work)

    @staticmethod
    def _use_taesd(model, models_folders, decode: bool, mode: str) -> list[str]:
        """The TAESD beside the model when the request's decode (`decode`) or the preview setting wants it (found
        once, in the models folders' vae_approx / VAE-taesd); notes to say when it is wanted and missing. Preview
        mode "auto": TAESD previews when the model came with a TAESD (the demo's), "quick": never, "taesd": whenever
        one is found. A TAESD that cannot be read stops a job that decodes with it; previews go on quick, said."""
        from sd_desktop.core.errors import SDDesktopError

        previews = mode == "taesd" or (mode == "auto" and getattr(model, "came_with_taesd", False))
        if (decode or mode == "taesd") and model.taesd is None:
            from sd_desktop.core.loading.taesd import find_taesd

            name = model.family.taesd
            files = find_taesd(models_folders, name)
            if not files:
                if decode:
                    raise SDDesktopError(f"Fast decode (TAESD) needs {name}_decoder.safetensors in a models "
                                         "folder's vae_approx or VAE-taesd (Preferences → Models folders); or untick "
                                         "Fast decode")
                model.taesd_previews = False
                return [f"no TAESD found ({name}_decoder in a models folder's vae_approx or VAE-taesd): the previews "
                        "stay quick"]
            try:
                model.use_taesd(*files, previews=previews)
            except SDDesktopError as error:
                if decode:
                    raise
                model.taesd_previews = False
                return [f"{error}; the previews stay quick"]
        model.taesd_previews = previews and model.taesd is not None
        return []

    @Slot(object, object, int)
    def prepareInterpolation(self, job: Job, request, session: int) -> None:
        def work():
            from sd_desktop.core.pipelines.interpolation import prepare_interpolation

            model = self._require_model()
            self._drop_interpolation()
            started = time.perf_counter()

            def on_step(info):
                self.progress.emit(info.step, info.total, (time.perf_counter() - started) / max(info.step, 1))

            prepared = prepare_interpolation(model, request, on_step=on_step, should_stop=job.cancel.is_set)
            self.prepared, self.session = prepared, session
            self.interpolationReady.emit({"session": session, "width": prepared.width, "height": prepared.height,
                                          "steps": len(prepared.sigmas) - 1})

        self._run(job, "preparing the interpolation", "Preparing the interpolation", work)

    @Slot(object, int, int, str, list, dict)
    def exportInterpolation(self, job: Job, session: int, count: int, folder: str, formats: list,
                            options: dict | None = None) -> None:
        """Every frame (cached ones are free) to a new folder/interpolation-NNN/frame-NNN.png, plus animations:
        `options` duration_ms (per frame), loop (for ever, else once), ping_pong (A to B and back)."""
        options = options or {}

        def work():
            from sd_desktop.core.errors import SDDesktopError
            from sd_desktop.core.io.outputs import new_export_folder, save_animation, save_image

            if self.prepared is None or session != self.session:
                raise SDDesktopError("Prepare the interpolation first (the model or the images changed).")
            prepared = self.prepared
            prepared.should_stop = job.cancel.is_set
            started = time.perf_counter()
            frames = []
            for i in range(count):
                t = i / (count - 1) if count > 1 else 0.0
                frame = prepared.frame(t)
                frames.append(frame)
                self.frameReady.emit(session, frame_key(t), pil_to_qimage(frame))
                self.progress.emit(i + 1, count, (time.perf_counter() - started) / (i + 1))
            out = new_export_folder(Path(folder))
            written = []
            if "frames" in formats:
                written += [str(save_image(frame, out / f"frame-{i:03d}.png")) for i, frame in enumerate(frames)]
            animation = frames + frames[-2:0:-1] if options.get("ping_pong") else frames
            for fmt in ("gif", "webp"):
                if fmt in formats:
                    written.append(str(save_animation(animation, out / f"interpolation.{fmt}",
                                                      duration_ms=int(options.get("duration_ms", 120)),
                                                      loop=0 if options.get("loop", True) else None)))
            self.exported.emit(written)

        self._run(job, "exporting the interpolation", "Exporting frames", work)

    # ---------------------------------------------------------------- background frames

    @Slot(object, object, dict, str, float, str)
    def upscale(self, job: Job, image, chunks: dict, upscaler_path: str, scale: float, folder: str) -> None:
        """`image` (PIL) `scale` times larger with the upscaler file, on the model's device (the CPU without one),
        saved numbered with the source's seed and parameters; the upscaler stays loaded for the next one."""

        def work():
            import torch

            from sd_desktop.core.io.metadata import parameters_from_chunks
            from sd_desktop.core.io.outputs import save_numbered
            from sd_desktop.core.upscale import carry_parameters, load_upscaler, upscale_image
            from sd_desktop.core.runtime.threads import default_threads

            cached = getattr(self, "_upscaler", None)
            upscaler = cached if cached is not None and str(cached.path) == upscaler_path else load_upscaler(upscaler_path)
            self._upscaler = upscaler
            device = self.model.device if self.model is not None else torch.device("cpu")
            started = time.perf_counter()

            def on_progress(done: int, total: int) -> None:
                self.progress.emit(done, total, (time.perf_counter() - started) / max(done, 1))

            with default_threads():  # (the demo model runs on one thread; an upscaler's convolutions want them all)
                result = upscale_image(upscaler, image, scale, on_progress=on_progress, should_stop=job.cancel.is_set,
                                       device=device, dtype=torch.float16 if device.type == "cuda" else torch.float32)
            carry_parameters(result, chunks, scale, upscaler.name)
            seed = (parameters_from_chunks(chunks) or {}).get("seed")
            seed = seed if isinstance(seed, int) and seed >= 0 else 0
            path = save_numbered(result, Path(folder), seed)
            self.finished.emit([{"path": str(path), "seed": seed, "image": pil_to_qimage(result), "mode": "upscale",
                                 "parameters": result.info.get("parameters", ""), "record": result.info.get("sd-desktop"),
                                 "index": 0, "count": 1}])

        self._run(job, "upscaling", f"Upscaling ×{scale:g}", work)

    def _drop_interpolation(self) -> None:
        self.prepared = None
        self.frame_queue.clear()

    @Slot(list, bool, int, object)
    def requestFrames(self, positions: list, priority: bool, session: int, cancel: threading.Event) -> None:
        """Queue frames; priority ones go first (in the order given)."""
        if self.prepared is None or session != self.session:
            return
        self.background_cancel = cancel
        keys = [frame_key(t) for t in positions]
        remaining = [t for t in self.frame_queue if t not in keys]
        self.frame_queue = collections.deque(keys + remaining if priority else remaining + keys)
        self._kick.emit()

    @Slot()
    def _background_step(self) -> None:
        if self.gate.busy or self.prepared is None or not self.frame_queue:
            return
        from sd_desktop.core.errors import Cancelled

        prepared, session, cancel = self.prepared, self.session, self.background_cancel
        t = self.frame_queue.popleft()
        if cancel.is_set():
            self.frame_queue.clear()
            self.framesPending.emit(session, 0)
            return
        # A submitted job (or Cancel) stops the frame at its next step; the frame is queued again.
        prepared.should_stop = lambda: cancel.is_set() or self.gate.busy
        try:
            frame = prepared.frame(t)
        except Cancelled:
            if cancel.is_set():
                self.frame_queue.clear()
            else:
                self.frame_queue.appendleft(t)
            self.framesPending.emit(session, len(self.frame_queue))
            return
        except BaseException as exc:  # noqa: BLE001
            log.error("interpolation frame failed:\n%s", traceback.format_exc())
            self.frame_queue.clear()
            self.failed.emit(describe_error(exc, "computing an interpolation frame"))
            return
        self.frameReady.emit(session, t, pil_to_qimage(frame))
        self.framesPending.emit(session, len(self.frame_queue))
        if self.frame_queue:
            self._kick.emit()  # one frame per turn of the event loop: requests get in between


class WorkerHost(QObject):
    """The GUI thread's handle on the worker: submit jobs, cancel, stop. Its signals are the worker's,
    re-emitted from the GUI thread (see Worker for what each carries)."""

    _load = Signal(object, str, str, str, bool)
    _use = Signal(object, object)
    _generate = Signal(object, object, int, str, object)
    _prepare = Signal(object, object, int)
    _frames = Signal(list, bool, int, object)
    _export = Signal(object, int, int, str, list, dict)
    _upscale = Signal(object, object, dict, str, float, str)
    busyChanged = Signal(bool)
    jobStarted = Signal(int, str, str)
    jobEnded = Signal(int, str)
    modelLoaded = Signal(str, dict)
    modelUnloaded = Signal()
    progress = Signal(int, int, float)
    preview = Signal(QImage)
    finished = Signal(list)
    failed = Signal(str)
    deviceFellBack = Signal(str, str)
    modelFileRefused = Signal(str)
    cancelled = Signal(str)
    notice = Signal(str)
    interpolationReady = Signal(dict)
    frameReady = Signal(int, float, QImage)
    framesPending = Signal(int, int)
    exported = Signal(list)
    RELAYED = ("jobStarted", "modelLoaded", "modelUnloaded", "progress", "preview", "finished", "failed",
               "deviceFellBack", "modelFileRefused", "cancelled", "notice", "interpolationReady", "frameReady",
               "framesPending", "exported")

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.gate = Gate()
        self.worker = Worker(self.gate)
        self.thread = QThread()
        self.thread.setObjectName("sd-desktop worker")
        self.worker.moveToThread(self.thread)
        queued = Qt.ConnectionType.QueuedConnection
        self._load.connect(self.worker.loadModel, queued)
        self._use.connect(self.worker.useModel, queued)
        self._generate.connect(self.worker.generate, queued)
        self._prepare.connect(self.worker.prepareInterpolation, queued)
        self._frames.connect(self.worker.requestFrames, queued)
        self._export.connect(self.worker.exportInterpolation, queued)
        self._upscale.connect(self.worker.upscale, queued)
        self.worker.jobEnded.connect(self._job_ended, queued)
        for name in self.RELAYED:  # a queued signal-to-signal connection emits in this (the GUI) thread
            getattr(self.worker, name).connect(getattr(self, name), queued)
        self.pending: dict[int, Job] = {}
        self.background_cancel = threading.Event()
        self.session = 0
        self.thread.start()

    @property
    def busy(self) -> bool:
        return bool(self.pending)

    def _submit(self, kind: str) -> Job:
        job = Job(kind)
        was_busy = self.busy
        self.pending[job.id] = job
        self.gate.enter()  # before the signal: a background frame stops for it at once
        if not was_busy:
            self.busyChanged.emit(True)
        return job

    @Slot(int, str)
    def _job_ended(self, job_id: int, outcome: str) -> None:
        if self.pending.pop(job_id, None) is not None and not self.pending:
            self.busyChanged.emit(False)
        self.jobEnded.emit(job_id, outcome)

    def load_model(self, path: str | None, device: str = "auto", precision: str = "auto",
                   compile_unet: bool = False) -> Job:
        job = self._submit("load")
        self._load.emit(job, path or "", device, precision, compile_unet)
        return job

    def use_model(self, model) -> Job:
        job = self._submit("load")
        self._use.emit(job, model)
        return job

    def generate(self, request, count: int, folder: Path, addon_folders=((), ()), models_folders=(),
                 previews: str = "quick") -> Job:
        job = self._submit("generate")
        self._generate.emit(job, request, int(count), str(folder),
                            (list(addon_folders[0]), list(addon_folders[1]), list(models_folders), previews))
        return job

    def prepare_interpolation(self, request) -> tuple[Job, int]:
        self.session += 1
        job = self._submit("prepare")
        self._prepare.emit(job, request, self.session)
        return job, self.session

    def request_frames(self, positions: list[float], priority: bool = False) -> None:
        if self.background_cancel.is_set():
            self.background_cancel = threading.Event()
        self._frames.emit([float(t) for t in positions], priority, self.session, self.background_cancel)

    def export_interpolation(self, count: int, folder: Path, formats: list[str], options: dict | None = None) -> Job:
        job = self._submit("export")
        self._export.emit(job, self.session, int(count), str(folder), list(formats), dict(options or {}))
        return job

    def upscale(self, image, chunks: dict, upscaler_path: str, scale: float, folder: Path) -> Job:
        job = self._submit("upscale")
        self._upscale.emit(job, image, dict(chunks), str(upscaler_path), float(scale), str(folder))
        return job

    def cancel_running(self) -> None:
        """The submitted jobs stop within one step; background frames go on."""
        for job in self.pending.values():
            job.cancel.set()

    def cancel(self) -> None:
        """Every submitted job and the background frames stop within one step."""
        for job in self.pending.values():
            job.cancel.set()
        self.background_cancel.set()

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Cancel, let the running job end (its finished images are already saved), stop the thread."""
        self.cancel()
        self.thread.quit()
        stopped = self.thread.wait(timeout_ms)
        if not stopped:
            log.warning("the worker did not stop within %d ms", timeout_ms)
            _still_running.append(self)  # never destroy a running QThread
        return stopped


_still_running: list[WorkerHost] = []
