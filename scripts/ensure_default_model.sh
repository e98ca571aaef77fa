#!/usr/bin/env bash
# Trains and exports the default model (configs/langid.yaml) unless both of its models are already
# in the BentoML store. FORCE=1 trains a new version anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

name=$(.venv/bin/python -c "import yaml; print(yaml.safe_load(open('configs/langid.yaml'))['name'])")
if [ "${FORCE:-0}" != 1 ] \
    && .venv/bin/bentoml models get "$name-onnx:latest" >/dev/null 2>&1 \
    && .venv/bin/bentoml models get "$name-torch:latest" >/dev/null 2>&1; then
    echo "default model: $name-onnx and $name-torch already in the store (FORCE=1 retrains)"
    exit 0
fi
.venv/bin/python -m train_export --config configs/langid.yaml
