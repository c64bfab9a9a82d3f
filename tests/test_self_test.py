"""`sd-desktop --self-test`: passes on a working model, fails with one clear line otherwise, never needs Qt."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
import torch

from sd_desktop.resources_path import bundled_model
from sd_desktop.self_test import run_self_test

from tiny_models import save_single_file, tiny_parts


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_single_file(tiny_parts(seed=70), tmp_path_factory.mktemp("model") / "tiny.safetensors")


def python(*args):
    # one thread: a tiny model's ops are too small to share, and on a busy machine spinning threads cost seconds
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("QT_QPA_PLATFORM", None)  # as on a machine with no display settings: the self-test must not care
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


def assert_ok_line(out):
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    line = lines[0]
    assert line.startswith("sd-desktop self-test ok: txt2img "), line
    for mode in ("txt2img", "img2img", "inpaint", "interpolation"):
        assert f"{mode} " in line and " s," in line
    assert "64x64" in line
    assert "Traceback" not in out.stderr
    return line


@pytest.mark.slow
def test_self_test_passes_on_a_model_and_never_imports_qt(model_file):
    # the command's own code path (cli.main), in a fresh interpreter, then a look at what it imported
    code = ("import sys; from sd_desktop.cli import main; rc = main(['--self-test', sys.argv[1]]); "
            "qt = sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))); "
            "print('qt modules:', qt, file=sys.stderr); sys.exit(rc)")
    out = python("-c", code, model_file)
    line = assert_ok_line(out)
    assert "model tiny loaded in" in line and "cpu" in line
    assert "qt modules: []" in out.stderr


def test_without_a_bundled_model_it_fails_with_one_line(monkeypatch):
    monkeypatch.setattr("sd_desktop.resources_path.bundled_model", lambda: None)
    out, err = io.StringIO(), io.StringIO()
    assert run_self_test(None, out=out, err=err) == 1
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sd-desktop self-test FAILED at loading the model: the bundled demo model is missing")
    assert "reinstall sd-desktop" in lines[0]


@pytest.mark.slow
def test_a_missing_model_file_exits_1_with_one_line_and_no_traceback(tmp_path):
    out = python("-m", "sd_desktop", "--self-test", tmp_path / "no-such-model.safetensors")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"sd-desktop self-test FAILED at loading the model: model file not found: {tmp_path / 'no-such-model.safetensors'}"]


def test_a_model_that_computes_nan_fails_at_txt2img(model_file, monkeypatch):
    from sd_desktop import core

    real_load = core.load_model

    def broken_load(*args, **kwargs):
        model = real_load(model_file, dtype="fp32")
        with torch.no_grad():
            next(model.unet.parameters()).fill_(float("nan"))
        return model

    monkeypatch.setattr(core, "load_model", broken_load)
    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run_self_test(None, out=out, err=err) == 1
    finally:
        torch.set_num_threads(threads)
    assert err.getvalue().splitlines() == [
        "sd-desktop self-test FAILED at txt2img: the sampled latents came out as NaN (not a number) in float32: "
        "the model file may be damaged (download it again)"]


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path):
    out = python("-m", "sd_desktop", "--self-test", tmp_path / "missing.safetensors", "--debug")
    assert out.returncode != 0
    assert "Traceback" in out.stderr and "model file not found" in out.stderr


@pytest.mark.slow
def test_self_test_passes_with_the_bundled_model_from_the_source_tree():
    out = python("-m", "sd_desktop", "--self-test")
    line = assert_ok_line(out)
    assert f"model {bundled_model().stem} loaded" in line
