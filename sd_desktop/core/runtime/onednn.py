"""CPU inference through oneDNN: weights packed once into the layout the CPU's matrix units read, and
the bias, GELU and residual adds done in the GEMM's epilogue instead of in separate passes over memory.

`pack_for_cpu(module)` swaps a loaded network's Linear, GEGLU and Conv2d layers for packed ones. It is
for inference only: packed weights take no gradients, and the originals are dropped to save memory.
The architecture writes `core.nn.layers.plus(layer, x, residual)` where a residual add follows a layer;
packed layers offer `fused_plus`, which that hook uses. The dependency points from this backend to the
architecture (it knows GEGLU), never back.

Why: on a 2-core AMX CPU, eager PyTorch spent a quarter of an SD 1.5 U-Net step outside the matrix
products — copying the bias into each output, GELU and the gate's multiply as passes of their own over
40 MB tensors, and residual adds (benchmarks/bench_sd.py, profile in the README).
"""

from __future__ import annotations

import platform

import torch
import torch.nn.functional as F
from torch import nn

# Shape hint for convolution weights: oneDNN picks the blocked layout for the input shape it is told. Any
# other input size still runs (tested), but where oneDNN would pick another layout for it, it reorders the
# weight at every call: on an AVX2 CPU a 1280-channel 3x3 convolution packed for 64x64 took 984 ms at 32x32
# (SDXL's 1024² bottom level) against 381 ms packed for 32x32, and 690 ms against 15 ms at 6x6. So the
# networks are packed for the shapes each convolution sees at the model's native size (conv_input_shapes);
# this is the size for convolutions nobody measured.
_CONV_HINT_SIZE = 64


def onednn_available(device: torch.device, dtype: torch.dtype) -> bool:
    """x86 only: on ARM, oneDNN runs through ACL, which lacks these fused operators (torch's own
    inductor leaves them off there too). bfloat16 also needs the CPU's AVX512 (BW, VL, DQ) or AVX-NE-CONVERT,
    which oneDNN's bf16 kernels require; an AVX2-only CPU runs bf16 unpacked (and float32 by default)."""
    if not (device.type == "cpu" and dtype in (torch.float32, torch.bfloat16)
            and platform.machine().lower() in ("x86_64", "amd64")
            and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    return dtype != torch.bfloat16 or onednn_bf16_supported()


def onednn_bf16_supported() -> bool:
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else False


class PackedLinear(nn.Module):
    """nn.Linear with its weight reordered for oneDNN; `unary` ("none" or "gelu") runs in the epilogue."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, unary: str = "none"):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.unary = unary
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous())
        self.bias = None if bias is None else bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        algorithm = "none" if self.unary == "gelu" else ""  # "none": exact (erf) GELU, as nn.GELU
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, self.unary, [], algorithm)

    def fused_plus(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """self(x) + residual in one GEMM (core.nn.layers.plus calls it)."""
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual, self.packed_weight, self.bias, "add")

    def times(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise.binary(x, other, self.packed_weight, self.bias, "mul")

    def dense_weight(self) -> torch.Tensor:
        """The weight as nn.Linear holds it: the packed copy reordered back (exact: a reorder moves elements)."""
        return self.packed_weight.to_dense()

    def plus(self, delta: torch.Tensor, bias_delta: torch.Tensor | None = None) -> PackedLinear:
        """A new layer whose weight is this one's + `delta` (see `_plus_packed`)."""
        packed = torch.ops.mkldnn._reorder_linear_weight(delta.to(self.packed_weight.dtype).contiguous())
        return _plus_packed(self, packed, bias_delta)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, unary={self.unary}"


class PackedGEGLU(nn.Module):
    """GEGLU as two GEMMs: the gate half with GELU in its epilogue, then the value half multiplied by
    the gate in its epilogue. No [N, 2 * width] intermediate, no separate GELU or multiply pass."""

    def __init__(self, proj: nn.Linear):
        super().__init__()
        (value_w, gate_w), (value_b, gate_b) = proj.weight.chunk(2, dim=0), proj.bias.chunk(2, dim=0)
        self.value = PackedLinear(value_w, value_b)
        self.gate = PackedLinear(gate_w, gate_b, unary="gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.times(x, self.gate(x))

    def dense_weight(self) -> torch.Tensor:
        """The projection's weight, [value; gate], as GEGLU's nn.Linear holds it."""
        return torch.cat([self.value.dense_weight(), self.gate.dense_weight()])

    def plus(self, delta: torch.Tensor, bias_delta: torch.Tensor | None = None) -> PackedGEGLU:
        """A new GEGLU whose projection's weight is this one's + `delta` ([value; gate], as the projection)."""
        value_b, gate_b = (None, None) if bias_delta is None else bias_delta.chunk(2)
        value_w, gate_w = delta.chunk(2)
        new = _bare_copy(self)
        new.value, new.gate = self.value.plus(value_w, value_b), self.gate.plus(gate_w, gate_b)
        return new


class PackedConv2d(nn.Module):
    """nn.Conv2d with its weight reordered for oneDNN. Returns channels-last output."""

    def __init__(self, conv: nn.Conv2d, hint: tuple[int, ...] | None = None):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("only zero padding given as numbers is packed")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.padding, self.stride = list(conv.kernel_size), list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.hint = list(hint) if hint is not None else [1, conv.in_channels, _CONV_HINT_SIZE, _CONV_HINT_SIZE]
        self.packed_weight = torch.ops.mkldnn._reorder_convolution_weight(
            conv.weight.detach(), self.padding, self.stride, self.dilation, self.groups, self.hint)
        self.bias = None if conv.bias is None else conv.bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.packed_weight, self.bias, self.padding, self.stride, self.dilation, self.groups, "none", [], "")

    def fused_plus(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """self(x) + residual in one convolution (core.nn.layers.plus calls it)."""
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, residual.contiguous(memory_format=torch.channels_last), self.packed_weight, self.bias,
            self.padding, self.stride, self.dilation, self.groups, "add", None, None, [], None)

    def dense_weight(self) -> torch.Tensor:
        """The weight as nn.Conv2d holds it: the packed copy reordered back (exact)."""
        return self.packed_weight.to_dense()

    def after_nearest_2x(self, x: torch.Tensor) -> torch.Tensor:
        """self(x upsampled 2x by nearest neighbours), for core.nn.layers.upsampled_then. A 3x3 convolution of
        stride 1 and padding 1 runs as one transposed convolution of x itself (stride 2, padding 1, a 4x4 kernel
        whose taps sum the 3x3 taps that fall on the same pixel of x; see _after_nearest_2x_kernel): 16 instead of
        36 multiply-adds per pixel of x and pair of channels, and no upsampled copy of x. The kernel is made at the
        first call, packed for oneDNN (unpacked, oneDNN reordered it at every call: 1.8x the time for a 1280-channel
        one), and kept; a layer made by `plus` makes its own. Other convolutions upsample, then convolve."""
        if (self.kernel_size, self.padding, self.stride, self.dilation, self.groups) != ([3, 3], [1, 1], [1, 1],
                                                                                        [1, 1], 1):
            return self(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        kernel = self.__dict__.get("_after_2x_kernel")
        if kernel is None:  # packed for the input of this convolution's own shape hint, halved
            n, c, h, w = self.hint
            kernel = self._after_2x_kernel = torch.ops.mkldnn._reorder_convolution_transpose_weight(
                _after_nearest_2x_kernel(self.dense_weight()), [1, 1], [0, 0], [2, 2], [1, 1], 1,
                [n, c, max(1, h // 2), max(1, w // 2)])
        return torch.ops.mkldnn._convolution_transpose_pointwise(
            x.contiguous(memory_format=torch.channels_last), kernel, self.bias, [1, 1], [0, 0], [2, 2], [1, 1], 1,
            "none", [], "")

    def plus(self, delta: torch.Tensor, bias_delta: torch.Tensor | None = None) -> PackedConv2d:
        """A new convolution whose weight is this one's + `delta`, packed for the same input shape (see
        `_plus_packed`)."""
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            delta.to(self.packed_weight.dtype).contiguous(), self.padding, self.stride, self.dilation, self.groups,
            self.hint)
        return _plus_packed(self, packed, bias_delta)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}, padding={self.padding}"


# Row k of _TAPS says which taps of a 3x3 kernel add up to tap k of the 4x4 transposed kernel, along one axis. An
# output pixel 2i of (nearest 2x, then 3x3 convolution) reads input rows i-1 (tap 0) and i (taps 1 and 2); pixel 2i+1
# reads rows i (taps 0 and 1) and i+1 (tap 2). A transposed convolution of stride 2 and padding 1 gives pixel 2i
# kernel taps 3 (row i-1) and 1 (row i), and pixel 2i+1 taps 2 (row i) and 0 (row i+1).
_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def _after_nearest_2x_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The transposed convolution's kernel [in, out, 4, 4] for a 3x3 kernel [out, in, 3, 3] after a nearest 2x
    upsample (the taps summed in float32, rounded once to the weight's dtype)."""
    taps = torch.tensor(_TAPS, dtype=torch.float32)
    kernel = torch.einsum("pr,oirc,qc->iopq", taps, weight.float(), taps)
    return kernel.to(weight.dtype).contiguous()


def _bare_copy(layer: nn.Module) -> nn.Module:
    """A new module of `layer`'s class with its plain attributes (sizes, strides, packed weight, bias), and none
    of its hooks or children: its fields are then replaced, never changed in place in `layer`."""
    new = type(layer).__new__(type(layer))
    nn.Module.__init__(new)
    new.__dict__.update({key: value for key, value in vars(layer).items() if not key.startswith("_")})
    return new


def _plus_packed(layer: nn.Module, packed_delta: torch.Tensor, bias_delta: torch.Tensor | None) -> nn.Module:
    """`layer` with `packed_delta` (a weight change packed like its weight: same shape, dtype and, for a
    convolution, the same input shape) added to its packed weight. A reorder only moves elements, so the sum of
    two packed weights is the packed sum, bit for bit; the dense weight, which packing dropped, is never needed
    (reading it back through one-hot inputs took minutes for a full-size U-Net). `layer` is not changed."""
    new = _bare_copy(layer)
    new.packed_weight = packed_delta.add_(layer.packed_weight)  # in the delta's memory: no third copy
    if bias_delta is not None:
        bias = layer.bias if layer.bias is not None else torch.zeros(bias_delta.shape, dtype=packed_delta.dtype)
        new.bias = (bias.float() + bias_delta.float()).to(bias.dtype)
    return new


def pack_for_cpu(module: nn.Module, skip: tuple[nn.Module, ...] = (), shapes: dict[str, tuple] | None = None,
                 _prefix: str = "") -> nn.Module:
    """Replace, in place, every Linear, Conv2d and GEGLU inside `module` by its packed form, leaving
    the subtrees in `skip` as they are; each convolution packed for its input shape in `shapes` (qualified name
    -> shape, from conv_input_shapes) where it is there. Returns the module."""
    from ..nn.attention import GEGLU

    shapes = shapes or {}
    for name, child in list(module.named_children()):
        qualified = _prefix + name
        if any(child is s for s in skip):
            continue
        if isinstance(child, GEGLU):
            setattr(module, name, PackedGEGLU(child.proj))
        elif isinstance(child, nn.Linear):
            setattr(module, name, PackedLinear(child.weight, child.bias))
        elif isinstance(child, nn.Conv2d):
            setattr(module, name, PackedConv2d(child, shapes.get(qualified)))
        else:
            pack_for_cpu(child, skip, shapes, qualified + ".")
    return module


def conv_input_shapes(network: nn.Module, run, batch: int) -> dict[str, tuple]:
    """The input shape of every Conv2d of `network` when `run(network, n)` calls it with a batch of n:
    qualified name -> shape, with batch `batch`. A convolution called more than once keeps its first shape.

    It calls `run` with an empty batch (n = 0): every layer works out its output's shape and does no
    arithmetic, and no weight is read (0.03 s for full-size SD 1.5's U-Net and VAE). A twin of the network on
    the meta device gives the same shapes, but torch's meta kernels import torch._dynamo on first use, 1.4 s
    here: the demo model's first load in a process took 2.78 s that way and 0.54 s this way, full-size SD 1.5's
    (fp32) 8.18 s and 5.35 s (benchmarks/bench_load.py, medians of 5 and 3 alternated rounds)."""
    shapes: dict[str, tuple] = {}

    def record(name: str):
        def hook(_module, args) -> None:
            shapes.setdefault(name, (batch, *args[0].shape[1:]))
        return hook

    hooks = [layer.register_forward_pre_hook(record(name))
             for name, layer in network.named_modules() if isinstance(layer, nn.Conv2d)]
    try:
        with torch.no_grad():
            run(network, 0)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes
