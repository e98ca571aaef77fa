"""Step 5: both models into the BentoML store in one go, or neither."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import NotFound

from textclf.artifacts import ONNX_SUFFIX, TORCH_SUFFIX


def save_models(name: str, version: str, torch_dir: Path, onnx_dir: Path, metadata: dict[str, Any], labels: dict[str, str]) -> tuple[bentoml.Tag, bentoml.Tag]:
    """`bentoml.models.create` commits a model only when its block exits cleanly; nesting the two
    blocks and deleting the inner (ONNX) model if the outer (torch) one fails keeps the pair whole."""
    torch_tag = bentoml.Tag(name + TORCH_SUFFIX, version)
    onnx_tag = bentoml.Tag(name + ONNX_SUFFIX, version)
    try:
        with bentoml.models.create(torch_tag, labels=labels | {"format": "torch"}, metadata=metadata) as torch_model:
            shutil.copytree(torch_dir, torch_model.path, dirs_exist_ok=True)
            with bentoml.models.create(onnx_tag, labels=labels | {"format": "onnx-int8"}, metadata=metadata) as onnx_model:
                shutil.copytree(onnx_dir, onnx_model.path, dirs_exist_ok=True)
    except BaseException:
        try:
            bentoml.models.delete(onnx_tag)
        except NotFound:
            pass
        raise
    return torch_tag, onnx_tag
