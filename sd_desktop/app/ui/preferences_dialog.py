"""The Preferences dialog: output folder, models, LoRA and embedding folders, theme, precision, device, compile."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QColorDialog, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
    QLineEdit, QListWidget, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from sd_desktop.core.io.outputs import default_output_root

from ..state.preferences import (DEVICES, PRECISION_TIP, PRECISIONS, PREVIEW_MODES, THEMES, AppSettings,
                                 compile_offered)


COMPILE_TIP = ("The first image at each size waits while the U-Net compiles: about two minutes for SD 1.5 on a CPU "
               "the first time, about 20 s after that (torch keeps the compiled code in the cache folder). Later steps "
               "are faster on a GPU. On a CPU leave it off: sd-desktop's packed layers are as fast for the U-Net, and "
               "faster for the VAE, which compiling leaves unpacked.")
NO_COMPILE_TIP = "torch.compile does not work on Apple's MPS; choose the CPU to use it."


class PreferencesDialog(QDialog):
    """Output folder, models folders, theme, precision, device and compile. accept() writes them to the settings."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None,
                 unavailable_devices: dict[str, str] | None = None):
        """`unavailable_devices`: device choice -> why this machine cannot use it (the loaded model's info
        says; the GUI thread asks torch nothing). Those are listed, disabled, with the reason."""
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Preferences")
        self.setObjectName("preferencesDialog")
        self.setMinimumWidth(560)

        self.output_edit = QLineEdit(settings.output_folder_setting)
        self.output_edit.setObjectName("outputFolderEdit")
        self.output_edit.setPlaceholderText(str(default_output_root()))
        self.output_edit.setAccessibleName("Output folder")
        self.output_edit.setToolTip("Every finished image is saved here, in one folder per day. Empty = the default.")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse_output)
        output_row = QHBoxLayout()
        output_row.addWidget(self.output_edit, 1)
        output_row.addWidget(browse)

        self.models_folders = FolderList("models", "Models folders", settings.models_folders,
                                         "Folders searched for .safetensors / .ckpt files and diffusers folders, "
                                         "e.g. AUTOMATIC1111's models/Stable-diffusion or ComfyUI's models/checkpoints")
        self.lora_folders = FolderList("lora", "LoRA folders", settings.lora_folders,
                                       "More folders of LoRA and LyCORIS files; models/Lora (A1111) and models/loras "
                                       "(ComfyUI) beside the models folders are searched without being listed")
        self.embedding_folders = FolderList("embedding", "Embedding folders", settings.embedding_folders,
                                            "More folders of textual-inversion embeddings; embeddings/ beside the "
                                            "models folders is searched without being listed")

        self.theme_combo = self._choices("themeCombo", "Theme", THEMES, settings.theme,
                                         "The window's colours: dark, or the system's light palette.")

        form = QFormLayout()
        form.addRow("Output folder", output_row)
        if settings.output_override:
            note = QLabel(f"SD_DESKTOP_OUTPUT_DIR is set: images go to {settings.output_override} while it is.")
            note.setWordWrap(True)
            form.addRow("", note)
        form.addRow("Models folders", self.models_folders)
        form.addRow("LoRA folders", self.lora_folders)
        form.addRow("Embedding folders", self.embedding_folders)
        form.addRow("Theme", self.theme_combo)
        self.mask_colour = QColor(settings.mask_colour)
        self.mask_colour_button = QPushButton()
        self.mask_colour_button.setObjectName("maskColourButton")
        self.mask_colour_button.setAccessibleName("Mask colour")
        self.mask_colour_button.setToolTip("The colour the painted mask shows in (choose one the picture lacks)")
        self.mask_colour_button.clicked.connect(self.choose_mask_colour)
        self.mask_opacity_spin = QSpinBox()
        self.mask_opacity_spin.setObjectName("maskOpacitySpin")
        self.mask_opacity_spin.setAccessibleName("Mask opacity")
        self.mask_opacity_spin.setRange(10, 100)
        self.mask_opacity_spin.setSuffix(" %")
        self.mask_opacity_spin.setValue(settings.mask_opacity)
        self.mask_opacity_spin.setToolTip("How opaque the mask overlay is (H hides and shows it)")
        mask_row = QHBoxLayout()
        mask_row.addWidget(self.mask_colour_button)
        mask_row.addWidget(self.mask_opacity_spin)
        mask_row.addStretch(1)
        form.addRow("Mask overlay", mask_row)
        self.preview_combo = self._choices("previewCombo", "Previews", PREVIEW_MODES, settings.preview_mode,
                                           "What each step shows: the quick projection, or a full-size picture from a "
                                           "TAESD file in the models folders' vae_approx or VAE-taesd folder")
        form.addRow("Previews", self.preview_combo)
        self._show_mask_colour()
        self.precision_combo = self._choices("precisionCombo", "Precision", PRECISIONS, settings.precision,
                                             PRECISION_TIP)
        self.device_combo = self._choices("deviceCombo", "Device", DEVICES, settings.device,
                                          "Where the model runs. Applies when a model is loaded.")
        for choice, reason in (unavailable_devices or {}).items():
            index = self.device_combo.findData(choice)
            if index >= 0:
                item = self.device_combo.model().item(index)
                item.setEnabled(False)
                item.setText(f"{DEVICES[choice]} — not available here")
                item.setToolTip(reason[:1].upper() + reason[1:] + ".")
        self.compile_check = QCheckBox("Compile the U-Net (torch.compile)")
        self.compile_check.setObjectName("compileCheck")
        self.compile_check.setToolTip(COMPILE_TIP)
        self.compile_check.setChecked(settings.compile_unet)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("", self.compile_check)
        self.device_combo.currentIndexChanged.connect(self._offer_compile)
        self._offer_compile()

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    @staticmethod
    def _choices(name: str, accessible: str, choices: dict[str, str], current: str, tip: str) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(name)
        combo.setAccessibleName(accessible)
        combo.setToolTip(tip)
        for key, label in choices.items():
            combo.addItem(label, key)
        combo.setCurrentIndex(max(0, combo.findData(current)))
        return combo

    def _offer_compile(self, *_args) -> None:
        offered = compile_offered(self.device_combo.currentData())
        self.compile_check.setEnabled(offered)
        self.compile_check.setToolTip(COMPILE_TIP if offered else NO_COMPILE_TIP)
        if not offered:
            self.compile_check.setChecked(False)

    def choose_mask_colour(self) -> None:
        colour = QColorDialog.getColor(self.mask_colour, self, "Mask colour")
        if colour.isValid():
            self.set_mask_colour(colour)

    def set_mask_colour(self, colour: QColor) -> None:
        self.mask_colour = QColor(colour)
        self._show_mask_colour()

    def _show_mask_colour(self) -> None:
        swatch = QPixmap(16, 16)
        swatch.fill(self.mask_colour)
        self.mask_colour_button.setIcon(QIcon(swatch))
        self.mask_colour_button.setText(self.mask_colour.name())

    def folders(self) -> list[str]:
        return self.models_folders.folders()

    def add_models_folder(self, folder: str) -> None:
        self.models_folders.add_folder(folder)

    def browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_edit.text() or str(default_output_root()))
        if folder:
            self.output_edit.setText(folder)

    def accept(self) -> None:
        self.settings.output_folder_setting = self.output_edit.text().strip()
        self.settings.models_folders = self.folders()
        self.settings.lora_folders = self.lora_folders.folders()
        self.settings.embedding_folders = self.embedding_folders.folders()
        self.settings.theme = self.theme_combo.currentData()
        self.settings.mask_colour = self.mask_colour.name()
        self.settings.mask_opacity = self.mask_opacity_spin.value()
        self.settings.preview_mode = self.preview_combo.currentData()
        self.settings.precision = self.precision_combo.currentData()
        self.settings.device = self.device_combo.currentData()
        self.settings.compile_unet = self.compile_check.isChecked()
        self.settings.sync()
        super().accept()


class FolderList(QWidget):
    """A list of folders with Add… and Remove: `{key}FoldersList`, `add{Key}FolderButton`, `remove{Key}FolderButton`."""

    def __init__(self, key: str, title: str, folders: list[str], tip: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = title
        self.list = QListWidget()
        self.list.setObjectName(f"{key}FoldersList")
        self.list.setAccessibleName(title)
        self.list.setToolTip(tip)
        self.list.addItems(folders)
        self.list.setMinimumHeight(70)
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        add.setObjectName(f"add{key.capitalize()}FolderButton")
        remove.setObjectName(f"remove{key.capitalize()}FolderButton")
        add.clicked.connect(self.browse)
        remove.clicked.connect(self.remove_selected)
        buttons = QVBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.list, 1)
        row.addLayout(buttons)

    def folders(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def add_folder(self, folder: str) -> None:
        if folder and folder not in self.folders():
            self.list.addItem(folder)

    def browse(self) -> None:
        self.add_folder(QFileDialog.getExistingDirectory(self, f"Add to {self.title.lower()}", str(Path.home())))

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
