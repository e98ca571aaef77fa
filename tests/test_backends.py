"""One contract for every backend: same encoded batch in, logits of the same shape and meaning out."""

from __future__ import annotations

from pathlib import Path

import bentoml
import numpy as np
import pytest

from tests.conftest import SENTENCES, TINY_LABELS
from textclf.backends.onnx import OnnxBackend
from textclf.backends.torch import TorchBackend
from textclf.core.classifier import Classifier
from textclf.core.model_card import ONNX_FILE, TOKENIZER_FILE
from textclf.core.tokenization import TextEncoder

pytestmark = pytest.mark.slow


def sample_texts(per_label: int = 10) -> list[str]:
    return [line for label in TINY_LABELS for line in (SENTENCES / f"{label}.txt").read_text("utf-8").splitlines()[-per_label:]]


@pytest.fixture(scope="module")
def backends(tiny_export):
    onnx_dir = Path(bentoml.models.get(tiny_export.onnx_tag).path)
    torch_dir = Path(bentoml.models.get(tiny_export.torch_tag).path)
    encoder = TextEncoder.from_file(onnx_dir / TOKENIZER_FILE, 64)
    return encoder, {"onnx-int8": OnnxBackend(onnx_dir / ONNX_FILE, 1), "torch-cpu": TorchBackend.from_dir(torch_dir, "cpu")}


def test_every_backend_returns_float32_logits_per_text(backends) -> None:
    encoder, all_backends = backends
    batch = encoder.encode(sample_texts(3))
    for name, backend in all_backends.items():
        logits = backend.logits(batch)
        assert logits.shape == (len(batch), len(TINY_LABELS)) and logits.dtype == np.float32, name
        assert np.isfinite(logits).all(), name


def test_backends_agree_on_labels(backends) -> None:
    encoder, all_backends = backends
    batch = encoder.encode(sample_texts())
    onnx_labels = all_backends["onnx-int8"].logits(batch).argmax(-1)
    torch_labels = all_backends["torch-cpu"].logits(batch).argmax(-1)
    assert (onnx_labels == torch_labels).mean() >= 0.95


def test_padding_does_not_change_a_texts_logits(backends) -> None:
    encoder, all_backends = backends
    texts = sample_texts(2)
    for name, backend in all_backends.items():
        together = backend.logits(encoder.encode(texts))
        alone = np.concatenate([backend.logits(encoder.encode([t])) for t in texts])
        assert np.abs(together - alone).max() < 0.05, name


def test_classifier_keeps_input_order_across_length_sorted_slices(backends) -> None:
    encoder, all_backends = backends
    texts = sample_texts(4)
    classifier = Classifier(encoder, all_backends["onnx-int8"], sorted(TINY_LABELS), forward_batch=3)
    together = classifier.classify(texts)
    for text, result in zip(texts, together):
        single = classifier.classify([text])[0]
        assert np.argmax(result.scores) == np.argmax(single.scores)
        assert sum(result.scores) == pytest.approx(1, abs=1e-5)
