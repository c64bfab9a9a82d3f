"""The window's state and what it does, without a widget: the controls (GenerationSettings), the canvas's
picture (Document), the engine and its jobs (Session), interpolation, the model catalogue and the history,
and the actions that span them (generate, open an image, restore parameters, save, delete). The ui package
binds widgets to this and lays them out."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QFile, QObject, QStandardPaths, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from sd_desktop.core.lora.hashes import known
from sd_desktop.core.lora.tags import restore_addons
from sd_desktop.core.request import Mode

from .addons import AddonCatalogue
from .document import Document, read_image_file, read_parameters_quietly
from .generation import GenerationSettings
from .history import HistoryModel, base_seed_of, describe, seed_of
from .interpolation import InterpolationSession
from . import models
from .models import DEMO_KEY, ModelCatalogue, is_model_path
from .preferences import AppSettings
from .qt_images import qimage_to_pil
from .queue import JobQueue, QueuedJob
from .session import BUSY, Session
from .token_counter import TokenCounter

RESTORE_BUTTON = "restoreParametersButton"
FILL_BUTTON = "fillParametersButton"
NATIVE_SIZE_KEY = "model/native_size"  # the native size the size fields were last set to


def fitted_size(width: int, height: int, limit: int) -> tuple[int, int]:
    """An image's size scaled to fit `limit` on its longer side, in multiples of 8 (at least 64)."""
    scale = min(1.0, limit / max(width, height, 1))
    return max(64, round(width * scale / 8) * 8), max(64, round(height * scale / 8) * 8)


def parameters_of(text: str | None, record: str | None = None) -> dict:
    """A fresh result's parameters for the history's tooltip, search and grouping: our JSON `record`, else the
    A1111 text, parsed."""
    if not text and not record:
        return {}
    try:
        from sd_desktop.core.io.metadata import decode_json_chunk, parse_parameters

        return dict((decode_json_chunk(record) if record else None) or parse_parameters(text or "") or {})
    except Exception:  # noqa: BLE001 - a tooltip never fails a result
        return {}


def move_to_trash(path: str) -> bool:
    """The system Trash (QFile.moveToTrash). On Linux Qt finds no trash where the data folder
    (~/.local/share) does not exist yet; the freedesktop spec says to create the home trash then."""
    if QFile.moveToTrash(str(path)):
        return True
    if sys.platform.startswith("linux"):
        data = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
        if data:
            try:
                (Path(data) / "Trash").mkdir(parents=True, exist_ok=True)
            except OSError:
                return False
            return QFile.moveToTrash(str(path))
    return False


class AppState(QObject):
    # a finished Image to Image or Inpaint batch of two or more: [(path, QImage)], for the canvas's grid
    batchFinished = Signal(list)
    message = Signal(str, str, list, int)  # text, kind ("info" | "warning" | "error"), actions, timeout ms
    status = Signal(str, int)  # status bar text, timeout ms (0: until replaced)
    dismissMessage = Signal()
    withdrawOffer = Signal(str)  # the offer whose button has this name no longer applies
    wants = Signal(str)  # a dialog only the window can open: "open_model", "preferences"

    def __init__(self, preferences: AppSettings | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.preferences = preferences or AppSettings()
        self.generation = GenerationSettings(self)
        self.document = Document(self)
        self.generation.mode_changed.connect(self._refit_on_entering_edit_mode)  # (after its own size swap)
        self.session = Session(self.preferences, self)
        self.interpolation = InterpolationSession(self.session, self.generation, self)
        self.catalogue = ModelCatalogue(self)
        self.addons = AddonCatalogue(self, hash_cache=Path(self.preferences.q.fileName()).parent / "addon-hashes.json")
        self.history = HistoryModel(self, thumbnail_cache=self.preferences.cache_folder() / "thumbnails")
        self.history.favourites = set(self.preferences.get_json("history/favourites", []))
        self.history.favouriteChanged.connect(
            lambda *_: self.preferences.set_json("history/favourites", sorted(self.history.favourites)))
        self.tokens = TokenCounter(self.generation, self, self.addons)
        self.session.message.connect(self.message)
        self.session.status.connect(self.status)
        self.session.modelLoaded.connect(self._model_loaded)
        self.session.resultsReady.connect(self._results)
        self.interpolation.frameShown.connect(lambda image: self.document.set_image(image, None))
        self._offered: str | None = None  # the file whose parameters the message bar offers to restore
        self._batch_seed_pending = False
        self._last_batch_paths: set[str] = set()
        self._batch: list = []  # this job's results, (path, QImage)
        self._batch_mode = None
        self._fell_back: tuple[str, str] | None = None
        self.session.jobChanged.connect(self._job_changed)
        self.session.modelFileRefused.connect(self._model_file_refused)
        self.session.deviceFellBack.connect(self._device_fell_back)
        self.queue = JobQueue(self)
        from .live import LiveMode

        self.live = LiveMode(self, self)
        self.session.busyChanged.connect(lambda busy: None if busy else QTimer.singleShot(0, self._start_next))
        self.document.imageChanged.connect(self._canvas_changed)
        self.first_start = not self.preferences.controls
        if self.first_start:
            self.generation.first_start()
        else:
            self.generation.load(self.preferences.controls)

    def say(self, text: str, kind: str = "info", actions=(), timeout_ms: int = 0) -> None:
        self.message.emit(text, kind, list(actions), timeout_ms)

    # ---------------------------------------------------------------- persistence

    def persist(self) -> None:
        self.preferences.controls = self.generation.persistent()
        if self.session.current_key is not None:
            self.preferences.last_model = self.session.current_key
        self.preferences.sync()

    def shutdown(self) -> None:
        self.persist()
        self.session.shutdown()  # cancels; a finished image is already on disk
        self.history.stop()
        self.catalogue.stop()
        self.addons.stop()

    # ---------------------------------------------------------------- models

    def refresh_models(self) -> None:
        """Rescan the models, LoRA and embedding folders (in the background)."""
        self.catalogue.rescan(self.preferences.models_folders, self.preferences.recent_models)
        self.addons.rescan(*self.preferences.addon_folders())

    def start(self, model_path: str | Path | None = None, model=None) -> None:
        """At window start: the given model, else the last one, else the demo model."""
        self.refresh_models()
        self.history.load_folder(self.preferences.output_root)
        if self.generation.last_seed is None and self.history.paths():  # "Last" works after a restart: the
            self.generation.last_seed = base_seed_of(self.history.paths()[0])  # newest job's base seed
        if model is not None:
            self.session.use_model(model)
        elif model_path is not None:
            self.load_model(str(model_path))
        elif self.preferences.last_model and Path(self.preferences.last_model).exists():
            self.load_model(self.preferences.last_model)
        elif models.demo_model_file() is not None:
            self.load_model(DEMO_KEY)
        else:
            self.say("The bundled demo model is not installed, so there is nothing to generate with yet. "
                     "Open a Stable Diffusion model (.safetensors / .ckpt), or add your models folder in "
                     "Preferences.", "warning",
                     actions=[("Open Model…", lambda: self.wants.emit("open_model"), "openModelButton"),
                              ("Preferences…", lambda: self.wants.emit("preferences"), "preferencesButton")])

    def load_model(self, key: str | None) -> bool:
        key = str(key or DEMO_KEY)
        started = self.session.load_model(key)
        if started:
            self.catalogue.pin(self.session.current_key, key)
        return started

    def open_model_file(self, path: str) -> bool:
        path = str(Path(path))
        if Path(path).name == "model_index.json":
            path = str(Path(path).parent)
        self.preferences.add_recent_model(path)
        self.catalogue.recent = self.preferences.recent_models
        return self.load_model(path)

    @Slot(str)
    def _model_file_refused(self, path: str) -> None:
        """A file opened with Open… that is not a model sd-desktop loads leaves the Model list (the error says why).
        One that failed for want of memory, or that is missing (a drive not mounted), stays; so does a model in a
        models folder, which the folder lists."""
        if path in self.preferences.recent_models:
            self.preferences.remove_recent_model(path)
            self.catalogue.recent = self.preferences.recent_models
        self.catalogue.pin(self.session.current_key)
        self.catalogue.changed.emit()

    @Slot(dict)
    def _model_loaded(self, info: dict) -> None:
        self.catalogue.pin(self.session.current_key)
        native = int(info.get("native_size") or 512)
        if self.preferences.get_str(NATIVE_SIZE_KEY) != str(native):  # first load, or a model of another size
            self.generation.set_size(native, native)
            self.preferences.q.setValue(NATIVE_SIZE_KEY, str(native))
        self.dismissMessage.emit()  # e.g. "the demo model is not installed", or the error of a failed load
        if self._fell_back is not None:
            self._say_fell_back()

    # ---------------------------------------------------------------- generating

    def generate(self, mask: QImage | None = None) -> bool:
        """The controls (and, in Image to Image and Inpaint, the canvas image and the painted mask) as a job:
        run now, or queued while another job runs or the model loads (the request is taken as it is now)."""
        mode = self.generation.mode
        if mode == Mode.INTERPOLATE:
            if self.session.busy:
                self.status.emit(BUSY, 4000)
                return False
            self.interpolation.prepare()
            return False
        job = self._capture(mask)
        if job is None:
            return False
        request, count = job
        if self.session.busy or self.queue.jobs:
            self.queue.add(request, count, mode)
            self.status.emit(f"Queued: {len(self.queue)} waiting", 4000)
            return True
        return self.session.generate(request, count, mode)

    def _capture(self, mask: QImage | None):
        """(request, count) from the controls and the canvas, or None after saying what is missing."""
        mode = self.generation.mode
        if self.session.model_info is None and not self.session.busy:
            self.say("No model is loaded yet: choose one in the Model list (or Open… a model file).", "warning")
            return None
        init = pil_mask = None
        if mode in (Mode.IMG2IMG, Mode.INPAINT):
            if not self.document.has_image():
                self.say("There is no image on the canvas to start from: open one (Ctrl+O), drop one, paste one, "
                         "or use a history item's “Use as init image”.", "warning", timeout_ms=10000)
                return None
            init = qimage_to_pil(self.document.image)
            if mode == Mode.INPAINT:
                if mask is None or mask.isNull():
                    self.say("Paint the area to repaint on the canvas first (Brush, B).", "warning", timeout_ms=10000)
                    return None
                pil_mask = qimage_to_pil(mask, "L")
        self.dismissMessage.emit()
        return self.generation.build_request(init, pil_mask), self.generation.batch_count

    def generate_forever(self, on: bool, mask: QImage | None = None) -> None:
        """Generate the controls' job again and again, each time with a new seed, until switched off (or
        Cancel all). The job is taken as it is now, as a queued one is."""
        if not on:
            self.queue.set_forever(None)
            return
        mode = self.generation.mode
        job = self._capture(mask) if mode != Mode.INTERPOLATE else None
        if job is None:
            self.queue.set_forever(None)
            return
        request, count = job
        self.queue.set_forever(QueuedJob(0, request, count, mode))
        self._start_next()

    def cancel_all(self) -> None:
        """Every queued job dropped, forever off, and the running job cancelled."""
        self.queue.clear()
        self.cancel()

    def _start_next(self) -> None:
        if self.session.busy or self.session.model_info is None:
            return
        job = self.queue.pop()
        if job is not None:
            self.session.generate(job.request, job.count, job.mode)

    def add_to_history(self, result: dict, mode) -> None:
        """A saved result ({"path", "image", "parameters", "record"}) as the history's newest item."""
        params = parameters_of(result.get("parameters"), result.get("record"))
        if mode == "upscale":
            params["mode"] = "upscale"  # (its JSON is its source's)
        params.setdefault("mode", str(mode))
        image = result["image"]
        params["width"], params["height"] = image.width(), image.height()  # what it is (hires, upscale)
        self.history.add_result(result["path"], image, describe(result["path"], params=params), params)

    def is_demo_model(self) -> bool:
        return self.session.current_key == DEMO_KEY

    @Slot(list)
    def _results(self, results: list) -> None:
        mode = self.session.generating_mode
        keep_mask = mode == Mode.INPAINT
        for result in results:
            self.add_to_history(result, mode)
            image = result["image"]
            if mode != "upscale":
                self._batch.append((result["path"], image))
            if self._batch_seed_pending and mode != "upscale":  # "Last" is the batch's base seed: its first image's
                self.generation.last_seed, self._batch_seed_pending = result["seed"], False
            before = result.get("before")  # (the init as the engine fitted it: what the result was made from)
            self.document.set_image(image, result["path"], keep_mask=keep_mask,
                                    before=before if mode in (Mode.IMG2IMG, Mode.INPAINT) else None)

    def _device_fell_back(self, device: str, reason: str) -> None:
        self._fell_back = (device, reason)  # said once the model has loaded (a load clears older messages)

    def _say_fell_back(self) -> None:
        (device, reason), self._fell_back = self._fell_back, None
        label = {"cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}.get(device, device)
        self.say(f"The {label} chosen in Preferences cannot be used ({reason}): the model runs on the CPU.",
                 "warning", actions=[("Use Automatic", self.use_automatic_device, "useAutomaticDeviceButton")])

    def use_automatic_device(self) -> None:
        """The message's action: Preferences' device back to Automatic (what the model already runs on)."""
        self.preferences.device = "auto"
        self.preferences.sync()
        self.dismissMessage.emit()
        self.status.emit("Device: Automatic", 5000)

    def _job_changed(self, kind: str) -> None:
        if kind:  # every job starts a batch of its own (an upscale's result is never part of one)
            self._batch = []
            self._batch_mode = self.session.generating_mode if kind == "generate" else None
        if kind == "generate":
            self._batch_seed_pending = True
        elif not kind and len(self._batch) > 1 and self._batch_mode in (Mode.IMG2IMG, Mode.INPAINT):
            self._last_batch_paths = {path for path, _image in self._batch}
            self.batchFinished.emit(list(self._batch))  # choose which one goes on the canvas
            self._batch = []

    def take_from_batch(self, path: str, image) -> None:
        """The batch grid's choice goes on the canvas (the mask kept, for another pass)."""
        # a result of the batch just made keeps what it was made from; a history batch's image has none here
        fresh = path in self._last_batch_paths and not self.document.before.isNull()
        self.document.set_image(image, path, keep_mask=self.generation.mode == Mode.INPAINT,
                                before=self.document.before if fresh else None)

    def back_to_original(self) -> bool:
        """The picture the shown result was made from back on the canvas (the mask kept), to try again with
        another strength or prompt; the result stays in the history."""
        before = self.document.before
        if before.isNull():
            self.status.emit("This picture was not made from another one on the canvas.", 5000)
            return False
        self.document.set_image(before, None, keep_mask=True)
        self.status.emit("The original is back on the canvas: change the strength or the prompt and generate.", 6000)
        return True

    # ---------------------------------------------------------------- upscaling

    def upscalers(self) -> dict[str, Path]:
        """name -> file: the bundled and imported upscalers and those in the models folders' ESRGAN,
        RealESRGAN and upscale_models (core.upscale.catalogue; no torch)."""
        from sd_desktop.core.upscale.catalogue import find_upscalers

        return find_upscalers(self.preferences.models_folders)

    def upscale_canvas(self, upscaler_path: str | Path, scale: float) -> bool:
        """The canvas image `scale` times larger on the worker; the result is saved (with the source's parameters
        and A1111's postprocessing line), goes in the history and on the canvas."""
        if not self.document.has_image():
            self.say("There is no image on the canvas to upscale: open one (Ctrl+O) or generate one.", "warning",
                     timeout_ms=10000)
            return False
        from sd_desktop.core.io.metadata import text_chunks

        image = self.document.image
        pil = qimage_to_pil(image, "RGBA" if image.hasAlphaChannel() else "RGB")
        if pil.mode == "RGBA" and pil.getchannel("A").getextrema() == (255, 255):
            pil = pil.convert("RGB")  # (an opaque picture in a format with alpha: saved as RGB)
        try:
            chunks = text_chunks(self.document.source) if self.document.source else {}
        except Exception:  # noqa: BLE001 - a source gone or unreadable: the picture still upscales, without them
            chunks = {}
        return self.session.upscale(pil, chunks, str(upscaler_path), float(scale))

    def expand_canvas(self, left: int, top: int, right: int, bottom: int, masked_content: str = "fill"):
        """Expand (outpainting): the canvas picture grown by the pixels given on each side (core.pipelines.outpaint),
        Inpaint chosen with the new size, `masked_content` and strength 1, and said so. Returns the mask of the new
        border (QImage) for the canvas, or None when nothing was done (and said why)."""
        from sd_desktop.core.errors import InvalidRequestError
        from sd_desktop.core.pipelines.outpaint import expand

        from .qt_images import pil_to_qimage

        if not self.document.has_image():
            self.say("There is no image on the canvas to expand: open one (Ctrl+O) or generate one.", "warning",
                     timeout_ms=10000)
            return None
        try:
            big, mask, _used = expand(qimage_to_pil(self.document.image), left, top, right, bottom)
        except InvalidRequestError as error:
            self.say(f"Cannot expand: {error}.", "warning", timeout_ms=10000)
            return None
        self.document.set_image(pil_to_qimage(big), None)
        self.generation.mode = Mode.INPAINT
        self.generation.set_size(big.width, big.height)
        self.generation.masked_content = masked_content
        self.generation.strength = 1.0
        self.say(f"Expanded to {big.width}×{big.height}: the new border is masked, with a soft seam into the picture. "
                 f"Generate to paint it (masked content: {masked_content}, strength 1).", "info", timeout_ms=12000)
        return pil_to_qimage(mask)

    def reuse_seed_of(self, path: str) -> None:
        """A history image's seed into the seed box (its context menu's "Reuse seed")."""
        seed = seed_of(path)
        if seed is None:
            self.say(f"{Path(path).name} does not say its seed.", "info", timeout_ms=6000)
            return
        self.generation.seed = seed
        self.status.emit(f"Seed {seed}", 4000)

    def cancel(self) -> None:
        if self.session.busy or self.interpolation.ready:
            self.session.cancel()

    # ---------------------------------------------------------------- images on the canvas

    def open_image(self, path: str, offer_restore: bool = True) -> bool:
        image, error = read_image_file(path)
        if image.isNull():
            self.say(f"Could not open the image: {error}.", "error")
            return False
        self.set_canvas_image(image, source=str(path))
        if offer_restore:
            self.offer_restore(str(path))
        return True

    def open_files(self, paths: list[str]) -> None:
        """Dropped files: a model file loads the model, an image opens on the canvas."""
        for path in paths:
            if is_model_path(path):
                self.open_model_file(path)
                return
        if paths:
            self.open_image(paths[0])

    def set_canvas_image(self, image: QImage, source: str | None = None) -> None:
        """A new image from outside (open, paste, drop, history): shown, and sized for img2img/inpaint."""
        self.document.set_image(image, source)
        if self.generation.mode in (Mode.IMG2IMG, Mode.INPAINT):
            self.use_canvas_image_size()
        elif self.generation.mode == Mode.TXT2IMG:
            self.status.emit("To change this image, switch to Image to Image or Inpaint.", 6000)

    def _refit_on_entering_edit_mode(self, mode) -> None:
        """Into Image to Image / Inpaint with a picture on the canvas: the size takes its shape, unless the editing
        size already has it (a size chosen for this picture stays)."""
        if mode not in (Mode.IMG2IMG, Mode.INPAINT) or not self.document.has_image():
            return
        image = self.document.image
        if abs(image.width() / image.height() - self.generation.width / self.generation.height) > 0.02 * (
                image.width() / image.height()):
            self.use_canvas_image_size()

    def use_canvas_image_size(self) -> None:
        if not self.document.has_image():
            return
        native = int((self.session.model_info or {}).get("native_size") or 512)
        image = self.document.image
        self.generation.set_size(*fitted_size(image.width(), image.height(), max(2 * native, 256)))

    def show_file(self, path: str) -> None:
        image, error = read_image_file(path)
        if image.isNull():
            self.say(f"Could not show {Path(path).name}: {error}.", "error")
            return
        self.document.set_image(image, path)

    def use_as_init_image(self, path: str) -> None:
        if self.generation.mode not in (Mode.IMG2IMG, Mode.INPAINT):
            self.generation.mode = Mode.IMG2IMG
        image, error = read_image_file(path)
        if image.isNull():
            self.say(f"Could not open {Path(path).name}: {error}.", "error")
            return
        self.set_canvas_image(image, source=str(path))

    def save_canvas_image(self, path: str) -> Path | None:
        """The canvas image, in the format its name says; it keeps the parameters of the result (or file) it came
        from: a PNG as text chunks, a JPEG or WebP as A1111's EXIF text."""
        from sd_desktop.core.io.metadata import JSON_KEY, PARAMETERS_KEY, UnreadableImageError, text_chunks
        from sd_desktop.core.io.outputs import save_image

        image = self.document.image
        if image.isNull():
            self.status.emit("There is no image to save.", 4000)
            return None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".png")
        try:
            pil = qimage_to_pil(image, "RGBA" if image.hasAlphaChannel() else "RGB")
            source = self.document.source
            if source:  # the parameters of the file it came from (PNG chunks, or a JPEG/WebP's EXIF text)
                try:
                    chunks = text_chunks(source)
                except UnreadableImageError:
                    chunks = {}
                pil.info.update({key: chunks[key] for key in (PARAMETERS_KEY, JSON_KEY) if key in chunks})
            save_image(pil, path)
        except Exception as exc:  # noqa: BLE001 - one line, and the image stays on the canvas
            self.say(f"Could not save {path.name}: {exc}", "error")
            return None
        self.status.emit(f"Saved {path}", 6000)
        return path

    def delete_result(self, path: str, trash: bool = True) -> bool:
        """Move an image to the system Trash (`trash`), or only take it out of the history; the canvas moves
        on to its neighbour in the history if it showed it."""
        paths = self.history.paths()
        name = Path(path).name
        if trash and Path(path).exists() and not move_to_trash(path):
            self.say(f"Could not move {name} to the Trash (this system has none here); it is still on the disk. "
                     "Use “Remove from history” and delete the file in your file manager.", "error")
            return False
        self.history.remove(path)
        if self.document.source == str(path):
            index = paths.index(str(path)) if str(path) in paths else -1
            rest = [p for p in paths if p != str(path)]
            if rest:
                self.open_image(rest[min(max(index, 0), len(rest) - 1)], offer_restore=False)
            else:
                self.document.source = None
        self.status.emit(f"Moved {name} to the Trash" if trash else f"Removed {name} from the history", 4000)
        return True

    # ---------------------------------------------------------------- parameters

    def offer_restore(self, path: str) -> None:
        """A file that carries parameters (any app's): offer to restore them; one that carries none
        withdraws the offer of the image before."""
        params = read_parameters_quietly(path)
        if not params:
            self._offered = None
            self.withdrawOffer.emit(RESTORE_BUTTON)
            return
        self._offered = str(path)
        prompt = str(params.get("prompt") or "").strip()
        short = (prompt[:70] + "…") if len(prompt) > 70 else prompt
        source = params.get("source")
        made_by = f" ({source})" if source and source != "sd-desktop" else ""
        self.say(f"{Path(path).name} carries generation parameters{made_by}" + (f": “{short}”" if short else "") + ".",
                 "info", actions=[("Restore parameters", lambda: self.restore_parameters(params), RESTORE_BUTTON)])

    def _canvas_changed(self) -> None:
        """An offer to restore an image's parameters lasts while that image is on the canvas."""
        if self._offered is not None and self.document.source != self._offered:
            self._offered = None
            self.withdrawOffer.emit(RESTORE_BUTTON)

    def restore_parameters_from(self, path: str) -> None:
        params = read_parameters_quietly(path)
        if not params:
            self.say(f"{Path(path).name} carries no generation parameters we can read.", "info", timeout_ms=6000)
            return
        self.restore_parameters(params)

    def restore_parameters(self, params: dict) -> None:
        """Prompt, negative prompt and every setting the parameters hold, into the controls; what could not
        be restored is listed in one visible line."""
        params, found, missing = restore_addons(params, *self.preferences.addon_folders(), hash_of=known)
        info = self.session.model_info or {}
        if "zero_snr" in info and params.get("noise_schedule") == ("zsnr" if info["zero_snr"] else "default"):
            # (A1111's text names the schedule used; what the loaded model takes anyway stays "As the model says",
            # so that it does not follow the user to the next model)
            params = {**params, "noise_schedule": "auto"}
        not_restored = self.generation.restore(params) + missing
        made_with = params.get("model")
        loaded = (self.session.model_info or {}).get("name")
        note = f" It was made with the model “{made_with}”." if made_with and loaded and made_with != loaded else ""
        note += "".join(f" {phrase[0].upper()}{phrase[1:]}." for phrase in found)  # renamed files, found by hash
        if not_restored:
            self.say("Not restored: " + "; ".join(not_restored) + "." + note, "warning")
            self.status.emit("Parameters restored, but not all of them.", 8000)
            return
        self.status.emit("Parameters restored." + note, 8000)
        if note:
            self.say("Parameters restored." + note, "info", timeout_ms=10000)

    def offer_pasted_parameters(self, text: str) -> None:
        """A whole A1111 infotext pasted into the prompt box: offer to fill every field from it (A1111's ↙)."""
        from sd_desktop.core.io.infotext import a1111_parameters

        params = a1111_parameters(text)
        self.say("The pasted text holds generation parameters.", "info",
                 actions=[("Fill in every field", lambda: self.restore_parameters(params), FILL_BUTTON)])

    # ---------------------------------------------------------------- interpolation inputs

    def set_interpolation_image(self, letter: str, path: str) -> None:
        params = read_parameters_quietly(path) or {}
        if self.interpolation.open_image(letter, path, params.get("prompt")):
            self.generation.mode = Mode.INTERPOLATE

    def set_interpolation_from_canvas(self, letter: str) -> None:
        if not self.document.has_image():
            self.say("There is no image on the canvas.", "info", timeout_ms=5000)
            return
        prompt = (self.document.parameters() or {}).get("prompt")
        self.interpolation.set_image(letter, self.document.image, self.document.source or "", prompt)
