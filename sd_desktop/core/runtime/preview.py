"""Per-step previews: latents -> a small RGB picture through a linear projection, without the VAE.

The projection is the model's: its file's own fit if it carries one, else its family's latent format
(core.families).
"""

from __future__ import annotations

import numpy as np
import torch


def latent_rgb_projection(rows, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`channels` rows of RGB weights, optionally one more row with the bias -> (weights [C, 3], bias [3])."""
    rows = [list(row) for row in rows]
    weights = torch.tensor(rows[:channels], dtype=torch.float32)
    bias = torch.tensor(rows[channels] if len(rows) > channels else [0.0, 0.0, 0.0], dtype=torch.float32)
    return weights, bias


def latent_preview(latent: torch.Tensor, projection: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    """One scaled latent [C, h, w] -> uint8 RGB array [h, w, 3] (1/8 of the image's size)."""
    weights, bias = projection
    rgb = torch.einsum("chw,cr->hwr", latent.detach().float().cpu(), weights) + bias
    return ((rgb.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).numpy()


def picture_array(picture: torch.Tensor) -> np.ndarray:
    """A decoded picture [3, H, W] in [0, 1] (TAESD's) -> uint8 RGB [H, W, 3], rounded."""
    return (picture.permute(1, 2, 0).float().cpu().numpy() * 255 + 0.5).astype(np.uint8)


class BackgroundPreviews:
    """Previews off the sampler's path: `submit` hands over the newest estimate and returns at once; one thread
    turns it into a picture (`render(latent [1, C, h, w]) -> uint8 RGB array`: a TAESD decode, or on a GPU the
    linear projection, whose copy to the CPU would otherwise make the sampler wait for the GPU at every step) and
    delivers it, and an estimate that is overtaken before its turn is dropped (the newest wins). The sampler never
    waits for a preview; `close` waits for the one being rendered."""

    def __init__(self, render, deliver):
        import threading

        self.render, self.deliver = render, deliver
        self._slot = None
        self._closed = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="sd-desktop previews", daemon=True)
        self._thread.start()

    def submit(self, latent: torch.Tensor, info) -> None:
        with self._ready:
            self._slot = (latent.detach().clone(), info)
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while self._slot is None and not self._closed:
                    self._ready.wait()
                if self._slot is None:
                    return
                (latent, info), self._slot = self._slot, None
            try:
                with torch.inference_mode():  # (thread-local: this thread needs its own)
                    picture = self.render(latent)
                self.deliver(info, picture)
            except Exception:  # noqa: BLE001 - a preview that fails (out of memory ...) must not stop the image
                import logging

                logging.getLogger(__name__).exception("a preview failed; the previews stop here")
                return

    def close(self) -> None:
        """Drop what waits, finish what is being decoded."""
        with self._ready:
            self._closed = True
            self._slot = None
            self._ready.notify()
        self._thread.join()
