"""Accuracy of a classifier's labels (torch or ONNX, predicted through the service's own code path) on labelled examples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from train_export.data import Example


@dataclass(frozen=True)
class Accuracy:
    overall: float
    per_label: dict[str, float]
    count: int


def accuracy(predicted_labels: list[str], examples: list[Example]) -> Accuracy:
    predicted = np.array(predicted_labels)
    truth = np.array([e.label for e in examples])
    per_label = {label: float((predicted[truth == label] == label).mean()) for label in sorted(set(truth))}
    return Accuracy(overall=float((predicted == truth).mean()), per_label=per_label, count=len(examples))
