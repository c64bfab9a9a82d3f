"""A U-Net step at a shape other than the one its convolutions were packed for: kept packed for the native shape
(as sd-desktop runs it) against packed again for the step's own shape, the two taking turns in one process.

    python benchmarks/bench_repack.py [--rounds 3] [BATCHxLATENT ...]     (default: 1x64 2x96)

sd-desktop packs each convolution for its input shape at the model's native size, a CFG batch of 2
(core.runtime.onednn). A request at CFG 1 (batch 1), at 768² (latent 96) or in portrait runs other shapes; oneDNN
reorders a weight at every call where it prefers another layout for them. This measures whether packing again
for the request's shape would pay. Weights: bench_sd.py's random full-size SD 1.5, fp32.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench_sd import SINGLE_FILE, build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("shapes", nargs="*", default=["1x64", "2x96"])
    args = parser.parse_args()
    build_model()

    import sd_desktop.core as core
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory
    from sd_desktop.core.runtime.onednn import PackedConv2d, conv_input_shapes

    keep_freed_cpu_memory()
    model = core.load_model(SINGLE_FILE, device="cpu", dtype="fp32")
    convs = {name: layer for name, layer in model.unet.named_modules() if isinstance(layer, PackedConv2d)}
    native = {name: list(layer.hint) for name, layer in convs.items()}
    config = model.config.unet

    def pack_all(hints: dict[str, list]) -> float:
        started = time.perf_counter()
        for name, layer in convs.items():
            if layer.hint != list(hints[name]):
                layer.hint = list(hints[name])
                layer.packed_weight = torch.ops.mkldnn._reorder_convolution_weight(
                    layer.dense_weight(), layer.padding, layer.stride, layer.dilation, layer.groups, layer.hint)
        return time.perf_counter() - started

    with torch.inference_mode():
        prompt = model.encode_text(model.tokenize(["a photo"]))
    with torch.device("meta"):  # the plain network's layers, on memory never written nor read (an empty batch)
        twin = type(model.unet)(config).to_empty(device="cpu")
    rows = []
    for shape in args.shapes:
        batch, side = map(int, shape.split("x"))

        def run(unet, n, side=side):
            unet(torch.zeros(n, 4, side, side), torch.zeros(n), torch.zeros(n, 77, config.context_dim))

        own = conv_input_shapes(twin, run, batch)
        x, t = torch.randn(batch, 4, side, side), torch.full((batch,), 500.0)
        context = prompt.expand(batch, -1, -1).contiguous()
        times: dict[str, list[float]] = {"native": [], "own": []}
        repack: list[float] = []
        for round_ in range(args.rounds):
            for name, hints in (("native", native), ("own", own)):
                seconds = pack_all(hints)
                if name == "own":
                    repack.append(seconds)
                with torch.inference_mode():
                    model.unet(x, t, context)
                    started = time.perf_counter()
                    model.unet(x, t, context)
                    times[name].append(time.perf_counter() - started)
            print(f"batch {batch}, latent {side}, round {round_ + 1}: native {times['native'][-1]:.2f} s, "
                  f"own {times['own'][-1]:.2f} s", flush=True)
        native_s, own_s = statistics.median(times["native"]), statistics.median(times["own"])
        rows.append(f"| {batch} | {side}×{side} ({side * 8}²) | {native_s:.2f} | {own_s:.2f} | {own_s / native_s:.2f}× | "
                    f"{statistics.median(repack):.1f} |")
    print("\n| batch | latent | packed for the native shape (s) | packed for its own (s) | own / native | "
          "packing again (s) |\n|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
