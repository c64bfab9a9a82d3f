import subprocess
import sys

import pytest


@pytest.mark.slow
def test_importing_core_does_not_import_qt():
    code = (
        "import sys, sd_desktop.core as core\n"
        "import sd_desktop.core.loading.model, sd_desktop.core.loading.detection, sd_desktop.core.loading.tensor_files, sd_desktop.core.io.metadata\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'PyQt', 'shiboken')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_core_source_file_imports_qt():
    from pathlib import Path
    import re

    import sd_desktop.core

    root = Path(sd_desktop.core.__file__).parent
    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt\d|shiboken\d)", re.M)
    offenders = [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
