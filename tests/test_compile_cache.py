"""core.runtime.compile_cache: torch.compile's caches go to the user's cache folder (torch's default is the
temporary folder, emptied at each start on many systems); a user's own TORCHINDUCTOR_CACHE_DIR stands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sd_desktop.core.runtime.compile_cache import compile_cache_folder

HOME = Path("/home/ada")


@pytest.mark.parametrize("platform, env, expected", [
    ("linux", {}, HOME / ".cache/sd-desktop/torch-compile"),
    ("linux", {"XDG_CACHE_HOME": "/var/cache/ada"}, Path("/var/cache/ada/sd-desktop/torch-compile")),
    ("linux", {"XDG_CACHE_HOME": "relative/cache"}, HOME / ".cache/sd-desktop/torch-compile"),
    ("darwin", {}, HOME / "Library/Caches/sd-desktop/torch-compile"),
    ("win32", {"LOCALAPPDATA": "C:/Users/ada/AppData/Local"},
     Path("C:/Users/ada/AppData/Local/sd-desktop/cache/torch-compile")),
    ("win32", {}, HOME / "AppData/Local/sd-desktop/cache/torch-compile"),
    ("linux", {"SD_DESKTOP_CONFIG_DIR": "/tmp/settings", "XDG_CACHE_HOME": "/var/cache/ada"},
     Path("/tmp/settings/cache/torch-compile")),
])
def test_the_folder_is_the_platforms_user_cache_or_beside_moved_settings(platform, env, expected):
    assert compile_cache_folder(env, platform, HOME) == expected


def run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("TORCHINDUCTOR_CACHE_DIR", "SD_DESKTOP_CONFIG_DIR")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**clean, "SD_DESKTOP_CONFIG_DIR": str(tmp_path / "settings"), **env})


def test_the_command_line_points_torch_at_it_and_a_users_own_folder_stands(tmp_path):
    """The entry point (which also starts the app) sets it, before anything compiles."""
    image = tmp_path / "plain.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    code = ("import os\nfrom sd_desktop.cli import main\n"
            f"main(['info', {str(image)!r}])\nprint(os.environ['TORCHINDUCTOR_CACHE_DIR'])\n")
    result = run(code, tmp_path)
    assert result.stdout.splitlines()[-1] == str(tmp_path / "settings" / "cache" / "torch-compile"), result.stderr
    result = run(code, tmp_path, TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "mine"))
    assert result.stdout.splitlines()[-1] == str(tmp_path / "mine"), result.stderr
    result = run(code, tmp_path, TORCHINDUCTOR_CACHE_DIR="")  # (empty: torch would cache in the working folder)
    assert result.stdout.splitlines()[-1] == str(tmp_path / "settings" / "cache" / "torch-compile"), result.stderr


@pytest.mark.slow
def test_torch_keeps_a_compile_there(tmp_path):
    code = ("import torch\nfrom sd_desktop.core.runtime.compile_cache import keep_compiled_code\n"
            "folder = keep_compiled_code()\n"
            "f = torch.compile(lambda x: torch.sin(x) * 2 + 1)\n"
            "x = torch.randn(64)\n"
            "torch.testing.assert_close(f(x), torch.sin(x) * 2 + 1)\n"
            "print(folder)\n")
    result = run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.splitlines()[-1])
    assert folder == tmp_path / "settings" / "cache" / "torch-compile"
    assert any(path.suffix in (".py", ".so", ".cpp") for path in folder.rglob("*")), sorted(folder.rglob("*"))[:10]


def test_our_cache_is_emptied_past_its_limit_and_a_users_own_never(tmp_path, monkeypatch):
    from sd_desktop.core.runtime import compile_cache
    from sd_desktop.core.runtime.compile_cache import empty_when_over, folder_size, keep_compiled_code

    folder = tmp_path / "torch-compile"
    (folder / "fxgraph" / "ab").mkdir(parents=True)
    (folder / "fxgraph" / "ab" / "entry").write_bytes(b"x" * 3000)
    (folder / "kernel.so").write_bytes(b"y" * 2000)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_bytes(b"k" * 7000)
    (folder / "link").symlink_to(elsewhere)  # a link inside is neither followed, nor counted, nor emptied
    assert folder_size(folder) == 5000 and folder_size(tmp_path / "none") == 0
    assert not empty_when_over(folder, limit=5000) and folder_size(folder) == 5000
    assert empty_when_over(folder, limit=4999)
    assert not folder.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]  # (nothing left aside)
    assert (elsewhere / "keep").stat().st_size == 7000

    moved = tmp_path / "moved-cache"  # the cache folder itself a link (moved to a bigger disk): left as it is
    moved.mkdir()
    (moved / "kernel.so").write_bytes(b"m" * 3000)
    folder.symlink_to(moved)
    assert not empty_when_over(folder, limit=10) and (moved / "kernel.so").exists() and folder.is_symlink()
    folder.unlink()
    leftover = tmp_path / "torch-compile.old-12345"  # one an earlier start could not remove: removed now
    leftover.mkdir()
    (leftover / "x").write_bytes(b"x")
    assert not empty_when_over(folder, limit=10) and not leftover.exists()

    (folder / "x").mkdir(parents=True)
    (folder / "x" / "kernel.so").write_bytes(b"z" * 100)
    monkeypatch.setattr(compile_cache, "LIMIT_BYTES", 50)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(folder))  # the user's own: kept, however large
    assert keep_compiled_code() == folder and folder_size(folder) == 100
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    monkeypatch.setattr(compile_cache, "compile_cache_folder", lambda: folder)  # ours: emptied
    assert keep_compiled_code() == folder and not folder.exists()
