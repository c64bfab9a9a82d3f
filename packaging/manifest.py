"""What the standalone build is made of: read by sd-desktop.spec (PyInstaller) and by tests/test_packaging.py.

Paths are relative to the repository root. Data files land in the build under the folder given, so
that `sd_desktop.resources_path.resources_dir()` finds them at `sys._MEIPASS/resources`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NAME = "sd-desktop"  # the program and the build folder: dist/sd-desktop/sd-desktop
APP_ID = "io.github.sd_desktop.sd_desktop"  # reverse-DNS id: .desktop entry, AppStream, macOS bundle, Wayland app id
ENTRY = "packaging/sd_desktop_main.py"

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICON_SVG = "resources/icons/sd-desktop.svg"
ICON_WINDOWS = "resources/icons/sd-desktop.ico"
ICON_MACOS = "resources/icons/sd-desktop.icns"

# (file, folder in the build): every file here must exist (tests/test_packaging.py checks)
DATAS: list[tuple[str, str]] = [
    ("resources/clip/bpe_simple_vocab_16e6.txt.gz", "resources/clip"),  # the tokenizer's vocabulary
    ("resources/clip/LICENSE-open_clip.txt", "resources/clip"),
    ("resources/clip/README.md", "resources/clip"),
    (ICON_SVG, "resources/icons"),
    *[(f"resources/icons/sd-desktop-{size}.png", "resources/icons") for size in ICON_SIZES],
]

# the bundled demo model: whatever the trainer exported there (resources_path.bundled_model reads the same glob)
MODEL_GLOB = ("resources/models", "*.safetensors")
# folders bundled whole: the demo model's TAESD, the bundled upscalers with their licences
FOLDERS = ("resources/models/taesd", "resources/upscalers")

# sd_desktop.core loads its modules lazily (importlib), which PyInstaller's analysis cannot follow
HIDDEN_IMPORTS_FROM = ("sd_desktop",)

# what the program never imports but the build machine may have: test-only references, other GUI toolkits
EXCLUDES = [
    "diffusers", "transformers", "accelerate", "huggingface_hub", "tokenizers",
    "pytest", "_pytest", "pytestqt", "py",
    "tkinter", "_tkinter", "IPython", "jupyter_client", "matplotlib", "pandas", "scipy",
    "torchvision", "torchaudio", "tensorboard", "torch.utils.tensorboard",
    "PyQt5", "PyQt6", "PySide2",
]


def model_files(root: Path = ROOT) -> list[Path]:
    folder, pattern = MODEL_GLOB
    return sorted((root / folder).glob(pattern))


def datas(root: Path = ROOT) -> list[tuple[str, str]]:
    """(absolute source, destination folder) for PyInstaller's Analysis: the fixed files and the demo model."""
    entries = [(str(root / source), dest) for source, dest in DATAS]
    entries += [(str(path), MODEL_GLOB[0]) for path in model_files(root)]
    entries += [(str(path), folder) for folder in FOLDERS for path in sorted((root / folder).glob("*"))
                if path.is_file()]
    return entries


def missing(root: Path = ROOT) -> list[str]:
    """The files DATAS names that are not there (empty when the build has everything it needs but the model)."""
    return [source for source, _ in DATAS if not (root / source).is_file()] + \
        [path for path in (ENTRY,) if not (root / path).is_file()]


def platform_icon(platform: str = sys.platform) -> str | None:
    if platform == "win32":
        return str(ROOT / ICON_WINDOWS)
    if platform == "darwin":
        return str(ROOT / ICON_MACOS)
    return None  # Linux: the .desktop entry names the icon; the window sets its own (app/main.py)
