"""LoRAs on a loaded model: each adapted layer is wrapped, its base weights untouched, and the LoRAs run
beside it — a plain LoRA as its two small products (x·downᵀ·upᵀ, or the convolution pair of a LoCon), the
LyCORIS kinds and DoRA as their dense weight change. Taking a set off puts the original layers back: the
model is then bit for bit what it was, in any dtype, however often sets are switched.

This works the same on every path: oneDNN's packed CPU layers, plain layers on a GPU, and a compiled U-Net
(which then recompiles once). `set_loras(model, refs)` makes a model carry exactly `refs`. Merged instead
(`merge=True`): each adapted layer is replaced by a new one holding its weight + the change (a packed layer adds
the change in its packed layout), the original kept to be put back.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidRequestError, ModelLoadError
from ..nn.layers import unwrapped
from ..request import LoraRef
from .files import LoraFile, LoraModule, ShapeMismatch, fit_shape, read_lora_file
from .targets import Target, lora_targets

FAMILY_OF_HINT = {"sdxl": "SDXL", "sd2": "Stable Diffusion 2.x", "sd1": "Stable Diffusion 1.x"}
FILE_CACHE = 8  # LoRA files kept read (on the CPU) per model, for switching back and forth
MERGE = False  # how LoRAs are put on by default: beside the layers (False) or merged into new ones (True)


class LoraSide(nn.Module):
    """What one LoRA adds beside one layer, in the model's dtype on its device."""

    def __init__(self, module: LoraModule, target: Target, weight: float, base_weight, dtype, device):
        super().__init__()
        self.conv = target.conv
        t = module.tensors
        bias = t.get("diff_b")
        self.bias = None if bias is None else (bias * weight).to(device, dtype)
        if module.factored():
            down, up = t["down"], t["up"].flatten(1) * (module.scale() * weight)
            mid = t.get("mid")
            kernel = (mid if mid is not None else down).shape[2:] if down.dim() == 4 else ()
            fit_shape(torch.empty(up.shape[0], down.shape[1], *kernel, device="meta"), target.shape)  # or raise
            if self.conv is None:
                self.factors = [down.flatten(1).to(device, dtype), up.to(device, dtype)]
            else:
                down = down if down.dim() == 4 else down[:, :, None, None]
                down = fit_shape_in(down, target.shape[1])
                factors = [down] if mid is None else [down, mid]
                self.factors = [f.to(device, dtype) for f in factors] + [up[:, :, None, None].to(device, dtype)]
            self.dense = None
        else:
            base = None if base_weight is None else base_weight().float()
            self.dense = (module.delta(target.shape, base) * weight).to(device, dtype)
            self.factors = None

    def halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The side output of a linear layer in its two halves (a GEGLU's value and gate), each computed on
        its own so that neither is a strided view that would need copying."""
        bias = (None, None) if self.bias is None else self.bias.chunk(2)  # a "full" module's diff_b
        if self.dense is not None:
            half = len(self.dense) // 2
            return F.linear(x, self.dense[:half], bias[0]), F.linear(x, self.dense[half:], bias[1])
        hidden, up = F.linear(x, self.factors[0]), self.factors[1]
        half = len(up) // 2
        return F.linear(hidden, up[:half], bias[0]), F.linear(hidden, up[half:], bias[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            out = F.linear(x, self.dense) if self.dense is not None else F.linear(F.linear(x, self.factors[0]), self.factors[1])
        elif self.dense is not None:
            out = F.conv2d(x, self.dense, None, **self.conv)
        elif len(self.factors) == 2:  # LoCon: the layer's kernel in `down`, then 1x1
            out = F.conv2d(F.conv2d(x, self.factors[0], None, **self.conv), self.factors[1])
        else:  # Tucker: 1x1, the kernel in `mid`, 1x1
            out = F.conv2d(F.conv2d(F.conv2d(x, self.factors[0]), self.factors[1], None, **self.conv), self.factors[2])
        if self.bias is not None:
            out = out + (self.bias if self.conv is None else self.bias[:, None, None])
        return out


def fit_shape_in(down: torch.Tensor, channels: int) -> torch.Tensor:
    """A 4-channel conv_in LoCon `down` for a 9-channel inpainting conv_in: zeros for the extra channels."""
    if down.shape[1] < channels:
        padded = down.new_zeros(down.shape[0], channels, *down.shape[2:])
        padded[:, : down.shape[1]] = down
        return padded
    return down


class AdaptedLayer(nn.Module):
    """A layer with LoRAs beside it: base(x) + Σ side(x); keeps the base's fused residual add."""

    def __init__(self, base: nn.Module, sides: list[LoraSide]):
        super().__init__()
        self.base = base
        self.sides = nn.ModuleList(sides)

    def side(self, x: torch.Tensor) -> torch.Tensor:
        total = self.sides[0](x)
        for side in self.sides[1:]:
            total = total + side(x)
        return total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        return out + self.side(x).to(memory_format=_layout(out))

    def fused_plus(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        fused = getattr(self.base, "fused_plus", None)
        if fused is None:
            return residual + self.forward(x)
        return fused(x, residual + self.side(x))


class AdaptedPackedGEGLU(nn.Module):
    """oneDNN's GEGLU (two GEMMs, GELU and the gate's multiply in their epilogues) with LoRAs on its
    projection: each half gets its share of the side output before its GELU or multiply."""

    def __init__(self, base: nn.Module, sides: list[LoraSide]):
        super().__init__()
        self.base = base
        self.sides = nn.ModuleList(sides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value_side, gate_side = self.sides[0].halves(x)
        for side in self.sides[1:]:
            value_more, gate_more = side.halves(x)
            value_side, gate_side = value_side + value_more, gate_side + gate_more
        binary = torch.ops.mkldnn._linear_pointwise.binary
        gate = F.gelu(binary(x, gate_side, self.base.gate.packed_weight, self.base.gate.bias, "add"))
        # (W_v x + b_v + value_side) * gate: the product in the GEMM's epilogue, the side's share in one pass
        return torch.addcmul(binary(x, gate, self.base.value.packed_weight, self.base.value.bias, "mul"), value_side, gate)


def _layout(t: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) \
        and not t.is_contiguous() else torch.contiguous_format


@dataclass
class LoraState:
    """What a model carries: the applied set, how to take it off, and the files read for it."""

    key: tuple = ()
    notes: list[str] = field(default_factory=list)
    undo: list[tuple[nn.Module, str, nn.Module]] = field(default_factory=list)
    files: dict[str, LoraFile] = field(default_factory=dict)
    targets: dict | None = None


def state_of(model) -> LoraState:
    state = getattr(model, "lora_state", None)
    if state is None:
        state = model.lora_state = LoraState()
    return state


def set_loras(model, refs: Sequence[LoraRef], merge: bool | None = None) -> list[str]:
    """Make `model` carry exactly `refs` (none: the bare model). Returns notes (layers a file names that this
    model lacks). Raises ModelLoadError (one line) for a file that is not a LoRA, is made for another model
    family, or does not fit; then the model carries no LoRA at all, never part of one."""
    state = state_of(model)
    merge = MERGE if merge is None else merge
    key = (merge,) + tuple((str(Path(r.path).expanduser()), file_stamp(r.path), float(r.weight),
                            None if r.text_weight is None else float(r.text_weight)) for r in refs)
    if key == state.key:
        return list(state.notes)
    remove_loras(model)
    if not refs:
        return []
    if state.targets is None:
        state.targets = lora_targets(model.config)
    plan: dict[tuple[str, str], list] = {}
    notes: list[str] = []
    networks = {"unet": unwrapped(model.unet), "text": model.text_encoder}
    for ref in refs:
        lora = _read(state, ref.path)
        _check_family(lora, model)
        matched, missed = 0, 0
        for module in lora.modules.values():
            target = state.targets.get((module.part, module.path))
            if target is None:
                missed += 1
                continue
            weight = float(ref.weight if target.network == "unet" or ref.text_weight is None else ref.text_weight)
            if weight == 0:
                matched += 1
                continue
            layer = _find(networks[target.network], target.path)
            try:
                if merge:
                    base = dense_weight(layer, target) if "dora_scale" in module.tensors else None
                    part = (module.delta(target.shape, base) * weight, module.tensors.get("diff_b"), weight)
                else:
                    part = LoraSide(module, target, weight, lambda: dense_weight(layer, target), model.dtype, model.device)
            except ShapeMismatch as error:
                raise ModelLoadError(f"{lora.name} does not fit this {model.family.label} model: its layer "
                                     f"{module.path} is {error.got} where the model's is {error.wanted}; "
                                     f"{_made_for(lora)}") from None
            except ValueError as error:
                raise ModelLoadError(f"{lora.name}: {error}") from None
            except RuntimeError as error:  # tensors of a form we read but whose sizes do not combine
                raise ModelLoadError(f"{lora.name} does not fit this {model.family.label} model: its layer "
                                     f"{module.path} cannot be built ({str(error).splitlines()[0]})") from None
            plan.setdefault((target.network, target.path), []).append(part)
            matched += 1
        if not matched:
            raise ModelLoadError(f"{lora.name} adapts none of this {model.family.label} model's layers; "
                                 f"{_made_for(lora)}")
        if missed or lora.unrecognised:
            total = len(lora.modules) + len(lora.unrecognised)
            notes.append(f"{lora.name}: {missed + len(lora.unrecognised)} of {total} LoRA modules matched nothing")
    for (network, path), parts in plan.items():
        if merge:
            target = next(t for t in state.targets.values() if t.network == network and t.path == path)
            _replace(state, networks[network], path, lambda layer: merged_layer(layer, target, parts))
        else:
            _replace(state, networks[network], path, lambda layer: adapted_layer(layer, parts))
    state.key, state.notes = key, notes
    _layers_changed(model)
    return list(notes)


def remove_loras(model) -> None:
    """The bare model again: every wrapped layer put back as it was."""
    state = state_of(model)
    for parent, name, original in reversed(state.undo):
        setattr(parent, name, original)
    state.undo.clear()
    state.key, state.notes = (), []
    _layers_changed(model)


def _layers_changed(model) -> None:
    """A U-Net that replays CUDA graphs (core.runtime.cuda_graphs) records them again with the new layers."""
    reset = getattr(model.unet, "reset_graphs", None)
    if reset is not None:
        reset()


def file_stamp(path: str | Path) -> tuple[int, int]:
    """(modification time in ns, size): a file changed on disk is read again, even with its time kept."""
    try:
        stat = os.stat(Path(path).expanduser())
    except OSError:
        return -1, -1
    return stat.st_mtime_ns, stat.st_size


def _read(state: LoraState, path: str) -> LoraFile:
    resolved = str(Path(path).expanduser())
    cached = state.files.get(resolved)
    if cached is not None and cached.stamp == file_stamp(resolved):
        return cached
    lora = read_lora_file(resolved)
    state.files[resolved] = lora
    while len(state.files) > FILE_CACHE:
        state.files.pop(next(iter(state.files)))
    return lora


def _check_family(lora: LoraFile, model) -> None:
    """A file that says (or whose keys show) it is for another family than the model's is refused whole."""
    hint = "sdxl" if {"te1", "te2"} & {part for part, _ in lora.modules} else lora.base_model_hint()
    ours = model.family.addons
    if hint is not None and ours is not None and hint != ours:
        family = FAMILY_OF_HINT.get(ours, model.family.label)
        raise ModelLoadError(f"{lora.name} is a LoRA for {FAMILY_OF_HINT[hint]}; this model is {family}: choose a "
                             f"LoRA made for {family} (or load a model of that family)")


def _made_for(lora: LoraFile) -> str:
    hint = lora.base_model_hint()
    widths = {m.tensors["down"].shape[1] for (part, _), m in lora.modules.items() if part == "te" and "down" in m.tensors}
    if hint is None and widths:
        hint = {768: "sd1", 1024: "sd2"}.get(max(widths))
    made = FAMILY_OF_HINT.get(hint) if hint else None
    return f"it was made for {made}" if made else "it was made for another model family"


def _find(network: nn.Module, path: str) -> nn.Module:
    try:
        return network.get_submodule(path)
    except AttributeError:
        if path.endswith(".proj"):  # a GEGLU's projection, packed into PackedGEGLU
            return network.get_submodule(path.removesuffix(".proj"))
        raise


def _replace(state: LoraState, network: nn.Module, path: str, make) -> None:
    """Put make(layer) where the layer at `path` is, remembering the layer to put back."""
    layer = _find(network, path)
    if type(layer).__name__ == "PackedGEGLU":
        path = path.removesuffix(".proj")
    parent_path, _, name = path.rpartition(".")
    parent = network.get_submodule(parent_path) if parent_path else network
    state.undo.append((parent, name, layer))
    setattr(parent, name, make(layer))


def adapted_layer(layer: nn.Module, sides: list[LoraSide]) -> nn.Module:
    if type(layer).__name__ == "PackedGEGLU":
        return AdaptedPackedGEGLU(layer, sides)
    return AdaptedLayer(layer, sides)


def merged_layer(layer: nn.Module, target: Target, parts: list) -> nn.Module:
    """A new layer like `layer` whose weight is its weight + the LoRAs' changes (the original layer is kept to be
    put back: nothing is changed in place). A plain layer's sum is taken in float32; oneDNN's packed layers add
    the change in their packed layout and dtype (their `plus`), without reading their dense weight back."""
    delta = functools.reduce(torch.add, [d for d, _, _ in parts])  # (sum() would copy the first: 0 + d)
    bias_deltas = [bias_delta * scale for _, bias_delta, scale in parts if bias_delta is not None]
    bias_delta = functools.reduce(torch.add, bias_deltas) if bias_deltas else None
    plus = getattr(layer, "plus", None)
    if plus is not None:
        return plus(delta, bias_delta)
    if not isinstance(layer, (nn.Linear, nn.Conv2d)):
        raise InvalidRequestError(f"cannot merge a LoRA into a {type(layer).__name__} layer")
    weight = layer.weight.detach()
    new_weight = (weight.float() + delta.to(weight.device)).to(weight.dtype)
    bias = layer.bias
    if bias_delta is not None:
        base = bias.float() if bias is not None else 0
        bias = (base + bias_delta.to(weight.device).float()).to(weight.dtype)
    if isinstance(layer, nn.Linear):
        plain = nn.Linear(target.shape[1], target.shape[0], bias=bias is not None, device="meta")
    else:
        conv = target.conv
        plain = nn.Conv2d(target.shape[1], target.shape[0], target.shape[2:], bias=bias is not None, device="meta",
                          **{key: conv[key] for key in ("stride", "padding", "dilation")})
    if weight.dim() == 4 and weight.is_contiguous(memory_format=torch.channels_last):
        new_weight = new_weight.contiguous(memory_format=torch.channels_last)
    plain.weight = nn.Parameter(new_weight, requires_grad=False)
    if bias is not None:
        plain.bias = nn.Parameter(bias.detach(), requires_grad=False)
    return plain


def dense_weight(layer: nn.Module, target: Target) -> torch.Tensor:
    """A layer's weight as a dense tensor (DoRA needs it): the parameter of a plain layer; oneDNN's packed
    layers reorder their packed copy back."""
    if isinstance(layer, (nn.Linear, nn.Conv2d)):
        return layer.weight.detach()
    read = getattr(layer, "dense_weight", None)
    if read is None:
        raise InvalidRequestError(f"cannot read the weight of a {type(layer).__name__} layer")
    return read().reshape(target.shape)
