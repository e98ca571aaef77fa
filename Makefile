# Entry points. Each target installs what it needs first, so every one works on a fresh machine.
.PHONY: setup model serve test

setup:
	bash scripts/bootstrap.sh

model: setup
	bash scripts/ensure_default_model.sh

# The main job: train and export the default model if the store lacks it, then serve on :3000.
serve: model
	.venv/bin/bentoml serve --host 127.0.0.1 --port 3000

test: model
	.venv/bin/python -m pytest -ra
