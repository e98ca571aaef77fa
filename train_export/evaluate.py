"""Accuracy of any classifier (torch or ONNX) on labelled examples, through the service's own code path."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textclf.classifier import Classifier
from train_export.data import Example


@dataclass(frozen=True)
class Accuracy:
    overall: float
    per_label: dict[str, float]
    count: int


def accuracy(classifier: Classifier, examples: list[Example]) -> Accuracy:
    predicted = np.array(classifier.predict_labels([e.text for e in examples]))
    truth = np.array([e.label for e in examples])
    per_label = {label: float((predicted[truth == label] == label).mean()) for label in sorted(set(truth))}
    return Accuracy(overall=float((predicted == truth).mean()), per_label=per_label, count=len(examples))
