"""Weights onto a GPU through pinned memory: the copy engine reads page-locked memory directly and the copies run
while the CPU prepares the next ones, where a plain `.to("cuda")` of each tensor makes the driver stage it through
a small buffer of its own and waits for it.

Two pinned buffers of CHUNK_BYTES take turns: tensors are packed into one (large ones in pieces) and each piece is
copied to the GPU without waiting; a buffer is filled again only after the copies out of it are done (an event
per buffer). The pinned memory is two buffers whatever the model's size, and goes when the upload is finished.
"""

from __future__ import annotations

import torch

CHUNK_BYTES = 32 << 20


class StagedUpload:
    """`upload(tensor)` returns the tensor on `device`, in the same dtype and layout (contiguous or channels_last);
    `finish()` waits for the copies. With `pin` False (a CPU target, or tests) the same packing runs on ordinary
    memory, synchronously."""

    def __init__(self, device: torch.device | str, chunk_bytes: int = CHUNK_BYTES, pin: bool | None = None):
        self.device = torch.device(device)
        self.pin = self.device.type == "cuda" if pin is None else pin
        self.buffers = [torch.empty(chunk_bytes, dtype=torch.uint8, pin_memory=self.pin) for _ in range(2)]
        self.done: list = [None, None]  # an event per buffer: its copies are finished
        self.current, self.cursor = 0, 0

    def upload(self, tensor: torch.Tensor) -> torch.Tensor:
        if not (tensor.is_contiguous() or tensor.is_contiguous(memory_format=torch.channels_last)):
            tensor = tensor.contiguous()
        out = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device=self.device)
        if tensor.numel() == 0:
            return out
        source, target = _bytes(tensor), _bytes(out)
        size, done = source.numel(), 0
        while done < size:
            room = self.buffers[self.current].numel() - self.cursor
            if room == 0:
                self._next_buffer()
                continue
            take = min(room, size - done)
            piece = self.buffers[self.current][self.cursor:self.cursor + take]
            piece.copy_(source[done:done + take])
            target[done:done + take].copy_(piece, non_blocking=self.pin)
            self.cursor += take
            done += take
        return out

    def _next_buffer(self) -> None:
        self.done[self.current] = self._mark()
        self.current, self.cursor = 1 - self.current, 0
        if self.done[self.current] is not None:
            self.done[self.current].synchronize()  # its copies must be finished before it is written again

    def _mark(self):
        if not (self.pin and self.device.type == "cuda"):
            return None
        event = torch.cuda.Event()
        event.record()
        return event

    def finish(self) -> None:
        """Wait until every copy has landed; the pinned buffers are then free to go."""
        self.done[self.current] = self._mark()
        for event in self.done:
            if event is not None:
                event.synchronize()
        self.done = [None, None]


def _bytes(tensor: torch.Tensor) -> torch.Tensor:
    """A dense tensor's elements as flat bytes, in memory order."""
    flat = tensor.as_strided((tensor.numel(),), (1,), tensor.storage_offset())
    return flat.view(torch.uint8)
