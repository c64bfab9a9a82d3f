"""LoRAs on the full-size SD 1.5 architecture (random weights): the time to apply a rank-32 LoRA to the U-Net
and the text encoder, to switch between two LoRA sets and to take them off, and what a LoRA beside the layers
costs a U-Net step (rounds alternate with and without; medians).

    python benchmarks/bench_lora.py [--rank 32] [--size 512] [--rounds 5] [--dtype fp32]

The LoRA covers what kohya's sd-scripts trains by default: every layer of the U-Net's transformers and the
text encoder's attention and MLP (192 + 72 layers); --locon adds the ResNet convolutions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from full_size import random_full_size_checkpoint  # noqa: E402


def kohya_lora(model, rank: int, seed: int, locon: bool) -> dict[str, torch.Tensor]:
    """A rank-`rank` LoRA in kohya's form for every layer kohya trains, named by their diffusers paths."""
    from sd_desktop.core.lora.targets import lora_targets

    generator = torch.Generator().manual_seed(seed)
    state = {}
    seen = set()
    for (part, name), target in lora_targets(model.config).items():
        wanted = ("attentions" in name or (locon and ("resnets" in name or "samplers" in name))) if part == "unet" \
            else name.startswith("text_model_") and ("self_attn" in name or "mlp" in name)
        if not wanted or (part, target.path) in seen:
            continue
        seen.add((part, target.path))
        out, inp = target.shape[:2]
        kernel = target.shape[2:]
        key = f"lora_{part}_{name}"
        state[f"{key}.lora_down.weight"] = torch.randn(rank, inp, *kernel, generator=generator) * 0.01
        state[f"{key}.lora_up.weight"] = torch.randn(out, rank, *([1, 1] if kernel else []), generator=generator) * 0.01
        state[f"{key}.alpha"] = torch.tensor(float(rank))
    return state


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--locon", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from safetensors.torch import save_file

    import sd_desktop.core as core
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory

    keep_freed_cpu_memory()
    model = core.load_model(random_full_size_checkpoint(), device="cpu", dtype=args.dtype)
    print(f"{model.name}: {model.device.type} {str(model.dtype).removeprefix('torch.')}, packed={model.packed}, "
          f"{torch.get_num_threads()} threads")
    folder = Path(tempfile.mkdtemp())
    paths = []
    for seed in (1, 2):
        state = kohya_lora(model, args.rank, seed, args.locon)
        path = folder / f"lora{seed}.safetensors"
        save_file(state, str(path))
        paths.append(path)
    layers = len(state) // 3
    print(f"two rank-{args.rank} LoRAs of {layers} layers each, {path.stat().st_size / 2**20:.0f} MB per file")
    a, b = (core.LoraRef(str(p), 0.8) for p in paths)
    for merge in (False, True):
        measure(model, a, b, args, merge)


def measure(model, a, b, args, merge: bool) -> None:
    from sd_desktop.core.lora.apply import remove_loras, set_loras, state_of

    print(f"--- LoRAs {'merged into new layers' if merge else 'beside the layers'}")

    applied, switched, removed = [], [], []
    for _ in range(args.rounds):
        state_of(model).files.clear()  # read from disk each round: the first use of a file
        applied.append(timed(set_loras, model, [a], merge))
        switched.append(timed(set_loras, model, [b], merge))
        removed.append(timed(remove_loras, model))
    cached = []
    for _ in range(args.rounds):
        cached.append(timed(set_loras, model, [a], merge))
        remove_loras(model)
    print(f"apply (file read, first use): median {statistics.median(applied) * 1000:.0f} ms")
    print(f"apply (file already read):    median {statistics.median(cached) * 1000:.0f} ms")
    print(f"switch to another set:        median {statistics.median(switched) * 1000:.0f} ms")
    print(f"take off:                     median {statistics.median(removed) * 1000:.1f} ms")

    latent = args.size // 8
    x = torch.randn(2, 4, latent, latent, dtype=model.dtype)
    t = torch.full((2,), 500.0)
    context = torch.randn(2, 77, 768, dtype=model.dtype)
    step = {"bare": [], "with LoRA": []}
    with torch.inference_mode():
        for round_index in range(args.rounds + 1):
            for label, refs in (("bare", []), ("with LoRA", [a])):
                set_loras(model, refs, merge)
                seconds = timed(model.unet, x, t, context)
                if round_index:  # the first round warms up
                    step[label].append(seconds)
    bare, lora = (statistics.median(v) for v in step.values())
    print(f"U-Net step at {args.size}², batch 2: bare {bare:.2f} s, with the LoRA {lora:.2f} s "
          f"({(lora / bare - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
