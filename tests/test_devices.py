"""Automatic precision: what `dtype=None` means on each kind of device."""

import pytest
import torch

from sd_desktop.core.devices import auto_dtype, cpu_has_fast_bf16, resolve_dtype

AMX_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
AVX2_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"


def test_cpu_bf16_is_read_from_the_cpu_flags():
    assert cpu_has_fast_bf16(AMX_CPU)
    assert cpu_has_fast_bf16("flags : avx512f avx512_bf16\n")
    assert not cpu_has_fast_bf16(AVX2_CPU)
    assert not cpu_has_fast_bf16("")


def test_auto_precision_on_cpu_follows_the_hardware(monkeypatch):
    monkeypatch.setattr("sd_desktop.core.devices.cpu_has_fast_bf16", lambda: True)
    assert auto_dtype(torch.device("cpu")) == torch.bfloat16
    assert resolve_dtype(None, torch.device("cpu")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr("sd_desktop.core.devices.cpu_has_fast_bf16", lambda: False)
    assert auto_dtype(torch.device("cpu")) == torch.float32


def test_auto_precision_on_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert auto_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert auto_dtype(torch.device("cuda")) == torch.float16
    assert auto_dtype(torch.device("mps")) == torch.float16


def test_a_forced_precision_wins_and_a_wrong_name_is_explained():
    assert resolve_dtype("fp32", torch.device("cpu")) == torch.float32
    assert resolve_dtype(torch.float16, torch.device("cpu")) == torch.float16
    with pytest.raises(ValueError, match="use auto, fp32, fp16 or bf16"):
        resolve_dtype("fp8", torch.device("cpu"))
