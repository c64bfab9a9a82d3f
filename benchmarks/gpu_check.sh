#!/usr/bin/env bash
# The GPU path, run for real, in one call on a CUDA machine (sized for about 8 minutes on an H200):
#   1. the carried wheels (benchmarks/gpu_wheels.sh makes them in .whl/) and the versions;
#   2. the CUDA tests: pytest -m cuda (tests/test_cuda.py: parity in fp32/fp16/bf16, seeds, the fp16 VAE guard,
#      NaN refused, memory freed on a model switch, channels_last, pinned uploads, CUDA graphs, no per-step sync);
#   3. bench_sd.py --gpu: full-size SD 1.5 (random weights, built there), 512², 20 steps, DPM++ 2M Karras, CFG 7.5:
#      sd-desktop's defaults against diffusers fp16 eager, 3 alternated rounds (it/s, peak VRAM, first image);
#   4. each speed option once beside the defaults (CUDA graphs, channels_last off, fp16, pageable uploads, the SDPA
#      backends), then bf16/fp16 against fp32 (bench_precision.py), then torch.compile if time is left.
# Everything goes to $OUT/gpu_check.log (and the screen). On the device:
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=560)
# Without a GPU, GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh tries every step on the CPU at a tiny size.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
exec > >(tee "$LOG") 2>&1
export PYTHONUNBUFFERED=1
BUDGET=${GPU_CHECK_SECONDS:-480}
left() { echo $((BUDGET - SECONDS)); }
within() {  # a stage's limit: its cap (none in a dry run: the CPU is far slower), or what is left
    local t=$(left); [ "${GPU_CHECK_DRY_RUN:-0}" != 1 ] && [ "$t" -gt "$1" ] && t=$1; echo "$t"; }
enough() { [ "$(left)" -ge "$1" ] || { echo "(skipped: $(left)s left)"; return 1; }; }
step() { echo; echo "=== $1 (at ${SECONDS}s of ${BUDGET}s)"; }

OPTIONS=ours-graphs,ours,ours-nocl,ours-fp16,ours-sdpa-flash,ours-sdpa-math,ours-pageable,ours-sdpa-efficient
if [ "${GPU_CHECK_DRY_RUN:-0}" = 1 ]; then  # every stage on the CPU, small (a full-size step still takes seconds)
    export SD_DESKTOP_CUDA_DRY_RUN=1
    BENCH=(--gpu --dry-run --size 64 --steps 1)
    PRECISION=(--device cpu --size 64 --steps 1 --precisions fp32,fp16)
    OPTIONS=ours,ours-nocl,ours-sdpa-math  # (graphs, and SDPA's GPU-only backends, need the GPU)
else
    BENCH=(--gpu)
    PRECISION=(--device cuda)
fi

step "setup"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || echo "!!! the carried wheels did not install"
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "(no nvidia-smi)"
python3 - <<'PY'
import platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| cuDNN", torch.backends.cudnn.version() if torch.cuda.is_available() else None)
if torch.cuda.is_available():
    print("device:", torch.cuda.get_device_name(), "capability", torch.cuda.get_device_capability())
for name in ("diffusers", "transformers", "peft", "safetensors", "torchsde"):
    try:
        print(name, __import__(name).__version__)
    except Exception as exc:  # noqa: BLE001
        print(name, "missing:", exc)
PY

step "CUDA tests (pytest -m cuda)"
timeout "$(within 200)" python3 -m pytest -q -m cuda -p no:cacheprovider -rs tests/test_cuda.py tests/test_samplers.py \
    || echo "!!! CUDA tests: exit $?"

step "build the full-size random model (bench-cache/)"
timeout "$(within 150)" python3 -c "import sys; sys.path.insert(0, 'benchmarks'); import bench_sd; bench_sd.build_model()" \
    || echo "!!! building the model failed: exit $?"

step "sd-desktop defaults against diffusers fp16 eager, 3 rounds"
ROUNDS=3; [ "${GPU_CHECK_DRY_RUN:-0}" = 1 ] && ROUNDS=1
enough 40 && { timeout "$(within 170)" python3 benchmarks/bench_sd.py "${BENCH[@]}" --repeat $ROUNDS --runs ours,diffusers-fp16 \
    || echo "!!! bench: exit $?"; }

step "speed options, one round each beside the defaults"
enough 40 && { timeout "$(within 180)" python3 benchmarks/bench_sd.py "${BENCH[@]}" --repeat 1 \
    --runs "$OPTIONS" \
    || echo "!!! options: exit $?"; }

step "bf16 and fp16 against fp32"
enough 30 && { timeout "$(within 60)" python3 benchmarks/bench_precision.py "${PRECISION[@]}" || echo "!!! precision: exit $?"; }

if [ "$(left)" -gt 90 ]; then
    step "torch.compile (reduce-overhead: inductor + CUDA graphs), one round"
    timeout $(( $(left) - 10 )) python3 benchmarks/bench_sd.py "${BENCH[@]}" --repeat 1 --runs ours-reduce-overhead \
        || echo "!!! compile: exit $?"
else
    echo "(no time left for torch.compile: $(left)s)"
fi
step "done"
