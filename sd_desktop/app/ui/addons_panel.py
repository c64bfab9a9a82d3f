"""The LoRA & embeddings panel: what the LoRA and embedding folders hold, searchable; double-click (or
Insert) writes `<lora:name:weight>` or an embedding's word into the prompt, as A1111's extra-networks cards do."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QDoubleSpinBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton, QSlider, QVBoxLayout,
    QWidget,
)

from ..state.addons import AddonCatalogue, describe, fits, list_label, prompt_text
from .widgets import named

ENTRY_ROLE = Qt.ItemDataRole.UserRole
EMPTY_HINT = ("No LoRAs or embeddings found. Put LoRAs in models/Lora (A1111) or models/loras (ComfyUI) beside "
              "your models folder and embeddings in embeddings/, or add folders in Preferences.")


class AddonsPanel(QWidget):
    insertRequested = Signal(str)  # the text to write into the prompt

    def __init__(self, catalogue: AddonCatalogue, parent: QWidget | None = None):
        super().__init__(parent)
        self.catalogue = catalogue
        self.model_addons: str | None = None  # the loaded model's family of LoRAs ("sd1"), set by the window
        self.emphasis = lambda: "Original"  # how prompts are read (the window passes its setting)
        self.search = named(QLineEdit(), "addonSearch", "Search LoRAs and embeddings",
                            "Type part of a name or of a trigger word")
        self.search.setPlaceholderText("Search LoRAs and embeddings")
        self.search.setClearButtonEnabled(True)
        self.list = named(QListWidget(), "addonList", "LoRAs and embeddings",
                          "Double-click to put one in the prompt: a LoRA as <lora:name:weight>, an embedding as its word")
        self.list.setSpacing(2)
        self.weight_spin = named(QDoubleSpinBox(), "loraWeightSpin", "LoRA weight",
                                 "The weight a LoRA is inserted with (A1111's <lora:name:weight>)")
        self.weight_spin.setRange(-2.0, 3.0)
        self.weight_spin.setSingleStep(0.05)
        self.weight_spin.setDecimals(2)
        self.weight_spin.setValue(1.0)
        self.weight_slider = named(QSlider(Qt.Orientation.Horizontal), "loraWeightSlider", "LoRA weight",
                                   "The weight a LoRA is inserted with: -2 to 3, in steps of 0.05")
        self.weight_slider.setRange(-40, 60)  # twentieths
        self.weight_slider.setValue(20)
        self.weight_slider.valueChanged.connect(lambda v: self.weight_spin.setValue(v / 20))
        self.weight_spin.valueChanged.connect(lambda w: self.weight_slider.setValue(round(w * 20)))
        self.insert_button = named(QPushButton("Insert"), "insertAddonButton", "Insert into the prompt",
                                   "Write the selected LoRA or embedding into the prompt")
        self.empty_label = QLabel(EMPTY_HINT)
        self.empty_label.setObjectName("hintLabel")
        self.empty_label.setWordWrap(True)

        row = QHBoxLayout()
        row.addWidget(QLabel("Weight"))
        row.addWidget(self.weight_slider, 1)
        row.addWidget(self.weight_spin)
        row.addWidget(self.insert_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_label)
        layout.addLayout(row)

        self.search.textChanged.connect(self.refresh)
        self.list.itemActivated.connect(lambda _item: self.insert_selected())
        self.list.itemDoubleClicked.connect(lambda _item: self.insert_selected())
        self.insert_button.clicked.connect(self.insert_selected)
        self.list.currentItemChanged.connect(lambda *_: self._selection_changed())
        catalogue.changed.connect(self.refresh)
        self.refresh()

    def set_model(self, info: dict | None) -> None:
        self.model_addons = (info or {}).get("addons")
        self.refresh()

    def refresh(self) -> None:
        """The list again (a scan, a search, another model); the selected file stays selected."""
        wanted = self.search.text().strip().lower()
        chosen = self.selected()
        self.list.clear()
        for entry in sorted(self.catalogue.entries, key=lambda e: (e.kind != "lora", e.name.lower())):
            haystack = " ".join([entry.name, *entry.triggers]).lower()
            if wanted and wanted not in haystack:
                continue
            item = QListWidgetItem(list_label(entry))
            item.setData(ENTRY_ROLE, entry)
            item.setToolTip(describe(entry, self.model_addons))
            if not fits(entry, self.model_addons):  # listed (another model may be loaded next), but dimmed
                item.setForeground(self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
            self.list.addItem(item)
            if chosen is not None and entry.path == chosen.path:
                self.list.setCurrentItem(item)
        self.empty_label.setVisible(not self.catalogue.entries)
        self._selection_changed()

    def _selection_changed(self) -> None:
        entry = self.selected()
        self.insert_button.setEnabled(entry is not None)
        self.weight_spin.setEnabled(entry is None or entry.kind == "lora")
        self.weight_slider.setEnabled(self.weight_spin.isEnabled())

    def selected(self):
        item = self.list.currentItem()
        return None if item is None else item.data(ENTRY_ROLE)

    def insert_selected(self) -> None:
        entry = self.selected()
        if entry is not None:
            self.insertRequested.emit(prompt_text(entry, self.weight_spin.value(), self.emphasis()))
