"""The history with a full output folder: how long the window's history takes to list 10,000 earlier images
(what "opening" it costs the GUI thread), and to have every thumbnail and its parameters: cold (each PNG
decoded) and warm (the thumbnail cache of a previous start). Rounds alternate cold and warm; medians.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_history.py [--images 10000] [--size 256] [--rounds 3]

The images are written once into a temporary folder (dated subfolders of 500, as the app saves them), each
with the parameters the app writes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def write_folder(root: Path, count: int, size: int) -> None:
    import numpy as np
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    for index in range(count):
        folder = root / f"2026-{1 + index // 15000:02d}-{1 + (index // 500) % 28:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        info = PngInfo()
        info.add_text("parameters", f"a red circle number {index}\nSteps: 20, Sampler: DPM++ 2M, Seed: {index}, "
                                    f"Size: {size}x{size}, Model: demo")
        image = Image.fromarray(np.roll(base, index, axis=1))
        image.save(folder / f"{index % 500:05d}-{index}.png", pnginfo=info, compress_level=1)


def run(root: Path, cache: Path) -> tuple[float, float]:
    """(seconds to list, seconds until every thumbnail arrived)."""
    from PySide6.QtWidgets import QApplication

    from sd_desktop.app.state.history import HistoryModel
    from sd_desktop.app.ui.history_panel import HistoryPanel

    app = QApplication.instance() or QApplication(sys.argv)
    model = HistoryModel(thumbnail_cache=cache)
    panel = HistoryPanel(model)
    panel.resize(320, 900)
    panel.show()
    arrived = []
    model.thumbnailReady.connect(lambda *_: arrived.append(1))
    started = time.perf_counter()
    model.load_folder(root)
    app.processEvents()
    listed = time.perf_counter() - started
    total = len(model.paths())
    while len(arrived) < total:
        app.processEvents()
        time.sleep(0.001)
    everything = time.perf_counter() - started
    model.stop()
    panel.deleteLater()
    app.processEvents()
    return listed, everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    temp = Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        started = time.perf_counter()
        write_folder(temp / "outputs", args.images, args.size)
        print(f"wrote {args.images} images of {args.size}² in {time.perf_counter() - started:.0f} s")
        results: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
        cache = temp / "thumbnails"
        for round_ in range(args.rounds):
            shutil.rmtree(cache, ignore_errors=True)
            results["cold"].append(run(temp / "outputs", cache))
            results["warm"].append(run(temp / "outputs", cache))
            print(f"round {round_ + 1}: cold {results['cold'][-1][0]:.2f} s listed, {results['cold'][-1][1]:.1f} s all "
                  f"thumbnails; warm {results['warm'][-1][0]:.2f} s, {results['warm'][-1][1]:.1f} s")
        for kind, rows in results.items():
            print(f"{kind}: listed in {statistics.median(r[0] for r in rows):.2f} s, every thumbnail and its "
                  f"parameters in {statistics.median(r[1] for r in rows):.1f} s (median of {len(rows)})")
    finally:
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
