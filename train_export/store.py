"""Step 7: every model of an export into the BentoML store in one go, or none."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import NotFound

from textclf.core.model_card import ONNX, ONNX_FP16, TORCH, model_tag

FORMAT_LABELS = {TORCH: "torch", ONNX: "onnx-int8", ONNX_FP16: "onnx-fp16"}


@dataclass(frozen=True)
class ModelFiles:
    """One model of an export: its format, the folder of its files, and what only it carries."""

    model_format: str
    folder: Path
    metadata: dict[str, Any] = field(default_factory=dict)


def save_models(name: str, version: str, models: list[ModelFiles], metadata: dict[str, Any], labels: dict[str, str]) -> list[bentoml.Tag]:
    """`bentoml.models.create` commits a model only when its block exits cleanly. The blocks are
    nested, so the last model commits first; if a later commit (or anything in between) fails, the
    models already committed are deleted again: the store gets the whole export or nothing of it."""
    tags = [bentoml.Tag.from_taglike(model_tag(name, m.model_format, version)) for m in models]
    try:
        with ExitStack() as stack:
            for files, tag in zip(models, tags, strict=True):
                labelled = labels | {"format": FORMAT_LABELS[files.model_format]}
                model = stack.enter_context(bentoml.models.create(tag, labels=labelled, metadata=metadata | files.metadata))
                shutil.copytree(files.folder, model.path, dirs_exist_ok=True)
    except BaseException:
        for tag in tags:
            try:
                bentoml.models.delete(tag)
            except NotFound:
                pass
        raise
    return tags


def stored_export(name: str, recipe: str, model_formats: tuple[str, ...] = (TORCH, ONNX, ONNX_FP16)) -> list[bentoml.Tag] | None:
    """The latest model of each format, if they are one export (same version) made from `recipe`."""
    try:
        models = [bentoml.models.get(model_tag(name, model_format)) for model_format in model_formats]
    except NotFound:
        return None
    if len({m.tag.version for m in models}) != 1 or any(m.info.labels.get("recipe") != recipe for m in models):
        return None
    return [m.tag for m in models]
