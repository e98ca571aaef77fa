#!/usr/bin/env bash
# Trains and exports the default model (configs/langid.yaml) unless the store already holds one made
# from the same recipe: the config, the export code and the corpus sentences, hashed into the
# models' `recipe` label. FORCE=1 trains a new version anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

recipe=$(cat configs/langid.yaml train_export/*.py train_export/default_corpus/*.py \
    train_export/default_corpus/sentences/*.txt | sha256sum | cut -c1-16)
stored=$(.venv/bin/python - <<'PY' 2>/dev/null || true
import bentoml, yaml
name = yaml.safe_load(open("configs/langid.yaml"))["name"]
onnx, torch = (bentoml.models.get(f"{name}-{kind}:latest") for kind in ("onnx", "torch"))
if onnx.tag.version == torch.tag.version:
    print(onnx.info.labels.get("recipe", ""))
PY
)
if [ "${FORCE:-0}" != 1 ] && [ "$stored" = "$recipe" ]; then
    echo "default model: up to date in the store (recipe $recipe; FORCE=1 retrains)"
    exit 0
fi
echo "default model: training (recipe $recipe, store has '${stored:-none}')"
.venv/bin/python -m train_export --config configs/langid.yaml --label "recipe=$recipe"
