"""The standalone build's inputs, the Linux desktop integration, the icons, and --version.

The build itself (packaging/build.sh) is too heavy for every CI run; these tests check what it is
made of: every file the spec bundles exists, the resources are found from a frozen layout, the
.desktop entry and AppStream metainfo validate, and the icons are there at every size.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

import sd_desktop
from sd_desktop import resources_path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"


def load_manifest():
    spec = importlib.util.spec_from_file_location("sd_desktop_build_manifest", PACKAGING / "manifest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


manifest = load_manifest()
DESKTOP = PACKAGING / "linux" / f"{manifest.APP_ID}.desktop"
METAINFO = PACKAGING / "linux" / f"{manifest.APP_ID}.metainfo.xml"


def test_every_file_the_spec_bundles_exists():
    assert manifest.missing() == []
    for source, dest in manifest.DATAS:
        assert (ROOT / source).is_file(), source
        assert dest == str(Path(source).parent).replace(os.sep, "/"), "files keep their place under resources/"
        assert dest.startswith("resources/")
    for path in (manifest.ENTRY, manifest.ICON_WINDOWS, manifest.ICON_MACOS, "packaging/build.sh"):
        assert (ROOT / path).is_file(), path
    spec = (PACKAGING / "sd-desktop.spec").read_text()
    assert "manifest.datas()" in spec and "manifest.EXCLUDES" in spec and "COLLECT(" in spec  # one-folder


def test_the_spec_bundles_the_demo_model():
    model = resources_path.bundled_model()
    assert model is not None, "resources/models/ must hold the demo model"
    assert (model.resolve(), "resources/models") in [(Path(s).resolve(), d) for s, d in manifest.datas()]


def test_the_spec_bundles_the_upscalers_and_the_demo_models_taesd():
    bundled = {(Path(source).name, dest) for source, dest in manifest.datas()}
    assert ("realesr-animevideov3-x4.safetensors", "resources/upscalers") in bundled
    assert ("sd-desktop-shapes.safetensors", "resources/models/taesd") in bundled


def test_entry_point_is_the_cli():
    text = (ROOT / manifest.ENTRY).read_text()
    assert "from sd_desktop.cli import main" in text and "freeze_support()" in text


def test_resources_are_found_in_a_frozen_layout(tmp_path, monkeypatch):
    """Lay the bundled data out as PyInstaller does (sys._MEIPASS/<dest>/<file>) and look it up there."""
    frozen = tmp_path / "_internal"
    for source, dest in manifest.datas():
        (frozen / dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, frozen / dest)
    (frozen / "resources" / "models").mkdir(exist_ok=True)
    model = frozen / "resources" / "models" / "demo.safetensors"
    if not any((frozen / "resources" / "models").iterdir()):
        model.write_bytes(b"")  # the lookup only needs the name
    monkeypatch.setattr(sys, "_MEIPASS", str(frozen), raising=False)
    assert resources_path.resources_dir() == frozen / "resources"
    assert resources_path.bundled_model().parent == frozen / "resources" / "models"
    vocabulary = resources_path.resource("clip", "bpe_simple_vocab_16e6.txt.gz")
    assert vocabulary.parent == frozen / "resources" / "clip"
    assert gzip.decompress(vocabulary.read_bytes()).startswith(b"\"bpe_simple_vocab_16e6.txt#version: 0.2")
    assert sorted(p.name for p in resources_path.resource("icons").glob("*.png")) == sorted(
        f"sd-desktop-{s}.png" for s in manifest.ICON_SIZES)


@pytest.mark.parametrize("size", manifest.ICON_SIZES)
def test_icon_png_at_every_size(size):
    path = ROOT / "resources" / "icons" / f"sd-desktop-{size}.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (size, size)
        assert image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] == 0, "transparent outside the rounded square"
        r, g, b, a = image.getpixel((size // 2, size // 2))
        assert a == 255


def test_icon_svg_ico_and_icns():
    svg = ET.parse(ROOT / manifest.ICON_SVG).getroot()
    assert svg.tag.endswith("svg")
    _, _, w, h = (float(v) for v in svg.get("viewBox").split())
    assert w == h
    with Image.open(ROOT / manifest.ICON_WINDOWS) as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    with Image.open(ROOT / manifest.ICON_MACOS) as icns:
        assert icns.size == (1024, 1024)  # 512@2x
        assert {(16, 16, 2), (32, 32, 2), (128, 128, 1), (256, 256, 1), (512, 512, 1)} <= set(icns.info["sizes"])


def test_the_app_sets_its_icon_and_desktop_file_name(qapp):
    from sd_desktop.app.main import DESKTOP_FILE_NAME, app_icon

    assert DESKTOP_FILE_NAME == manifest.APP_ID
    icon = app_icon()
    assert not icon.isNull()
    assert {s.width() for s in icon.availableSizes()} == set(manifest.ICON_SIZES)


def test_desktop_entry_and_metainfo_agree():
    entry = dict(line.split("=", 1) for line in DESKTOP.read_text().splitlines() if "=" in line)
    assert entry["Exec"].split()[0] == "sd-desktop"
    assert entry["Icon"] == manifest.APP_ID
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    root = ET.parse(METAINFO).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == manifest.APP_ID
    assert root.findtext("launchable") == DESKTOP.name
    assert root.findtext("metadata_license") == "MIT" and root.findtext("project_license") == "MIT"
    assert root.find("content_rating") is not None
    assert root.findtext("provides/binary") == "sd-desktop"
    assert root.find("releases/release").get("version") == sd_desktop.__version__


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-validate is not installed "
                    "(Debian: apt-get install desktop-file-utils)")
def test_desktop_entry_validates():
    out = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "error" not in out.stdout.lower() and "warning" not in out.stdout.lower(), out.stdout


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstreamcli is not installed "
                    "(Debian: apt-get install appstream)")
def test_metainfo_validates():
    out = subprocess.run(["appstreamcli", "validate", "--no-net", "--pedantic", str(METAINFO)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not re.search(r"^[EWI]:", out.stdout, re.MULTILINE), out.stdout


def test_build_script_builds_then_self_tests_and_stays_out_of_ci():
    script = (PACKAGING / "build.sh").read_text()
    assert script.index("packaging/sd-desktop.spec") < script.index("--self-test")
    assert "set -euo pipefail" in script
    if shutil.which("bash"):
        assert subprocess.run(["bash", "-n", str(PACKAGING / "build.sh")]).returncode == 0
    ci = ROOT / ".ci" / "run"
    if ci.exists():
        assert "build.sh" not in ci.read_text() and "PyInstaller" not in ci.read_text()


def test_version_from_the_command_and_python_dash_m():
    expected = f"sd-desktop {sd_desktop.__version__}"
    module = subprocess.run([sys.executable, "-m", "sd_desktop", "--version"], capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout.strip() == expected
    script = shutil.which("sd-desktop", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if script is None:
        pytest.skip("the sd-desktop command is not installed (pip install -e .)")
    command = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert command.returncode == 0 and command.stdout.strip() == expected
    # and the rest of the interface is the same program
    help_module = subprocess.run([sys.executable, "-m", "sd_desktop", "--help"], capture_output=True, text=True).stdout
    help_command = subprocess.run([script, "--help"], capture_output=True, text=True).stdout
    assert help_module == help_command and "--self-test" in help_command


@pytest.mark.skipif(sys.platform != "linux" or shutil.which("bash") is None, reason="the Linux installer")
def test_linux_install_script_installs_and_uninstalls_a_built_folder(tmp_path):
    program = tmp_path / "dist" / "sd-desktop"  # a stand-in for the build: the program and its bundled icons
    icons = program / "_internal" / "resources" / "icons"
    icons.mkdir(parents=True)
    for source, dest in manifest.DATAS:
        if dest == "resources/icons":
            shutil.copy(ROOT / source, icons)
    (program / "sd-desktop").write_text("#!/bin/sh\necho sd-desktop\n")
    (program / "sd-desktop").chmod(0o755)
    prefix = tmp_path / "prefix with space"
    env = {**os.environ, "PREFIX": str(prefix)}
    script = str(PACKAGING / "linux" / "install.sh")

    out = subprocess.run(["bash", script, str(program)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    lib = prefix / "lib" / "sd-desktop"
    assert (prefix / "bin" / "sd-desktop").resolve() == (lib / "sd-desktop").resolve()
    assert subprocess.run([str(prefix / "bin" / "sd-desktop")], capture_output=True, text=True).stdout == "sd-desktop\n"
    entry = prefix / "share" / "applications" / DESKTOP.name
    assert f'Exec="{lib}/sd-desktop"' in entry.read_text().splitlines()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and "error" not in check.stdout.lower(), check.stdout
    assert (prefix / "share" / "metainfo" / METAINFO.name).read_bytes() == METAINFO.read_bytes()
    hicolor = prefix / "share" / "icons" / "hicolor"
    for size in manifest.ICON_SIZES:
        with Image.open(hicolor / f"{size}x{size}" / "apps" / f"{manifest.APP_ID}.png") as image:
            assert image.size == (size, size)
    assert (hicolor / "scalable" / "apps" / f"{manifest.APP_ID}.svg").is_file()

    out = subprocess.run(["bash", script, "--uninstall"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert not lib.exists() and not (prefix / "bin" / "sd-desktop").exists() and not entry.exists()
    assert not list(hicolor.rglob(f"{manifest.APP_ID}.*"))


def test_pyproject_installs_every_package():
    """A package missing from pyproject's list would be missing from every install (the checkout hides it)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(root).parts) for init in (root / "sd_desktop").rglob("__init__.py")}
    assert found | {"sd_desktop.resources"} == listed
