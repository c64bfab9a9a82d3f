"""Preferences kept with QSettings: output folder, models folders, recent models, theme, device, precision,
the controls and the window's geometry. (The dialog that edits them is ui/preferences_dialog.py.)

SD_DESKTOP_CONFIG_DIR moves the settings file (tests and portable installs use it);
SD_DESKTOP_OUTPUT_DIR overrides the output folder chosen in Preferences.
Lists and dicts are stored as JSON text: QSettings' INI lists lose their type with one element.
"""

from __future__ import annotations

import re

import json
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from sd_desktop.core.io.outputs import default_output_root

ORGANIZATION = "sd-desktop"
APPLICATION = "sd-desktop"
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

    def cache_folder(self) -> Path:
        """Where caches go (history thumbnails): beside the settings when SD_DESKTOP_CONFIG_DIR moves them,
        else the system's cache folder for the app."""
        if os.environ.get("SD_DESKTOP_CONFIG_DIR"):
            return Path(os.environ["SD_DESKTOP_CONFIG_DIR"]).expanduser() / "cache"
        from PySide6.QtCore import QStandardPaths

        location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
        return Path(location) if location else Path(self.q.fileName()).parent / "cache"

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
    def lora_folders(self) -> list[str]:
        """LoRA folders the user added (models/Lora and models/loras beside the models folders are searched too)."""
        return [str(f) for f in self.get_json("extras/lora_folders", [])]

    @lora_folders.setter
    def lora_folders(self, folders: list[str]) -> None:
        self.set_json("extras/lora_folders", list(dict.fromkeys(str(f) for f in folders if str(f).strip())))

    @property
    def embedding_folders(self) -> list[str]:
        """Embedding folders the user added (embeddings/ beside the models folders is searched too)."""
        return [str(f) for f in self.get_json("extras/embedding_folders", [])]

    @embedding_folders.setter
    def embedding_folders(self, folders: list[str]) -> None:
        self.set_json("extras/embedding_folders", list(dict.fromkeys(str(f) for f in folders if str(f).strip())))

    def addon_folders(self) -> tuple[list[str], list[str]]:
        """(LoRA folders, embedding folders) searched: the user's, then A1111's and ComfyUI's places beside
        each models folder that exist."""
        from sd_desktop.core.lora.tags import embedding_folders_of, lora_folders_of

        loras = self.lora_folders + [str(p) for p in lora_folders_of(self.models_folders)]
        embeddings = self.embedding_folders + [str(p) for p in embedding_folders_of(self.models_folders)]
        return list(dict.fromkeys(loras)), list(dict.fromkeys(embeddings))

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

    def remove_recent_model(self, path: str) -> None:
        self.set_json("models/recent", [p for p in self.recent_models if p != path])

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
    def mask_colour(self) -> str:
        """The mask overlay's colour, "#rrggbb" (red by default: choose another on a red picture)."""
        value = self.get_str("view/mask_colour", DEFAULT_MASK_COLOUR)
        return value if re.fullmatch(r"#[0-9a-fA-F]{6}", value) else DEFAULT_MASK_COLOUR

    @mask_colour.setter
    def mask_colour(self, value: str) -> None:
        self.q.setValue("view/mask_colour", value)

    @property
    def mask_opacity(self) -> int:
        """The mask overlay's opacity in percent, 10 to 100."""
        try:
            value = int(self.get_str("view/mask_opacity", str(DEFAULT_MASK_OPACITY)))
        except ValueError:
            return DEFAULT_MASK_OPACITY
        return min(100, max(10, value))

    @mask_opacity.setter
    def mask_opacity(self, value: int) -> None:
        self.q.setValue("view/mask_opacity", str(int(value)))

    @property
    def preview_mode(self) -> str:
        """"auto" (a TAESD that comes with the model, as the demo's does, else quick), "quick" (the latents' linear
        projection, 1/8 size, free) or "taesd" (full size from a TAESD found in the models folders' vae_approx /
        VAE-taesd; costs a tiny decode per step)."""
        value = self.get_str("view/previews", "auto")
        return value if value in PREVIEW_MODES else "auto"

    @preview_mode.setter
    def preview_mode(self, value: str) -> None:
        self.q.setValue("view/previews", value)

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


DEFAULT_MASK_COLOUR, DEFAULT_MASK_OPACITY = "#ff2828", 43
PREVIEW_MODES = {"auto": "Automatic (TAESD when the model comes with one)", "quick": "Quick (small, free)",
                 "taesd": "TAESD (full size, a tiny decode per step)"}
PRECISIONS = {"auto": "Automatic (fastest safe for the device)", "fp32": "float32 (exact)",
              "bf16": "bfloat16 (GPUs; CPUs with AMX or AVX512-BF16)", "fp16": "float16 (GPUs)"}
PRECISION_TIP = ("The number format the model computes in. Applies when a model is loaded. Automatic takes "
                 "bfloat16 where the device computes it natively (recent GPUs; CPUs with AMX or AVX512-BF16, where "
                 "it is several times faster than float32), float16 on older CUDA GPUs and Apple's MPS, float32 on "
                 "other CPUs: there bfloat16 and float16 are emulated and slower than float32.")
DEVICES = {"auto": "Automatic (GPU when there is one)", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}




def compile_offered(device_choice: str, platform: str | None = None, machine: str | None = None) -> bool:
    """torch.compile works on CPUs and CUDA GPUs, not on Apple's MPS: not offered for "mps", nor for
    "auto" on an Apple Silicon Mac, where auto means MPS (core.runtime.devices.compile_supported decides
    for a loaded device)."""
    import platform as _platform
    import sys

    platform = sys.platform if platform is None else platform
    machine = _platform.machine() if machine is None else machine
    if device_choice == "mps":
        return False
    return not (device_choice == "auto" and platform == "darwin" and machine == "arm64")
