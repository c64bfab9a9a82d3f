"""The GPU path's parts that run anywhere: CUDA graphs' bookkeeping (with a stand-in recorder), the staged upload
through pinned buffers (on ordinary memory), the copies that must not wait, and the load options. The GPU itself
is tested by tests/test_cuda.py (pytest -m cuda, on a GPU)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import sd_desktop.core as core
from sd_desktop.core.errors import Cancelled, SDDesktopError
from sd_desktop.core.interrupt import check_stop, stop_points
from sd_desktop.core.runtime import cuda_graphs
from sd_desktop.core.runtime.cuda_graphs import GraphedUNet
from sd_desktop.core.runtime.devices import to_device
from sd_desktop.core.runtime.upload import StagedUpload

from parity import converted_pair, unet_inputs
from tiny_models import save_diffusers_folder, tiny_parts


class EagerRecorder:
    """A CUDA graph's stand-in on the CPU: 'replay' runs the recorded call again on the same input tensors and
    writes the same output tensor, as a graph reads and writes fixed addresses."""

    def __init__(self):
        self.recorded = 0

    def record(self, fn):
        self.recorded += 1
        out = fn()

        def replay():
            with stop_points(None):  # a graph runs no Python: the U-Net's cancel checks are not in it
                out.copy_(fn())

        return replay, out


@pytest.fixture(scope="module")
def unet():
    return converted_pair("two_levels")[1]


def test_a_graphed_unet_gives_the_eager_output_for_new_inputs_of_a_recorded_shape(unet):
    recorder = EagerRecorder()
    graphed = GraphedUNet(unet, recorder)
    with torch.inference_mode():
        first_inputs = unet_inputs(2, 4, 8, 8, 7, seed=1)
        first = graphed(*first_inputs)
        for seed in (2, 3):  # the same shapes, other values: replays, which must read the new values
            inputs = unet_inputs(2, 4, 8, 8, 7, seed=seed)
            assert torch.equal(graphed(*inputs), unet(*inputs))
        assert torch.equal(first, unet(*first_inputs))  # the first output was a copy, not the graph's own tensor
    assert recorder.recorded == 1 and graphed.graphs == 1


def test_new_shapes_record_new_graphs_and_only_the_newest_are_kept(unet):
    recorder = EagerRecorder()
    graphed = GraphedUNet(unet, recorder)
    sizes = [8, 16, 24, 32]
    with torch.inference_mode():
        for size in sizes:
            inputs = unet_inputs(1, 4, size, size, 7)
            assert torch.equal(graphed(*inputs), unet(*inputs))
        assert recorder.recorded == 4 and graphed.graphs == cuda_graphs.MAX_GRAPHS == 3
        graphed(*unet_inputs(1, 4, 32, 32, 7))  # the newest is kept: replayed
        assert recorder.recorded == 4
        graphed(*unet_inputs(1, 4, 8, 8, 7))  # the oldest was dropped: recorded again
        assert recorder.recorded == 5
        x, t, context = unet_inputs(1, 4, 32, 32, 7)
        graphed(x, t, context=context)  # a keyword is another call signature
        assert recorder.recorded == 6


def test_recording_is_not_broken_off_by_a_cancel_and_autograd_runs_eagerly(unet):
    graphed = GraphedUNet(unet, EagerRecorder())
    inputs = unet_inputs(1, 4, 8, 8, 7)
    with torch.inference_mode(), stop_points(lambda: True):
        with pytest.raises(Cancelled):
            unet(*inputs)  # eager: the U-Net's own checks between blocks
        graphed(*inputs)  # recorded whole; the cancel lands at the next step (CancellableDenoiser)
        with pytest.raises(Cancelled):
            check_stop()  # (the stop check is back after the recording)
    with torch.enable_grad():
        assert graphed(*inputs).requires_grad and graphed.graphs == 1  # not recorded


def test_loras_make_a_graphed_unet_record_again(tmp_path):
    from sd_desktop.core.lora.apply import set_loras
    from sd_desktop.core.request import LoraRef

    from test_lora import kohya_lora, save

    parts = tiny_parts(seed=3)
    folder = save_diffusers_folder(parts, tmp_path / "model")
    eager = core.load_model(folder, device="cpu", dtype="fp32")
    graphed = core.load_model(folder, device="cpu", dtype="fp32")
    recorder = EagerRecorder()
    graphed.unet = GraphedUNet(graphed.unet, recorder)  # (use_cuda_graphs itself refuses the CPU)
    request = core.GenerationRequest(prompt="a red circle", seed=5, steps=3, width=64, height=64, sampler="euler")
    lora = LoraRef(str(save(kohya_lora(parts), tmp_path / "lora.safetensors")), 1.0)
    results = []
    for loras in ((), (lora,), ()):
        request = dataclasses.replace(request, loras=loras)
        a, b = core.generate(eager, request).latents, core.generate(graphed, request).latents
        assert torch.allclose(a, b, atol=1e-6), loras
        results.append(b)
    assert recorder.recorded == 3  # once per set of layers
    assert not torch.allclose(results[0], results[1], atol=1e-3) and torch.allclose(results[0], results[2], atol=1e-6)
    set_loras(graphed, (lora,))
    assert graphed.unet.graphs == 0


def test_graphs_and_compile_are_refused_where_they_cannot_work(tmp_path):
    folder = save_diffusers_folder(tiny_parts(seed=3), tmp_path / "model")
    with pytest.raises(SDDesktopError, match="CUDA graphs need a CUDA GPU, not the CPU"):
        core.load_model(folder, device="cpu", cuda_graphs=True)
    with pytest.raises(SDDesktopError, match="unknown compile mode 'fastest'; use one of default, reduce-overhead"):
        core.load_model(folder, device="cpu", compile="fastest")
    model = core.load_model(folder, device="cpu", dtype="fp32")
    with pytest.raises(SDDesktopError, match="CUDA graphs need a CUDA GPU; this model is on the CPU"):
        model.use_cuda_graphs()


def test_channels_last_off_gives_the_same_picture(tmp_path):
    folder = save_diffusers_folder(tiny_parts(seed=3), tmp_path / "model")
    request = core.GenerationRequest(prompt="a red circle", seed=5, steps=3, width=64, height=64)
    models = [core.load_model(folder, device="cpu", dtype="fp32", channels_last=layout) for layout in (None, False)]
    plain = models[1].vae.decoder.conv_in
    assert getattr(plain, "weight", None) is None or plain.weight.is_contiguous()
    a, b = (core.generate(m, request).latents for m in models)
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
def test_the_staged_upload_keeps_every_value_dtype_and_layout(chunk):
    """Packed into two buffers that take turns, split where a tensor is larger than a buffer: the same tensors."""
    gen = torch.Generator().manual_seed(0)
    tensors = [
        torch.randn(3, 5, generator=gen),
        torch.randn(8, 4, 3, 3, generator=gen).half().contiguous(memory_format=torch.channels_last),
        torch.randn(300, generator=gen).bfloat16(),
        torch.tensor(2.5),
        torch.empty(0, 7),
        torch.arange(77)[None],
        torch.randn(6, 4, generator=gen).t(),  # neither layout: made contiguous
        torch.randn(10, 10, generator=gen)[2:5],  # a view with an offset
    ]
    staged = StagedUpload("cpu", chunk_bytes=chunk, pin=False)
    out = [staged.upload(t) for t in tensors]
    staged.finish()
    for before, after in zip(tensors, out):
        assert after.dtype == before.dtype and torch.equal(after, before)
        assert after.untyped_storage().data_ptr() != before.untyped_storage().data_ptr() or before.numel() == 0
    assert out[1].is_contiguous(memory_format=torch.channels_last) and out[1].stride() == tensors[1].stride()
    assert out[6].is_contiguous()


def test_to_device_changes_the_dtype_on_the_cpu_first():
    x = torch.tensor([1 / 3, 2.0 ** -20])
    assert torch.equal(to_device(x, "cpu", torch.float16), x.half())
    assert to_device(x, torch.device("cpu")) is x  # nothing to move
