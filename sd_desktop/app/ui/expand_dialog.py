"""Image → Expand…: how many pixels to add on each side, or an aspect ratio to grow to (centred), and what the new
border starts from; the result's size shown (a multiple of 8: the right and bottom take the few pixels more)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFormLayout, QGridLayout, QLabel, QSpinBox, QVBoxLayout, QWidget,
)

from .widgets import named

ASPECTS = (("Custom", None), ("1:1", 1.0), ("4:3", 4 / 3), ("3:4", 3 / 4), ("3:2", 3 / 2), ("2:3", 2 / 3),
           ("16:9", 16 / 9), ("9:16", 9 / 16), ("21:9", 21 / 9))
CONTENT = (("fill", "Fill (the picture's colours)"), ("latent noise", "Latent noise"),
           ("original", "Original (its edge, repeated)"), ("latent nothing", "Latent nothing"))


class ExpandDialog(QDialog):
    def __init__(self, size: tuple[int, int], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Expand")
        self.setObjectName("expandDialog")
        self.size_in = size
        self.spins: dict[str, QSpinBox] = {}
        grid = QGridLayout()
        for side, row, column in (("top", 0, 1), ("left", 1, 0), ("right", 1, 2), ("bottom", 2, 1)):
            box = named(QSpinBox(), f"expand{side.capitalize()}Spin", f"Add on the {side}",
                        f"Pixels to add on the {side}")
            box.setRange(0, 2048)
            box.setSingleStep(64)
            box.setSuffix(" px")
            box.valueChanged.connect(self._changed)
            grid.addWidget(box, row, column)
            self.spins[side] = box
        picture = QLabel(f"{size[0]}×{size[1]}")
        picture.setObjectName("hintLabel")
        grid.addWidget(picture, 1, 1)
        self.aspect_combo = named(QComboBox(), "expandAspectCombo", "Aspect ratio",
                                  "Grow to this shape, half on each side (only ever growing)")
        for label, value in ASPECTS:
            self.aspect_combo.addItem(label, value)
        self.aspect_combo.activated.connect(self._aspect_chosen)
        self.content_combo = named(QComboBox(), "expandContentCombo", "Masked content",
                                   "What the new border starts from before it is painted")
        for value, label in CONTENT:
            self.content_combo.addItem(label, value)
        self.size_label = QLabel()
        self.size_label.setObjectName("expandSizeLabel")
        form = QFormLayout()
        form.addRow("Aspect ratio", self.aspect_combo)
        form.addRow("New border", self.content_combo)
        form.addRow("Result", self.size_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Expand")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self._setting = False
        for side in ("left", "right"):
            self.spins[side].setValue(128)  # a first suggestion: wider by 256
        self._changed()

    def _aspect_chosen(self, _index: int) -> None:
        from sd_desktop.core.pipelines.outpaint import expansion_for_aspect

        aspect = self.aspect_combo.currentData()
        if aspect is None:
            return
        self._setting = True
        for side, value in zip(("left", "top", "right", "bottom"), expansion_for_aspect(*self.size_in, aspect)):
            self.spins[side].setValue(value)
        self._setting = False
        self._changed()

    def _changed(self, *_args) -> None:
        if not self._setting and self.sender() in self.spins.values():
            self.aspect_combo.setCurrentIndex(0)  # (a side typed by hand: Custom)
        left, top, right, bottom = self.amounts()
        width, height = self.size_in[0] + left + right, self.size_in[1] + top + bottom
        width, height = width + -width % 8, height + -height % 8
        self.size_label.setText(f"{self.size_in[0]}×{self.size_in[1]} → {width}×{height}")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled((width, height) != self.size_in
                                                                             and max(width, height) <= 4096)

    def amounts(self) -> tuple[int, int, int, int]:
        return tuple(self.spins[side].value() for side in ("left", "top", "right", "bottom"))

    def masked_content(self) -> str:
        return self.content_combo.currentData()
