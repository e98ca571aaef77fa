#!/usr/bin/env bash
# Regenerates requirements/cpu.lock.txt, the lock file the CPU image installs (bentofile.yaml's
# python.requirements_txt): every package of the serving set, transitive ones included, pinned
# with == and the sha256 of each of its wheels, resolved for the image (CPython 3.11, x86_64 Linux,
# wheels only).
#
# Inputs: pyproject.toml's [project].dependencies (what serving needs, as ranges) and
# requirements/cpu.in (the versions the image is tested with); both must hold.
# Versions already in the lock are kept unless an input asks for another, so a plain run only
# refreshes the file. To move on:
#   scripts/lock_requirements.sh --upgrade-package NAME   # one package (e.g. after editing cpu.in)
#   scripts/lock_requirements.sh --upgrade                # everything the inputs allow
# Then rebuild the image (make image) and run the container tests.
#
# The Dockerfile template installs the lock with uv's hash checking (UV_REQUIRE_HASHES): nothing
# unpinned, unhashed or missing from the lock can get in. It leaves out the template's
# `excluded_deps` (dependencies serving never imports); they stay in the lock so that it remains
# a complete resolution.
# Index: PyPI, or $UV_DEFAULT_INDEX (a mirror of it: the hashes are those of PyPI's files).
set -euo pipefail
cd "$(dirname "$0")/.."

uv=${UV:-.venv/bin/uv}
[ -x "$uv" ] || uv=$(command -v uv) || { echo "lock_requirements: uv not found (make setup installs it with bentoml)" >&2; exit 1; }

# --no-config: no uv.toml of this machine (local indexes, find-links) leaks into the lock.
"$uv" pip compile pyproject.toml requirements/cpu.in \
    --no-config \
    --default-index "${UV_DEFAULT_INDEX:-https://pypi.org/simple}" \
    --python-version 3.11 \
    --python-platform x86_64-unknown-linux-gnu \
    --only-binary :all: \
    --emit-build-options \
    --generate-hashes \
    --custom-compile-command "scripts/lock_requirements.sh" \
    --quiet \
    --output-file requirements/cpu.lock.txt \
    "$@"
echo "requirements/cpu.lock.txt: $(grep -c '^[A-Za-z0-9]' requirements/cpu.lock.txt) packages pinned" >&2
