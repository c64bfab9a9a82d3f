"""Image → Upscale…: how many times larger (the result's size shown) and with which upscaler. The choice of
upscaler follows the scale (the bundled compact model of that scale, or Real-ESRGAN x4plus when imported for x3
and up) until the user picks one."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QVBoxLayout, QWidget,
)

from .widgets import named


class UpscaleDialog(QDialog):
    def __init__(self, upscalers: dict[str, Path], size: tuple[int, int], scale: float = 2.0,
                 parent: QWidget | None = None):
        super().__init__(parent)
        from sd_desktop.core.upscale.catalogue import IMPORTED

        self.setWindowTitle("Upscale")
        self.setObjectName("upscaleDialog")
        self.upscalers, self.size_in = upscalers, size
        self.scale_spin = named(QDoubleSpinBox(), "upscaleScaleSpin", "Scale", "How many times larger (1 to 8)")
        self.scale_spin.setRange(1.0, 8.0)
        self.scale_spin.setSingleStep(0.5)
        self.scale_spin.setDecimals(1)
        self.scale_spin.setPrefix("×")
        self.scale_spin.setValue(scale)
        self.model_combo = named(QComboBox(), "upscaleModelCombo", "Upscaler",
                                 "The network that upscales: x4plus for photos, the anime models for drawings")
        for name, path in upscalers.items():
            self.model_combo.addItem(name, str(path))
            self.model_combo.setItemData(self.model_combo.count() - 1, str(path), 3)  # (tooltip role)
        self.size_label = QLabel()
        self.size_label.setObjectName("upscaleSizeLabel")
        missing = [name for name in IMPORTED if name not in upscalers]
        self.hint = QLabel("Real-ESRGAN x4plus (for photos) and x4plus-anime are not installed; to add them, run<br>"
                           "<tt>pip install \"sd-desktop[upscalers]\"</tt><br><tt>sd-desktop models import-upscalers</tt>"
                           if missing else "")
        self.hint.setTextInteractionFlags(self.hint.textInteractionFlags() | Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hint.setObjectName("hintLabel")
        self.hint.setWordWrap(True)
        self.hint.setVisible(bool(missing))
        form = QFormLayout()
        form.addRow("Scale", self.scale_spin)
        form.addRow("Upscaler", self.model_combo)
        form.addRow("Result", self.size_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Upscale")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.hint)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(440)
        self._chosen = False
        self.model_combo.activated.connect(lambda _index: setattr(self, "_chosen", True))
        self.scale_spin.valueChanged.connect(self._scale_changed)
        self._scale_changed(self.scale_spin.value())

    def _scale_changed(self, scale: float) -> None:
        from sd_desktop.core.upscale.catalogue import default_upscaler

        width, height = self.size_in
        self.size_label.setText(f"{width}×{height} → {round(width * scale)}×{round(height * scale)}")
        if not self._chosen:
            name = default_upscaler(round(scale), self.upscalers)
            if name is not None:
                self.model_combo.setCurrentIndex(self.model_combo.findText(name))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self.model_combo.count() > 0)

    def choice(self) -> tuple[str, float]:
        """(the upscaler's file, the scale)."""
        return self.model_combo.currentData(), self.scale_spin.value()
