"""Live mode (Krita AI Diffusion's "Live"): with the seed held, every change — a prompt edit (debounced), a mask
stroke, a setting, a new canvas image — cancels the running live image at its next step and starts the next.

The newest image shows over the canvas (the preview layer) and is not saved and not added to the history, so
nothing floods; `keep()` saves it as a generation is saved and puts it in the history. Switched on with a real
checkpoint at the Quality preset, the controls go to the Fast preset (core.presets; the Preset row shows it, and
any value can be changed back), as Krita's Live runs on its own few-step settings; the demo model runs as the
controls say (1.3 s per 20-step picture on a 2-core CPU).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from sd_desktop.core.request import Mode

DEBOUNCE_MS = 300  # typing: one new image when the typing pauses, not one per key
PRESET_NOTE_MS = 20000  # how long the note on the Fast preset stays over the canvas
# the controls whose change makes a new live image
WATCHED = ("prompt", "negative_prompt", "steps", "cfg_scale", "sampler", "schedule", "seed", "width", "height",
           "strength", "mask_blur", "inpaint_full_res", "soft_inpainting", "masked_content", "inpaint_padding",
           "clip_skip", "emphasis", "rng", "ensd", "ancestral_eta", "variation_seed",
           "variation_strength", "seed_resize_width", "seed_resize_height", "resize_mode", "prediction", "noise_schedule", "rescale_cfg", "mode")


class LiveMode(QObject):
    changed = Signal(bool)  # on / off
    imageChanged = Signal(object)  # the newest live image (QImage), or None when there is none
    keepable = Signal(bool)  # whether there is a live image to keep

    def __init__(self, app, parent: QObject | None = None):
        super().__init__(parent)
        self.app = app
        self.on = False
        self.pending = False  # a change came while a job ran: start again when it ends
        self.latest: dict | None = None  # the newest result: {"pil", "image", "seed", ...} (core's, not saved)
        self.kept = False  # whether `latest` was kept
        self.mask = lambda: None  # the canvas mask (the window sets this, as for Generate forever)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self._fire)
        generation = app.generation
        for name in WATCHED:
            getattr(generation, f"{name}_changed").connect(self.schedule)
        app.document.imageChanged.connect(self.schedule)
        app.session.jobChanged.connect(self._job_changed)
        app.session.liveReady.connect(self._result)
        app.session.modelLoaded.connect(self._model_loaded)
        generation.mode_changed.connect(self._mode_changed)
        generation.variation_strength_changed.connect(lambda _value: self._hold_variation_seed())

    def _hold_variation_seed(self) -> None:
        """A random variation seed is fixed while Live is on, as the seed is: a prompt edit then changes the
        picture, not the noise."""
        generation = self.app.generation
        if self.on and generation.variation_strength and generation.variation_seed is None:
            generation.variation_seed = secrets.randbelow(2**32)

    def set_on(self, on: bool) -> None:
        on = bool(on)
        if on == self.on:
            return
        self.on = on
        generation = self.app.generation
        if on:
            if generation.mode == Mode.INTERPOLATE:
                generation.mode = Mode.TXT2IMG
            if generation.seed is None:  # one picture that changes with the prompt, not a new one each time
                generation.seed = generation.last_seed if generation.last_seed is not None else secrets.randbelow(2**32)
            self._hold_variation_seed()
            self._fast_preset()
            self._fire()
        else:
            self.timer.stop()
            self.pending = False
            if self.app.session.live_running:
                self.app.session.cancel_live()
            self._set_latest(None)
        self.changed.emit(on)

    def schedule(self, *_args) -> None:
        """A change: a new live image once the changes pause."""
        if self.on:
            self.timer.start()

    def _fire(self) -> None:
        self.timer.stop()  # (turning Live on changes the seed or preset: their change is this very picture)
        if not self.on:
            return
        session = self.app.session
        if session.busy or self.app.queue.jobs:  # a queued Generate goes first; Live follows when it is done
            self.pending = True
            if session.live_running:
                session.cancel_live()  # out of date: it stops at its next step
            elif self.app.queue.forever is not None:  # (its jobs never end: Live would wait without a word)
                self.app.status.emit("Live waits: Generate forever (∞) is on; switch it off for live pictures", 8000)
            return
        if self.app.generation.mode == Mode.INTERPOLATE:
            return
        job = self.app._capture(self.mask())
        if job is None:
            return
        session.generate_live(job[0], self.app.generation.mode)

    def _fast_preset(self) -> None:
        from sd_desktop.core.presets import PRESETS, preset_of

        g = self.app.generation
        if self.app.session.model_info is None or self.app.is_demo_model():
            return
        if preset_of(g.sampler, g.schedule, g.steps, g.cfg_scale) == "quality":
            for key, value in PRESETS["fast"].values().items():
                setattr(g, key, value)
            self.app.say(f"Live runs on the {PRESETS['fast'].label} preset, made for {PRESETS['fast'].expects}; "
                         "with another model its pictures come out blurred. Any value can be changed back.", "info",
                         timeout_ms=PRESET_NOTE_MS)  # (over the canvas: the status bar's would be gone at once)

    def _model_loaded(self, _info: dict) -> None:
        if self.on:  # (turned on while the model loaded, or a model switch: as if turned on with this model)
            self._fast_preset()

    def _mode_changed(self, *_args) -> None:
        if self.on and self.app.generation.mode == Mode.INTERPOLATE:  # Live makes single pictures: it goes off
            self.set_on(False)
            self.app.status.emit("Live is off: it does not run in Interpolate", 6000)

    def _job_changed(self, kind: str) -> None:
        if not kind and self.on and self.pending:
            QTimer.singleShot(0, self._resume)  # after the queue has had its turn (AppState starts the next job)

    def _resume(self) -> None:
        if self.on and self.pending and not self.app.session.busy and not self.app.queue.jobs:
            self.pending = False
            self._fire()

    def _result(self, results: list) -> None:
        if self.on and results:
            self._set_latest(results[-1])

    def _set_latest(self, result: dict | None) -> None:
        self.latest, self.kept = result, False
        self.imageChanged.emit(None if result is None else result["image"])
        self.keepable.emit(result is not None)

    def keep(self) -> str | None:
        """The live image saved (numbered, with its parameters) and added to the history; its path."""
        if self.latest is None or self.kept:  # (kept once: a second click would save a second copy)
            return None
        from sd_desktop.core.io.outputs import save_numbered

        result = self.latest
        path = save_numbered(result["pil"], Path(self.app.session.output_folder()), result["seed"])
        self.kept = True
        self.keepable.emit(False)
        self.app.add_to_history({**result, "path": str(path)}, result["mode"])
        self.app.status.emit(f"Kept {path}", 8000)
        return str(path)
