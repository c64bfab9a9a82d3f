"""How long reading an image's parameters takes: a big PNG (text before and after its pixels), a JPEG, and
infotexts with very long lines, against what Pillow's `.text` and A1111's regular expression take.

    python benchmarks/bench_parameters.py [--size 8192] [--rounds 5]

Rounds alternate the measured readers; medians are reported.
"""

from __future__ import annotations

import argparse
import re
import statistics
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

from PIL import Image, PngImagePlugin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sd_desktop.core.io.infotext import find_pairs, parse_parameters  # noqa: E402
from sd_desktop.core.io.metadata import read_parameters  # noqa: E402

A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
TEXT = ("a lighthouse at dusk\nNegative prompt: blurry\nSteps: 25, Sampler: DPM++ 2M, Schedule type: Karras, "
        "CFG scale: 6.5, Seed: 1234, Size: 512x768, Version: v1.10.1")


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def big_png(folder: Path, size: int) -> Path:
    """A size x size noisy PNG with the infotext before its pixels and a note after them."""
    import numpy as np

    path = folder / f"big-{size}.png"
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", TEXT)
    Image.fromarray(pixels).save(path, pnginfo=info, compress_level=1)
    data = path.read_bytes()
    note = b"note\0after the pixels"
    extra = struct.pack(">I", len(note)) + b"tEXt" + note + struct.pack(">I", zlib.crc32(b"tEXt" + note))
    iend = data.rindex(b"IEND") - 4
    path.write_bytes(data[:iend] + extra + data[iend:])
    return path


def pillow_text(path: Path) -> None:
    with Image.open(path) as image:
        image.text  # noqa: B018 - what the reader did before: reaching chunks after the pixels decodes them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        png = big_png(folder, args.size)
        jpeg = folder / "big.jpg"
        Image.open(png).convert("RGB").save(jpeg, quality=90)
        print(f"{png.name}: {png.stat().st_size / 2**20:.0f} MB; {jpeg.name}: {jpeg.stat().st_size / 2**20:.0f} MB")
        results: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, function, arg in (("read_parameters(png)", read_parameters, png),
                                        ("Pillow .text (png)", pillow_text, png),
                                        ("read_parameters(jpeg)", read_parameters, jpeg)):
                results.setdefault(name, []).append(timed(function, arg))
        for name, times in results.items():
            print(f"  {name:24s} median {statistics.median(times) * 1000:9.1f} ms")

    print("long lines (no colon: the worst case for A1111's expression)")
    for length in (2_000, 5_000, 20_000, 100_000):
        line = ("masterpiece " * (length // 12 + 1))[:length]
        ours = statistics.median(timed(find_pairs, line) for _ in range(args.rounds))
        whole = statistics.median(timed(parse_parameters, f"{line}\n{TEXT}") for _ in range(args.rounds))
        regex = timed(A1111_PARAM.findall, line) if length <= 20_000 else float("nan")
        print(f"  {length:7d} chars: find_pairs {ours * 1000:8.1f} ms, whole infotext {whole * 1000:8.1f} ms, "
              f"A1111's expression {regex * 1000:9.1f} ms" + (" (not run: minutes)" if regex != regex else ""))


if __name__ == "__main__":
    main()
