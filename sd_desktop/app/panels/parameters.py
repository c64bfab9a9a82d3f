"""Sampler, schedule, steps, CFG, seed, size, batch count, strength, mask blur, full-resolution inpainting.

Each row is shown only in the modes it applies to (and the schedule only for samplers that use one).
`values()` gives the request's fields; `set_values()` restores them (from settings or an image's parameters).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QSpinBox, QToolButton,
    QWidget,
)

from sd_desktop.core.io.metadata import SAMPLER_LABELS, SCHEDULE_LABELS, TIMESTEP_SAMPLERS

SAMPLER_ORDER = ("dpmpp_2m", "euler_a", "euler", "ddim", "ddpm")
MAX_SEED = 2**53  # exact in the spin box's double; A1111 seeds are below 2**32
MODES = ("txt2img", "img2img", "inpaint", "interpolate")
ROW_MODES = {
    "sampler": ("txt2img", "img2img", "inpaint"),
    "schedule": ("txt2img", "img2img", "inpaint"),
    "steps": ("txt2img", "img2img", "inpaint"),
    "cfg": ("txt2img", "img2img", "inpaint"),
    "seed": ("txt2img", "img2img", "inpaint"),
    "size": ("txt2img", "img2img", "inpaint"),
    "batch": ("txt2img", "img2img", "inpaint"),
    "strength": ("img2img", "inpaint"),
    "mask_blur": ("inpaint",),
    "full_res": ("inpaint",),
}


def _named(widget, name: str, accessible: str, tip: str):
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    widget.setToolTip(tip)
    return widget


def _tool_button(text: str, name: str, tip: str) -> QToolButton:
    button = _named(QToolButton(), name, tip.split(":")[0], tip)
    button.setText(text)
    button.setAutoRaise(False)
    return button


class SeedSpin(QDoubleSpinBox):
    """A whole-number spin box wide enough for A1111's 32-bit seeds; -1 shows as "Random"."""

    def __init__(self):
        super().__init__()
        self.setDecimals(0)
        self.setRange(-1, MAX_SEED)
        self.setSpecialValueText("Random")
        self.setValue(-1)
        self.setGroupSeparatorShown(False)
        self.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)

    def seed(self) -> int | None:
        value = int(self.value())
        return None if value < 0 else value


class ParametersPanel(QWidget):
    useImageSizeRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.mode = "txt2img"
        self.last_seed: int | None = None

        self.sampler_combo = _named(QComboBox(), "samplerCombo", "Sampler",
                                    "How the picture is worked out from noise. DPM++ 2M is fast and good; "
                                    "Euler a is more varied; DDIM is deterministic and used by interpolation.")
        for name in SAMPLER_ORDER:
            self.sampler_combo.addItem(SAMPLER_LABELS[name], name)
        self.schedule_combo = _named(QComboBox(), "scheduleCombo", "Schedule",
                                     "How the noise levels are spaced: Karras spends more steps on fine detail.")
        for name, label in SCHEDULE_LABELS.items():
            self.schedule_combo.addItem(label, name)
        self.steps_spin = _named(QSpinBox(), "stepsSpin", "Steps",
                                 "Sampling steps: more is slower and usually cleaner (20-30 is typical).")
        self.steps_spin.setRange(1, 1000)
        self.steps_spin.setValue(20)
        self.cfg_spin = _named(QDoubleSpinBox(), "cfgSpin", "CFG scale",
                               "Guidance: how closely to follow the prompt (5-9 is typical; 1 ignores the negative prompt).")
        self.cfg_spin.setRange(0.0, 30.0)
        self.cfg_spin.setSingleStep(0.5)
        self.cfg_spin.setDecimals(1)
        self.cfg_spin.setValue(7.5)

        self.seed_spin = _named(SeedSpin(), "seedSpin", "Seed",
                                "The same seed with the same settings gives the same picture. Random: a new one each time.")
        self.random_seed_button = _tool_button("Random", "randomSeedButton", "Random seed: a new seed each time")
        self.reuse_seed_button = _tool_button("Last", "reuseSeedButton", "Reuse seed: the last image's seed")
        self.reuse_seed_button.setEnabled(False)
        self.random_seed_button.clicked.connect(lambda: self.seed_spin.setValue(-1))
        self.reuse_seed_button.clicked.connect(self.reuse_last_seed)
        seed_row = QHBoxLayout()
        seed_row.setSpacing(4)
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.random_seed_button)
        seed_row.addWidget(self.reuse_seed_button)

        self.width_spin = _named(QSpinBox(), "widthSpin", "Width", "Image width in pixels (a multiple of 8).")
        self.height_spin = _named(QSpinBox(), "heightSpin", "Height", "Image height in pixels (a multiple of 8).")
        for spin in (self.width_spin, self.height_spin):
            spin.setRange(64, 4096)
            spin.setSingleStep(64)
            spin.setValue(512)
            spin.setSuffix(" px")
        self.swap_size_button = _tool_button("⇄", "swapSizeButton", "Swap width and height")
        self.swap_size_button.clicked.connect(self.swap_size)
        self.image_size_button = _tool_button("From image", "imageSizeButton",
                                              "Use the canvas image's size: the result matches the init image")
        self.image_size_button.clicked.connect(self.useImageSizeRequested)
        size_row = QHBoxLayout()
        size_row.setSpacing(4)
        size_row.addWidget(self.width_spin, 1)
        times = QLabel("×")
        size_row.addWidget(times)
        size_row.addWidget(self.height_spin, 1)
        size_row.addWidget(self.swap_size_button)

        self.batch_spin = _named(QSpinBox(), "batchCountSpin", "Batch count",
                                 "How many images to make, one after another, with seeds seed, seed+1, ...")
        self.batch_spin.setRange(1, 100)
        self.strength_spin = _named(QDoubleSpinBox(), "strengthSpin", "Denoising strength",
                                    "How much to change the canvas image: 0 keeps it, 1 ignores it.")
        self.strength_spin.setRange(0.0, 1.0)
        self.strength_spin.setSingleStep(0.05)
        self.strength_spin.setDecimals(2)
        self.strength_spin.setValue(0.75)
        self.mask_blur_spin = _named(QSpinBox(), "maskBlurSpin", "Mask blur",
                                     "Softens the mask's edge (pixels) so the repainted area blends in.")
        self.mask_blur_spin.setRange(0, 64)
        self.mask_blur_spin.setValue(4)
        self.mask_blur_spin.setSuffix(" px")
        self.full_res_check = _named(QCheckBox("Inpaint at full resolution"), "inpaintFullResCheck",
                                     "Inpaint at full resolution",
                                     "Repaint only a box around the mask, at the full width × height, then paste it back: "
                                     "more detail for small areas.")

        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setHorizontalSpacing(10)
        self.form.setVerticalSpacing(6)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.rows: dict[str, object] = {}

        def row(key, label, field):
            self.form.addRow(label, field)
            self.rows[key] = field

        row("sampler", "Sampler", self.sampler_combo)
        row("schedule", "Schedule", self.schedule_combo)
        row("steps", "Steps", self.steps_spin)
        row("cfg", "CFG scale", self.cfg_spin)
        row("seed", "Seed", seed_row)
        row("size", "Size", size_row)
        row("size_from_image", "", self.image_size_button)
        row("batch", "Batch count", self.batch_spin)
        row("strength", "Strength", self.strength_spin)
        row("mask_blur", "Mask blur", self.mask_blur_spin)
        row("full_res", "", self.full_res_check)
        self.sampler_combo.currentIndexChanged.connect(self._update_rows)
        self._update_rows()

    # -- mode and visibility
    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self._update_rows()

    def _update_rows(self) -> None:
        for key, field in self.rows.items():
            if key == "size_from_image":
                visible = self.mode in ("img2img", "inpaint")
            else:
                visible = self.mode in ROW_MODES[key]
            if key == "schedule":
                visible = visible and self.sampler_combo.currentData() not in TIMESTEP_SAMPLERS
            self.form.setRowVisible(field, visible)

    # -- seed and size helpers
    def set_last_seed(self, seed: int) -> None:
        self.last_seed = int(seed)
        self.reuse_seed_button.setEnabled(True)
        self.reuse_seed_button.setToolTip(f"Reuse seed: {seed} (the last image's)")

    def reuse_last_seed(self) -> None:
        if self.last_seed is not None:
            self.seed_spin.setValue(self.last_seed)

    def swap_size(self) -> None:
        width, height = self.width_spin.value(), self.height_spin.value()
        self.width_spin.setValue(height)
        self.height_spin.setValue(width)

    def set_size(self, width: int, height: int) -> None:
        self.width_spin.setValue(int(width))
        self.height_spin.setValue(int(height))

    # -- values
    def values(self) -> dict:
        return {
            "sampler": self.sampler_combo.currentData(),
            "schedule": self.schedule_combo.currentData(),
            "steps": self.steps_spin.value(),
            "cfg_scale": round(self.cfg_spin.value(), 2),
            "seed": self.seed_spin.seed(),
            "width": self.width_spin.value(),
            "height": self.height_spin.value(),
            "batch_count": self.batch_spin.value(),
            "strength": round(self.strength_spin.value(), 3),
            "mask_blur": self.mask_blur_spin.value(),
            "inpaint_full_res": self.full_res_check.isChecked(),
        }

    def set_values(self, values: dict) -> list[str]:
        """Set what is given and valid; returns the names of the fields that were set."""
        done = []

        def combo(box: QComboBox, value) -> bool:
            index = box.findData(value)
            if index >= 0:
                box.setCurrentIndex(index)
            return index >= 0

        setters = {
            "sampler": lambda v: combo(self.sampler_combo, v),
            "schedule": lambda v: combo(self.schedule_combo, v),
            "steps": lambda v: self.steps_spin.setValue(int(v)),
            "cfg_scale": lambda v: self.cfg_spin.setValue(float(v)),
            "seed": lambda v: self.seed_spin.setValue(-1 if v is None else float(int(v))),
            "width": lambda v: self.width_spin.setValue(int(v)),
            "height": lambda v: self.height_spin.setValue(int(v)),
            "batch_count": lambda v: self.batch_spin.setValue(int(v)),
            "strength": lambda v: self.strength_spin.setValue(float(v)),
            "mask_blur": lambda v: self.mask_blur_spin.setValue(int(v)),
            "inpaint_full_res": lambda v: self.full_res_check.setChecked(bool(v)),
        }
        for key, setter in setters.items():
            if key not in values or (values[key] is None and key != "seed"):
                continue
            try:
                if setter(values[key]) is not False:
                    done.append(key)
            except (TypeError, ValueError, OverflowError):
                pass
        return done
