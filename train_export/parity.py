"""Step 4: the parity gate. The int8 model must pick the same label as the torch model."""

from __future__ import annotations

from dataclasses import dataclass

from textclf.classifier import Classifier


class ParityError(RuntimeError):
    """Raised when the quantized model disagrees too often; nothing is saved then."""


@dataclass(frozen=True)
class ParityReport:
    agreement: float
    compared: int
    disagreements: list[tuple[str, str, str]]  # (text, torch label, int8 label)

    def summary(self) -> str:
        return f"int8 agrees with torch on {self.agreement:.2%} of {self.compared} validation texts"


def check_parity(reference: Classifier, candidate: Classifier, texts: list[str], min_agreement: float) -> ParityReport:
    expected = reference.predict_labels(texts)
    actual = candidate.predict_labels(texts)
    disagreements = [(t, e, a) for t, e, a in zip(texts, expected, actual) if e != a]
    report = ParityReport(agreement=1 - len(disagreements) / len(texts), compared=len(texts), disagreements=disagreements)
    if report.agreement < min_agreement:
        examples = "; ".join(f"{t[:40]!r}: torch {e}, int8 {a}" for t, e, a in disagreements[:5])
        raise ParityError(f"{report.summary()}, below the required {min_agreement:.2%} (e.g. {examples})")
    return report
