"""Builds a Classifier from a model in the BentoML store; each runner service calls one of these.

Both check the model before it serves: metadata with the keys a runner needs, and a graph whose
output has one score per label. A mismatch fails the runner's start-up with an error naming the
model, instead of answers with the wrong labels (or an index error on the first request).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from textclf.backends import Backend
from textclf.config import ServingSettings
from textclf.core.classifier import Classifier
from textclf.core.model_card import ONNX_FILE, TOKENIZER_FILE, ModelCard, require_files
from textclf.core.tokenization import TextEncoder

PROBE_TEXT = "model load check"


class ModelMismatchError(ValueError):
    """The model in the store cannot serve: its metadata is incomplete or does not fit its graph."""


def model_name(model_dir: Path) -> str:
    """`name:version` of a model laid out as the store (and a bento) lays it out: .../models/<name>/<version>."""
    return f"{model_dir.parent.name}:{model_dir.name}"


def read_card(name: str, metadata: dict[str, Any]) -> ModelCard:
    try:
        card = ModelCard.from_metadata(metadata)
    except ValidationError as error:
        problems, missing = [], False
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"])
            if item["type"] == "missing":
                problems.append(f"key {key!r} is missing")
                missing = True
            else:
                problems.append(f"key {key!r} = {item['input']!r}: {item['msg']}")
        present = f" (it has: {', '.join(sorted(metadata)) or 'nothing'})" if missing else ""
        raise ModelMismatchError(f"model {name}: bad metadata: {'; '.join(problems)}{present}") from None
    if len(set(card.labels)) != len(card.labels):
        raise ModelMismatchError(f"model {name}: bad metadata: labels are not unique: {card.labels}")
    return card


def check_output_width(name: str, encoder: TextEncoder, backend: Backend, labels: list[str]) -> None:
    """One text through the real graph: it must give a (1, len(labels)) array of scores."""
    logits = backend.logits(encoder.encode([PROBE_TEXT]))
    if logits.ndim != 2 or logits.shape[0] != 1:
        raise ModelMismatchError(f"model {name}: the graph's output has shape {logits.shape} for one text, expected (1, {len(labels)})")
    if logits.shape[1] != len(labels):
        raise ModelMismatchError(
            f"model {name}: the graph's output width is {logits.shape[1]} but its metadata lists {len(labels)} labels "
            f"({', '.join(labels)}); the metadata does not belong to this graph"
        )


def _onnx_classifier(model_dir: str | Path, metadata: dict[str, Any], settings: ServingSettings,
                     providers: list[str] | None, pass_max_tokens: int | None) -> Classifier:
    from textclf.backends.onnx import OnnxBackend

    model_dir = Path(model_dir)
    name = model_name(model_dir)
    card = read_card(name, metadata)
    require_files(model_dir, ONNX_FILE, TOKENIZER_FILE)
    encoder = TextEncoder.from_file(model_dir / TOKENIZER_FILE, card.max_length)
    backend = OnnxBackend(model_dir / ONNX_FILE, settings.intra_op_threads, providers)
    check_output_width(name, encoder, backend, card.labels)
    return Classifier(encoder, backend, card.labels, settings.forward_batch_texts, settings.pass_overhead_tokens, pass_max_tokens)


def onnx_classifier(model_dir: str | Path, metadata: dict[str, Any], settings: ServingSettings) -> Classifier:
    """An ONNX model on the CPU; its passes hold at most cpu_pass_max_tokens padded tokens."""
    return _onnx_classifier(model_dir, metadata, settings, None, settings.cpu_pass_max_tokens)


def gpu_onnx_classifier(model_dir: str | Path, metadata: dict[str, Any], settings: ServingSettings) -> Classifier:
    """The fp16 model on CUDA (a GPU wants big passes: no token cap); stops with a clear error where
    onnxruntime has no CUDA, unless gpu_allow_cpu is set."""
    import onnxruntime as ort

    from textclf.backends.onnx import gpu_providers

    providers = gpu_providers(ort.get_available_providers(), settings.tensorrt, settings.gpu_allow_cpu)
    return _onnx_classifier(model_dir, metadata, settings, providers, None)


def torch_classifier(model_dir: str | Path, metadata: dict[str, Any], settings: ServingSettings) -> Classifier:
    from textclf.backends.torch import TorchBackend  # torch stays out of the CPU runner's imports

    model_dir = Path(model_dir)
    name = model_name(model_dir)
    card = read_card(name, metadata)
    require_files(model_dir, "config.json", TOKENIZER_FILE)
    encoder = TextEncoder.from_file(model_dir / TOKENIZER_FILE, card.max_length)
    backend = TorchBackend.from_dir(model_dir, settings.device)
    check_output_width(name, encoder, backend, card.labels)
    return Classifier(encoder, backend, card.labels, settings.forward_batch_texts, settings.pass_overhead_tokens)  # a GPU wants big passes
