"""Typed configuration of the train-and-export command, read from a YAML file in configs/."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

BUILTIN_PREFIX = "builtin:"
PACKAGE_PREFIX = "pkg:"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class DataConfig(_Strict):
    source: str = Field(description="builtin:langid, or a .jsonl/.csv file with text and label columns")
    per_label: int = Field(1500, ge=10)
    span_fraction: float = Field(0.0, ge=0, le=1, description="builtin corpus: share of 2-4 word spans of its sentences")
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    seed: int = 0


class FinetuneConfig(_Strict):
    enabled: bool = True
    epochs: float = Field(3, gt=0)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    extend_vocab: bool = False
    vocab_subwords: int = Field(0, ge=0, description="with extend_vocab: also add a WordPiece of this size learned on the training texts")
    max_length: int | None = Field(None, ge=8, description="truncate training texts here (default: the model's max_length)")
    # Part of the recipe, not a speed knob: with another thread count torch sums floats in another
    # order and the same data gives (slightly) other weights.
    threads: int = Field(2, ge=1, description="torch threads while fine-tuning")


class ExportConfig(_Strict):
    opset: int = Field(18, ge=14)
    optimization_level: Literal[0, 1, 2, 99] = 2


class QuantizeConfig(_Strict):
    per_channel: bool = True
    # 7-bit weights avoid int16 accumulator saturation on CPUs without VNNI (older AVX2/AVX512).
    reduce_range: bool = False


class ParityConfig(_Strict):
    min_agreement: float = Field(0.995, ge=0, le=1)
    near_tie_margin: float = Field(0.2, ge=0, lt=1, description="texts whose two best labels torch scores this close are left out of the gate")


class TrainExportConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="models are saved as <name>-torch and <name>-onnx")
    base_model: str = Field(description="a local folder, pkg:<package>/<folder>, or a hub id in the local cache")
    data: DataConfig
    finetune: FinetuneConfig = FinetuneConfig()
    max_length: int = Field(128, ge=8, le=8192)
    export: ExportConfig = ExportConfig()
    quantize: QuantizeConfig = QuantizeConfig()
    parity: ParityConfig = ParityConfig()
    labels: dict[str, str] = Field(default_factory=dict, description="BentoML labels put on both models")

    def base_model_path(self) -> str:
        """pkg:<package>/<folder> names a checkpoint shipped inside an installed Python package."""
        if self.base_model.startswith(PACKAGE_PREFIX):
            package, _, folder = self.base_model.removeprefix(PACKAGE_PREFIX).partition("/")
            return str(files(package).joinpath(folder))
        return self.base_model


def load_config(path: Path) -> TrainExportConfig:
    return TrainExportConfig.model_validate(yaml.safe_load(path.read_text()))
