"""Automatic precision: what `dtype=None` means on each kind of device."""

import inspect

import pytest
import torch

from sd_desktop.core.errors import DeviceError, SDDesktopError
from sd_desktop.core.runtime.devices import (auto_dtype, cpu_has_fast_bf16, resolve_device, resolve_dtype,
                                            slow_precision_note)

AMX_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
AVX2_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"


def test_cpu_bf16_is_read_from_the_cpu_flags():
    assert cpu_has_fast_bf16(AMX_CPU)
    assert cpu_has_fast_bf16("flags : avx512f avx512_bf16\n")
    assert not cpu_has_fast_bf16(AVX2_CPU)
    assert not cpu_has_fast_bf16("")


def test_a_precision_this_cpu_emulates_is_said_when_chosen_by_hand():
    cpu = torch.device("cpu")
    note = slow_precision_note(cpu, torch.bfloat16, AVX2_CPU)
    assert note is not None and "bfloat16 is emulated on this CPU" in note and "amx_bf16 and avx512_bf16" in note
    assert "float16 is emulated" in slow_precision_note(cpu, torch.float16, AVX2_CPU)
    assert slow_precision_note(cpu, torch.bfloat16, AMX_CPU) is None  # native there
    assert "slower than bfloat16" in slow_precision_note(cpu, torch.float16, AMX_CPU)  # (AMX-BF16 is not AMX-FP16)
    assert "slower than float32, which Automatic precision picks here" in note
    assert slow_precision_note(cpu, torch.float32, AVX2_CPU) is None
    assert slow_precision_note(cpu, torch.bfloat16, "") is None  # flags unknown (not Linux): nothing said
    assert slow_precision_note(torch.device("cuda"), torch.float16, AVX2_CPU) is None


def test_auto_precision_on_cpu_follows_the_hardware(monkeypatch):
    monkeypatch.setattr("sd_desktop.core.runtime.devices.cpu_has_fast_bf16", lambda: True)
    assert auto_dtype(torch.device("cpu")) == torch.bfloat16
    assert resolve_dtype(None, torch.device("cpu")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr("sd_desktop.core.runtime.devices.cpu_has_fast_bf16", lambda: False)
    assert auto_dtype(torch.device("cpu")) == torch.float32


def capability(major: int, asked: list):
    """torch.cuda.get_device_capability answering `major`, that takes only what the real function of the
    installed torch takes: a keyword older torch lacks (is_bf16_supported's including_emulation came in
    2.3) fails here as it would on a user's machine."""
    signature = inspect.signature(torch.cuda.get_device_capability)

    def fake(*args, **kwargs):
        asked.append(signature.bind(*args, **kwargs).arguments.get("device"))
        return major, 0

    return fake


def test_auto_precision_on_gpus_reads_the_compute_capability(monkeypatch):
    def no_emulation_keyword(device=None):  # torch 2.1/2.2's signature
        raise AssertionError("is_bf16_supported is not asked: its arguments differ between torch versions")

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", no_emulation_keyword)
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability(8, asked))  # Ampere and later
    assert auto_dtype(torch.device("cuda")) == torch.bfloat16
    assert auto_dtype(torch.device("cuda:1")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability(7, asked))  # Volta, Turing: emulated bf16
    assert auto_dtype(torch.device("cuda")) == torch.float16
    assert asked == [None, 1, None]  # the card asked about is the one the model goes to
    assert auto_dtype(torch.device("mps")) == torch.float16


def test_unavailable_devices_and_unknown_precisions_are_sd_desktop_errors():
    with pytest.raises(DeviceError, match="choose the CPU or auto device"):
        resolve_device("cuda" if not torch.cuda.is_available() else "mps")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(SDDesktopError, match="use auto, fp32, fp16 or bf16"):
        resolve_dtype("fp8", torch.device("cpu"))


def test_a_forced_precision_wins_and_a_wrong_name_is_explained():
    assert resolve_dtype("fp32", torch.device("cpu")) == torch.float32
    assert resolve_dtype(torch.float16, torch.device("cpu")) == torch.float16
    with pytest.raises(ValueError, match="use auto, fp32, fp16 or bf16"):
        resolve_dtype("fp8", torch.device("cpu"))
