"""The layout of a model in the BentoML store: its files, its metadata (the model card) and its
name; one source for the export (writer) and the services (readers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
# The formats one export writes, each a model of its own in the store, <name>-<format>: the torch
# model (GPU, torch), the int8 ONNX model (CPU), the fp16 ONNX model (GPU, onnxruntime-gpu).
TORCH, ONNX, ONNX_FP16 = "torch", "onnx", "onnx-fp16"


def model_tag(name: str, model_format: str, version: str = "latest") -> str:
    return f"{name}-{model_format}:{version}"


class ModelCard(BaseModel):
    """What a service needs besides the weights; stored as the BentoML model's metadata."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    labels: list[str] = Field(min_length=2)
    max_length: int = Field(ge=8)

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> ModelCard:
        return cls.model_validate(metadata)


def require_files(model_dir: Path, *names: str) -> None:
    """Fail at start-up with the missing file's name rather than later with an opaque loader error."""
    missing = [name for name in names if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"model at {model_dir} lacks {', '.join(missing)}")
