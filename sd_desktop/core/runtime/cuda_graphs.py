"""CUDA graphs of the U-Net: each step's thousand-odd kernels launched as one graph.

At 512² on a fast GPU an SD 1.5 step's kernels are short, and launching them one by one from Python leaves the GPU
waiting on the CPU. A graph is recorded once per input signature (shapes, dtypes and the values that are not
tensors) and replayed for every later call with the same one: the inputs are copied into the graph's own input
tensors, the graph is replayed, and its output is copied out (the next replay overwrites it).

What a graph does not see, and how that is handled:
- the U-Net's cancel checks between blocks (core.interrupt) run only while recording, so with graphs a cancel
  lands at the next step (CancellableDenoiser), not inside one;
- LoRAs swap layers (core.lora.apply): `reset_graphs()` drops them, and set_loras/remove_loras call it;
- a new size, batch or dtype records a new graph; the newest MAX_GRAPHS are kept (each holds its activations).
A call with autograd on (training) runs the U-Net as it is.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

from ..interrupt import stop_points

MAX_GRAPHS = 3
WARMUP_CALLS = 2  # before recording: cuBLAS/cuDNN pick and allocate their workspaces on a side stream


class CudaGraphRecorder:
    """Records `fn()` as a CUDA graph on the current device (the recipe of torch.cuda.graphs' documentation)."""

    def record(self, fn: Callable[[], torch.Tensor]) -> tuple[Callable[[], None], torch.Tensor]:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = fn()
        return graph.replay, output


class GraphedUNet(nn.Module):
    """A U-Net whose calls replay CUDA graphs (see the module's notes). `_orig_mod` is the U-Net itself, as for a
    torch.compile'd one, so code that reaches into its layers (LoRAs) finds them."""

    def __init__(self, unet: nn.Module, recorder=None):
        super().__init__()
        self._orig_mod = unet
        self.recorder = recorder if recorder is not None else CudaGraphRecorder()
        self._graphs: OrderedDict = OrderedDict()

    @property
    def config(self):
        return self._orig_mod.config

    @property
    def graphs(self) -> int:
        """How many graphs are recorded now."""
        return len(self._graphs)

    def reset_graphs(self) -> None:
        """Forget every graph (the U-Net's layers changed); the next call records again."""
        self._graphs.clear()

    def forward(self, *args, **kwargs) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self._orig_mod(*args, **kwargs)
        names = sorted(kwargs)
        values = list(args) + [kwargs[name] for name in names]
        # (inference mode is in the key: its tensors cannot be written outside it, nor ordinary ones inside)
        key = (len(args), tuple(names), tuple(_signature(v) for v in values), torch.is_inference_mode_enabled())
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._graphs[key] = self._record(len(args), names, values)
            while len(self._graphs) > MAX_GRAPHS:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        inputs, replay, output = entry
        for static, value in zip(inputs, values):
            if static is not None:
                static.copy_(value, non_blocking=True)
        replay()
        return output.clone()

    def _record(self, positional: int, names: list[str], values: list):
        device = next(self._orig_mod.parameters()).device
        inputs = [value.detach().to(device).clone() if isinstance(value, torch.Tensor) else None for value in values]
        call = [static if static is not None else value for static, value in zip(inputs, values)]

        def run() -> torch.Tensor:
            return self._orig_mod(*call[:positional], **dict(zip(names, call[positional:])))

        with stop_points(None):  # a cancel must not break off a recording; it lands at the next step instead
            replay, output = self.recorder.record(run)
        return inputs, replay, output


def _signature(value):
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.dtype, value.device.type)
    return ("value", value)
