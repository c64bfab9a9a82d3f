"""sd-desktop against diffusers, side by side on this machine: full-size SD 1.5 with random weights.

    python benchmarks/bench_sd.py [--steps 20] [--size 512] [--runs ours,diffusers-fp32,diffusers-bf16-cl] [--repeat 3] [--gpu]

The model is built once with diffusers (its own initialisation) and kept in bench-cache/: a diffusers
folder (which diffusers loads) and the same weights as an original-layout fp16 single file (which
sd-desktop loads, as people's .safetensors files are). Each configuration runs in a fresh process and
reports: model load, text encoding (batch 2), one U-Net step with classifier-free guidance (batch 2),
one VAE decode, an end-to-end txt2img of --steps steps at --size (DPM++ 2M Karras on both sides,
after the single-step timings have warmed everything up; sd-desktop with its live previews, as the app
runs it, and the time those previews took),
and the process's peak RSS. The configurations take turns for --repeat rounds and the table shows
each measure's median (this VM's speed drifts by up to 3x from minute to minute). Its ratios are
against diffusers' best CPU settings (bf16 + channels_last) or, with --gpu, diffusers fp16 on CUDA.

With --gpu each run also reports the first image's wait (from its process's start: imports, load, warm-up, one
image), the denoising loop's it/s (the time of 2N steps less N steps: load, text and decode cancel out) and
the peak VRAM. Runs "ours-<option>[+<option>]" are sd-desktop with one of its speed options (OPTIONS: CUDA
graphs, torch.compile modes, channels_last off, fp16, pageable uploads, an SDPA backend forced).
benchmarks/gpu_check.sh runs these on a GPU machine; --dry-run tries them on the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROCESS_START = time.perf_counter()  # (before torch is imported: the first image's wait counts it)

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench-cache"
FOLDER = CACHE / "sd15-diffusers-random"
SINGLE_FILE = CACHE / "sd15-diffusers-random-fp16.safetensors"
PROMPT = "a photograph of an astronaut riding a horse, highly detailed"

CPU_RUNS = ["ours", "diffusers-fp32", "diffusers-bf16-cl"]
RUN_ONCE = {"diffusers-fp32"}
GPU_RUNS = ["ours", "diffusers-fp16"]
# sd-desktop's speed options, as runs "ours-<option>[+<option>...]": each is its defaults with that one change
OPTIONS = {
    "graphs": "CUDA graphs of the U-Net (load_model(cuda_graphs=True))",
    "compile": "torch.compile of the U-Net, default mode", "reduce-overhead": "torch.compile, mode reduce-overhead",
    "max-autotune": "torch.compile, mode max-autotune",
    "nocl": "channels_last off", "fp16": "float16 instead of the automatic precision", "fp32": "float32",
    "pageable": "weights copied to the GPU tensor by tensor (no pinned staging)",
    "sdpa-flash": "SDPA forced to flash attention", "sdpa-efficient": "SDPA forced to memory-efficient attention",
    "sdpa-cudnn": "SDPA forced to cuDNN attention", "sdpa-math": "SDPA forced to its plain (math) kernel",
    "merge": "--fewstep's LoRA merged into the weights (core.lora.apply.MERGE) instead of run beside them",
}


def peak_rss() -> int:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM")).split()[1]) * 1024


def build_model() -> None:
    """The diffusers folder and the fp16 single file, unless they are there already."""
    if FOLDER.is_dir() and SINGLE_FILE.is_file():
        return
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    from sd_desktop.core.families import SD1
    from sd_desktop.core.text.tokenizer import CLIPTokenizer
    from sd_desktop.core.loading.convert_unet import unet_keys_from_diffusers
    from sd_desktop.core.loading.convert_vae import vae_keys_from_diffusers

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4, sample_size=512)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                                        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                              clip_sample=False, set_alpha_to_one=False)
    FOLDER.mkdir(parents=True, exist_ok=True)
    for name, part in (("unet", unet), ("vae", vae), ("text_encoder", text)):
        part.half().save_pretrained(FOLDER / name)
    scheduler.save_pretrained(FOLDER / "scheduler")
    CLIPTokenizer.default().save_files(FOLDER / "tokenizer")
    (FOLDER / "tokenizer" / "tokenizer_config.json").write_text(json.dumps({  # as SD 1.5's folder has it
        "model_max_length": 77, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))
    (FOLDER / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "DDIMScheduler"],
        "safety_checker": [None, None], "feature_extractor": [None, None], "requires_safety_checker": False,
    }))
    tensors = {"model.diffusion_model." + k: v for k, v in unet_keys_from_diffusers(unet.state_dict(), SD1.unet).items()}
    tensors |= {"first_stage_model." + k: v for k, v in vae_keys_from_diffusers(vae.state_dict(), SD1.vae).items()}
    tensors |= {"cond_stage_model.transformer.text_model." + k.removeprefix("text_model."): v
                for k, v in text.state_dict().items() if "position_ids" not in k}
    save_file({k: v.half().contiguous() for k, v in tensors.items()}, str(SINGLE_FILE))


LORA_FILE = CACHE / "lcm-lora-shaped-random.safetensors"
TAESD_FILE = CACHE / "taesd-random.safetensors"


def build_fewstep_parts() -> None:
    """An LCM-LoRA-shaped LoRA (rank 64 on every attention linear and ResNet convolution, kohya's names) and a TAESD
    decoder, both with random weights, for --fewstep."""
    if LORA_FILE.is_file() and TAESD_FILE.is_file():
        return
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from sd_desktop.core.nn.taesd import tiny_decoder

    gen = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    lora = {}
    for name, module in unet.named_modules():
        conv = isinstance(module, torch.nn.Conv2d) and ".resnets." in name
        if not (isinstance(module, torch.nn.Linear) and ".attentions." in name) and not conv:
            continue
        key = "lora_unet_" + name.replace(".", "_")
        down_shape = (64, module.in_channels, *module.kernel_size) if conv else (64, module.in_features)
        up_shape = (module.out_channels, 64, 1, 1) if conv else (module.out_features, 64)
        lora[f"{key}.lora_down.weight"] = (torch.randn(down_shape, generator=gen) * 0.01).half()
        lora[f"{key}.lora_up.weight"] = (torch.randn(up_shape, generator=gen) * 0.01).half()
        lora[f"{key}.alpha"] = torch.tensor(64.0).half()
    save_file(lora, str(LORA_FILE))
    torch.manual_seed(0)
    save_file({k: v.half().contiguous() for k, v in tiny_decoder().state_dict().items()}, str(TAESD_FILE))


def timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def ours_options(name: str) -> set[str]:
    options = set(name.removeprefix("ours").removeprefix("-").split("+")) - {""}
    unknown = options - set(OPTIONS)
    if unknown:
        raise SystemExit(f"unknown option(s) {', '.join(sorted(unknown))} in {name}; known: {', '.join(OPTIONS)}")
    return options


def sdpa_backend(options: set[str]):
    """A context forcing SDPA to one backend (an sdpa-* option), or nothing."""
    import contextlib

    from torch.nn.attention import SDPBackend, sdpa_kernel

    names = {"sdpa-flash": SDPBackend.FLASH_ATTENTION, "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION,
             "sdpa-cudnn": SDPBackend.CUDNN_ATTENTION, "sdpa-math": SDPBackend.MATH}
    chosen = [names[o] for o in options if o in names]
    return sdpa_kernel(chosen) if chosen else contextlib.nullcontext()


def run_ours(args) -> dict:
    options = ours_options(args.child)
    with sdpa_backend(options):
        return _run_ours(args, options)


def _run_ours(args, options: set[str]) -> dict:
    import torch

    import sd_desktop.core as core
    import sd_desktop.core.loading.model as loading
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory
    from sd_desktop.core.runtime.vae_ops import decode_latents

    keep_freed_cpu_memory()  # as the app and the CLI do at start
    device = bench_device(args)
    loading.PINNED_UPLOAD = "pageable" not in options
    compile_mode = next((o for o in ("compile", "reduce-overhead", "max-autotune") if o in options), False)
    dtype = "fp16" if "fp16" in options else "fp32" if "fp32" in options else None
    started = time.perf_counter()
    model = core.load_model(SINGLE_FILE, device=device, dtype=dtype, cuda_graphs="graphs" in options,
                            compile="default" if compile_mode == "compile" else compile_mode,
                            channels_last=False if "nocl" in options else None)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    result = {"load": time.perf_counter() - started, "dtype": str(model.dtype).removeprefix("torch.")}
    request = core.GenerationRequest(prompt=PROMPT, steps=args.steps, width=args.size, height=args.size, seed=1,
                                     sampler="dpmpp_2m", schedule="karras", cfg_scale=7.5)
    if args.gpu:  # the first image a user waits for: the process's start, the load, the warm-up and the image
        core.generate(model, request)
        sync()
        result["first_image"] = time.perf_counter() - PROCESS_START
    latent = args.size // 8
    with torch.inference_mode():
        ids = model.tokenize([PROMPT, ""])
        model.encode_text(ids)
        result["text"] = timed(lambda: (model.encode_text(ids), sync()), 3)
        context = model.encode_text(ids)
        x = torch.randn(2, 4, latent, latent, device=device, dtype=model.dtype)
        t = torch.tensor([500], device=device)
        model.unet(x, t, context)
        result["unet_step"] = timed(lambda: (model.unet(x, t, context), sync()), 2)
        z = torch.randn(1, 4, latent, latent, device=device)
        decode_latents(model, z[..., :8, :8])
        result["vae_decode"] = timed(lambda: (decode_latents(model, z), sync()))
    if args.fewstep:  # 4 LCM steps at CFG 1 with the LCM-LoRA-shaped LoRA, TAESD's decode
        from sd_desktop.core.lora.apply import set_loras
        from sd_desktop.core.request import LoraRef

        model.use_taesd(TAESD_FILE, previews=False)
        request = dataclasses.replace(request, sampler="lcm", schedule="sgm_uniform", steps=args.steps, cfg_scale=1.0,
                                      loras=(LoraRef(str(LORA_FILE), 1.0),), taesd_decode=True)
        if "merge" in options:
            import sd_desktop.core.lora.apply as lora_apply

            lora_apply.MERGE = True
        started = time.perf_counter()
        set_loras(model, request.loras)
        result["lora_on"] = time.perf_counter() - started
        with torch.inference_mode():
            one = model.encode_text(model.tokenize([PROMPT]))
            x1 = torch.randn(1, 4, latent, latent, device=device, dtype=model.dtype)
            model.unet(x1, t, one)
            result["unet_step"] = timed(lambda: (model.unet(x1, t, one), sync()), 2)  # one pass: CFG 1
            model.taesd.decode(z)
            result["vae_decode"] = timed(lambda: (model.taesd.decode(z), sync()), 2)
    if compile_mode or "graphs" in options:  # generate() calls the U-Net with other dtypes than above: those too
        core.generate(model, dataclasses.replace(request, steps=2))
    # the app always shows previews: time the generation with them, and the previews themselves
    import sd_desktop.core.pipelines.generate as pipeline

    preview_seconds, previews = [], []
    project = pipeline.latent_preview

    def timed_preview(*a, **k):
        started = time.perf_counter()
        out = project(*a, **k)
        preview_seconds.append(time.perf_counter() - started)
        return out

    pipeline.latent_preview = timed_preview
    result["txt2img"] = timed(lambda: (core.generate(model, request, on_step=lambda s: previews.append(s.preview)), sync()))
    result["preview_total"] = sum(preview_seconds)
    result["previews"] = len(previews)
    if args.gpu:  # the denoising loop alone, as diffusers' progress bar counts it: twice the steps less once
        double = dataclasses.replace(request, steps=2 * args.steps)
        step = lambda: None  # noqa: E731 - (the app's previews stay on, as above)
        result["it_s"] = args.steps / (timed(lambda: (core.generate(model, double, on_step=lambda s: step()), sync()))
                                       - timed(lambda: (core.generate(model, request, on_step=lambda s: step()), sync())))
    return result


def bench_device(args) -> str:
    """--gpu runs on CUDA; --dry-run runs the same measures on the CPU (to try the script without a GPU)."""
    return "cuda" if args.gpu and not args.dry_run else "cpu"


def run_diffusers(args, dtype_name: str, channels_last: bool) -> dict:
    import torch
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    device = bench_device(args)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    started = time.perf_counter()
    pipe = StableDiffusionPipeline.from_pretrained(FOLDER, torch_dtype=dtype, safety_checker=None,
                                                   requires_safety_checker=False).to(device)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=True)
    if channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    pipe.set_progress_bar_config(disable=True)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    result = {"load": time.perf_counter() - started, "dtype": dtype_name + ("+channels_last" if channels_last else "")}
    if args.gpu:
        pipe(PROMPT, num_inference_steps=args.steps, height=args.size, width=args.size, guidance_scale=7.5)
        sync()
        result["first_image"] = time.perf_counter() - PROCESS_START
    latent = args.size // 8
    with torch.inference_mode():
        ids = pipe.tokenizer([PROMPT, ""], padding="max_length", max_length=77, return_tensors="pt").input_ids.to(device)
        pipe.text_encoder(ids)
        result["text"] = timed(lambda: (pipe.text_encoder(ids), sync()), 3)
        context = pipe.text_encoder(ids)[0]
        x = torch.randn(2, 4, latent, latent, device=device, dtype=dtype)
        if channels_last:
            x = x.to(memory_format=torch.channels_last)
        t = torch.tensor([500], device=device)
        pipe.unet(x, t, encoder_hidden_states=context)
        result["unet_step"] = timed(lambda: (pipe.unet(x, t, encoder_hidden_states=context), sync()), 2)
        z = torch.randn(1, 4, latent, latent, device=device, dtype=dtype)
        pipe.vae.decode(z[..., :8, :8])
        result["vae_decode"] = timed(lambda: (pipe.vae.decode(z / 0.18215), sync()))
    generator = torch.Generator("cpu").manual_seed(1)
    guidance = 7.5
    if args.fewstep:  # LCMScheduler, the LoRA fused, AutoencoderTiny (diffusers' few-step recipe)
        from diffusers import AutoencoderTiny, LCMScheduler

        pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
        pipe.load_lora_weights(str(LORA_FILE))
        pipe.fuse_lora()
        torch.manual_seed(0)
        pipe.vae = AutoencoderTiny().to(device, dtype)
        if channels_last:
            pipe.unet.to(memory_format=torch.channels_last)
            pipe.vae.to(memory_format=torch.channels_last)
        guidance = 1.0
        with torch.inference_mode():
            one = context[:1]
            x1 = x[:1]
            pipe.unet(x1, t, encoder_hidden_states=one)
            result["unet_step"] = timed(lambda: (pipe.unet(x1, t, encoder_hidden_states=one), sync()), 2)
            pipe.vae.decode(z[..., :8, :8])
            result["vae_decode"] = timed(lambda: (pipe.vae.decode(z), sync()), 2)
    run = lambda steps: (pipe(PROMPT, num_inference_steps=steps, height=args.size, width=args.size,  # noqa: E731
                              guidance_scale=guidance, generator=generator), sync())
    result["txt2img"] = timed(lambda: run(args.steps))
    if args.gpu:
        result["it_s"] = args.steps / (timed(lambda: run(2 * args.steps)) - timed(lambda: run(args.steps)))
    return result


def child(args) -> None:
    name = args.child
    if name.startswith("ours"):
        result = run_ours(args)
    else:
        _, dtype, *rest = name.split("-")
        result = run_diffusers(args, dtype, channels_last=rest == ["cl"])
    result["peak_rss"] = peak_rss()
    if bench_device(args) == "cuda":
        import torch

        result["peak_vram"] = torch.cuda.max_memory_allocated()
    print("RESULT " + json.dumps(result), flush=True)


ROWS = [("load", "model load (s)"), ("lora_on", "putting the LoRA on (s)"), ("first_image", "first image from the process's start (s)"),
        ("text", "text encoding, batch 2 (s)"), ("unet_step", "one U-Net step with CFG (s)"),
        ("vae_decode", "VAE decode (s)"), ("txt2img", "txt2img end to end (s)"), ("it_s", "denoising it/s"),
        ("peak_rss", "peak RSS (GB)"), ("peak_vram", "peak VRAM (GB)")]


def median_result(runs: list[dict]) -> dict:
    """Each numeric measure's median over the runs (plus their txt2img times, to show the spread)."""
    merged = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = statistics.median(r[key] for r in runs)
    merged["txt2img_runs"] = [r["txt2img"] for r in runs]
    return merged


def table(results: dict[str, dict], baseline: str, args) -> str:
    names = list(results)
    # against the baseline; without one in these runs (the speed options), each option against "ours"
    pairs = [("ours", baseline)] if baseline in results else [(n, "ours") for n in names if n != "ours"]
    lines = [f"| {args.steps}-step {args.size}² | " + " | ".join(f"{n} ({results[n].get('dtype', '?')})" for n in names)
             + "".join(f" | {a} / {b}" for a, b in pairs) + " |", "|---" * (len(names) + 1 + len(pairs)) + "|"]
    few = {"unet_step": "one U-Net pass, CFG 1, LoRA on (s)", "vae_decode": "TAESD decode (s)"} if args.fewstep else {}
    for key, label in ROWS:
        label = few.get(key, label)
        if not any(key in r for r in results.values()):
            continue
        cells = []
        for n in names:
            value = results[n].get(key)
            cells.append("—" if value is None else f"{value / 1e9:.2f}" if "peak" in key else f"{value:.2f}")
        ratios = []
        for a, b in pairs:
            top, bottom = results.get(a, {}).get(key), results.get(b, {}).get(key)
            ratios.append(f"{top / bottom:.2f}×" if top and bottom else "—")
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
    spread = "; ".join(f"{n} " + ", ".join(f"{t:.1f}" for t in r["txt2img_runs"]) for n, r in results.items())
    lines.append(f"\nMedians of {max(len(r['txt2img_runs']) for r in results.values())} interleaved runs; "
                 f"txt2img of each run (s): {spread}.")
    ours = results.get("ours", {})
    if "preview_total" in ours:
        share = ours["preview_total"] / ours["txt2img"]
        lines.append(f"\nsd-desktop's txt2img includes its {ours['previews']} live previews: {ours['preview_total'] * 1000:.1f} ms "
                     f"in all, {share * 100:.3f}% of the generation time.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", default=None, help="comma-separated: " + ", ".join(CPU_RUNS + GPU_RUNS[1:]) +
                        ", and ours-<option>[+<option>] with options " + ", ".join(OPTIONS))
    parser.add_argument("--gpu", action="store_true", help="CUDA: sd-desktop's defaults against diffusers fp16")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the table shows each measure's median "
                        "(diffusers-fp32 runs once: it is 4x slower and only the 4x target rides on it)")
    parser.add_argument("--fewstep", action="store_true",
                        help="the few-step path: LCM (--steps, e.g. 4) at CFG 1 with an LCM-LoRA-shaped random LoRA and "
                             "TAESD's decode, against diffusers' LCMScheduler + the LoRA fused + AutoencoderTiny")
    parser.add_argument("--dry-run", action="store_true", help="with --gpu: the GPU runs and measures on the CPU, "
                        "to try them without a GPU (use a small --size and --steps)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    build_model()
    if args.fewstep:
        build_fewstep_parts()
    runs = args.runs.split(",") if args.runs else (GPU_RUNS if args.gpu else CPU_RUNS)
    samples: dict[str, list[dict]] = {name: [] for name in runs}
    for round_ in range(args.repeat):  # interleaved, so a slow spell of the machine hits every side alike
        for name in runs:
            if round_ and name in RUN_ONCE:
                continue
            command = [sys.executable, __file__, "--child", name, "--steps", str(args.steps), "--size", str(args.size)]
            command += ["--gpu"] if args.gpu else []
            command += ["--dry-run"] if args.dry_run else []
            command += ["--fewstep"] if args.fewstep else []
            out = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode or not lines:
                print(f"{name}: failed\n{out.stderr[-3000:]}", file=sys.stderr)
                continue
            samples[name].append(json.loads(lines[-1].removeprefix("RESULT ")))
            print(f"{name} (round {round_ + 1}): {samples[name][-1]}", flush=True)
    results = {name: median_result(runs_) for name, runs_ in samples.items() if runs_}
    baseline = "diffusers-fp16" if args.gpu else "diffusers-bf16-cl"
    print()
    print(table(results, baseline, args))


if __name__ == "__main__":
    main()
