"""Step 5b: the parity gate. An int8 model must pick the same label as the torch model on at least
`min_agreement` of the validation texts that torch decides. The plain variant is tried first; if
it misses, every fallback variant is tried and the fastest one that passes (batch-1 latency,
in-process) is kept.

A text whose two best labels torch scores within `near_tie_margin` of each other is a near-tie:
int8 rounding may tip it either way without costing accuracy (torch itself is close to a coin flip
there), so it is left out of the gate and counted apart. On the default model's 1,800 validation
texts, 1-2 word lines among them, the disagreements were mostly such near-ties, and they alone
failed every variant of an export whose held-out accuracy int8 matched.

Step 6 gives the fp16 GPU model its own figure (`fp16_parity`), not a gate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, NotImplemented
from rich.table import Table

from textclf.core.classifier import Classifier
from train_export.quantize import QuantizeVariant, quantize_onnx

LATENCY_TEXTS = 100


class ParityError(RuntimeError):
    """No int8 variant agrees with torch often enough; nothing is saved then."""

    def __init__(self, message: str, trials: list[Trial]) -> None:
        super().__init__(message)
        self.trials = trials


@dataclass(frozen=True)
class Reference:
    """The torch model's label for each validation text, and whether it decides it (no near-tie)."""

    texts: list[str]
    labels: list[str]
    decided: list[bool]

    @classmethod
    def of(cls, classifier: Classifier, texts: list[str], near_tie_margin: float) -> Reference:
        probabilities, _ = classifier.probabilities(texts)
        second, best = np.sort(probabilities, axis=-1)[:, -2:].T
        return cls(texts, [classifier.labels[i] for i in probabilities.argmax(axis=-1)], list(best - second >= near_tie_margin))


@dataclass(frozen=True)
class ParityReport:
    agreement: float  # on the texts the reference decides
    compared: int
    near_ties: int  # texts left out
    agreement_all: float  # on every text
    disagreements: list[tuple[str, str, str]]  # (text, reference label, candidate label), decided texts only

    def summary(self) -> str:
        return (f"int8 agrees with torch on {self.agreement:.2%} of the {self.compared} validation texts torch decides "
                f"({self.agreement_all:.2%} of all, {self.near_ties} near-ties among them)")

    def examples(self, count: int = 5) -> str:
        return "; ".join(f"{t[:40]!r}: torch {e}, int8 {a}" for t, e, a in self.disagreements[:count])


def compare(texts: list[str], expected: list[str], actual: list[str], decided: list[bool] | None = None) -> ParityReport:
    """How often a candidate's labels match the reference's, on the texts it decides (all of them
    unless `decided` says otherwise; the benchmark compares on all)."""
    decided = decided or [True] * len(texts)
    rows = list(zip(texts, expected, actual, decided, strict=True))
    disagreements = [(t, e, a) for t, e, a, d in rows if d and e != a]
    compared = sum(decided)
    return ParityReport(
        agreement=1 - len(disagreements) / compared if compared else 1.0,
        compared=compared,
        near_ties=len(texts) - compared,
        agreement_all=sum(e == a for _, e, a, _ in rows) / len(texts),
        disagreements=disagreements,
    )


def batch1_latency(classifier: Classifier, texts: list[str], max_texts: int, max_seconds: float) -> dict:
    """Per-text latency, one text per call (tokenize, forward, softmax), after 5 warm-up calls."""
    for text in texts[:5]:
        classifier.probabilities([text])
    times, deadline = [], time.perf_counter() + max_seconds
    for text in texts[:max_texts]:
        start = time.perf_counter()
        classifier.probabilities([text])
        times.append(time.perf_counter() - start)
        if start > deadline:
            break
    ms = np.array(times) * 1000
    return {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3), "mean_ms": round(float(ms.mean()), 3)}


@dataclass(frozen=True)
class Trial:
    variant: QuantizeVariant
    model_file: Path
    labels: list[str]  # the variant's label for each validation text
    parity: ParityReport
    size_bytes: int
    batch1_ms: float
    passed: bool

    def record(self) -> dict[str, object]:
        return {"variant": self.variant.name, "agreement": round(self.parity.agreement, 5), "agreement_all": round(self.parity.agreement_all, 5),
                "bytes": self.size_bytes, "batch1_p50_ms": self.batch1_ms, "passed": self.passed}


def trial(variant: QuantizeVariant, fp32: Path, out_dir: Path, classifier_of: Callable[[Path], Classifier],
          reference: Reference, min_agreement: float) -> Trial:
    model_file = quantize_onnx(fp32, out_dir / f"{variant.name}.onnx", variant)
    classifier = classifier_of(model_file)
    labels = classifier.predict_labels(reference.texts)
    report = compare(reference.texts, reference.labels, labels, reference.decided)
    latency = batch1_latency(classifier, reference.texts, LATENCY_TEXTS, max_seconds=5.0)["p50_ms"]
    return Trial(variant, model_file, labels, report, model_file.stat().st_size, latency, report.agreement >= min_agreement)


def select_variant(variants: list[QuantizeVariant], fp32: Path, out_dir: Path, classifier_of: Callable[[Path], Classifier],
                   reference: Reference, min_agreement: float) -> tuple[Trial | None, list[Trial]]:
    """The plain variant if it passes; else the fastest fallback that passes (None if none does)."""
    plain, *fallbacks = variants
    trials = [trial(plain, fp32, out_dir, classifier_of, reference, min_agreement)]
    if trials[0].passed:
        return trials[0], trials
    trials += [trial(v, fp32, out_dir, classifier_of, reference, min_agreement) for v in fallbacks]
    passed = [t for t in trials if t.passed]
    return min(passed, key=lambda t: t.batch1_ms, default=None), trials


def trial_table(trials: list[Trial], chosen: Trial | None, min_agreement: float) -> Table:
    near_ties = trials[0].parity.near_ties
    table = Table(title=f"int8 variants: same label as torch on {min_agreement:.2%} of the texts torch decides to pass ({near_ties} near-ties left out)")
    for column in ("variant", "agreement", "all texts", "MB", "batch-1 p50 ms", ""):
        table.add_column(column, justify="left" if column in ("variant", "") else "right", overflow="fold")
    for t in trials:
        verdict = "kept" if t is chosen else ("passes" if t.passed else "fails")
        table.add_row(t.variant.name, f"{t.parity.agreement:.2%}", f"{t.parity.agreement_all:.2%}", f"{t.size_bytes / 1e6:.1f}", f"{t.batch1_ms:.2f}", verdict)
    return table


def fp16_parity(fp16: Path, fp32_source: Path, classifier_of: Callable[[Path], Classifier], reference: Reference) -> dict:
    """The fp16 GPU model against torch, checked on the CPU. onnxruntime's CPU provider lacks float16
    kernels for some of the fused GPU ops; where it cannot run the graph, the graph is checked with
    onnx.checker, its inputs and outputs against the fp32 graph it was converted from, and that
    graph's agreement with torch is given instead. (Its own figure needs a GPU: scripts/gpu_check.sh.)"""
    onnx.checker.check_model(str(fp16))
    graphs = [onnx.load(str(f), load_external_data=False).graph for f in (fp16, fp32_source)]
    signatures = [[(v.name, v.type.tensor_type.elem_type) for v in (*g.input, *g.output)] for g in graphs]
    if signatures[0] != signatures[1]:
        raise ValueError(f"the fp16 graph's inputs and outputs {signatures[0]} differ from its fp32 source's {signatures[1]}")
    texts = reference.texts
    try:
        report = compare(texts, reference.labels, classifier_of(fp16).predict_labels(texts), reference.decided)
    except (Fail, NotImplemented, InvalidGraph) as error:  # no float16 kernel for a node on the CPU
        source = compare(texts, reference.labels, classifier_of(fp32_source).predict_labels(texts), reference.decided)
        reason = str(error).strip().splitlines()[0][:300]
        return {"agreement": None, "fp32_source_agreement": round(source.agreement, 5), "cpu_provider": reason,
                "summary": f"onnxruntime's CPU provider cannot run it ({reason}); onnx.checker passes, inputs and outputs as the fp32 "
                           f"graph's, which agrees with torch on {source.agreement:.2%} of the {source.compared} validation texts torch decides"}
    return {"agreement": round(report.agreement, 5), "agreement_all": round(report.agreement_all, 5),
            "summary": f"fp16 (run on the CPU provider) agrees with torch on {report.agreement:.2%} of the {report.compared} validation texts torch decides "
                       f"({report.agreement_all:.2%} of all)"}
