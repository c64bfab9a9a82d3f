import os

# Tests never touch a user's files or screen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SD_DESKTOP_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("SD_DESKTOP_OUTPUT_DIR", str(tmp_path_factory.mktemp("outputs")))
