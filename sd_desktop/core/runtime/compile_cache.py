"""Where torch.compile keeps what it compiled, so that only the first run at a shape pays for the compile.

torch caches a compile on disk (inductor's FX graph cache, AOTAutograd's cache, the C++ kernels, the autotuning)
in its temporary folder, `$TMPDIR/torchinductor_<user>` by default, which many systems empty at every start
(Fedora, and Debian from 13, keep /tmp in memory; Windows' Storage Sense cleans %TEMP%). The app and the CLI point
it at the user's cache folder instead (`keep_compiled_code`, called by their entry point like core.runtime.allocator); a
library user's process is left as it is.

What the cache saves, measured on a 2-core AVX2 CPU (full-size SD 1.5, fp32, a 512² CFG step): the default mode
compiled for 131.8 s with an empty cache and 22.6 s in the next process (the demo model: 66.5 s and 5.8 s).
With frozen weights (max-autotune on a CPU) torch keeps only the autotuning and the kernels: freezing packs the
weights into oneDNN tensors, which the FX graph cache cannot store, so the next process still takes 131 s there
(the demo model: 62 s against 132 s).

Each compiled shape adds about 12 MB there, and torch never removes an entry (not even those of an older torch,
whose keys no longer match), so the folder is emptied when it has grown past LIMIT_BYTES, at the start of the next
process, before anything compiles: the next compile at each shape pays again, once.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Mapping

VARIABLE = "TORCHINDUCTOR_CACHE_DIR"  # torch's own setting: a user who sets it keeps it
LIMIT_BYTES = 2 << 30  # 2 GiB: about 170 compiled shapes

log = logging.getLogger(__name__)


def compile_cache_folder(env: Mapping[str, str] | None = None, platform: str | None = None,
                         home: Path | None = None) -> Path:
    """The folder for torch.compile's caches: beside the settings when SD_DESKTOP_CONFIG_DIR moves them (as the
    app's other caches), else the platform's per-user cache folder."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home
    if env.get("SD_DESKTOP_CONFIG_DIR"):
        return Path(env["SD_DESKTOP_CONFIG_DIR"]).expanduser() / "cache" / "torch-compile"
    if platform == "win32":
        base = Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") else home / "AppData" / "Local"
        return base / "sd-desktop" / "cache" / "torch-compile"
    if platform == "darwin":
        return home / "Library" / "Caches" / "sd-desktop" / "torch-compile"
    xdg = env.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if Path(xdg).is_absolute() else home / ".cache"  # (a relative one is to be ignored: XDG spec)
    return base / "sd-desktop" / "torch-compile"


def keep_compiled_code() -> Path:
    """Point torch.compile's caches at compile_cache_folder(), unless TORCHINDUCTOR_CACHE_DIR names a folder
    already (an empty one counts as unset: torch would cache in the working folder). Call it before anything
    compiles (torch reads the setting at its first compile). The folder is made by torch when something is
    compiled, not here. Returns the folder in use."""
    if not os.environ.get(VARIABLE):
        os.environ[VARIABLE] = str(compile_cache_folder())
        empty_when_over(Path(os.environ[VARIABLE]))  # (ours only: a user's own folder is theirs to keep)
    return Path(os.environ[VARIABLE])


def folder_size(folder: Path) -> int:
    """Bytes in the files below `folder` (0 when it is not there); links are not followed."""
    total, pending = 0, [folder]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def empty_when_over(folder: Path, limit: int | None = None) -> bool:
    """Empty the compile cache when its files take more than `limit` bytes (LIMIT_BYTES); True when it did. The folder is first
    renamed aside (one step, so a compile starting meanwhile finds a fresh folder, not half a cache), then
    removed; a file that cannot be removed is left (a cache, never the user's work)."""
    limit = LIMIT_BYTES if limit is None else limit
    for leftover in folder.parent.glob(f"{folder.name}.old-*"):  # (one an earlier start could not remove)
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
    if folder.is_symlink():  # the user put it elsewhere on purpose: theirs to clean
        return False
    size = folder_size(folder)
    if size <= limit:
        return False
    aside = folder.with_name(f"{folder.name}.old-{os.getpid()}")
    try:
        folder.rename(aside)
    except OSError as exc:
        log.warning("the compile cache %s holds %.1f GB and could not be emptied: %s", folder, size / 1e9, exc)
        return False
    shutil.rmtree(aside, ignore_errors=True)
    log.info("emptied the compile cache %s (%.1f GB, over %.1f GB)", folder, size / 1e9, limit / 1e9)
    return True
