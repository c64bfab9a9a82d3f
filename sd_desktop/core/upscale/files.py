"""Upscaler files: which architecture a file holds, read from its parameter names and shapes, and the network
built with its weights. Real-ESRGAN's own layout (`conv_first`, `body.N.rdb1.conv1`, ... or `body.N` for the
compact model), the original ESRGAN layout (`model.0`, `model.1.sub.N.RDB1.conv1.0`, ...: 4x-UltraSharp,
Remacri and most community x4 models) and the same in .safetensors; .pth/.pt read with weights_only=True."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelLoadError, UnsupportedModelError
from ..loading.tensor_files import open_tensor_file
from .arch import RRDBNet, SRVGGNetCompact


@dataclass
class Upscaler:
    name: str
    path: Path
    net: nn.Module
    scale: int
    architecture: str  # "RRDBNet" or "SRVGGNetCompact"

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())


def esrgan_to_realesrgan(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The original ESRGAN names (model.0 ... model.10, RDB1..3, conv1.0) in Real-ESRGAN's, for x4 files."""
    subs = sorted({int(m.group(1)) for key in state for m in [re.match(r"model\.1\.sub\.(\d+)\.", key)] if m})
    if not subs:
        raise UnsupportedModelError("this ESRGAN file has no residual blocks (model.1.sub.N): it is not an ESRGAN model")
    last = subs[-1]
    tops = sorted({int(m.group(1)) for key in state for m in [re.match(r"model\.(\d+)\.weight$", key)] if m})
    if tops != [0, 3, 6, 8, 10]:
        raise UnsupportedModelError(
            "this ESRGAN file is not the x4 layout (model.0, 3, 6, 8, 10); only x4 ESRGAN files of the original "
            "layout are supported: convert it with chaiNNer, or use a Real-ESRGAN file")
    names = {0: "conv_first", 3: "conv_up1", 6: "conv_up2", 8: "conv_hr", 10: "conv_last"}
    out = {}
    for key, value in state.items():
        if m := re.match(r"model\.(\d+)\.(weight|bias)$", key):
            out[f"{names[int(m.group(1))]}.{m.group(2)}"] = value
        elif m := re.match(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$", key):
            out[f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"] = value
        elif m := re.match(rf"model\.1\.sub\.{last}\.(weight|bias)$", key):
            out[f"conv_body.{m.group(1)}"] = value
        else:
            raise UnsupportedModelError(f"unexpected parameter {key!r} for an ESRGAN x4 file")
    return out


def network_for(state: dict[str, torch.Tensor]) -> tuple[nn.Module, str, int]:
    """(network with its weights, architecture name, scale) for a state dict in either layout."""
    if "model.0.weight" in state and any(key.startswith("model.1.sub.") for key in state):
        state = esrgan_to_realesrgan(state)
    if "conv_first.weight" in state:
        first = state["conv_first.weight"].shape
        blocks = len({key.split(".")[1] for key in state if key.startswith("body.")})
        growth = state["body.0.rdb1.conv1.weight"].shape[0]
        folded = {3: 4, 12: 2, 48: 1}  # input channels after the pixel unshuffle -> scale
        if first[1] not in folded:
            raise UnsupportedModelError(f"an RRDBNet with {first[1]} input channels is not an RGB upscaler")
        scale = folded[first[1]]
        net = RRDBNet(3, state["conv_last.weight"].shape[0], scale, first[0], blocks, growth)
        return _loaded(net, state), "RRDBNet", scale
    if "body.0.weight" in state and state["body.0.weight"].ndim == 4:
        indices = sorted(int(key.split(".")[1]) for key in state if re.match(r"body\.\d+\.weight$", key))
        convs = [i for i in indices if state[f"body.{i}.weight"].ndim == 4]
        prelu = any(state[f"body.{i}.weight"].ndim == 1 for i in indices)
        features, last = state["body.0.weight"].shape[0], state[f"body.{convs[-1]}.weight"].shape[0]
        scale = round((last / 3) ** 0.5)
        if 3 * scale * scale != last:
            raise UnsupportedModelError(f"a compact upscaler whose last layer makes {last} channels is not an RGB one")
        net = SRVGGNetCompact(3, 3, features, len(convs) - 2, scale, "prelu" if prelu else "leakyrelu")
        return _loaded(net, state), "SRVGGNetCompact", scale
    raise UnsupportedModelError(
        "not an upscaler sd-desktop knows: ESRGAN / Real-ESRGAN (RRDBNet) and Real-ESRGAN's compact model "
        "(SRVGGNetCompact) are supported; SwinIR, HAT, DAT and others are not yet")


def _loaded(net: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [key for key in expected if key in state and tuple(state[key].shape) != tuple(expected[key].shape)]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape of {wrong[:3]}")
        raise UnsupportedModelError(f"the upscaler's parameters do not fit its architecture ({detail})")
    net.load_state_dict({key: value.float() for key, value in state.items()})
    return net.eval().requires_grad_(False)


class ResizedOutput(nn.Module):
    """A network followed by a bicubic resize of its output (ncnn's Interp, no antialiasing): Real-ESRGAN's x2 and
    x3 compact video models are x4 networks resized by 0.5 and 0.75."""

    def __init__(self, net: nn.Module, factor: float):
        super().__init__()
        self.net, self.factor = net, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        size = (round(x.shape[-2] * self.net.scale * self.factor), round(x.shape[-1] * self.net.scale * self.factor))
        return F.interpolate(out, size=size, mode="bicubic", align_corners=False)


def load_upscaler(path: str | Path) -> Upscaler:
    """An ESRGAN-family file as an Upscaler (float32 on the CPU; .to() it where it should run). One-line
    errors (core.ModelLoadError) for what is not one."""
    path = Path(path)
    tensors = open_tensor_file(path)
    state = {key: tensors.get(key) for key in tensors.keys()}
    try:
        net, architecture, scale = network_for(state)
    except UnsupportedModelError as error:
        raise UnsupportedModelError(f"{path.name}: {error}") from None
    except (KeyError, IndexError, RuntimeError) as error:
        raise ModelLoadError(f"{path.name}: not a usable upscaler ({error})") from None
    resize = tensors.metadata.get("resize_output")
    if resize:
        try:
            factor = float(resize)
        except ValueError:
            raise ModelLoadError(f"{path.name}: its resize_output metadata {resize!r} is not a number") from None
        if not 0 < factor * scale <= 16 or abs(factor * scale - round(factor * scale)) > 1e-6:
            raise ModelLoadError(f"{path.name}: resize_output {factor} of a x{scale} network is not a whole scale")
        net, scale = ResizedOutput(net, factor), round(factor * scale)
    return Upscaler(path.stem, path, net, scale, architecture)
