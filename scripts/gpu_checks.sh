#!/usr/bin/env bash
# The checks that need a CUDA GPU, in priority order; run it on a machine with one (nothing here needs more).
# Tested image: Python 3.12, torch 2.11, lightning,
# transformers, onnx and onnxruntime (CPU), but not snntorch or deepspeed: carry their wheels in
# wheels/ (pip download --no-deps snntorch deepspeed -d wheels) and this script installs them.
# Every step prints one JSON line or a pytest summary; $OUT (the device tool's output folder) gets the logs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_checks}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -d wheels ] && python -m pip install --no-deps wheels/*.whl >"$OUT/pip.log" 2>&1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"

# 1. CUDA parity of the core and the LM: the device-parametrised tests run on "cuda" as well as "cpu".
python -m pytest -q -p no:cacheprovider tests/functional tests/neurons tests/core tests/plasticity tests/models \
  -m "not slow" 2>&1 | tail -15 | tee "$OUT/pytest_cuda.txt"

# 2. GPU benchmarks: the training step against the peers that are installed, and the LM.
timeout 300 python benchmarks/core.py --quick --only train_step 2>"$OUT/core_bench.err" | tail -1 | tee "$OUT/core_bench.json"
timeout 300 python benchmarks/lm.py --quick 2>"$OUT/lm_bench.err" | tail -1 | tee "$OUT/lm_bench.json"

# 3. bf16 and DeepSpeed ZeRO-2 with one device (several GPUs are not available on the lent machine).
for recipe in base deepspeed_zero2; do
  overlay=(); [ "$recipe" != base ] && overlay=(--config "recipes/gpu/$recipe.yaml")
  timeout 240 python -m training.cli fit --config recipes/gpu/base.yaml "${overlay[@]}" --trainer.devices=1 \
    --trainer.max_steps=50 >"$OUT/$recipe.log" 2>&1
  echo "{\"recipe\": \"$recipe\", \"rc\": $?}" | tee -a "$OUT/recipes.json"
done

# 4. ONNX graph's PyTorch reference on CUDA (the CUDA execution provider itself needs onnxruntime-gpu).
python -m pytest -q -p no:cacheprovider tests/hub/test_export_onnx.py 2>&1 | tail -5 | tee "$OUT/onnx.txt"

# 5. PD14 on the GPU: the torch backend's exact-mode parity with the native engine on cuda, then the full
#    model (77,169 neurons, 299 M synapses) for 1 s of model time, DC drive; the JSON carries rtf.
python -m pytest -q -p no:cacheprovider tests/sim/test_dynamics.py -k torch 2>&1 | tail -3 | tee "$OUT/pd14_parity.txt"
timeout 900 python -m evospikenet.sim pd14 --backend torch --device cuda --scale 1.0 --drive dc --t-presim 100 \
  --t-sim 1000 --out "$OUT/pd14_cuda" --no-progress 2>"$OUT/pd14_cuda.err" | tail -1 | tee "$OUT/pd14_cuda.json"
