"""Builds a Classifier from a model in the BentoML store; each runner service calls one of these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textclf.artifacts import ONNX_FILE, TOKENIZER_FILE, ModelCard, require_files
from textclf.classifier import Classifier
from textclf.config import ServingSettings
from textclf.tokenization import TextEncoder


def onnx_classifier(model_dir: str | Path, metadata: dict[str, Any], settings: ServingSettings) -> Classifier:
    from textclf.backends.onnx import OnnxBackend

    card, model_dir = ModelCard.from_metadata(metadata), Path(model_dir)
    require_files(model_dir, ONNX_FILE, TOKENIZER_FILE)
    encoder = TextEncoder.from_file(model_dir / TOKENIZER_FILE, card.max_length)
    backend = OnnxBackend(model_dir / ONNX_FILE, settings.intra_op_threads)
    return Classifier(encoder, backend, card.labels, settings.forward_batch_texts)


def torch_classifier(model_dir: str | Path, metadata: dict[str, Any], settings: ServingSettings) -> Classifier:
    from textclf.backends.torch import TorchBackend  # torch stays out of the CPU runner's imports

    card, model_dir = ModelCard.from_metadata(metadata), Path(model_dir)
    require_files(model_dir, "config.json", TOKENIZER_FILE)
    encoder = TextEncoder.from_file(model_dir / TOKENIZER_FILE, card.max_length)
    backend = TorchBackend.from_dir(model_dir, settings.device)
    return Classifier(encoder, backend, card.labels, settings.forward_batch_texts)
