# Entry points. Each target installs what it needs first, so every one works on a fresh machine.
.PHONY: setup model serve image sizes bench accuracy lock test

setup:
	bash scripts/bootstrap.sh

model: setup
	bash scripts/ensure_default_model.sh

# The main job: train and export the default model if the store lacks it, then serve on :3000.
serve: model
	.venv/bin/bentoml serve --host 127.0.0.1 --port 3000

# The CPU image of the default model (needs a Docker engine; ensure_docker.sh makes one here).
image: model
	bash scripts/containerize.sh bentofile.yaml textclf-cpu:latest

# Size report of the CPU image next to the stock BentoML image of the same bento:
# reports/image_sizes.{md,json,png}; and the two GPU images on paper, from the registry's wheel
# sizes (no CUDA base image can be pulled here): reports/gpu_sizes.{md,json}.
sizes: model
	bash scripts/ensure_docker.sh
	.venv/bin/python scripts/image_report.py
	.venv/bin/python scripts/gpu_sizes.py

# Our service against baseline T (transformers), baseline O (FastAPI + onnxruntime) and the
# in-process limit L, one server at a time, the close ratios in 3 rounds (~19 min on 2 cores): reports/bench/bench.{md,json,png}.
# Run it on an otherwise idle machine. ARGS="--quick" checks the harness in seconds.
bench: model
	.venv/bin/python -m bench --out reports/bench $(ARGS)

# The default model's accuracy per language on text it was not trained on: the held-out sentences and
# documentation lines, and Debian's translated manual pages (apt-get download): reports/accuracy.{md,json}.
accuracy: model
	.venv/bin/python scripts/accuracy_report.py --out reports/accuracy

# Re-resolve requirements/cpu.lock.txt (the CPU image's pinned, hashed dependencies) from
# requirements/cpu.in; pass ARGS="--upgrade-package NAME" to move a version.
lock: setup
	bash scripts/lock_requirements.sh $(ARGS)

# The container tests need an engine and a python:3.11-slim base: ensure_docker.sh provides both
# on a machine without them and does nothing where they exist.
test: model
	bash scripts/ensure_docker.sh
	.venv/bin/python -m pytest -ra
