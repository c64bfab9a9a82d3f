"""`sd-desktop train ...`: train the demo model in two stages and export it.

    sd-desktop train vae --out runs/vae
    sd-desktop train diffusion --out runs/diffusion --vae runs/vae
    sd-desktop train export --out runs/diffusion --output model.safetensors
    sd-desktop train all --out runs/demo --output model.safetensors      # both stages + export

Rerunning a command resumes from the checkpoint in --out (and does nothing when it is finished).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from .diffusion_stage import DiffusionRecipe
from .taesd_stage import TAESDRecipe
from .vae_stage import VAERecipe


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder for checkpoints (rerun to resume)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--threads", default="auto",
                        help="CPU threads: a number, or auto (times 1 and 2 as it runs and keeps the faster)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (faster on GPUs; slower on most CPUs)")
    parser.add_argument("--tiny", action="store_true", help="tiny networks, for tests and trying the commands")
    parser.add_argument("--save-every", type=float, default=180.0, help="seconds between checkpoints")


def _vae_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    d = VAERecipe()
    parser.add_argument(f"--{prefix}steps", type=int, default=d.steps)
    parser.add_argument(f"--{prefix}batch", type=int, default=d.batch)
    parser.add_argument(f"--{prefix}size", type=int, default=d.size, help="training image size (px)")
    parser.add_argument(f"--{prefix}lr", type=float, default=d.lr)
    parser.add_argument(f"--{prefix}warmup", type=int, default=d.warmup)
    parser.add_argument(f"--{prefix}kl-weight", type=float, default=d.kl_weight)
    parser.add_argument(f"--{prefix}edge-weight", type=float, default=d.edge_weight)
    parser.add_argument(f"--{prefix}latent-noise", type=float, default=d.latent_noise,
                        help="noise added to latents while training, relative to their std")
    parser.add_argument(f"--{prefix}latent-noise-from", type=int, default=d.latent_noise_from,
                        help="step from which that noise is added")
    parser.add_argument(f"--{prefix}colour-weight", type=float, default=d.colour_weight,
                        help="weight of the squared error of 8x8-averaged colours")
    parser.add_argument(f"--{prefix}colour-from", type=int, default=d.colour_from, help="step from which it counts")
    parser.add_argument(f"--{prefix}decoder-only-from", type=int, default=d.decoder_only_from,
                        help="step from which only the decoder trains (-1: never)")
    parser.add_argument(f"--{prefix}latent-colour-weight", type=float, default=d.latent_colour_weight,
                        help="weight of the term asking latent channels 0-2 to carry the patch colour linearly")
    parser.add_argument(f"--{prefix}latent-colour-scale", type=float, default=d.latent_colour_scale)
    parser.add_argument(f"--{prefix}init", default=d.init, help="a VAE file to start from")


def _diffusion_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    d = DiffusionRecipe()
    parser.add_argument(f"--{prefix}steps", type=int, default=d.steps)
    parser.add_argument(f"--{prefix}batch", type=int, default=d.batch)
    parser.add_argument(f"--{prefix}size", type=int, default=d.size, help="image size (px); latents are 1/8")
    parser.add_argument(f"--{prefix}lr", type=float, default=d.lr)
    parser.add_argument("--warmup", type=int, default=d.warmup)
    parser.add_argument("--pool", type=int, default=d.pool, help="scenes rendered and encoded once")
    parser.add_argument("--uncond-p", type=float, default=d.uncond_p, help="caption dropout")
    parser.add_argument("--min-snr-gamma", type=float, default=d.min_snr_gamma, help="0: plain epsilon MSE")
    parser.add_argument("--noise-offset", type=float, default=d.noise_offset,
                        help="std of a per-image, per-channel constant added to the training noise")
    parser.add_argument("--ema-decay", type=float, default=d.ema_decay)
    parser.add_argument("--eval-every", type=int, default=1000, help="steps between judged samples (0: never)")
    parser.add_argument("--eval-prompts", type=int, default=32)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sd-desktop train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True)

    vae = sub.add_parser("vae", help="stage 1: the autoencoder")
    _common(vae)
    _vae_options(vae)

    diffusion = sub.add_parser("diffusion", help="stage 2: text encoder + U-Net on the VAE's latents")
    _common(diffusion)
    diffusion.add_argument("--vae", type=Path, required=True, help="a stage-1 folder or a VAE .safetensors")
    _diffusion_options(diffusion)

    export = sub.add_parser("export", help="write the trained model as one .safetensors")
    export.add_argument("--out", type=Path, required=True, help="a stage-2 folder or a `train all` folder")
    export.add_argument("--output", type=Path, required=True)
    export.add_argument("--vae", type=Path, default=None,
                        help="use this VAE's decoder (one trained further with --decoder-only-from)")

    taesd = sub.add_parser("taesd", help="a TAESD decoder distilled from a model's VAE (the demo model's previews)")
    taesd.add_argument("--out", type=Path, required=True, help="folder for checkpoints (rerun to resume)")
    taesd.add_argument("--model", type=Path, default=None, help="the model whose VAE to distil (default: the demo)")
    taesd.add_argument("--threads", default="auto", help="CPU threads: a number, or auto")
    taesd.add_argument("--save-every", type=float, default=180.0, help="seconds between checkpoints")
    taesd.add_argument("--output", type=Path, default=None, help="also copy the finished decoder here")
    t = TAESDRecipe()
    for name in ("steps", "batch", "size", "width", "seed", "warmup"):
        taesd.add_argument(f"--{name}", type=int, default=getattr(t, name))
    for name in ("lr", "latent_noise", "colour_weight"):
        taesd.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(t, name))

    both = sub.add_parser("all", help="both stages and the export (out/vae, out/diffusion)")
    _common(both)
    both.add_argument("--output", type=Path, required=True)
    _vae_options(both, "vae-")
    _diffusion_options(both)
    return parser


def vae_recipe(args, prefix: str = "") -> VAERecipe:
    get = lambda name: getattr(args, prefix + name)  # noqa: E731
    return VAERecipe(steps=get("steps"), batch=get("batch"), size=get("size"), lr=get("lr"), warmup=get("warmup"),
                     kl_weight=get("kl_weight"), edge_weight=get("edge_weight"), latent_noise=get("latent_noise"), latent_noise_from=get("latent_noise_from"),
                     colour_weight=get("colour_weight"), colour_from=get("colour_from"),
                     decoder_only_from=get("decoder_only_from"), latent_colour_weight=get("latent_colour_weight"),
                     latent_colour_scale=get("latent_colour_scale"), init=get("init"),
                     seed=args.seed, tiny=args.tiny)


def diffusion_recipe(args) -> DiffusionRecipe:
    return DiffusionRecipe(steps=args.steps, batch=args.batch, size=args.size, lr=args.lr, warmup=args.warmup, pool=args.pool,
                           uncond_p=args.uncond_p, min_snr_gamma=args.min_snr_gamma, noise_offset=args.noise_offset,
                           ema_decay=args.ema_decay,
                           seed=args.seed, tiny=args.tiny)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command = "sd-desktop train " + shlex.join(argv)
    if args.stage == "taesd":
        import shutil

        from .taesd_stage import TAESD_FILE, train_taesd

        recipe = TAESDRecipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TAESDRecipe)})
        state = train_taesd(args.out, recipe, args.model, threads=args.threads, save_every=args.save_every)
        print(f"taesd: done, {state['step']} steps, final loss {_tail_mean(state['losses']):.4f}; {args.out / TAESD_FILE}")
        if args.output is not None:
            shutil.copyfile(args.out / TAESD_FILE, args.output)
        return 0
    run = dict(device=args.device, threads=args.threads, bf16=args.bf16, save_every=args.save_every) \
        if args.stage != "export" else {}

    if args.stage in ("vae", "all"):
        from .vae_stage import train_vae

        recipe = vae_recipe(args, "vae_" if args.stage == "all" else "")
        vae_out = args.out / "vae" if args.stage == "all" else args.out
        state = train_vae(vae_out, recipe, **run)
        print(f"vae: done, {state['step']} steps, final loss {_tail_mean(state['losses']):.4f}; {vae_out}")
    if args.stage in ("diffusion", "all"):
        from .diffusion_stage import train_diffusion

        vae_source = args.out / "vae" if args.stage == "all" else args.vae
        diffusion_out = args.out / "diffusion" if args.stage == "all" else args.out
        state = train_diffusion(diffusion_out, vae_source, diffusion_recipe(args), eval_every=args.eval_every,
                                eval_prompts=args.eval_prompts, **run)
        judged = f"; judge {state['evals'][-1]}" if state["evals"] else ""
        print(f"diffusion: done, {state['step']} steps, final loss {_tail_mean(state['losses']):.4f}{judged}")
    if args.stage in ("export", "all"):
        from .export import export_model

        path = export_model(args.out, args.output, command, getattr(args, "vae", None) if args.stage == "export" else None)
        print(f"exported {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


def _tail_mean(losses: list[float], n: int = 100) -> float:
    tail = losses[-n:]
    return sum(tail) / max(1, len(tail))
