"""Sampler, schedule, steps, CFG, seed, size, batch count, strength, mask blur, full-resolution inpainting,
clip skip, emphasis and the noise source, each bound to GenerationSettings. A row shows only in the modes it applies to (the schedule stays, disabled,
for samplers with their own spacing); the sampler and schedule lists come from the sampler registry."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QMenu, QSpinBox, QStyle,
    QStyleOptionComboBox, QStylePainter, QToolButton, QWidget,
)

from sd_desktop.core.request import MASKED_CONTENT, RESIZE_MODES, Mode
from sd_desktop.core.sampling.registry import SAMPLERS, SCHEDULES
from sd_desktop.core.text.prompts import EMPHASIS_MODES

from ...state.generation import MAX_SEED, GenerationSettings
from ..binding import bind
from ..widgets import named, tool_button

GENERATING = (Mode.TXT2IMG, Mode.IMG2IMG, Mode.INPAINT)
ROW_MODES = {
    "preset": GENERATING, "sampler": GENERATING, "schedule": GENERATING, "steps": GENERATING, "cfg": GENERATING, "seed": GENERATING,
    "size": GENERATING, "batch": GENERATING, "variation": GENERATING, "seed_resize": GENERATING,
    "size_from_image": (Mode.IMG2IMG, Mode.INPAINT), "resize_mode": (Mode.IMG2IMG, Mode.INPAINT),
    "strength": (Mode.IMG2IMG, Mode.INPAINT),  # and Text to Image with the hires fix (its denoising strength)
    "hires": (Mode.TXT2IMG,), "hires_scale": (), "hires_upscaler": (), "hires_steps": (),  # (): while hires_fix
    "hires_sampler": (), "hires_schedule": (), "hires_cfg": (),
    "mask_blur": (Mode.INPAINT,),
    "full_res": (Mode.INPAINT,), "soft": (Mode.INPAINT,), "masked_content": (Mode.INPAINT,),
    "padding": (),  # Inpaint at full resolution only
    "clip_skip": GENERATING, "emphasis": GENERATING, "rng": GENERATING, "ensd": GENERATING, "ancestral_eta": GENERATING, "prediction": GENERATING,
    "noise_schedule": GENERATING, "rescale_cfg": GENERATING, "taesd": GENERATING,
}
PREDICTION_CHOICES = (("auto", "As the model says"), ("eps", "Epsilon (noise)"), ("v", "V-prediction"))
NOISE_SCHEDULE_CHOICES = (("auto", "As the model says"), ("default", "Default"), ("zsnr", "Zero terminal SNR"))
RNG_CHOICES = (("cpu", "CPU"), ("nv", "NVIDIA GPU (A1111 NV)"))
HIRES_ROWS = ("hires_scale", "hires_upscaler", "hires_steps", "hires_sampler", "hires_schedule", "hires_cfg")


class UpscalerCombo(QComboBox):
    """The hires fix's upscaler: A1111's latent modes, Lanczos / Nearest, then the upscaler files found; a name
    restored from an image that is not here is added as it is (the run then says it is missing)."""

    boundValueChanged = Signal(object)

    def __init__(self):
        super().__init__()
        from sd_desktop.core.upscale.catalogue import find_upscalers

        self.set_names(find_upscalers())
        self.currentIndexChanged.connect(lambda _index: self.boundValueChanged.emit(self.currentData()))

    def set_names(self, names) -> None:
        """The upscaler files found (AppState.upscalers: the models folders' too), after the built-in ones; the
        current choice stays."""
        from sd_desktop.core.upscale.catalogue import HIRES_UPSCALERS

        current = self.currentData()
        self.blockSignals(True)
        self.clear()
        for name in (*HIRES_UPSCALERS, *names):
            self.addItem(name, name)
        if current is not None and self.findData(current) < 0:
            self.addItem(current, current)
        self.setCurrentIndex(max(0, self.findData(current)) if current is not None else 0)
        self.blockSignals(False)

    def bound_value(self):
        return self.currentData()

    def set_bound_value(self, name) -> None:
        if self.findData(name) < 0:
            self.addItem(name, name)
        self.setCurrentIndex(self.findData(name))


def choice_combo(name: str, accessible: str, tip: str, choices) -> QComboBox:
    """A combo of (value, label) pairs; the value is what binds."""
    box = named(QComboBox(), name, accessible, tip)
    for value, label in choices:
        box.addItem(label, value)
    return box


def spin(cls, name: str, accessible: str, tip: str, low, high, step=1, decimals: int | None = None, suffix: str = ""):
    box = named(cls(), name, accessible, tip)
    box.setRange(low, high)
    box.setSingleStep(step)
    if decimals is not None:
        box.setDecimals(decimals)
    if suffix:
        box.setSuffix(suffix)
    return box


class SeedSpin(QDoubleSpinBox):
    """A whole-number spin box wide enough for A1111's 32-bit seeds; -1 shows as "Random" and binds as None."""

    boundValueChanged = Signal()

    def __init__(self):
        super().__init__()
        self.setDecimals(0)
        self.setRange(-1, MAX_SEED)
        self.setSpecialValueText("Random")
        self.setValue(-1)
        self.setGroupSeparatorShown(False)
        self.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        self.valueChanged.connect(self.boundValueChanged)

    def bound_value(self) -> int | None:
        value = int(self.value())
        return None if value < 0 else value

    def set_bound_value(self, seed: int | None) -> None:
        self.setValue(-1 if seed is None else float(seed))


class OptionalSpin(QDoubleSpinBox):
    """A number or None: the value below `low` shows as `none_text` ("Same as CFG scale") and binds as None."""

    boundValueChanged = Signal()

    def __init__(self, none_text: str, low: float, high: float, step: float, decimals: int):
        super().__init__()
        self.floor = low - step
        self.setDecimals(decimals)
        self.setRange(self.floor, high)
        self.setSingleStep(step)
        self.setSpecialValueText(none_text)
        self.setValue(self.floor)
        self.valueChanged.connect(self.boundValueChanged)

    def bound_value(self) -> float | None:
        return None if self.value() <= self.floor else float(self.value())

    def set_bound_value(self, value: float | None) -> None:
        self.setValue(self.floor if value is None else float(value))


class ScheduleCombo(QComboBox):
    """The schedule list; for a sampler with its own spacing (DDIM, LCM ...) it stays in place, disabled,
    and reads "(sampler's own)", so rows never jump when the sampler changes."""

    OWN = "(sampler's own)"

    def shown_text(self) -> str:
        return self.currentText() if self.isEnabled() else self.OWN

    def paintEvent(self, event) -> None:
        if self.isEnabled():
            return super().paintEvent(event)
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        option.currentText = self.OWN
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


class ParametersPanel(QWidget):
    useImageSizeRequested = Signal()

    def __init__(self, settings: GenerationSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.sampler_combo = named(QComboBox(), "samplerCombo", "Sampler",
                                   "How the picture is worked out from noise. DPM++ 2M is fast and good; "
                                   "Euler a is more varied; DDIM is deterministic and used by interpolation.")
        for name, spec in SAMPLERS.items():
            self.sampler_combo.addItem(spec.label, name)
        self.schedule_combo = named(ScheduleCombo(), "scheduleCombo", "Schedule",
                                    "How the noise levels are spaced: Karras spends more steps on fine detail.")
        for name, spec in SCHEDULES.items():
            self.schedule_combo.addItem(spec.label, name)
        self.steps_spin = spin(QSpinBox, "stepsSpin", "Steps",
                               "Sampling steps: more is slower and usually cleaner (20-30 is typical).", 1, 1000)
        self.cfg_spin = spin(QDoubleSpinBox, "cfgSpin", "CFG scale",
                             "Guidance: how closely to follow the prompt (5-9 is typical; 1 ignores the negative "
                             "prompt).", 0.0, 30.0, 0.5, decimals=1)

        self.seed_spin = named(SeedSpin(), "seedSpin", "Seed",
                               "The same seed with the same settings gives the same picture. Random: a new one each time.")
        self.random_seed_button = tool_button("Random", "randomSeedButton", "Random seed: a new seed each time")
        self.reuse_seed_button = tool_button("Last", "reuseSeedButton", "Reuse seed: the last image's seed")
        self.reuse_seed_button.setEnabled(False)
        self.random_seed_button.clicked.connect(lambda: setattr(settings, "seed", None))
        self.reuse_seed_button.clicked.connect(settings.reuse_last_seed)
        settings.last_seed_changed.connect(self._last_seed_changed)
        seed_row = QHBoxLayout()
        seed_row.setSpacing(4)
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.random_seed_button)
        seed_row.addWidget(self.reuse_seed_button)
        self.variation_button = tool_button("Extra", "variationButton",
                                            "Variation seed (a picture between this seed's and another's) and Resize "
                                            "seed from (a seed's layout at another size): A1111's Extra")
        self.variation_button.setCheckable(True)
        self.variation_button.toggled.connect(self._variation_toggled)
        seed_row.addWidget(self.variation_button)
        self.variation_seed_spin = named(SeedSpin(), "variationSeedSpin", "Variation seed",
                                         "The seed whose picture this one moves towards (+1 for each next image). "
                                         "Random: a new one each time.")
        self.variation_strength_spin = spin(QDoubleSpinBox, "variationStrengthSpin", "Variation strength",
                                            "How far towards the variation seed's picture: 0 = this seed's, 1 = that "
                                            "seed's; 0.05-0.3 gives close variations.", 0.0, 1.0, 0.05, decimals=2)
        variation_row = QHBoxLayout()
        variation_row.setSpacing(4)
        variation_row.addWidget(self.variation_seed_spin, 1)
        variation_row.addWidget(QLabel("Strength"))
        variation_row.addWidget(self.variation_strength_spin)
        resize_tip = ("The size this seed's picture was made at: its noise goes in the middle of this size's, so the "
                      "picture keeps its layout at the new size (A1111's Resize seed from). Off: 0.")
        self.seed_resize_width_spin = spin(QSpinBox, "seedResizeWidthSpin", "Resize seed from width", resize_tip,
                                           0, 4096, 64, suffix=" px")
        self.seed_resize_height_spin = spin(QSpinBox, "seedResizeHeightSpin", "Resize seed from height", resize_tip,
                                            0, 4096, 64, suffix=" px")
        for box in (self.seed_resize_width_spin, self.seed_resize_height_spin):
            box.setSpecialValueText("Off")
            box.setKeyboardTracking(False)
        seed_resize_row = QHBoxLayout()
        seed_resize_row.setSpacing(4)
        seed_resize_row.addWidget(self.seed_resize_width_spin, 1)
        seed_resize_row.addWidget(QLabel("×"))
        seed_resize_row.addWidget(self.seed_resize_height_spin, 1)

        self.width_spin = spin(QSpinBox, "widthSpin", "Width", "Image width in pixels: a multiple of 8, at least 64 "
                               "(what you type is rounded when you press Enter or leave the field).", 64, 4096, 64,
                               suffix=" px")
        self.height_spin = spin(QSpinBox, "heightSpin", "Height", "Image height in pixels: a multiple of 8, at least 64 "
                                "(what you type is rounded when you press Enter or leave the field).", 64, 4096, 64,
                                suffix=" px")
        for box in (self.width_spin, self.height_spin):
            box.setKeyboardTracking(False)  # typed digits are one value, rounded to a multiple of 8 when done
            box.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)  # "42" -> 64
        self.swap_size_button = tool_button("⇄", "swapSizeButton", "Swap width and height")
        self.swap_size_button.clicked.connect(settings.swap_size)
        self.image_size_button = tool_button("From image", "imageSizeButton",
                                             "Use the canvas image's size: the result matches the init image")
        self.image_size_button.clicked.connect(self.useImageSizeRequested)
        size_row = QHBoxLayout()
        size_row.setSpacing(4)
        size_row.addWidget(self.width_spin, 1)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin, 1)
        size_row.addWidget(self.swap_size_button)
        self.size_menu_button = tool_button("▾", "sizeMenuButton", "Sizes this model was trained on")
        self.size_menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.size_menu_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")  # (▾ says it)
        self.size_menu_button.setMenu(QMenu(self.size_menu_button))
        size_row.addWidget(self.size_menu_button)
        self.prediction_rows = False  # shown for the families where they matter (SD 2.x, SDXL), or when set

        self.batch_spin = spin(QSpinBox, "batchCountSpin", "Batch count",
                               "How many images to make, one after another, with seeds seed, seed+1, ...", 1, 100)
        self.strength_spin = spin(QDoubleSpinBox, "strengthSpin", "Denoising strength",
                                  "How much to change the canvas image: 0 keeps it, 1 ignores it.", 0.0, 1.0, 0.05,
                                  decimals=2)
        self.mask_blur_spin = spin(QSpinBox, "maskBlurSpin", "Mask blur",
                                   "Softens the mask's edge (pixels) so the repainted area blends in.", 0, 64,
                                   suffix=" px")
        self.clip_skip_spin = spin(QSpinBox, "clipSkipSpin", "Clip skip",
                                   "Which layer of the text encoder to use, counted from the end: 1 is the last; "
                                   "many anime models want 2 (A1111's Clip skip)", 1, 12)
        self.ensd_spin = spin(QSpinBox, "ensdSpin", "Eta noise seed delta",
                              "A1111's Eta noise seed delta (ENSD; 31337 in many shared pictures): the noise an "
                              "ancestral sampler adds after the start comes from seed + ENSD. 0 = off. Shown for the "
                              "samplers it changes.", 0, 2**31 - 1)
        self.ancestral_eta_spin = spin(QDoubleSpinBox, "ancestralEtaSpin", "Eta for ancestral samplers",
                                       "How much fresh noise each step of an ancestral or SDE sampler adds: 1 is "
                                       "all of it (the default), 0 none (Euler a then works as Euler). A1111's "
                                       "\"Eta for ancestral samplers\"; shown for the samplers it changes.",
                                       0.0, 1.0, 0.05, decimals=2)
        self.emphasis_combo = named(QComboBox(), "emphasisCombo", "Emphasis",
                                    "How (word:1.2) and [word] weigh: Original is AUTOMATIC1111's default; ComfyUI "
                                    "reads a prompt as ComfyUI does; None takes brackets as words")
        for mode in EMPHASIS_MODES:
            self.emphasis_combo.addItem(mode, mode)
        self.rng_combo = choice_combo(
            "rngCombo", "Noise source",
            "Where a seed's noise comes from. CPU: as diffusers, ComfyUI and A1111's \"RNG: CPU\". NVIDIA GPU: what "
            "torch draws on an NVIDIA card, A1111's default there (and its \"NV\"). Either gives the same picture on "
            "any device.", RNG_CHOICES)
        self.prediction_combo = choice_combo(
            "predictionCombo", "Prediction",
            "What the model predicts. As the model says: what its file says (SD 2.x files are tested at load). Choose "
            "V-prediction for a v-prediction model (NoobAI-XL V-Pred, SD 2.x 768-v) whose file does not say so: its "
            "pictures otherwise come out grey or burnt.", PREDICTION_CHOICES)
        self.noise_schedule_combo = choice_combo(
            "noiseScheduleCombo", "Noise schedule",
            "The noise levels the model was trained over. As the model says: zero terminal SNR for a file that says "
            "it was trained so (NoobAI-XL V-Pred), the default otherwise. A1111's \"Noise schedule for sampling\"; "
            "ComfyUI's ModelSamplingDiscrete zsnr.", NOISE_SCHEDULE_CHOICES)
        self.rescale_spin = spin(QDoubleSpinBox, "rescaleCfgSpin", "CFG rescale",
                                 "Pulls a high CFG's over-saturated colours back (0 = off; 0.7 is what "
                                 "v-prediction and zero-terminal-SNR models want)", 0.0, 1.0, 0.05, decimals=2)
        self.full_res_check = named(QCheckBox("Inpaint at full resolution"), "inpaintFullResCheck",
                                    "Inpaint at full resolution",
                                    "Repaint only a box around the mask, at the full width × height, then paste it "
                                    "back: more detail for small areas.")
        from sd_desktop.core.presets import PRESETS

        self.preset_combo = named(QComboBox(), "presetCombo", "Preset",
                                  "Sampler, schedule, steps and CFG in one click. Quality: any model, 20 steps. "
                                  "Fast (LCM): 6 steps for an LCM model or the LCM-LoRA. Turbo: 4 steps for a Turbo "
                                  "or Hyper-SD model or LoRA (with another model these look blurred or burnt).")
        self.preset_combo.addItem("Custom", "")
        for preset in PRESETS.values():
            self.preset_combo.addItem(preset.label, preset.name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, f"For {preset.expects}", 3)  # (tooltip)
        self.preset_combo.activated.connect(self._preset_chosen)
        for name in ("sampler", "schedule", "steps", "cfg_scale"):
            getattr(settings, f"{name}_changed").connect(self._show_preset)
        self.taesd_check = named(QCheckBox("Fast decode (TAESD)"), "taesdDecodeCheck", "Fast decode",
                                 "The final picture from TAESD instead of the VAE: about 11 times faster on a CPU, a "
                                 "little softer. Needs taesd_decoder in a models folder's vae_approx or VAE-taesd.")
        self.soft_check = named(QCheckBox("Soft inpainting"), "softInpaintingCheck", "Soft inpainting",
                                "The mask's grey levels say how much may change (differential diffusion): paint "
                                "with a soft brush (Hardness below 100%) for edges that blend")
        self.resize_mode_combo = named(QComboBox(), "resizeModeCombo", "Resize mode",
                                       "When the canvas picture has another shape than the size: stretch it (just "
                                       "resize), fill the size and cut the overflow (crop and resize), or fit it "
                                       "whole and extend its edges (resize and fill)")
        for value in RESIZE_MODES:
            self.resize_mode_combo.addItem(value.capitalize(), value)
        self.masked_content_combo = named(QComboBox(), "maskedContentCombo", "Masked content",
                                          "What the painted area starts from: the picture there (original), its "
                                          "surroundings' colours (fill), noise (latent noise) or nothing (latent "
                                          "nothing). With a high strength, fill or latent noise forget what was there.")
        for value in MASKED_CONTENT:
            self.masked_content_combo.addItem(value, value)
        self.padding_spin = spin(QSpinBox, "inpaintPaddingSpin", "Only masked padding",
                                 "Pixels of the picture around the mask that the repaint sees (Inpaint at full "
                                 "resolution)", 0, 1024, 8, suffix=" px")
        self.hires_check = named(QCheckBox("Hires fix"), "hiresCheck", "Hires fix",
                                 "Generate at the size above, upscale, then repaint at the larger size with the "
                                 "denoising strength below: more detail than generating large directly (A1111's "
                                 "Hires fix)")
        self.hires_scale_spin = spin(QDoubleSpinBox, "hiresScaleSpin", "Hires upscale",
                                     "How many times larger the second pass is (1 to 4)", 1.0, 4.0, 0.25, decimals=2,
                                     suffix="×")
        self.hires_upscaler_combo = named(UpscalerCombo(), "hiresUpscalerCombo", "Hires upscaler",
                                          "Latent: resize the latents (fast; wants a strength of 0.5 or more). "
                                          "An upscaler (Real-ESRGAN ...) works on the picture (0.3-0.5 is enough).")
        self.hires_steps_spin = spin(QSpinBox, "hiresStepsSpin", "Hires steps",
                                     "The second pass's steps; 0: the same as Steps", 0, 1000)
        self.hires_steps_spin.setSpecialValueText("Same as Steps")
        self.hires_sampler_combo = choice_combo(
            "hiresSamplerCombo", "Hires sampler", "The second pass's sampler (A1111's Hires sampler)",
            [(None, "Same as Sampler"), *((name, spec.label) for name, spec in SAMPLERS.items())])
        self.hires_schedule_combo = choice_combo(
            "hiresScheduleCombo", "Hires schedule", "The second pass's schedule (A1111's Hires schedule type)",
            [(None, "Same as Schedule"), *((name, spec.label) for name, spec in SCHEDULES.items())])
        self.hires_cfg_spin = named(OptionalSpin("Same as CFG scale", 0.5, 30.0, 0.5, 1), "hiresCfgSpin",
                                    "Hires CFG scale", "The second pass's CFG scale (Forge's Hires CFG Scale)")
        for name, widget in (("sampler", self.sampler_combo), ("schedule", self.schedule_combo),
                             ("steps", self.steps_spin), ("cfg_scale", self.cfg_spin), ("seed", self.seed_spin),
                             ("variation_seed", self.variation_seed_spin),
                             ("variation_strength", self.variation_strength_spin),
                             ("seed_resize_width", self.seed_resize_width_spin),
                             ("seed_resize_height", self.seed_resize_height_spin),
                             ("width", self.width_spin), ("height", self.height_spin),
                             ("batch_count", self.batch_spin), ("strength", self.strength_spin),
                             ("mask_blur", self.mask_blur_spin), ("inpaint_full_res", self.full_res_check),
                             ("clip_skip", self.clip_skip_spin), ("emphasis", self.emphasis_combo),
                             ("rng", self.rng_combo), ("ensd", self.ensd_spin),
                             ("ancestral_eta", self.ancestral_eta_spin), ("hires_fix", self.hires_check),
                             ("prediction", self.prediction_combo), ("noise_schedule", self.noise_schedule_combo),
                             ("rescale_cfg", self.rescale_spin),
                             ("soft_inpainting", self.soft_check), ("taesd_decode", self.taesd_check), ("masked_content", self.masked_content_combo),
                             ("resize_mode", self.resize_mode_combo),
                             ("inpaint_padding", self.padding_spin),
                             ("hires_scale", self.hires_scale_spin), ("hires_upscaler", self.hires_upscaler_combo),
                             ("hires_steps", self.hires_steps_spin), ("hires_sampler", self.hires_sampler_combo),
                             ("hires_schedule", self.hires_schedule_combo), ("hires_cfg", self.hires_cfg_spin)):
            bind(settings, name, widget)

        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setHorizontalSpacing(10)
        self.form.setVerticalSpacing(6)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.rows: dict[str, object] = {}
        for key, label, field in (("preset", "Preset", self.preset_combo), ("sampler", "Sampler", self.sampler_combo), ("schedule", "Schedule", self.schedule_combo),
                                  ("steps", "Steps", self.steps_spin), ("cfg", "CFG scale", self.cfg_spin),
                                  ("seed", "Seed", seed_row), ("variation", "Variation", variation_row),
                                  ("seed_resize", "Seed from", seed_resize_row),
                                  ("size", "Size", size_row),
                                  ("size_from_image", "", self.image_size_button),
                                  ("resize_mode", "Resize mode", self.resize_mode_combo),
                                  ("batch", "Batch count", self.batch_spin),
                                  ("hires", "", self.hires_check), ("hires_scale", "Upscale by", self.hires_scale_spin),
                                  ("hires_upscaler", "Upscaler", self.hires_upscaler_combo),
                                  ("hires_steps", "Hires steps", self.hires_steps_spin),
                                  ("hires_sampler", "Hires sampler", self.hires_sampler_combo),
                                  ("hires_schedule", "Hires schedule", self.hires_schedule_combo),
                                  ("hires_cfg", "Hires CFG", self.hires_cfg_spin),
                                  ("strength", "Strength", self.strength_spin), ("mask_blur", "Mask blur", self.mask_blur_spin),
                                  ("masked_content", "Masked content", self.masked_content_combo),
                                  ("full_res", "", self.full_res_check), ("padding", "Padding", self.padding_spin),
                                  ("soft", "", self.soft_check),
                                  ("clip_skip", "Clip skip", self.clip_skip_spin),
                                  ("emphasis", "Emphasis", self.emphasis_combo), ("rng", "Noise", self.rng_combo),
                                  ("ancestral_eta", "Eta", self.ancestral_eta_spin),
                                  ("ensd", "ENSD", self.ensd_spin),
                                  ("prediction", "Prediction", self.prediction_combo),
                                  ("noise_schedule", "Noise schedule", self.noise_schedule_combo),
                                  ("rescale_cfg", "CFG rescale", self.rescale_spin),
                                  ("taesd", "", self.taesd_check)):
            self.form.addRow(label, field)
            self.rows[key] = field
        settings.mode_changed.connect(self._update_rows)
        settings.sampler_changed.connect(self._update_rows)
        settings.hires_fix_changed.connect(self._update_rows)
        settings.inpaint_full_res_changed.connect(self._update_rows)
        settings.prediction_changed.connect(self._update_rows)
        settings.noise_schedule_changed.connect(self._update_rows)
        settings.ensd_changed.connect(self._update_rows)
        settings.variation_strength_changed.connect(self._variation_strength_changed)
        settings.seed_resize_width_changed.connect(self._variation_strength_changed)
        settings.seed_resize_height_changed.connect(self._variation_strength_changed)
        settings.ancestral_eta_changed.connect(self._update_rows)
        settings.rescale_cfg_changed.connect(self._update_rows)
        self.variation_button.setChecked(self._extra_set())  # (a strength or size kept from last time)
        self.set_model({"sizes": [(512, 512), (512, 768), (768, 512)], "family": "sd1"})  # (until a model loads)
        self._show_preset()

    def set_model(self, info: dict) -> None:
        """What the loaded model changes here: the size menu's (width, height) pairs its family was trained on;
        the Prediction and CFG rescale rows, shown for SD 2.x and SDXL (an SD 1.x model predicts eps)."""
        menu = self.size_menu_button.menu()
        menu.clear()
        for width, height in info.get("sizes") or ():
            action = menu.addAction(f"{width} × {height}")
            action.triggered.connect(lambda _=False, w=width, h=height: self.settings.set_size(w, h))
        self.prediction_rows = not str(info.get("family", "sd1")).startswith("sd1") or bool(info.get("zero_snr"))
        self.name_what_the_model_says(info)
        self._update_rows()

    def name_what_the_model_says(self, info: dict) -> None:
        """"As the model says" names what the loaded model says; plain while none is loaded ({})."""
        said = {"eps": "epsilon", "v": "v-prediction"}.get(info.get("prediction"))
        self.prediction_combo.setItemText(0, f"As the model says ({said})" if said else PREDICTION_CHOICES[0][1])
        said = None if "zero_snr" not in info else "zero terminal SNR" if info["zero_snr"] else "default"
        self.noise_schedule_combo.setItemText(0, f"As the model says ({said})" if said else NOISE_SCHEDULE_CHOICES[0][1])

    def _extra_set(self) -> bool:
        s = self.settings
        return bool(s.variation_strength or s.seed_resize_width or s.seed_resize_height)

    def _variation_toggled(self, on: bool) -> None:
        """Extra off turns the variation and the seed resize off (strength and sizes to 0), as A1111's Extra
        gates them."""
        if not on and self.settings.variation_strength:
            self.settings.variation_strength = 0.0
        if not on:
            self.settings.seed_resize_width = self.settings.seed_resize_height = 0
        self._update_rows()

    def _variation_strength_changed(self, value) -> None:
        if value and not self.variation_button.isChecked():  # (restored, or kept from last time)
            self.variation_button.setChecked(True)
        self._update_rows()

    def _update_rows(self, *_args) -> None:
        mode = self.settings.mode
        spec = SAMPLERS.get(self.settings.sampler)
        hires = mode == Mode.TXT2IMG and self.settings.hires_fix
        for key, field in self.rows.items():
            shown = mode in ROW_MODES[key] or (hires and (key in HIRES_ROWS or key == "strength"))
            shown = shown or (key == "padding" and mode == Mode.INPAINT and self.settings.inpaint_full_res)
            if key in ("prediction", "noise_schedule", "rescale_cfg") and shown:
                s = self.settings
                shown = (self.prediction_rows or s.prediction != "auto" or s.noise_schedule != "auto"
                         or s.rescale_cfg != 0.0)
            if key in ("variation", "seed_resize") and shown:  # (behind Extra, as in A1111)
                shown = self.variation_button.isChecked()
            if key == "ancestral_eta" and shown:  # (only for the samplers taking it, unless set)
                shown = self.settings.ancestral_eta != 1.0 or (spec is not None and spec.ancestral_eta)
            if key == "ensd" and shown:  # (only where it changes the noise, unless set)
                shown = self.settings.ensd != 0 or (spec is not None and spec.draws_seeded_noise(0.0, self.settings.ancestral_eta))
            self.form.setRowVisible(field, shown)
        own = spec is not None and not spec.uses_schedule
        self.schedule_combo.setEnabled(not own)
        self.schedule_combo.setToolTip(f"{spec.label} spaces its steps itself: no schedule applies" if own else
                                       "How the noise levels are spaced: Karras spends more steps on fine detail.")

    def _preset_chosen(self, _index: int) -> None:
        from sd_desktop.core.presets import PRESETS

        name = self.preset_combo.currentData()
        if name:
            for key, value in PRESETS[name].values().items():
                setattr(self.settings, key, value)
        self._show_preset()

    def _show_preset(self, *_args) -> None:
        """The preset the values are, else Custom."""
        from sd_desktop.core.presets import preset_of

        s = self.settings
        name = preset_of(s.sampler, s.schedule, s.steps, s.cfg_scale) or ""
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(name)))

    def _last_seed_changed(self, seed) -> None:
        self.reuse_seed_button.setEnabled(seed is not None)
        self.reuse_seed_button.setToolTip(f"Reuse seed: {seed} (the last image's)")
