"""Output files: numbered names are taken only when free (two processes never overwrite each other), every
final write is a temporary file renamed into place, and the suffix decides the format."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from sd_desktop.core.io import outputs
from sd_desktop.core.io.files import write_atomic
from sd_desktop.core.io.outputs import new_export_folder, save_animation, save_image, save_numbered


def coloured(value: int) -> Image.Image:
    return Image.new("RGB", (8, 8), (value, 0, 0))


def red_of(path) -> int:
    with Image.open(path) as image:
        return image.convert("RGB").getpixel((0, 0))[0]


def test_a_name_taken_meanwhile_moves_the_next_image_on_instead_of_overwriting_it(tmp_path, monkeypatch):
    # Both writers counted the folder before either saved: both would pick 00000.
    monkeypatch.setattr(outputs, "_next_number", lambda folder: 0)
    first = save_numbered(coloured(10), tmp_path, seed=5)
    second = save_numbered(coloured(20), tmp_path, seed=5)
    assert (first.name, second.name) == ("00000-5.png", "00001-5.png")
    assert (red_of(first), red_of(second)) == (10, 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000-5.png", "00001-5.png"]  # no temp files left


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from PIL import Image
    from sd_desktop.core.io.outputs import save_numbered
    folder, writer = Path(sys.argv[1]), int(sys.argv[2])
    for i in range(25):
        save_numbered(Image.new("RGB", (8, 8), (writer, i, 0)), folder, seed=writer)
""")


@pytest.mark.slow
def test_two_processes_saving_into_one_folder_keep_every_image(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(writer)]) for writer in (1, 2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    files = sorted(tmp_path.iterdir())
    assert len(files) == 50 and not any(f.name.startswith(".") for f in files)
    seen = set()
    for file in files:
        with Image.open(file) as image:
            seen.add(image.getpixel((0, 0))[:2])
        assert file.name.endswith(f"-{image.getpixel((0, 0))[0]}.png")  # the name's seed is the writer's
    assert seen == {(writer, i) for writer in (1, 2) for i in range(25)}


def test_the_suffix_decides_the_format(tmp_path):
    image = coloured(200)
    assert save_image(image, tmp_path / "a.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes
    assert save_image(image, tmp_path / "a.webp").read_bytes()[8:12] == b"WEBP"
    assert save_image(image, tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="use .png, .jpg or .webp"):
        save_image(image, tmp_path / "a.nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.png", "a.webp"]


class Exploding:
    """An encoder that fails half way, as a full disk would."""

    def save(self, file, **kwargs):
        file.write(b"GIF89a half")
        raise OSError("disk full")


def test_a_failed_animation_or_jpeg_leaves_the_old_file_and_no_temp_file(tmp_path):
    frames = [coloured(v) for v in (0, 100, 200)]
    gif = save_animation(frames, tmp_path / "morph.gif", duration_ms=50)
    with Image.open(gif) as animation:
        assert animation.n_frames == 3
    before = gif.read_bytes()
    with pytest.raises(OSError, match="disk full"):
        save_animation([Exploding(), *frames], tmp_path / "morph.gif")
    with pytest.raises(OSError, match="disk full"):
        write_atomic(tmp_path / "new.jpg", Exploding().save)
    assert gif.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["morph.gif"]


def test_export_folders_are_numbered_and_never_reused(tmp_path):
    first = new_export_folder(tmp_path)
    second = new_export_folder(tmp_path)
    assert (first.name, second.name) == ("interpolation-001", "interpolation-002")
    second.rmdir()
    (tmp_path / "interpolation-002").write_text("a file has the name")
    assert new_export_folder(tmp_path).name == "interpolation-003"


def test_the_default_output_folder_follows_the_xdg_pictures_folder(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("SD_DESKTOP_OUTPUT_DIR", "XDG_PICTURES_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert outputs.default_output_root() == home / "sd-desktop"  # no pictures folder at all
    (home / "Pictures").mkdir()
    assert outputs.default_output_root() == home / "Pictures" / "sd-desktop"
    (home / "Bilder").mkdir()  # a German desktop names it in user-dirs.dirs
    (home / ".config" / "user-dirs.dirs").write_text('# written by xdg-user-dirs-update\nXDG_PICTURES_DIR="$HOME/Bilder"\n')
    assert outputs.default_output_root() == home / "Bilder" / "sd-desktop"
    monkeypatch.setenv("SD_DESKTOP_OUTPUT_DIR", str(tmp_path / "mine"))
    assert outputs.default_output_root() == tmp_path / "mine"


def test_an_animation_that_plays_once(tmp_path):
    frames = [Image.new("RGB", (8, 8), (i * 60, 0, 0)) for i in range(3)]
    with Image.open(save_animation(frames, tmp_path / "once.gif", duration_ms=90, loop=None)) as gif:
        assert "loop" not in gif.info and gif.n_frames == 3  # no loop field: viewers play it once
    with Image.open(save_animation(frames, tmp_path / "ever.gif", loop=0)) as gif:
        assert gif.info["loop"] == 0
    with Image.open(save_animation(frames, tmp_path / "once.webp", loop=None)) as webp:
        assert webp.info.get("loop") == 1 and webp.n_frames == 3
