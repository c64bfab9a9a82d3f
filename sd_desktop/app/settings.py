"""Preferences kept with QSettings, finding model files, and the Preferences dialog.

SD_DESKTOP_CONFIG_DIR moves the settings file (tests and portable installs use it);
SD_DESKTOP_OUTPUT_DIR overrides the output folder chosen in Preferences.
Lists and dicts are stored as JSON text: QSettings' INI lists lose their type with one element.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
    QPushButton, QVBoxLayout, QWidget,
)

from sd_desktop.core.io.outputs import default_output_root

ORGANIZATION = "sd-desktop"
APPLICATION = "sd-desktop"
MODEL_SUFFIXES = (".safetensors", ".ckpt")
THEMES = {"dark": "Dark", "light": "Light (system palette)"}


def open_settings() -> QSettings:
    folder = os.environ.get("SD_DESKTOP_CONFIG_DIR")
    if folder:
        Path(folder).expanduser().mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder).expanduser() / "sd-desktop.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


class AppSettings:
    """Typed access to the few things sd-desktop remembers."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings or open_settings()

    # -- plumbing
    def get_json(self, key: str, default):
        raw = self.q.value(key)
        if raw in (None, ""):
            return default
        try:
            value = json.loads(str(raw))
        except ValueError:
            return default
        return value if isinstance(value, type(default)) else default

    def set_json(self, key: str, value) -> None:
        self.q.setValue(key, json.dumps(value))

    def get_str(self, key: str, default: str = "") -> str:
        value = self.q.value(key)
        return default if value is None else str(value)

    def get_bytes(self, key: str) -> QByteArray | None:
        value = self.q.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def sync(self) -> None:
        self.q.sync()

    # -- output folder
    @property
    def output_override(self) -> str | None:
        return os.environ.get("SD_DESKTOP_OUTPUT_DIR") or None

    @property
    def output_folder_setting(self) -> str:
        """The folder chosen in Preferences ("" = the default Pictures/sd-desktop)."""
        return self.get_str("output/folder")

    @output_folder_setting.setter
    def output_folder_setting(self, folder: str) -> None:
        self.q.setValue("output/folder", folder)

    @property
    def output_root(self) -> Path:
        """Where images go: SD_DESKTOP_OUTPUT_DIR, else Preferences, else Pictures/sd-desktop."""
        if self.output_override:
            return Path(self.output_override).expanduser()
        chosen = self.output_folder_setting
        return Path(chosen).expanduser() if chosen else default_output_root()

    # -- models
    @property
    def models_folders(self) -> list[str]:
        return [str(f) for f in self.get_json("models/folders", [])]

    @models_folders.setter
    def models_folders(self, folders: list[str]) -> None:
        self.set_json("models/folders", list(dict.fromkeys(str(f) for f in folders if str(f).strip())))

    @property
    def last_model(self) -> str:
        """"" = the bundled demo model."""
        return self.get_str("models/last")

    @last_model.setter
    def last_model(self, path: str) -> None:
        self.q.setValue("models/last", path)

    @property
    def recent_models(self) -> list[str]:
        """Model files opened with Open… (not in a models folder), newest first."""
        return self.get_json("models/recent", [])

    def add_recent_model(self, path: str) -> None:
        self.set_json("models/recent", [path, *[p for p in self.recent_models if p != path]][:10])

    # -- controls, window, theme
    @property
    def controls(self) -> dict:
        return self.get_json("controls/values", {})

    @controls.setter
    def controls(self, values: dict) -> None:
        self.set_json("controls/values", values)

    @property
    def theme(self) -> str:
        value = self.get_str("view/theme", "dark")
        return value if value in THEMES else "dark"

    @theme.setter
    def theme(self, name: str) -> None:
        self.q.setValue("view/theme", name)

    @property
    def precision(self) -> str:
        """"auto" (the fastest safe precision for the device; see core.devices) or fp32 / bf16 / fp16."""
        value = self.get_str("model/precision", "auto")
        return value if value in PRECISIONS else "auto"

    @precision.setter
    def precision(self, value: str) -> None:
        self.q.setValue("model/precision", value)

    @property
    def compile_unet(self) -> bool:
        return self.get_str("model/compile", "false") == "true"

    @compile_unet.setter
    def compile_unet(self, value: bool) -> None:
        self.q.setValue("model/compile", "true" if value else "false")

    @property
    def device(self) -> str:
        value = self.get_str("model/device", "auto")
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self.q.setValue("model/device", value)


def scan_models(folders: list[str], max_depth: int = 3) -> list[Path]:
    """*.safetensors / *.ckpt files and diffusers folders (model_index.json) under each folder.

    A1111 (models/Stable-diffusion) and ComfyUI (models/checkpoints) users keep models in sub-folders,
    so a few levels are searched. Hidden folders are skipped.
    """
    found: list[Path] = []
    for folder in folders:
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            if (here / "model_index.json").is_file():
                found.append(here)
                dirnames.clear()
                continue
            found.extend(here / name for name in sorted(filenames, key=str.lower)
                         if name.lower().endswith(MODEL_SUFFIXES) and not name.startswith("."))
            depth = len(here.relative_to(root).parts)
            dirnames[:] = [] if depth >= max_depth else sorted((d for d in dirnames if not d.startswith(".")), key=str.lower)
    return list(dict.fromkeys(found))


PRECISIONS = {"auto": "Automatic (fastest safe for the device)", "fp32": "float32 (exact, slowest)",
              "bf16": "bfloat16", "fp16": "float16 (GPUs)"}
DEVICES = {"auto": "Automatic (GPU when there is one)", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}


class PreferencesDialog(QDialog):
    """Output folder, models folders and theme. accept() writes them to the settings."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None):
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

        self.folders_list = QListWidget()
        self.folders_list.setObjectName("modelsFoldersList")
        self.folders_list.setAccessibleName("Models folders")
        self.folders_list.setToolTip("Folders searched for .safetensors / .ckpt files and diffusers folders, "
                                     "e.g. AUTOMATIC1111's models/Stable-diffusion or ComfyUI's models/checkpoints")
        self.folders_list.addItems(settings.models_folders)
        self.folders_list.setMinimumHeight(110)
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        add.setObjectName("addModelsFolderButton")
        remove.setObjectName("removeModelsFolderButton")
        add.clicked.connect(self.browse_models_folder)
        remove.clicked.connect(self.remove_selected_folder)
        folder_buttons = QVBoxLayout()
        folder_buttons.addWidget(add)
        folder_buttons.addWidget(remove)
        folder_buttons.addStretch(1)
        folders_row = QHBoxLayout()
        folders_row.addWidget(self.folders_list, 1)
        folders_row.addLayout(folder_buttons)

        self.theme_combo = self._choices("themeCombo", "Theme", THEMES, settings.theme,
                                         "The window's colours: dark, or the system's light palette.")

        form = QFormLayout()
        form.addRow("Output folder", output_row)
        if settings.output_override:
            note = QLabel(f"SD_DESKTOP_OUTPUT_DIR is set: images go to {settings.output_override} while it is.")
            note.setWordWrap(True)
            form.addRow("", note)
        form.addRow("Models folders", folders_row)
        form.addRow("Theme", self.theme_combo)
        self.precision_combo = self._choices("precisionCombo", "Precision", PRECISIONS, settings.precision,
                                             "The number format the model computes in. Applies when a model is loaded.")
        self.device_combo = self._choices("deviceCombo", "Device", DEVICES, settings.device,
                                          "Where the model runs. Applies when a model is loaded.")
        self.compile_check = QCheckBox("Compile the U-Net (torch.compile)")
        self.compile_check.setObjectName("compileCheck")
        self.compile_check.setToolTip("The first image at each size waits while the U-Net compiles (about two minutes "
                                      "for SD 1.5 on a CPU); later ones are faster (18% per step measured on a CPU).")
        self.compile_check.setChecked(settings.compile_unet)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("", self.compile_check)

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

    def folders(self) -> list[str]:
        return [self.folders_list.item(i).text() for i in range(self.folders_list.count())]

    def add_models_folder(self, folder: str) -> None:
        if folder and folder not in self.folders():
            self.folders_list.addItem(folder)

    def browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_edit.text() or str(default_output_root()))
        if folder:
            self.output_edit.setText(folder)

    def browse_models_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a models folder", str(Path.home()))
        self.add_models_folder(folder)

    def remove_selected_folder(self) -> None:
        for item in self.folders_list.selectedItems():
            self.folders_list.takeItem(self.folders_list.row(item))

    def accept(self) -> None:
        self.settings.output_folder_setting = self.output_edit.text().strip()
        self.settings.models_folders = self.folders()
        self.settings.theme = self.theme_combo.currentData()
        self.settings.precision = self.precision_combo.currentData()
        self.settings.device = self.device_combo.currentData()
        self.settings.compile_unet = self.compile_check.isChecked()
        self.settings.sync()
        super().accept()
