"""What every test shares: an offscreen Qt, one torch thread, folders of its own, and the fixtures more than one
test module uses. Helpers that are not fixtures: tiny_models.py (random SD models saved the ways people have
them), parity.py (networks built by diffusers and converted), fake_engine.py (driving the window)."""

import os

# Tests never touch a user's files or screen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# One thread: a tiny model's ops are too small to share, and on a busy 2-core machine a tiny U-Net call took
# 14 ms with one thread and 1,027 ms with two. Subprocesses (CLI, self-test) inherit it; a test that measures
# threads sets its own.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SD_DESKTOP_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("SD_DESKTOP_OUTPUT_DIR", str(tmp_path_factory.mktemp("outputs")))
    monkeypatch.setenv("SD_DESKTOP_DATA_DIR", str(tmp_path_factory.mktemp("data")))  # (imported upscalers)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny SD 1.x single file (random weights, native size 64) for the window's tests."""
    from fake_engine import tiny_model_file

    return tiny_model_file(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def vae_reference():
    """diffusers' AutoencoderKL, tiny, every weight moved off its initial value."""
    from parity import vae_reference as build

    return build()


@pytest.fixture(scope="module")
def vae_ours(vae_reference):
    """Our VAE with vae_reference's weights."""
    from parity import vae_ours as build

    return build(vae_reference)


@pytest.fixture(scope="module")
def vae_inputs():
    """(image [2, 3, 64, 96] in [-1, 1], latent [2, 4, 8, 12])."""
    from parity import vae_inputs as build

    return build()
