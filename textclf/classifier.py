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
    def __init__(self, encoder: TextEncoder, backend: Backend, labels: list[str], forward_batch: int = 32) -> None:
        self.encoder = encoder
        self.backend = backend
        self.labels = labels
        self.forward_batch = forward_batch

    def probabilities(self, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        """Texts are sorted by token count and run in slices of `forward_batch`: each slice is padded
        only to its own longest text, and an adaptive batch of many requests never becomes one
        giant tensor."""
        encodings = self.encoder.tokenize(texts)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        probs = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(order), self.forward_batch):
            rows = order[start : start + self.forward_batch]
            probs[rows] = softmax(self.backend.logits(self.encoder.pad([encodings[i] for i in rows])))
        return probs, [bool(e.overflowing) for e in encodings]

    def classify(self, texts: list[str]) -> list[TextScores]:
        probs, truncated = self.probabilities(texts)
        return [TextScores(scores=p.tolist(), truncated=t) for p, t in zip(probs, truncated)]

    def predict_labels(self, texts: list[str]) -> list[str]:
        """The best label of each text (for offline evaluation and parity checks)."""
        probs, _ = self.probabilities(texts)
        return [self.labels[i] for i in probs.argmax(axis=-1)]

    def describe(self, model_tag: str) -> ModelInfo:
        return ModelInfo(model_tag=model_tag, labels=self.labels, max_length=self.encoder.max_length)
