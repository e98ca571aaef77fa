"""Step 6: both models into the BentoML store in one go, or neither."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import NotFound

from textclf.core.model_card import ONNX, TORCH, model_tag


def save_models(
    name: str, version: str, torch_dir: Path, onnx_dir: Path, metadata: dict[str, Any], labels: dict[str, str], onnx_metadata: dict[str, Any] | None = None
) -> tuple[bentoml.Tag, bentoml.Tag]:
    """`bentoml.models.create` commits a model only when its block exits cleanly; nesting the two
    blocks and deleting the inner (ONNX) model if the outer (torch) one fails keeps the pair whole.
    `onnx_metadata` goes to the ONNX model only (how it was quantized)."""
    torch_tag = bentoml.Tag.from_taglike(model_tag(name, TORCH, version))
    onnx_tag = bentoml.Tag.from_taglike(model_tag(name, ONNX, version))
    try:
        with bentoml.models.create(torch_tag, labels=labels | {"format": "torch"}, metadata=metadata) as torch_model:
            shutil.copytree(torch_dir, torch_model.path, dirs_exist_ok=True)
            with bentoml.models.create(onnx_tag, labels=labels | {"format": "onnx-int8"}, metadata=metadata | (onnx_metadata or {})) as onnx_model:
                shutil.copytree(onnx_dir, onnx_model.path, dirs_exist_ok=True)
    except BaseException:
        try:
            bentoml.models.delete(onnx_tag)
        except NotFound:
            pass
        raise
    return torch_tag, onnx_tag


def stored_pair(name: str, recipe: str) -> tuple[bentoml.Tag, bentoml.Tag] | None:
    """The latest NAME-torch and NAME-onnx, if they are one export (same version) made from `recipe`."""
    try:
        torch_model, onnx_model = (bentoml.models.get(model_tag(name, model_format)) for model_format in (TORCH, ONNX))
    except NotFound:
        return None
    if torch_model.tag.version != onnx_model.tag.version or onnx_model.info.labels.get("recipe") != recipe:
        return None
    return torch_model.tag, onnx_model.tag
