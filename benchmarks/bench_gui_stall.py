"""How long does the window's event loop stall while the worker loads a model and generates?

A QTimer ticks every 5 ms in the GUI thread and records the gaps between ticks; any work done in the
GUI thread (or the worker holding the GIL too long) shows up as a long gap. Target: under 50 ms.

    python benchmarks/bench_gui_stall.py            # full-size SD 1.5 architecture, random weights, CPU
    python benchmarks/bench_gui_stall.py --tiny     # a tiny model: checks the script in seconds

The full-size model is saved once (fp16, about 2 GB) to bench-cache/ by benchmarks/full_size.py and
loaded through the app's worker, so the load is measured too. Runs offscreen unless a display is set
with --show; settings and images go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_MS = 50.0


def tiny_random_model():
    """A tiny SD 1.x model with random weights, built directly (no file, no diffusers)."""
    import torch

    from sd_desktop.core.families import SD1, ModelConfig
    from sd_desktop.core.nn.configs import tiny_text_config, tiny_unet_config, tiny_vae_config
    from sd_desktop.core.loading.model import StableDiffusionModel
    from sd_desktop.core.nn.clip_text import CLIPTextModel
    from sd_desktop.core.nn.unet import UNetModel
    from sd_desktop.core.nn.vae import AutoencoderKL
    from sd_desktop.core.text.tokenizer import CLIPTokenizer

    torch.manual_seed(0)
    config = ModelConfig(family=SD1, text=tiny_text_config(), unet=tiny_unet_config(), vae=tiny_vae_config(),
                         scale_factor=SD1.latent.scale_factor, native_size=64)
    networks = {}
    for name, cls, cfg in (("unet", UNetModel, config.unet), ("vae", AutoencoderKL, config.vae),
                           ("text_encoder", CLIPTextModel, config.text)):
        module = cls(cfg)
        with torch.no_grad():
            for p in module.parameters():
                p.normal_(0, 0.05)
        networks[name] = module.eval().requires_grad_(False)
    return StableDiffusionModel(config=config, tokenizer=CLIPTokenizer.default(), device=torch.device("cpu"),
                                dtype=torch.float32, name="tiny-random", path=None, **networks)


class StallMonitor:
    """Records the gaps between the ticks of a fast timer, per named phase."""

    def __init__(self, interval_ms: int):
        from PySide6.QtCore import Qt, QTimer

        self.phase = "idle"
        self.gaps: dict[str, list[float]] = {}
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def tick(self) -> None:
        now = time.perf_counter()
        self.gaps.setdefault(self.phase, []).append((now - self.last) * 1000)
        self.last = now

    def start(self, phase: str) -> None:
        self.phase = phase
        self.last = time.perf_counter()


def run_until(signal, trigger, timeout_s: float) -> bool:
    """Connect to the signal, call trigger(), run the event loop until the signal fires (or the timeout)."""
    from PySide6.QtCore import QEventLoop, QObject, QTimer, Slot

    class Waiter(QObject):  # a GUI-thread receiver: the worker's signal arrives queued
        fired = False

        @Slot()
        def done(self):
            self.fired = True
            loop.quit()

    loop = QEventLoop()
    waiter = Waiter()
    signal.connect(waiter.done)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    trigger()
    if not waiter.fired:
        loop.exec()
    signal.disconnect(waiter.done)
    return waiter.fired


def summary(gaps: list[float]) -> str:
    if not gaps:
        return "no ticks"
    ordered = sorted(gaps)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{len(gaps)} ticks, longest gap {max(gaps):.1f} ms, p99 {p99:.1f} ms, "
            f"median {statistics.median(gaps):.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny random model (seconds), to check the script")
    parser.add_argument("--size", type=int, default=None, help="image size (default: 512, or 64 with --tiny)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: 4, or 20 with --tiny)")
    parser.add_argument("--sampler", default="dpmpp_2m")
    parser.add_argument("--interval-ms", type=int, default=5)
    parser.add_argument("--show", action="store_true", help="use the real display instead of offscreen")
    parser.add_argument("--live-edits", type=int, default=8,
                        help="then Live mode: this many prompt edits, 0.4 s apart, each cancelling the running image")
    args = parser.parse_args(argv)
    size = args.size or (64 if args.tiny else 512)
    steps = args.steps or (20 if args.tiny else 4)

    if not args.show:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = tempfile.TemporaryDirectory(prefix="sd-desktop-bench-")
    os.environ["SD_DESKTOP_CONFIG_DIR"] = str(Path(scratch.name) / "config")
    os.environ["SD_DESKTOP_OUTPUT_DIR"] = str(Path(scratch.name) / "outputs")

    import sd_desktop.app  # noqa: F401 - applies the PySide6 workaround before Qt objects exist
    from PySide6.QtWidgets import QApplication

    from sd_desktop.app import MainWindow
    from sd_desktop.app.ui.theme import apply_theme

    app = QApplication.instance() or QApplication(["bench_gui_stall"])
    apply_theme(app, "dark")

    if args.tiny:
        model, path, description = tiny_random_model(), None, "tiny random model"
    else:
        from full_size import random_full_size_checkpoint

        started = time.perf_counter()
        path = random_full_size_checkpoint()
        model, description = None, f"full-size SD 1.5 architecture, random weights ({path.name})"
        print(f"checkpoint ready in {time.perf_counter() - started:.1f} s: {path}", flush=True)

    window = MainWindow(load_model=False)
    window.show()
    monitor = StallMonitor(args.interval_ms)

    monitor.start("load")
    started = time.perf_counter()
    load = (lambda: window.state.load_model(str(path))) if path is not None else (lambda: window.state.session.use_model(model))
    if not run_until(window.state.session.busyChanged, load, 1800) or not run_until(window.state.session.busyChanged, lambda: None, 1800):
        print("the model did not load", file=sys.stderr)
        return 2
    load_seconds = time.perf_counter() - started

    window.prompt_edit.setPlainText("a red circle on a blue background")
    settings = window.state.generation
    settings.steps, settings.seed, settings.sampler = steps, 1, args.sampler
    settings.set_size(size, size)
    monitor.start("generate")
    started = time.perf_counter()
    if not run_until(window.state.session.busyChanged, window.generate, 10) or not run_until(window.state.session.busyChanged,
                                                                                    lambda: None, 3600):
        print("the generation did not finish", file=sys.stderr)
        return 2
    generate_seconds = time.perf_counter() - started
    live_images = []
    if args.live_edits:
        from PySide6.QtCore import QEventLoop, QTimer

        window.state.live.imageChanged.connect(lambda image: image is not None and live_images.append(1))
        monitor.start("live")
        started = time.perf_counter()
        window.controls.live_button.click()
        colours = ["red", "green", "blue", "yellow", "orange", "purple", "white", "black"]
        for index in range(args.live_edits):
            loop = QEventLoop()
            QTimer.singleShot(400, loop.quit)
            loop.exec()
            window.prompt_edit.setPlainText(f"a {colours[index % len(colours)]} circle on a blue background")
        deadline = time.perf_counter() + 600
        while (window.state.session.busy or window.state.live.timer.isActive()) and time.perf_counter() < deadline:
            loop = QEventLoop()
            QTimer.singleShot(50, loop.quit)
            loop.exec()
        live_seconds = time.perf_counter() - started
        window.controls.live_button.click()
    monitor.start("idle")
    failed = window.message_bar.kind() == "error" and window.message_bar.text()

    window.close()
    print(f"model: {description}; {size}x{size}, {steps} steps of {args.sampler}, torch threads: "
          f"{__import__('torch').get_num_threads()}")
    print(f"load     ({load_seconds:.1f} s): {summary(monitor.gaps.get('load', []))}")
    print(f"generate ({generate_seconds:.1f} s): {summary(monitor.gaps.get('generate', []))}")
    if args.live_edits:
        print(f"live     ({live_seconds:.1f} s, {args.live_edits} edits, {len(live_images)} live images): "
              f"{summary(monitor.gaps.get('live', []))}")
    if failed:
        print(f"the generation failed: {failed}", file=sys.stderr)
        return 2
    longest = max(monitor.gaps.get("generate", [0.0]) + monitor.gaps.get("live", []))
    verdict = "PASS" if longest < TARGET_MS else "FAIL"
    print(f"longest event-loop stall while generating (and live): {longest:.1f} ms (target < {TARGET_MS:.0f} ms): "
          f"{verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
