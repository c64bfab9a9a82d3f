"""What both training stages share: devices and threads, seeded randomness per step, checkpoints
that resume exactly, an EMA of weights, the learning-rate schedule and the progress line.

Resuming is exact because nothing is carried from step to step except what a checkpoint holds
(weights, optimizer state, EMA, the step): every step draws its data and noise from generators
seeded with (seed, step), so step k is the same whether or not the run stopped before it.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sd_desktop.core.io.files import write_atomic
from sd_desktop.core.runtime.devices import resolve_device

CHECKPOINT = "checkpoint.pt"


# -- devices, threads, precision --------------------------------------------------------------


def setup_device(device: str | None, threads: str | int | None) -> tuple[torch.device, "ThreadTuner | None"]:
    """The device, and on CPU a thread count ("auto": a ThreadTuner picks 1 or 2 as the run goes)."""
    target = resolve_device(device or "auto")
    tuner = None
    if target.type == "cpu":
        cores = os.cpu_count() or 1
        if threads in (None, "auto"):
            tuner = ThreadTuner(choices=sorted({1, min(2, cores), min(4, cores)}))
        else:
            torch.set_num_threads(max(1, int(threads)))
    return target, tuner


class ThreadTuner:
    """On a CPU shared with other work, 2 threads can be 10-20x slower than 1 (each OpenMP barrier
    waits for a thread that is not scheduled); alone, 2 are about twice as fast. So it times each
    choice for `probe` steps and keeps the fastest, and probes again every `every` steps or as soon
    as the recent steps run `slowdown` times slower than the choice was measured at.

    Thread counts may change float rounding in some kernels, so a run with "auto" threads is
    reproducible to rounding, not bit for bit; give a fixed count where that matters.
    """

    def __init__(self, choices: list[int], probe: int = 5, every: int = 200, slowdown: float = 1.8):
        self.choices, self.probe, self.every, self.slowdown = choices, probe, every, slowdown
        self.steps = 0
        self.expected = 0.0
        self.recent: list[float] = []
        self._start_probing()

    def _start_probing(self) -> None:
        self.times: dict[int, list[float]] = {}
        self.probing: list[int] = list(self.choices)
        self._use(self.probing[0])

    def record(self, seconds: float) -> None:
        self.steps += 1
        if self.probing:
            self.times.setdefault(self.current, []).append(seconds)
            if len(self.times[self.current]) >= self.probe:
                self.probing.pop(0)
                if self.probing:
                    self._use(self.probing[0])
                else:  # medians ignore a slow first step after a switch
                    medians = {n: float(np.median(t)) for n, t in self.times.items()}
                    self._use(min(medians, key=medians.get))
                    self.expected, self.recent = medians[self.current], []
            return
        self.recent = (self.recent + [seconds])[-self.probe:]
        slowed = len(self.recent) == self.probe and float(np.median(self.recent)) > self.slowdown * self.expected
        if slowed or self.steps % self.every == 0:
            self._start_probing()

    def _use(self, n: int) -> None:
        self.current = n
        torch.set_num_threads(n)


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast where asked for (on a CPU without bf16 units it is slower than fp32)."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# -- randomness per step ----------------------------------------------------------------------


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """numpy randomness of one step (data), the same whenever that step runs."""
    return np.random.default_rng([seed, step, stream])


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """torch randomness of one step (noise, timesteps), drawn on the CPU so every device agrees."""
    return torch.Generator("cpu").manual_seed(int(np.random.SeedSequence([seed, step, stream, 1]).generate_state(1)[0]))


def randn(shape, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=generator).to(device)


# -- schedule, EMA ---------------------------------------------------------------------------


def learning_rate(step: int, base: float, warmup: int, total: int, final_fraction: float = 0.1) -> float:
    """Linear warmup, then cosine decay to final_fraction of the base rate."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


class EMA:
    """Exponential moving average of parameters, with the usual warm-up so early weights fade fast."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, value in module.state_dict().items():
            self.shadow[key].lerp_(value.detach().float(), 1 - decay)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}


# -- checkpoints ---------------------------------------------------------------------------


def save_checkpoint(folder: Path, state: dict) -> Path:
    """Write atomically: a run killed while saving still has its previous checkpoint."""
    return write_atomic(Path(folder) / CHECKPOINT, lambda f: torch.save(state, f))


def load_checkpoint(folder: Path) -> dict | None:
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def check_same_recipe(saved: dict, wanted: dict, ignore: tuple[str, ...] = ()) -> None:
    """A resumed run must train the same thing; say which setting differs instead of mixing two runs."""
    differing = [k for k in wanted if k not in ignore and k in saved and saved[k] != wanted[k]]
    if differing:
        detail = ", ".join(f"{k}: {saved[k]!r} there, {wanted[k]!r} now" for k in differing)
        raise SystemExit(f"the checkpoint in this folder was trained with other settings ({detail}); "
                         "use the same settings to resume, or another --out folder")


# -- progress -------------------------------------------------------------------------------


class Progress:
    """One line on stderr every `every` seconds: step, mean loss since the last line, speed, ETA."""

    def __init__(self, name: str, total: int, start: int, every: float = 10.0, stream=None):
        self.name, self.total, self.every = name, total, every
        self.stream = stream or sys.stderr
        self.started, self.start_step = time.perf_counter(), start
        self.last = self.started
        self.losses: list[float] = []

    def update(self, step: int, loss: float, extra: str = "") -> None:
        self.losses.append(loss)
        now = time.perf_counter()
        if now - self.last < self.every and step + 1 < self.total:
            return
        done = step + 1 - self.start_step
        per_step = (now - self.started) / max(1, done)
        eta = per_step * (self.total - step - 1)
        print(f"{self.name} step {step + 1}/{self.total}  loss {np.mean(self.losses):.4f}  "
              f"{per_step:.2f} s/step  eta {eta / 60:.1f} min{extra}", file=self.stream, flush=True)
        self.losses, self.last = [], now


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
