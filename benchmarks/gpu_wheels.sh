#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.sh needs on a GPU machine that has torch, transformers, peft, safetensors,
# numpy and pillow but no network (the lent H200): diffusers (the reference), torchsde (the SDE samplers' noise)
# and what those import. Run here, in the checkout's root; .whl/ is git-ignored (.git/info/exclude), so name it
# in the device call's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
    diffusers==0.42.1 importlib_metadata==8.7.0 torchsde==0.2.6 trampoline==0.1.2
ls -la .whl
