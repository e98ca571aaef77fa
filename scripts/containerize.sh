#!/usr/bin/env bash
# Builds a bento from a bentofile and its Docker image with `bentoml containerize`.
# usage: scripts/containerize.sh [BENTOFILE] [IMAGE_TAG]; prints the image tag last.
# Needs a Docker engine (scripts/ensure_docker.sh on a machine without one) and the models in the
# store (TEXTCLF_MODEL_NAME picks them, default from configs/serving.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
bentofile=${1:-bentofile.yaml}
repo=$(pwd)

bento=$(BENTOML_NO_LOCAL_URL=1 .venv/bin/bentoml build -f "$bentofile" -o tag | tail -n 1)
bento=${bento#__tag__:}
image=${2:-$bento}
# bentoml 1.4.39 refuses the bento's Dockerfile template unless the working directory contains the
# temp dir (bentoml issue #5566), hence /tmp. The classic builder and host network: see
# ../shared/ENVIRONMENT.md (no buildx, no bridge network here); both are harmless elsewhere.
(cd /tmp && DOCKER_BUILDKIT=0 "$repo/.venv/bin/bentoml" containerize "$bento" -t "$image" --opt network=host >&2)
echo "$image"
