"""The batching core: texts in, per-text label probabilities out, whatever the backend."""

from __future__ import annotations

import numpy as np

from textclf.backends import Backend
from textclf.schemas import ModelInfo, TextScores
from textclf.tokenization import TextEncoder


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class Classifier:
    def __init__(self, encoder: TextEncoder, backend: Backend, labels: list[str]) -> None:
        self.encoder = encoder
        self.backend = backend
        self.labels = labels

    def classify(self, texts: list[str]) -> list[TextScores]:
        batch = self.encoder.encode(texts)
        probs = softmax(self.backend.logits(batch))
        return [TextScores(scores=p.tolist(), truncated=t) for p, t in zip(probs, batch.truncated)]

    def predict_labels(self, texts: list[str], batch_size: int = 64) -> list[str]:
        """The best label of each text, in batches (for offline evaluation and parity checks)."""
        best: list[str] = []
        for start in range(0, len(texts), batch_size):
            logits = self.backend.logits(self.encoder.encode(texts[start : start + batch_size]))
            best += [self.labels[i] for i in logits.argmax(axis=-1)]
        return best

    def describe(self, model_tag: str) -> ModelInfo:
        return ModelInfo(model_tag=model_tag, labels=self.labels, max_length=self.encoder.max_length)
