"""LoRA and LyCORIS files as people have them, read into one form: per adapted layer, its kind and tensors.

Layer names in the wild (all normalised to (part, underscore path), part "unet", "te", "te1" or "te2"):
- kohya / A1111: `lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight`
  (diffusers module path), or `lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q...` (the LDM path);
  `lora_te_text_model_encoder_layers_0_self_attn_q_proj...`; SDXL's `lora_te1_`/`lora_te2_`.
- PEFT / diffusers: `unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight`,
  `text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight`; the older attention-processor
  form `unet....attn1.processor.to_q_lora.down.weight`, `...q_proj.lora_linear_layer.up.weight`.

Kinds and their weight change dW (float32, before the user's weight), as kohya's and LyCORIS' code define them:
- "lora": up @ down (a conv: down has the layer's kernel, up is 1x1; with `lora_mid`, Tucker: down 1x1,
  mid the kernel, up 1x1), times alpha / rank (1 without alpha). `dora_scale` (DoRA) rescales W + dW per
  input channel to the stored magnitude (needs the base weight: LoraModule.delta takes it).
- "loha": (w1_a @ w1_b) * (w2_a @ w2_b) (Tucker with hada_t1/t2), times alpha / rank.
- "lokr": kron(w1, w2), each factor whole or a product (w2 Tucker with lokr_t2), times alpha / rank when a
  factor is a product, else 1.
- "full": `diff` itself (and `diff_b` for the bias).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ModelLoadError

# A key's last dotted parts -> what the tensor is. Longest first when matching.
SUFFIXES = {
    "lora_down.weight": "down", "lora_up.weight": "up", "lora_mid.weight": "mid",
    "lora_A.weight": "down", "lora_B.weight": "up",
    "lora.down.weight": "down", "lora.up.weight": "up",
    "lora_linear_layer.down.weight": "down", "lora_linear_layer.up.weight": "up",
    "down.weight": "down", "up.weight": "up",
    "alpha": "alpha", "dora_scale": "dora_scale",
    "hada_w1_a": "hada_w1_a", "hada_w1_b": "hada_w1_b", "hada_w2_a": "hada_w2_a", "hada_w2_b": "hada_w2_b",
    "hada_t1": "hada_t1", "hada_t2": "hada_t2",
    "lokr_w1": "lokr_w1", "lokr_w1_a": "lokr_w1_a", "lokr_w1_b": "lokr_w1_b",
    "lokr_w2": "lokr_w2", "lokr_w2_a": "lokr_w2_a", "lokr_w2_b": "lokr_w2_b", "lokr_t2": "lokr_t2",
    "diff": "diff", "diff_b": "diff_b",
}
_ORDERED_SUFFIXES = sorted(SUFFIXES, key=len, reverse=True)
KOHYA_PARTS = (("lora_unet_", "unet"), ("lora_te1_", "te1"), ("lora_te2_", "te2"), ("lora_te_", "te"))
DOTTED_PARTS = (("unet.", "unet"), ("text_encoder_2.", "te2"), ("text_encoder.", "te"))
OLD_PROCESSOR_NAMES = {"to_q_lora": "to_q", "to_k_lora": "to_k", "to_v_lora": "to_v", "to_out_lora": "to_out.0"}


@dataclass
class LoraModule:
    """One adapted layer: its kind and its tensors (float32, on the CPU), keyed by SUFFIXES' values."""

    part: str  # "unet", "te", "te1", "te2"
    path: str  # the layer's path with "_" for "." (kohya's form), e.g. "down_blocks_0_attentions_0_proj_in"
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        t = self.tensors
        if "down" in t and "up" in t:
            return "lora"
        if "hada_w1_a" in t:
            return "loha"
        if "lokr_w1" in t or "lokr_w1_a" in t:
            return "lokr"
        if "diff" in t:
            return "full"
        return "unknown"

    @property
    def alpha(self) -> float | None:
        alpha = self.tensors.get("alpha")
        return None if alpha is None else float(alpha.reshape(-1)[0])

    def scale(self) -> float:
        """alpha / rank by kind (A1111's calc_scale): 1 when there is no alpha or (LoKr) no factorised half."""
        t, alpha = self.tensors, self.alpha
        rank = {"lora": lambda: t["down"].shape[0], "loha": lambda: t["hada_w1_b"].shape[0],
                "lokr": lambda: (t["lokr_w1_b"].shape[0] if "lokr_w1_b" in t else
                                 t["lokr_w2_b"].shape[0] if "lokr_w2_b" in t else None)}.get(self.kind)
        dim = rank() if rank is not None else None
        return alpha / dim if alpha is not None and dim else 1.0

    def factored(self) -> bool:
        """A plain LoRA or LoCon: it runs as two (three) small products beside the layer, not as a dense dW."""
        return self.kind == "lora" and "dora_scale" not in self.tensors

    def delta(self, shape: tuple[int, ...], base: torch.Tensor | None = None) -> torch.Tensor:
        """dW shaped like the layer's weight `shape`, float32, scale included (not the user's weight).
        DoRA needs the layer's base weight `base`."""
        t = self.tensors
        kind = self.kind
        if kind == "lora":
            up, down = t["up"].flatten(1), t["down"]
            if "mid" in t:
                delta = torch.einsum("ijkl,jr,pi->prkl", t["mid"], down.flatten(1), up)
            else:
                delta = (up @ down.flatten(1)).reshape(up.shape[0], *down.shape[1:])
        elif kind == "loha":
            w1 = _tucker(t["hada_t1"], t["hada_w1_a"], t["hada_w1_b"]) if "hada_t1" in t else t["hada_w1_a"] @ t["hada_w1_b"]
            w2 = _tucker(t["hada_t2"], t["hada_w2_a"], t["hada_w2_b"]) if "hada_t2" in t else t["hada_w2_a"] @ t["hada_w2_b"]
            delta = w1 * w2
        elif kind == "lokr":
            w1 = t["lokr_w1"] if "lokr_w1" in t else t["lokr_w1_a"] @ t["lokr_w1_b"]
            if "lokr_w2" in t:
                w2 = t["lokr_w2"]
            elif "lokr_t2" in t:
                w2 = _tucker(t["lokr_t2"], t["lokr_w2_a"], t["lokr_w2_b"])
            else:
                w2 = t["lokr_w2_a"] @ t["lokr_w2_b"]
            if w2.dim() == 4:
                w1 = w1[:, :, None, None]
            delta = torch.kron(w1, w2)
        elif kind == "full":
            delta = t["diff"]
        else:
            raise ValueError(f"{self.path}: no weights of a kind sd-desktop knows ({', '.join(sorted(t))})")
        delta = fit_shape(delta, shape) * self.scale()
        if "dora_scale" in t:
            if base is None:
                raise ValueError("DoRA needs the layer's base weight")
            delta = dora(delta, base.float(), t["dora_scale"])
        return delta


def _tucker(core: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LyCORIS' Tucker rebuild: core [r, r, kh, kw] with a [out, r] and b [r, in] -> [out, in, kh, kw]."""
    return torch.einsum("ijkl,jr,ip->prkl", core, b.flatten(1), a.flatten(1))


def fit_shape(delta: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """dW in the layer's weight shape: a Linear's dW for our equivalent 1x1 conv (and back), and a 4-channel
    conv_in dW for an inpainting model's 9-channel conv_in (zero for the extra channels)."""
    shape = tuple(shape)
    if tuple(delta.shape) == shape:
        return delta
    if delta.numel() == torch.Size(shape).numel() and (delta.dim() == 2 or len(shape) == 2):
        return delta.reshape(shape)
    if delta.dim() == 4 and len(shape) == 4 and delta.shape[0] == shape[0] and delta.shape[1] < shape[1] \
            and delta.shape[2:] == shape[2:]:
        padded = delta.new_zeros(shape)
        padded[:, : delta.shape[1]] = delta
        return padded
    raise ShapeMismatch(tuple(delta.shape), shape)


class ShapeMismatch(ValueError):
    def __init__(self, got: tuple[int, ...], wanted: tuple[int, ...]):
        super().__init__(f"{got} where the layer has {wanted}")
        self.got, self.wanted = got, wanted


def dora(delta: torch.Tensor, base: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """DoRA: W + dW rescaled so that each of its vectors has the stored magnitude; returns the resulting
    change of W. kohya and A1111 store one magnitude per input channel ([1, in]); LyCORIS' `wd_on_out` one
    per output channel ([out, 1]), the merged weight's rows then being rescaled (LyCORIS' own rule)."""
    merged = base + delta
    if magnitude.shape[0] == merged.shape[0] and magnitude.shape[0] != 1:  # per output channel
        norms = merged.reshape(merged.shape[0], -1).norm(dim=1)
        norms = norms.reshape(-1, *([1] * (merged.dim() - 1)))
    else:
        norms = merged.transpose(0, 1).reshape(merged.shape[1], -1).norm(dim=1)
        norms = norms.reshape(1, -1, *([1] * (merged.dim() - 2)))
    if magnitude.numel() != norms.numel():
        raise ShapeMismatch(tuple(magnitude.shape), tuple(norms.shape))
    return merged * (magnitude.reshape(norms.shape).float() / norms) - base


@dataclass
class LoraFile:
    """A LoRA/LyCORIS file, read: its layers, the keys that fit no layer form, its metadata and identity."""

    path: Path
    modules: dict[tuple[str, str], LoraModule]
    unrecognised: list[str]  # keys whose suffix is no known LoRA/LyCORIS tensor
    metadata: dict[str, str]
    stamp: tuple[int, int]  # (mtime ns, size) when read

    @property
    def name(self) -> str:
        return self.path.stem

    def base_model_hint(self) -> str | None:
        """What the file says it was trained for: "sdxl", "sd2", "sd1", or None (kohya's metadata)."""
        version = str(self.metadata.get("ss_base_model_version", ""))
        if version.startswith("sdxl"):
            return "sdxl"
        if str(self.metadata.get("ss_v2", "")) == "True" or version.startswith("sd_v2"):
            return "sd2"
        if version.startswith("sd_v1") or self.metadata.get("ss_sd_model_name"):
            return "sd1"
        return None


def split_key(key: str) -> tuple[tuple[str, str], str] | None:
    """((part, underscore path), tensor name) of a key, or None for a key of no LoRA form."""
    for suffix in _ORDERED_SUFFIXES:
        if key.endswith("." + suffix):
            module, what = key[: -len(suffix) - 1], SUFFIXES[suffix]
            break
    else:
        return None
    for prefix, part in KOHYA_PARTS:
        if module.startswith(prefix):
            return (part, module[len(prefix):]), what
    module = module.removeprefix("base_model.model.")
    for prefix, part in DOTTED_PARTS:
        if module.startswith(prefix):
            names = [name for name in module[len(prefix):].split(".") if name != "processor"]
            dotted = ".".join(OLD_PROCESSOR_NAMES.get(name, name) for name in names)
            return (part, dotted.replace(".", "_")), what
    return None


UNSUPPORTED_KINDS = {".oft_blocks": "OFT", ".oft_diag": "OFT", ".oft_R": "BOFT", ".boft_": "BOFT",
                     ".on_input": "IA3", ".w_norm": "norm", ".a1.weight": "GLoRA"}  # key part -> LyCORIS kind


def read_lora_file(path: str | Path) -> LoraFile:
    """A LoRA/LyCORIS .safetensors (or a .pt/.ckpt, read with weights_only=True). ModelLoadError, one line,
    for a file that is not one."""
    from ..loading.tensor_files import open_tensor_file

    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"LoRA file not found: {path}")
    source = open_tensor_file(path)
    modules: dict[tuple[str, str], LoraModule] = {}
    unrecognised: list[str] = []
    for key in source.keys():
        split = split_key(key)
        if split is None:
            unrecognised.append(key)
            continue
        (part, name), what = split
        module = modules.setdefault((part, name), LoraModule(part, name))
        module.tensors[what] = source.get(key).float()
    unsupported = {label for key in unrecognised for marker, label in UNSUPPORTED_KINDS.items() if marker in key}
    if unsupported:
        raise ModelLoadError(f"{path.name} is a LyCORIS {' and '.join(sorted(unsupported))} network, which sd-desktop "
                             "does not apply (it applies LoRA, LoCon, LoHa, LoKr, full and DoRA files)")
    if not modules:
        raise ModelLoadError(f"{path.name} holds no LoRA or LyCORIS weights (no lora_down/lora_A, hada_, lokr_ "
                             "tensors); is it a checkpoint or an embedding?")
    return LoraFile(path=path, modules=modules, unrecognised=unrecognised, metadata=dict(source.metadata),
                    stamp=(path.stat().st_mtime_ns, path.stat().st_size))
