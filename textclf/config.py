"""Serving settings: one typed schema, read from configs/serving.yaml and overridden by TEXTCLF_* env vars."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from textclf.core.model_card import ONNX, ONNX_FP16, TORCH, model_tag

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "serving.yaml"
ENV_PREFIX = "TEXTCLF_"


class ServingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model_name: str = Field("langid", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    max_text_chars: int = Field(20_000, ge=1)
    max_batch_texts: int = Field(64, ge=1)
    max_batch_size: int = Field(64, ge=1)
    max_latency_ms: int = Field(15_000, ge=1)
    max_concurrency: int = Field(128, ge=1)
    forward_batch_texts: int = Field(32, ge=1)
    pass_overhead_tokens: int = Field(32, ge=0)
    cpu_pass_max_tokens: int = Field(1024, ge=1)
    intra_op_threads: int = Field(2, ge=0)
    workers: int = Field(1, ge=1)
    access_log: bool = False
    trace_requests: bool = False
    device: Literal["cuda", "cpu"] = "cuda"
    tensorrt: bool = False
    gpu_allow_cpu: bool = False

    @property
    def onnx_model_tag(self) -> str:
        return model_tag(self.model_name, ONNX)

    @property
    def torch_model_tag(self) -> str:
        return model_tag(self.model_name, TORCH)

    @property
    def onnx_fp16_model_tag(self) -> str:
        return model_tag(self.model_name, ONNX_FP16)


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> ServingSettings:
    """Read the YAML file, then let TEXTCLF_<FIELD> variables win; pydantic names any bad field."""
    path = path or Path(os.environ.get(f"{ENV_PREFIX}CONFIG", DEFAULT_CONFIG))
    environ = os.environ if environ is None else environ
    values = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    for field in ServingSettings.model_fields:
        env_value = environ.get(ENV_PREFIX + field.upper())
        if env_value is not None:
            values[field] = env_value
    return ServingSettings.model_validate(values)


@lru_cache(maxsize=1)
def settings() -> ServingSettings:
    return load_settings()
