"""`load_model`: a checkpoint file or diffusers folder in, a ready `StableDiffusionModel` out.

Modules are built on the meta device and the checkpoint's tensors are assigned to them, each
converted to the target dtype as it is read, so a load holds about one copy of the weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import Cancelled, ModelLoadError, ModelMemoryError, SDDesktopError, out_of_memory
from ..families import ModelConfig, ModelFamily, recognise
from ..nn.configs import TextEncoderConfig, UNetConfig, VAEConfig
from ..runtime.allocator import release_cpu_memory
from ..runtime.devices import compile_supported, resolve_device, resolve_dtype
from ..runtime.onednn import conv_input_shapes, onednn_available, pack_for_cpu
from ..runtime.upload import StagedUpload
from .detection import infer_text_config, infer_unet_config, infer_vae_config, split_ldm_keys
from .tensor_files import open_tensor_file

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
METADATA_KEY = "sd_desktop"
PINNED_UPLOAD = True  # weights go to a CUDA GPU through pinned buffers (core.runtime.upload), not tensor by tensor  # our own safetensors metadata: config overrides, scale factor, preview projection

ShouldStop = Callable[[], bool]


log = logging.getLogger(__name__)


class StableDiffusionModel:
    """The three networks of one checkpoint, on one device, in one dtype, with their tokenizer."""

    def __init__(self, *, config: ModelConfig, unet: nn.Module, vae: nn.Module, text_encoder: nn.Module,
                 tokenizer, device: torch.device, dtype: torch.dtype, name: str, path: Path | None,
                 latent_rgb: list[list[float]] | None = None, extra: dict | None = None):
        self.config = config
        self.unet = unet
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.name = name
        self.path = path
        # latent -> RGB rows for previews: the file's own fit if it has one, else its family's
        self.latent_rgb = latent_rgb or [list(row) for row in config.family.latent.rgb_factors]
        self.extra = extra or {}
        self.float32_vae: nn.Module | None = None  # made by core.runtime.vae_ops when float16 overflows
        self.packed = False  # weights packed for oneDNN (pack_for_cpu)
        # a TAESD (core.loading.taesd) for previews (taesd_previews) and requests with taesd_decode; see use_taesd
        self.taesd = None
        self.taesd_previews = False
        self.came_with_taesd = False  # a bundled model's own TAESD (the demo's): its previews by default
        self._hash: str | None = None
        self.vae_path: Path | None = None  # a VAE file that replaced the checkpoint's own (load_model's `vae`)
        self._vae_hash: str | None = None

    family: ModelFamily = property(lambda self: self.config.family)
    scale_factor = property(lambda self: self.config.scale_factor)
    native_size = property(lambda self: self.config.native_size)
    is_inpainting = property(lambda self: self.config.family.inpainting)

    def use_taesd(self, *paths, previews: bool = True) -> None:
        """Load a TAESD (a diffusers AutoencoderTiny file, or taesd_decoder [+ taesd_encoder]) beside the VAE:
        per-step previews from it when `previews`, and the final decode of requests that ask (taesd_decode)."""
        from .taesd import load_taesd

        taesd = load_taesd(*paths, prefix=self.family.taesd)
        if taesd.latent_channels != self.config.vae.latent_channels:
            from ..errors import UnsupportedModelError

            raise UnsupportedModelError(f"{taesd.name} decodes {taesd.latent_channels}-channel latents; this model's "
                                        f"have {self.config.vae.latent_channels} (a TAESD for another family)")
        self.taesd = taesd.to(self.device, torch.float32 if self.device.type == "cpu" else self.dtype)
        self.taesd_previews = previews

    def compile_unet(self, mode: str = "default") -> None:
        """torch.compile the U-Net (inductor, shapes fixed; torch caches the kernels on disk) in one of COMPILE_MODES
        ("reduce-overhead" adds CUDA graphs on a GPU; "max-autotune" also times GEMM and convolution kernels). The
        first generation at each new size or batch pays for the compilation, later ones run faster."""
        if self.packed:
            raise RuntimeError("this model's weights are packed for oneDNN; load it with compile=True instead")
        if mode not in COMPILE_MODES:
            raise SDDesktopError(f"unknown compile mode {mode!r}; use one of {', '.join(COMPILE_MODES)}")
        if not hasattr(self.unet, "_orig_mod"):  # not compiled yet
            self.unet = compile_network(self.unet, mode, self.device)

    @property
    def compiled(self) -> bool:
        """Whether the U-Net is torch.compile'd. Its wrapper keeps the network as `_orig_mod`, as CUDA graphs' does
        (core.runtime.cuda_graphs), which compiles nothing."""
        from ..runtime.cuda_graphs import GraphedUNet

        return hasattr(self.unet, "_orig_mod") and not isinstance(self.unet, GraphedUNet)

    def use_cuda_graphs(self) -> None:
        """Replay the U-Net's calls as CUDA graphs (core.runtime.cuda_graphs): one launch a step instead of a
        thousand. CUDA only; a cancel then lands at the next step rather than inside one."""
        from ..runtime.cuda_graphs import GraphedUNet

        if self.device.type != "cuda":
            raise SDDesktopError(f"CUDA graphs need a CUDA GPU; this model is on the {self.device.type.upper()}")
        if hasattr(self.unet, "_orig_mod"):
            raise SDDesktopError("the U-Net is compiled already (torch.compile); use CUDA graphs or compile, not both")
        self.unet = GraphedUNet(self.unet)

    def pack_for_cpu(self) -> None:
        """Pack the U-Net's and the VAE's weights for oneDNN (core.runtime.onednn): inference only, and the
        networks then run on this CPU only. The time embedding and the VAE's quant convolutions stay
        plain: they are tiny, and their weights tell the networks their dtype."""
        if not self.packed:
            try:
                unet_shapes, vae_shapes = self.native_conv_shapes()
            except RuntimeError as error:  # a torch that refuses an empty batch somewhere: pack as before, for
                # 64x64 (slower at other shapes: said in the log, where a change that broke the probe shows)
                log.warning("convolutions packed for 64x64: their native shapes were not found (%s)", error)
                unet_shapes, vae_shapes = {}, {}
            pack_for_cpu(self.unet, skip=(self.unet.time_embed,), shapes=unet_shapes)
            pack_for_cpu(self.vae, skip=(self.vae.quant_conv, self.vae.post_quant_conv), shapes=vae_shapes)
            self.packed = True

    def native_conv_shapes(self) -> tuple[dict, dict]:
        """Each convolution's input shape when the U-Net (a CFG batch of 2) and the VAE (one image) run at the
        model's native size: what pack_for_cpu packs them for (core.runtime.onednn: a convolution packed for
        another shape reorders its weight at every call). Found by running the networks on an empty batch."""
        unet_config, vae_config = self.config.unet, self.config.vae
        side, like = self.native_size // vae_config.downscale, {"dtype": self.dtype, "device": self.device}

        def run_unet(unet, n: int):
            y = () if not unet_config.adm_in_channels else (torch.zeros(n, unet_config.adm_in_channels, **like),)
            unet(torch.zeros(n, unet_config.in_channels, side, side, **like), torch.zeros(n, device=self.device),
                 torch.zeros(n, 77, unet_config.context_dim, **like), *y)

        def run_vae(vae, n: int):
            vae.decode(torch.zeros(n, vae_config.latent_channels, side, side, **like))
            vae.encode(torch.zeros(n, 3, self.native_size, self.native_size, **like))

        return conv_input_shapes(self.unet, run_unet, 2), conv_input_shapes(self.vae, run_vae, 1)

    def tokenize(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """[B, 77] token ids: start, the prompt's tokens, end, padded with the end token."""
        return self.tokenizer([prompts] if isinstance(prompts, str) else list(prompts))

    @torch.inference_mode()
    def encode_text(self, ids: torch.Tensor, clip_skip: int = 1, extra=None) -> torch.Tensor:
        """The text encoders' hidden states (encode_towers), side by side: [B, L, context width]."""
        hidden, _ = self.encode_towers(ids, clip_skip, extra)
        return torch.cat(hidden, dim=-1) if len(hidden) > 1 else hidden[0]

    def text_towers(self) -> list[tuple[str, nn.Module]]:
        """The text encoders by the names embeddings and LoRAs use: [("clip", te)], SDXL [("clip_l", ..), ("clip_g", ..)]."""
        encoder = self.text_encoder
        if hasattr(encoder, "clip_g"):
            return [("clip_l", encoder.clip_l), ("clip_g", encoder.clip_g)]
        return [("clip", encoder)]

    @property
    def text_widths(self) -> tuple[int, ...]:
        """Each text encoder's width: (768,) for SD 1.x, (1024,) for SD 2.x, (768, 1280) for SDXL."""
        return tuple(tower.config.width for _, tower in self.text_towers())

    @torch.inference_mode()
    def encode_towers(self, ids: torch.Tensor, clip_skip: int = 1, extra=None,
                      pooled: bool = False) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Each text encoder's hidden state `clip_skip` layers from the end (1 = its default: the last for SD 1.x,
        the penultimate for SD 2.x and SDXL), through its final LayerNorm where the family uses it, [B, L, width],
        in the model's dtype; and with `pooled` the last tower's pooled output [B, proj] (SDXL's), else None.
        ids: [B, L] from the tokenizer, end-padded; a tower that pads with another id (OpenCLIP's 0) gets it after
        each row's first end token. `extra`: embedding vectors for ids past the vocabulary ({tower name: [k,
        width]}, or one tensor for a one-tower model)."""
        ids = ids.to(self.device)
        eos = ids == self.tokenizer.eos_id
        first_end = torch.where(eos.any(-1), eos.int().argmax(-1), ids.shape[1] - 1)
        after_end = torch.arange(ids.shape[1], device=ids.device)[None] > first_end[:, None]
        towers = self.text_towers()
        hidden, pool = [], None
        for index, (name, tower) in enumerate(towers):
            vectors = extra.get(name) if isinstance(extra, dict) else extra
            tower_ids = ids if tower.config.pad_id is None else ids.masked_fill(after_end, tower.config.pad_id)
            last = index == len(towers) - 1
            out = tower(tower_ids, clip_skip=clip_skip, extra=None if vectors is None else vectors.to(self.device),
                        pool_at=first_end if pooled and last else None)
            if pooled and last:
                out, pool = out
            hidden.append(out)
        return hidden, pool

    @property
    def file_hash(self) -> str | None:
        """First 10 hex digits of the file's sha256 (AUTOMATIC1111's "Model hash"); None for folders."""
        if self._hash is None:
            self._hash = _sha256_10(self.path)
        return self._hash

    @property
    def vae_hash(self) -> str | None:
        """The same of the VAE file that replaced the model's own (A1111's "VAE hash"); None without one."""
        if self._vae_hash is None:
            self._vae_hash = _sha256_10(self.vae_path)
        return self._vae_hash

    def __repr__(self) -> str:
        return f"<StableDiffusionModel {self.name!r} {self.family.name} on {self.device} {self.dtype}>"


def _sha256_10(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:10]


def default_model_path() -> Path:
    from ...resources_path import bundled_model, resource

    path = bundled_model()
    if path is None:
        raise ModelLoadError(f"the bundled demo model is missing from {resource('models')}; "
                             "reinstall sd-desktop or choose a model file")
    return path


def compile_network(network: nn.Module, mode: str, device: torch.device) -> nn.Module:
    """torch.compile `network` in one of COMPILE_MODES, its shapes fixed. On a CPU the max-autotune modes also freeze
    the weights (inductor's `freezing`): its CPU GEMM templates take only constant weights, so without freezing
    max-autotune has nothing to choose among there. Inductor reads that setting when dynamo traces, at the first
    call and at each recompile, not from torch.compile's `options`; so it is set process-wide, for the mode
    compiled last. Measured on a 2-core AVX2 CPU (benchmarks/bench_inductor.py, full-size SD 1.5, fp32): a 512² CFG
    step 0.90–0.93× the packed eager one, after a first call of 131–204 s per shape. torch keeps the default mode's
    compile on disk (core.runtime.compile_cache: 22.6 s instead of 131.8 s in the next process), not a frozen one.
    It is compiled in the calling thread: FX's tracing patches nn.Module.__call__ for the whole process, so an eager
    network running in another thread meanwhile breaks (tried: README, Performance)."""
    import torch._inductor.config as inductor

    inductor.freezing = device.type == "cpu" and mode.startswith("max-autotune")
    return torch.compile(network, dynamic=False, mode=None if mode == "default" else mode)


def load_model(path: str | Path | None = None, device: str | torch.device | None = "auto",
               dtype: str | torch.dtype | None = None, vae: str | Path | None = None,
               compile: bool | str = False, should_stop: ShouldStop | None = None, *, cuda_graphs: bool = False,
               channels_last: bool | None = None) -> StableDiffusionModel:
    """Load a .safetensors / .ckpt file or a diffusers folder. path None = the bundled demo model.

    `dtype` None or "auto": the fastest safe precision for the device (core.runtime.devices.auto_dtype).
    `vae` optionally names a separate VAE file (or diffusers vae folder) that replaces the model's own.
    `compile`: torch.compile the U-Net, True or one of COMPILE_MODES (see StableDiffusionModel.compile_unet; CPU and
    CUDA only). Without it, on an x86 CPU in float32 or bfloat16 the weights are packed for oneDNN
    (StableDiffusionModel.pack_for_cpu). `cuda_graphs`: replay the U-Net as CUDA graphs (use_cuda_graphs).
    `channels_last`: the U-Net's and VAE's layout; None = the device's best (NHWC on CPUs and CUDA).
    `should_stop` is asked between tensors; True raises core.Cancelled and nothing is kept.
    The process's malloc is left as it is: the app and the CLI tune it (core.runtime.allocator).
    """
    path = Path(path).expanduser() if path is not None else default_model_path()
    target = resolve_device(device)
    dtype = resolve_dtype(dtype, target)
    if compile and not compile_supported(target):
        raise SDDesktopError(f"compiling the U-Net (torch.compile) does not work on {target.type.upper()}; "
                             "load the model without it")
    if cuda_graphs and target.type != "cuda":
        raise SDDesktopError(f"CUDA graphs need a CUDA GPU, not the {target.type.upper()}; load the model without them")
    if cuda_graphs and compile:
        raise SDDesktopError("choose CUDA graphs or torch.compile, not both (compile's reduce-overhead mode has graphs)")
    mode = "default" if compile is True else compile or None
    if mode is not None and mode not in COMPILE_MODES:
        raise SDDesktopError(f"unknown compile mode {mode!r}; use one of {', '.join(COMPILE_MODES)}")
    layout = _channels_last(target) if channels_last is None else bool(channels_last)
    check = _stop_check(should_stop)
    try:
        model = _load(path, target, dtype, vae, mode, layout, check)
        if cuda_graphs:
            model.use_cuda_graphs()
        return model
    except (MemoryError, RuntimeError) as exc:
        if not out_of_memory(exc):
            raise
        raise ModelMemoryError(
            f"not enough memory to load {path.name} on the {target.type.upper()} in {str(dtype).removeprefix('torch.')}: "
            "close other programs, or choose a smaller precision (bf16 or fp16) in Preferences or with --precision"
        ) from None
    finally:
        release_cpu_memory()  # the file's tensors and the unpacked weights are free now (or after a failure)


def _stop_check(should_stop: ShouldStop | None) -> Callable[[], None]:
    def check() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled("loading cancelled")

    return check


def _load(path: Path, target: torch.device, dtype: torch.dtype, vae, compile: str | None, channels_last: bool,
          check) -> StableDiffusionModel:
    from .diffusers_folder import is_diffusers_folder

    if is_diffusers_folder(path):
        config, weights, tokenizer_files, metadata = _read_diffusers(path, dtype, check)
    elif path.is_dir():
        raise ModelLoadError(
            f"{path.name} is a folder but not a diffusers model folder "
            "(expected model_index.json with unet/, vae/ and text_encoder/ inside); choose a .safetensors file or such a folder"
        )
    else:
        config, weights, tokenizer_files, metadata = _read_single_file(path, dtype, channels_last, check)

    if vae is not None:
        vae_config, weights["vae"] = read_vae_file(Path(vae).expanduser(), dtype)
        config = dataclasses.replace(config, vae=vae_config)

    from ..nn.clip_text import CLIPTextModel, DualCLIPText
    from ..nn.unet import UNetModel
    from ..nn.vae import AutoencoderKL

    if config.text2 is not None:  # SDXL: one module holds both towers
        text = lambda cfg: DualCLIPText(cfg, config.text2)  # noqa: E731
        weights["text"] = {**{f"clip_l.{k}": v for k, v in weights.pop("text").items()},
                           **{f"clip_g.{k}": v for k, v in weights.pop("text2").items()}}
    else:
        text = CLIPTextModel
    networks = {}
    for part, cls, cfg in (("unet", UNetModel, config.unet), ("vae", AutoencoderKL, config.vae),
                           ("text", text, config.text)):
        check()
        with torch.device("meta"):
            module = cls(cfg)
        assign_weights(module, weights.pop(part), _PART_NAMES[part], path.name, target, config.family)
        if part != "text" and channels_last:
            module.to(memory_format=torch.channels_last)  # a no-op for weights read that way already
        networks[part] = module.eval().requires_grad_(False)

    from ..text.tokenizer import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_files(*tokenizer_files) if tokenizer_files else CLIPTokenizer.default()
    model = StableDiffusionModel(
        config=config, unet=networks["unet"], vae=networks["vae"], text_encoder=networks["text"],
        tokenizer=tokenizer, device=target, dtype=dtype, name=path.stem if path.is_file() else path.name,
        path=path, latent_rgb=metadata.get("latent_rgb"), extra=metadata,
    )
    model.vae_path = Path(vae).expanduser() if vae is not None else None
    check()
    if config.prediction == "probe":
        from .prediction import probe_prediction

        model.config = config = dataclasses.replace(config, prediction=probe_prediction(model))
    if config.prediction == "v" and config.family.native_size_v and "native_size" not in metadata:
        model.config = dataclasses.replace(config, native_size=config.family.native_size_v)
    if compile:
        model.compile_unet(compile)
    elif onednn_available(target, dtype):
        model.pack_for_cpu()
    _use_bundled_taesd(model, path)
    return model


def _use_bundled_taesd(model: StableDiffusionModel, path: Path) -> None:
    """A bundled model (the demo) comes with a TAESD distilled from its VAE: its previews are full-size pictures
    from it by default (1.2 M parameters: a few milliseconds a step), and requests may ask for its decode."""
    from ...resources_path import bundled_model, bundled_taesd

    demo = bundled_model()
    if demo is not None and path.resolve() == demo.resolve() and (taesd := bundled_taesd(demo)) is not None:
        model.use_taesd(taesd, previews=True)
        model.came_with_taesd = True


_PART_NAMES = {"unet": "U-Net", "vae": "VAE", "text": "text encoder", "text2": "second text encoder"}


def _channels_last(device: torch.device) -> bool:
    """oneDNN / cuDNN convolutions run faster on NHWC: on a CPU the VAE decode went from 5.9 s to
    2.6 s at 512x512 (bf16), a U-Net step ~4% faster (benchmarks/bench_sd.py)."""
    return device.type in ("cpu", "cuda")


def _read_single_file(path: Path, dtype: torch.dtype, channels_last: bool, check):
    from .convert_text import openclip_plan, planned_shapes, read_planned

    source = open_tensor_file(path)
    family = recognise(source.shapes, path.name)
    parts = split_ldm_keys(source.keys(), family.keys)
    for part in parts:
        if not parts[part]:
            raise ModelLoadError(
                f"{path.name} has a U-Net but no {_PART_NAMES[part]}; it is not a complete {family.label} checkpoint"
            )
    # where each of our weights is in the file, and how to take it (OpenCLIP towers are renamed and cut)
    plans = {part: {short: (full, None) for short, full in keys.items()} for part, keys in parts.items()}
    if family.keys.text_openclip:
        plans["text"] = openclip_plan(parts["text"])
    if "text2" in parts:
        plans["text2"] = openclip_plan(parts["text2"])
    shapes = {part: planned_shapes(plan, source.shapes) for part, plan in plans.items()}
    metadata = our_metadata(source.metadata, path.name)
    config = _apply_overrides(
        ModelConfig(
            family=family,
            text=infer_text_config(shapes["text"], family.text),
            text2=infer_text_config(shapes["text2"], family.text2) if "text2" in shapes else None,
            unet=infer_unet_config(shapes["unet"], family.unet),
            vae=infer_vae_config(shapes["vae"], family.vae),
            scale_factor=family.latent.scale_factor,
            native_size=family.native_size,
            prediction=stated_prediction(source.shapes, source.metadata) or family.prediction,
            zero_snr="ztsnr" in source.shapes,  # (NoobAI-XL V-Pred and others: read by ComfyUI and Forge)
        ),
        metadata,
        path.name,
    )

    def read(part: str, full: str, how) -> torch.Tensor:  # dtype and layout in one copy
        check()
        tensor = read_planned(source.get(full), how)
        if channels_last and not part.startswith("text") and tensor.dim() == 4:
            return tensor.to(dtype=dtype, memory_format=torch.channels_last)
        return tensor.to(dtype)

    weights = {part: {short: read(part, full, how) for short, (full, how) in plan.items()}
               for part, plan in plans.items()}
    return config, weights, None, metadata


def stated_prediction(shapes: dict, metadata: dict[str, str]) -> str | None:
    """What a single file says it predicts: NoobAI-XL V-Pred and others carry an empty `v_pred` tensor (ComfyUI
    and Forge read it); some exports write `modelspec.prediction_type`. None: the file does not say."""
    if "v_pred" in shapes:
        return "v"
    stated = str(metadata.get("modelspec.prediction_type", "")).lower()
    if stated in ("v", "v_prediction", "v-prediction"):
        return "v"
    if stated in ("eps", "epsilon"):
        return "eps"
    return None


def _read_diffusers(path: Path, dtype: torch.dtype, check):
    from .convert_unet import unet_keys_from_diffusers
    from .convert_vae import vae_keys_from_diffusers
    from .diffusers_folder import open_diffusers_folder, read_folder_weights

    folder = open_diffusers_folder(path)
    config = folder.config
    text = read_folder_weights(path / "text_encoder", "text_encoder", dtype, check)
    weights = {
        "unet": unet_keys_from_diffusers(read_folder_weights(path / "unet", "unet", dtype, check), config.unet),
        "vae": vae_keys_from_diffusers(read_folder_weights(path / "vae", "vae", dtype, check), config.vae),
        "text": _transformers_text(text),
    }
    if config.text2 is not None:
        weights["text2"] = _transformers_text(read_folder_weights(path / "text_encoder_2", "text_encoder_2", dtype, check))
    return config, weights, folder.tokenizer_files(), {}


def _transformers_text(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' CLIPTextModel(WithProjection) keys -> ours."""
    return {k.removeprefix("text_model."): v for k, v in tensors.items() if not k.endswith("position_ids")}


def read_vae_file(path: Path, dtype: torch.dtype) -> tuple[VAEConfig, dict[str, torch.Tensor]]:
    """A VAE on its own: LDM keys (bare or under first_stage_model.) or diffusers keys, or a diffusers vae folder."""
    from ..families import SD1
    from .convert_vae import vae_config_from_diffusers_keys, vae_keys_from_diffusers

    if not path.exists():
        raise ModelLoadError(f"VAE file not found: {path}")
    if path.is_dir():
        from .diffusers_folder import read_vae_folder

        cfg, tensors = read_vae_folder(path, dtype)
        return cfg, vae_keys_from_diffusers(tensors, cfg)
    source = open_tensor_file(path)
    keys = list(source.keys())
    layout = SD1.keys
    prefix = layout.vae if any(k.startswith(layout.vae) for k in keys) else ""
    ours = {k[len(prefix):]: k for k in keys if k.startswith(prefix)}
    ours = {k: full for k, full in ours.items() if k.startswith(layout.vae_parts)}
    if not ours:
        raise ModelLoadError(f"{path.name} holds no VAE weights; choose a VAE file (e.g. vae-ft-mse-840000-ema-pruned.safetensors)")
    tensors = {k: source.get(full).to(dtype) for k, full in ours.items()}
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    if any(".down_blocks." in k or ".up_blocks." in k for k in tensors):  # diffusers layout
        cfg = vae_config_from_diffusers_keys(shapes)
        return cfg, vae_keys_from_diffusers(tensors, cfg)
    return infer_vae_config(shapes), tensors


def assign_weights(module: nn.Module, tensors: dict[str, torch.Tensor], part: str, name: str,
                   device: torch.device, family: ModelFamily | None = None) -> None:
    """Give a meta-device module its weights; any mismatch becomes one clear line."""
    label = family.label if family is not None else "the expected"
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        detail = f"missing {len(missing)} weights such as {missing[0]}" if missing else (
            f"{len(unexpected)} unknown weights such as {unexpected[0]}")
        raise ModelLoadError(f"{name}: the {part} does not have the layout of a {label} model ({detail})")
    ready = {}
    staged = StagedUpload(device) if device.type == "cuda" and PINNED_UPLOAD else None
    for key, tensor in tensors.items():
        shape = expected[key]
        if tuple(tensor.shape) != shape:
            if tensor.numel() == torch.Size(shape).numel() and tensor.dim() == 2 and len(shape) == 4:
                tensor = tensor.reshape(shape)  # a Linear stored where we use the equivalent 1x1 conv
            else:
                raise ModelLoadError(
                    f"{name}: the {part}'s weight {key} has shape {tuple(tensor.shape)}, expected {shape}; "
                    "the file is damaged or of an unsupported variant"
                )
        ready[key] = staged.upload(tensor) if staged is not None and tensor.device.type == "cpu" else tensor.to(device)
    if staged is not None:
        staged.finish()
    tensors.clear()
    module.load_state_dict(ready, strict=True, assign=True)


def our_metadata(metadata: dict[str, str], name: str) -> dict:
    """The `sd_desktop` entry of a safetensors header: what the weights cannot show (head counts, scale factor,
    native size, preview projection). A file that has one that cannot be read is refused, not loaded with
    guessed head counts that would give wrong pictures."""
    raw = metadata.get(METADATA_KEY)
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{name}: its sd-desktop settings (the '{METADATA_KEY}' metadata) are damaged; "
                             "download or export the file again")
    return value


def _apply_overrides(config: ModelConfig, metadata: dict, name: str) -> ModelConfig:
    """Our own files may state what the weights cannot show (head counts, scale factor, native size)."""
    sections = {"unet": (config.unet, UNetConfig), "vae": (config.vae, VAEConfig), "text": (config.text, TextEncoderConfig)}
    changes: dict = {}
    try:
        for section, (current, cls) in sections.items():
            fields = {f.name for f in dataclasses.fields(cls)}
            values = {k: tuple(v) if isinstance(v, list) else v
                      for k, v in (metadata.get(section) or {}).items() if k in fields}
            if values:
                changes[section] = dataclasses.replace(current, **values)
        if metadata.get("prediction") in ("eps", "v"):
            changes["prediction"] = metadata["prediction"]
        if isinstance(metadata.get("zero_snr"), bool):
            changes["zero_snr"] = metadata["zero_snr"]
        for key in ("scale_factor", "native_size"):
            if key in metadata:
                changes[key] = type(getattr(config, key))(metadata[key])
    except (AttributeError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{name}: its sd-desktop settings (the '{METADATA_KEY}' metadata) are damaged ({exc}); "
                             "download or export the file again") from None
    return dataclasses.replace(config, **changes)
