#!/usr/bin/env bash
# Creates .venv and installs the project with the extras for export, the default corpus, tests and the benchmark,
# every package at the version in requirements/dev.constraints.txt (the default model's recipe depends on them).
# Idempotent: reinstalls only when pyproject.toml or the constraints changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml requirements/dev.constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing the project and its export, corpus, dev and bench extras (first time takes minutes)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch==2.13.0 is pinned in the export extra: that is the CPU wheel; anything looser pulls CUDA.
    .venv/bin/python -m pip install --quiet -e ".[export,corpus,dev,bench]" -c requirements/dev.constraints.txt
    rm -f .venv/.installed-*
    touch "$stamp"
fi
