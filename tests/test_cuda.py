"""The CUDA path, on a CUDA GPU: `pytest -m cuda` (benchmarks/gpu_check.sh runs it there).

Without a GPU these are skipped; `SD_DESKTOP_CUDA_DRY_RUN=1 pytest -m cuda` runs their logic on the CPU instead
(the tests that need the GPU itself — memory counters, graphs, pinned copies, host syncs — stay skipped then).

Tolerances, each against the reference on the same device and dtype (max |difference| / max |reference|):
- fp32 with TF32 off: the U-Net 1e-4, the sampled latents 1e-3 (as on the CPU, tests/test_pipeline.py);
- fp16 and bf16: the sampled latents 3e-2 and 1.5e-1 of diffusers' own run in that dtype (two implementations
  each rounding differently over 8 steps; bf16 keeps 8 bits of mantissa, fp16 11; a dry run on this CPU measured
  0.0043 and 0.041), and 1e-2 / 5e-2 for one U-Net call;
- a seed's picture on the GPU against the CPU, fp32: 1e-3 of the latents (the same noise, drawn on the CPU).
"""

from __future__ import annotations

import os
import warnings

import pytest
import torch

import sd_desktop.core as core
from sd_desktop.core.errors import NonFiniteOutputError
from sd_desktop.core.runtime.devices import release_device_memory

from parity import assert_close, converted_pair, max_rel_diff, unet_inputs
from test_pipeline import folder, parts  # noqa: F401 - the same tiny model and folder fixtures as the CPU tests
from test_pipeline import NEGATIVE, PROMPT, reference_pipeline, reference_scheduler, request

CUDA = torch.cuda.is_available()
DRY_RUN = os.environ.get("SD_DESKTOP_CUDA_DRY_RUN") == "1"
DEVICE = torch.device("cuda" if CUDA else "cpu")
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not (CUDA or DRY_RUN), reason="needs an NVIDIA GPU: pytest -m cuda on one "
                       "(benchmarks/gpu_check.sh); SD_DESKTOP_CUDA_DRY_RUN=1 runs their logic on the CPU"),
]
needs_the_gpu = pytest.mark.skipif(not CUDA, reason="a dry run on the CPU: this one needs the GPU itself")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
STEPS_TOLERANCE = {"fp32": 1e-3, "fp16": 3e-2, "bf16": 1.5e-1}
CALL_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}


@pytest.fixture(autouse=True)
def _no_tf32():
    """Full fp32 in fp32 comparisons: cuDNN's convolutions use TF32 by default (10-bit products)."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def diffusers_latents_on(device, dtype, parts, folder, sampler="dpmpp_2m", schedule="karras", steps=8, seed=7):
    """diffusers' StableDiffusionPipeline over the tiny networks, on `device` in `dtype` (noise from a CPU generator,
    as ours draws it)."""
    import copy

    from diffusers import StableDiffusionPipeline

    moved = {name: copy.deepcopy(part).to(device, dtype) for name, part in parts.items()}
    pipe = reference_pipeline(StableDiffusionPipeline, moved, folder, reference_scheduler(sampler, schedule))
    with torch.no_grad():
        return pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=steps, guidance_scale=5.0,
                    generator=torch.Generator("cpu").manual_seed(seed), width=64, height=48,
                    output_type="latent").images.float().cpu()


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_unet_equals_diffusers_on_the_gpu(dtype):
    reference, ours, _ = converted_pair("sd1_like")
    reference, ours = reference.to(DEVICE, DTYPES[dtype]), ours.to(DEVICE, DTYPES[dtype])
    x, t, context = (v.to(DEVICE) for v in unet_inputs(2, 4, 16, 24, 7))
    with torch.no_grad():
        expected = reference(x.to(DTYPES[dtype]), t, encoder_hidden_states=context.to(DTYPES[dtype])).sample
        actual = ours(x, t, context)
    assert actual.dtype == DTYPES[dtype] and actual.device.type == DEVICE.type
    assert_close(actual.float(), expected.float(), rel=CALL_TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_generation_equals_diffusers_on_the_gpu(parts, folder, dtype):
    model = core.load_model(folder, device=DEVICE, dtype=dtype)
    assert model.dtype == DTYPES[dtype] and next(model.unet.parameters()).device.type == DEVICE.type
    ours = core.generate(model, request(sampler="dpmpp_2m", schedule="karras", steps=8)).latents.float().cpu()
    reference = diffusers_latents_on(DEVICE, DTYPES[dtype], parts, folder)
    assert ours.shape == reference.shape == (1, 4, 6, 8)
    assert max_rel_diff(ours, reference) <= STEPS_TOLERANCE[dtype]


@pytest.mark.parametrize("sampler", ["euler_a", "dpmpp_2m_sde"])  # noise per step: seeded on the CPU, then moved
def test_a_seed_gives_the_cpus_picture_on_the_gpu(folder, sampler):
    on_cpu = core.generate(core.load_model(folder, device="cpu", dtype="fp32"), request(sampler=sampler, steps=6))
    on_gpu = core.generate(core.load_model(folder, device=DEVICE, dtype="fp32"), request(sampler=sampler, steps=6))
    assert max_rel_diff(on_gpu.latents.cpu(), on_cpu.latents) <= 1e-3
    assert on_gpu.images[0].size == on_cpu.images[0].size


def test_the_fp16_vae_guard_decodes_an_overflowing_vae_again_in_fp32(folder):
    import numpy as np

    model = core.load_model(folder, device=DEVICE, dtype="fp16")
    with torch.no_grad():
        model.vae.decoder.conv_in.weight.mul_(1e5)  # activations far beyond float16's 65504 (GroupNorm brings them back)
    z = torch.randn(1, 4, 6, 8, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    with torch.inference_mode():
        assert not torch.isfinite(model.vae.decode(z.half() / model.scale_factor)).all()  # the bug being guarded
    result = core.generate(model, request(sampler="euler", steps=2))
    assert model.float32_vae is not None and next(model.float32_vae.parameters()).dtype == torch.float32
    assert np.asarray(result.images[0]).std() > 0  # a picture, not the black of NaN


def test_nan_latents_are_refused_with_what_to_do(folder):
    model = core.load_model(folder, device=DEVICE, dtype="fp16")
    real = model.unet.forward
    model.unet.forward = lambda x, t, ctx: real(x, t, ctx) * float("inf")
    with pytest.raises(NonFiniteOutputError, match="overflowed in float16; choose bf16 or fp32"):
        core.generate(model, request(steps=2))


def test_channels_last_on_and_off_give_the_same_picture(folder):
    on = core.load_model(folder, device=DEVICE, dtype="fp32", channels_last=True)
    off = core.load_model(folder, device=DEVICE, dtype="fp32", channels_last=False)
    weight = lambda m: m.unet.input_blocks[0][0].weight  # noqa: E731
    if not on.packed:  # (a dry run on an x86 CPU packs the weights for oneDNN: no plain weight to look at)
        assert weight(on).is_contiguous(memory_format=torch.channels_last) and weight(on).stride()[1] == 1
        assert weight(off).is_contiguous() and weight(off).stride()[1] != 1
    a, b = (core.generate(m, request(steps=4)).latents.cpu() for m in (on, off))
    assert max_rel_diff(a, b) <= 1e-4


@needs_the_gpu
def test_a_model_switch_gives_the_gpus_memory_back(folder):
    release_device_memory(DEVICE)
    before, reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    model = core.load_model(folder, device=DEVICE, dtype="fp16")
    core.generate(model, request(steps=2))
    loaded = torch.cuda.memory_allocated()
    assert loaded - before > 1e6  # the tiny model's weights are on the GPU
    del model
    release_device_memory(DEVICE)  # what the worker does before it loads the next model (frees_before_loading)
    assert torch.cuda.memory_allocated() - before < 64 << 10
    assert torch.cuda.memory_reserved() <= reserved + (2 << 20)  # the cached blocks went back too


@needs_the_gpu
def test_weights_uploaded_through_pinned_memory_equal_the_files(folder):
    import sd_desktop.core.loading.model as loading

    staged = core.load_model(folder, device=DEVICE, dtype="fp16")
    loading.PINNED_UPLOAD = False
    try:
        plain = core.load_model(folder, device=DEVICE, dtype="fp16")
    finally:
        loading.PINNED_UPLOAD = True
    for (name, a), (_, b) in zip(staged.unet.state_dict().items(), plain.unet.state_dict().items()):
        assert torch.equal(a, b) and a.stride() == b.stride(), name


@needs_the_gpu
def test_cuda_graphs_replay_the_eager_picture_and_follow_a_lora(parts, folder, tmp_path):
    from sd_desktop.core.request import LoraRef

    from test_lora import kohya_lora, save

    eager = core.load_model(folder, device=DEVICE, dtype="fp16")
    graphed = core.load_model(folder, device=DEVICE, dtype="fp16", cuda_graphs=True)
    for seed in (1, 2):  # the second replays the first's graph with new inputs
        a, b = (core.generate(m, request(seed=seed, steps=4)).latents for m in (eager, graphed))
        assert max_rel_diff(b.cpu(), a.cpu()) <= 1e-3
    assert graphed.unet.graphs == 1
    lora = LoraRef(str(save(kohya_lora(parts), tmp_path / "lora.safetensors")), 1.0)
    with_lora = [core.generate(m, request(steps=4, loras=(lora,))).latents.cpu() for m in (eager, graphed)]
    assert max_rel_diff(with_lora[1], with_lora[0]) <= 1e-3 and max_rel_diff(with_lora[0], a.cpu()) > 1e-3


@needs_the_gpu
def test_no_host_sync_per_sampler_step(folder):
    """The GPU is never made to drain its queue once per step (timesteps and noise come through pinned memory,
    previews are copied off the sampler's thread): the synchronising calls of a run do not grow with its steps."""
    model = core.load_model(folder, device=DEVICE, dtype="fp16")
    core.generate(model, request(steps=2))  # first-use allocations

    def syncs(steps: int, sampler: str) -> int:
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                core.generate(model, request(steps=steps, sampler=sampler))
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return sum("synchronizing" in str(w.message) for w in caught)

    for sampler in ("dpmpp_2m", "euler_a"):
        assert syncs(4, sampler) == syncs(12, sampler), sampler
