"""The parity gate's arithmetic (train_export/parity.py): agreement counted on the texts torch
decides, near-ties apart."""

import numpy as np
import pytest

from train_export.parity import Reference, compare


class Fixed:
    """A classifier whose probabilities are given."""

    labels = ["a", "b", "c"]

    def __init__(self, probabilities: list[list[float]]) -> None:
        self._probabilities = np.array(probabilities, dtype=np.float32)

    def probabilities(self, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        return self._probabilities, [False] * len(texts)


def test_a_text_whose_two_best_labels_are_close_is_a_near_tie() -> None:
    reference = Reference.of(Fixed([[0.9, 0.05, 0.05], [0.45, 0.4, 0.15], [0.1, 0.6, 0.3]]), ["x", "y", "z"], near_tie_margin=0.2)
    assert reference.labels == ["a", "a", "b"]
    assert reference.decided == [True, False, True]  # margins 0.85, 0.05, 0.3


def test_flips_of_near_ties_do_not_count_and_flips_of_decided_texts_do() -> None:
    texts = ["x", "y", "z", "w"]
    report = compare(texts, ["a", "a", "b", "c"], ["a", "b", "b", "a"], decided=[True, False, True, True])
    assert (report.compared, report.near_ties) == (3, 1)
    assert report.agreement == pytest.approx(2 / 3) and report.agreement_all == pytest.approx(2 / 4)
    assert report.disagreements == [("w", "c", "a")]


def test_without_a_reference_every_text_counts() -> None:
    report = compare(["x", "y"], ["a", "b"], ["a", "a"])
    assert (report.compared, report.near_ties, report.agreement) == (2, 0, 0.5)
