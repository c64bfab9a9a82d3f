"""Choosing the device and the precision, and giving a device's memory back. Nothing here does work at
import time."""

from __future__ import annotations

import gc

import torch

from ..errors import DeviceError

DTYPES = {
    "fp32": torch.float32, "float32": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def unavailable_devices() -> dict[str, str]:
    """The device choices this machine cannot use, with the reason ("cuda": "no CUDA GPU ...")."""
    missing = {}
    if not torch.cuda.is_available():
        missing["cuda"] = "no NVIDIA (CUDA) GPU that this torch can use" + (
            "; this torch is a CPU-only build" if torch.version.cuda is None else "")
    if not mps_available():
        missing["mps"] = "no Apple GPU (MPS) here"
    return missing


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """"auto": cuda, then mps, then cpu. Anything else is passed to torch.device."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda or mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("the CUDA device was asked for but no CUDA GPU is available; choose the CPU or auto device")
    if resolved.type == "mps" and not mps_available():
        raise DeviceError("the MPS (Apple GPU) device was asked for but is not available here; choose the CPU or auto device")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None or "auto" picks the fastest precision that is safe on `device` (see auto_dtype)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        return auto_dtype(device)
    try:
        return DTYPES[dtype.lower()]
    except (KeyError, AttributeError):
        raise DeviceError(f"unknown precision {dtype!r}; use auto, fp32, fp16 or bf16") from None


def auto_dtype(device: torch.device) -> torch.dtype:
    """CPUs with AMX or AVX512-BF16: bfloat16 (several times faster than float32 there; elsewhere bf16 is
    emulated and slower, so float32). CUDA: bfloat16 where the card has it (fp16's range overflows in
    SD's VAE and attention), else float16. MPS: float16."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if cuda_has_native_bf16(device.index) else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def cuda_has_native_bf16(index: int | None = None) -> bool:
    """bfloat16 in hardware from compute capability 8.0 (Ampere) on; older cards emulate it slowly and get
    fp16. Read from the capability because is_bf16_supported(including_emulation=...) is not in torch < 2.3."""
    major, _minor = torch.cuda.get_device_capability(index)
    return major >= 8


_CPU_BF16_FLAGS = {"amx_bf16", "avx512_bf16"}


def slow_precision_note(device: torch.device, dtype: torch.dtype, cpuinfo: str | None = None) -> str | None:
    """A note when a precision chosen by hand is emulated on this x86 CPU, so slower than float32 (on a 2-core AVX2
    VM a 20-step demo picture took 5.39 s in bfloat16 and 4.64 s in float16 against 1.12 s in float32, medians of 3
    alternated rounds). None elsewhere, and where the CPU's flags cannot be read."""
    if torch.device(device).type != "cpu" or dtype not in (torch.bfloat16, torch.float16):
        return None
    flags = _cpu_flags(cpuinfo)
    if flags is None or not flags & {"avx2", "avx512f", "sse4_2"}:  # (not an x86 CPU whose flags we read)
        return None
    native = {torch.bfloat16: _CPU_BF16_FLAGS, torch.float16: {"avx512_fp16", "amx_fp16"}}[dtype]
    if flags & native:
        return None
    name = "bfloat16" if dtype == torch.bfloat16 else "float16"
    fast = "bfloat16" if flags & _CPU_BF16_FLAGS else "float32"
    return (f"{name} is emulated on this CPU (it lacks {' and '.join(sorted(native))}), so slower than {fast}, "
            f"which Automatic precision picks here")


def _cpu_flags(cpuinfo: str | None = None) -> set[str] | None:
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None


def cpu_has_fast_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 in hardware (x86 AMX or AVX512-BF16), from /proc/cpuinfo's flags.
    Where those cannot be read (Windows, macOS) the answer is no: float32 is the safe, known speed."""
    return bool(_CPU_BF16_FLAGS & (_cpu_flags(cpuinfo) or set()))


def to_device(tensor: torch.Tensor, device: torch.device | str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A small CPU tensor (a step's timesteps, noise) onto `device` without making the host wait. A plain copy to a
    CUDA GPU first waits for all the work queued on it, so a sampler that made one per step could never queue the
    next step's kernels ahead of the GPU; on CUDA the copy goes through pinned memory, non-blocking (torch keeps
    the pinned block until the copy is done). The dtype is changed on the CPU first: the same rounding as before."""
    if dtype is not None and tensor.dtype != dtype:
        tensor = tensor.to(dtype)
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def compile_supported(device: torch.device) -> bool:
    """torch.compile (inductor) generates kernels for CPUs and CUDA GPUs; on MPS it does not work."""
    return torch.device(device).type in ("cpu", "cuda")


def frees_before_loading(device: torch.device) -> bool:
    """Whether a model switch must drop the old model before the new one loads: a GPU's memory rarely
    holds two, while a CPU's RAM is not the limit, and loading first keeps the old one if the new fails."""
    return torch.device(device).type in ("cuda", "mps")


def release_device_memory(device: torch.device) -> None:
    """Hand cached blocks of freed tensors back to the device, so the next model (or another program) gets them."""
    gc.collect()
    kind = torch.device(device).type
    if kind == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif kind == "mps" and mps_available():
        torch.mps.empty_cache()
