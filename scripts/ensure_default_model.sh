#!/usr/bin/env bash
# Trains and exports the default model (configs/langid.yaml) unless the store already holds one made
# from the same recipe: the config, the corpus as built from the installed packages, the base
# checkpoint, the export code and the toolchain's versions, hashed into the models' `recipe` label
# (train_export/recipe.py). FORCE=1 trains a new version anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

skip=--skip-if-stored
[ "${FORCE:-0}" = 1 ] && skip=
.venv/bin/python -m train_export --config configs/langid.yaml $skip
