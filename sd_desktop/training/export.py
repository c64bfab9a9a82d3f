"""Export: one .safetensors in the original LDM key layout, fp16, that `core.load_model` reads.

The U-Net and text encoder are the EMA weights. What the shapes cannot tell the loader (head counts,
norm groups, the measured scale factor, the native size, the preview projection) goes into our
metadata key `sd_desktop`; `sd_desktop_recipe` records how the weights were trained and
`sd_desktop_commit` the code that trained them.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import torch
from safetensors.torch import save

from sd_desktop.core.io.files import write_atomic

from .common import load_checkpoint

PREFIXES = {
    "unet": "model.diffusion_model.",
    "vae": "first_stage_model.",
    "text": "cond_stage_model.transformer.text_model.",
}


def find_diffusion_folder(out: Path) -> Path:
    """`out` itself (a stage-2 folder) or out/diffusion (a `train all` folder)."""
    for folder in (Path(out), Path(out) / "diffusion"):
        if (folder / "checkpoint.pt").is_file() and "ema_unet" in load_checkpoint(folder):
            return folder
    raise SystemExit(f"no diffusion checkpoint in {out} or {Path(out) / 'diffusion'}; run `sd-desktop train diffusion` first")


def ldm_state_dict(state: dict) -> dict[str, torch.Tensor]:
    """All three networks under their LDM prefixes, in fp16 (EMA weights for U-Net and text)."""
    parts = {"unet": state["ema_unet"]["shadow"], "text": state["ema_text"]["shadow"], "vae": state["vae"]}
    return {PREFIXES[part] + key: value.detach().to(torch.float16).contiguous()
            for part, tensors in parts.items() for key, value in tensors.items()}


def git_commit() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).resolve().parent)
        return result.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def training_command(vae_recipe: dict, diffusion_recipe: dict) -> str:
    """The `sd-desktop train all` command that trains these recipes (settings left at their defaults
    are left out; seed and tiny are shared by both stages)."""
    from .diffusion_stage import DiffusionRecipe
    from .vae_stage import VAERecipe

    flags = ["sd-desktop", "train", "all", "--out", "RUN_FOLDER", "--output", "MODEL.safetensors"]
    vae_defaults, diffusion_defaults = dataclasses.asdict(VAERecipe()), dataclasses.asdict(DiffusionRecipe())
    for prefix, recipe, defaults in (("vae-", vae_recipe, vae_defaults), ("", diffusion_recipe, diffusion_defaults)):
        for key, value in recipe.items():
            if key in ("seed", "tiny") or key not in defaults or value == defaults[key]:
                continue
            flags += [f"--{prefix}{key.replace('_', '-')}", str(value)]
    if diffusion_recipe.get("seed"):
        flags += ["--seed", str(diffusion_recipe["seed"])]
    if diffusion_recipe.get("tiny"):
        flags.append("--tiny")
    return " ".join(flags)


def with_finetuned_decoder(state: dict, vae_source: Path) -> dict:
    """The checkpoint with its VAE replaced by one whose decoder was trained further. The encoder must be
    the very one the latents came from, or the U-Net would be paired with a latent space it never saw."""
    from .vae_stage import encoder_parameters, load_vae

    vae, recipe = load_vae(vae_source)
    names = {id(p) for p in encoder_parameters(vae)}
    for key, tensor in vae.state_dict(keep_vars=True).items():
        if id(tensor) in names and not torch.equal(tensor.detach(), state["vae"][key]):
            raise SystemExit(f"{vae_source}: its encoder differs from the one the diffusion model was trained on "
                             f"({key}); only a VAE whose decoder alone was trained further can replace it")
    return {**state, "vae": {k: v.detach() for k, v in vae.state_dict().items()}, "vae_recipe": recipe}


def export_model(out: Path, output: Path, command: str | None = None, vae: Path | None = None) -> Path:
    """Write the finished stage-2 checkpoint in `out` as one .safetensors model file (optionally with
    the decoder of `vae`, a fine-tune of the VAE it was trained with)."""
    state = load_checkpoint(find_diffusion_folder(out))
    if vae is not None:
        state = with_finetuned_decoder(state, vae)
    if state["step"] < state["recipe"]["steps"]:
        print(f"export: note, training stopped at step {state['step']} of {state['recipe']['steps']}")
    ours = {
        "scale_factor": state["scale_factor"],
        "native_size": state["native_size"],
        "latent_rgb": state["latent_rgb"],
        **state["configs"],
    }
    recipe = {
        "training_command": training_command(state["vae_recipe"], state["recipe"]),
        "export_command": command,
        "vae": state["vae_recipe"],
        "diffusion": state["recipe"],
        "diffusion_steps_done": state["step"],
        "final_loss": sum(state["losses"][-100:]) / max(1, len(state["losses"][-100:])),
        "judge": state["evals"][-1] if state["evals"] else None,
    }
    metadata = {"sd_desktop": json.dumps(ours), "sd_desktop_recipe": json.dumps(recipe),
                "sd_desktop_commit": git_commit()}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    data = save(ldm_state_dict(state), metadata=metadata)
    return write_atomic(output, lambda f: f.write(data))
