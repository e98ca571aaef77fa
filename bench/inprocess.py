"""In-process measurements, no HTTP: the limit L, batch-1 latency of each model variant, label agreement.

Run in a child process of its own (`python -m bench.inprocess job.json out.json`) so that torch and
the model sessions never share the benchmark process with the load generator. Everything goes
through the service's own code path (textclf's TextEncoder, OnnxBackend, Classifier): tokenization
included, per-batch padding, texts sorted by length inside a batch.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from textclf.backends.onnx import OnnxBackend
from textclf.core.classifier import Classifier
from textclf.core.tokenization import TextEncoder
from train_export.parity import batch1_latency, compare


def onnx_classifier(model_file: str, encoder: TextEncoder, labels: list[str], threads: int, forward_batch: int = 32) -> Classifier:
    return Classifier(encoder, OnnxBackend(Path(model_file), threads), labels, forward_batch)


def torch_classifier(model_dir: str, encoder: TextEncoder, labels: list[str], threads: int) -> Classifier:
    import torch
    from transformers import AutoModelForSequenceClassification

    from textclf.backends.torch import TorchBackend

    torch.set_num_threads(threads)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
    return Classifier(encoder, TorchBackend(model, "cpu"), labels)


def limit(model_file: str, encoder: TextEncoder, labels: list[str], texts: list[str], batch_sizes: list[int], threads: int, min_seconds: float,
          group: int | None = 64) -> dict:
    """Texts per second of the model in-process, for each forward batch size b, two ways:
    "plain", batches of b consecutive texts padded to their longest; "sortedN", groups of N
    consecutive texts (an adaptive batch of N requests) sorted by length and run in slices of b, as
    the service's Classifier does (group=None skips it: texts of one length gain nothing from it).
    Each is timed for at least `min_seconds`, whole batches or groups, after a warm-up batch; L is
    the best of them all."""
    classifier = onnx_classifier(model_file, encoder, labels, threads)
    modes = [("plain", None)] + ([(f"sorted{group}", group)] if group else [])
    by_batch: dict[str, dict[int, float]] = {mode: {} for mode, _ in modes}
    for size in batch_sizes:
        for mode, chunk_size in modes:
            if chunk_size is not None and size >= chunk_size:
                continue  # the same as plain
            chunk_size = chunk_size or size
            classifier.forward_batch = size
            classifier.probabilities(texts[:size])  # warm-up
            done, start, position = 0, time.perf_counter(), 0
            while done == 0 or time.perf_counter() - start < min_seconds:
                classifier.probabilities([texts[(position + i) % len(texts)] for i in range(chunk_size)])
                position, done = (position + chunk_size) % len(texts), done + chunk_size
            by_batch[mode][size] = round(done / (time.perf_counter() - start), 2)
    mode, size = max(((m, b) for m, v in by_batch.items() for b in v), key=lambda mb: by_batch[mb[0]][mb[1]])
    return {"rps": by_batch[mode][size], "best_batch": size, "best_mode": mode, "by_batch": by_batch}


def agreement(expected: list[str], candidate: Classifier, texts: list[str]) -> dict:
    report = compare(texts, expected, candidate.predict_labels(texts))
    return {"n": report.compared, "agreement": round(report.agreement, 5), "examples": [list(d) for d in report.disagreements[:5]]}


def run(job: dict) -> dict:
    """job: tokenizer, max_length, labels, threads, int8 (file), text_sets {name: texts},
    limit {batch_sizes, min_seconds, sets, sorted_sets, group}, batch1 {variants {name: {kind, path}}, texts, max_texts,
    max_seconds}, agreement {reference, candidates, sets {name: texts}}."""
    encoder = TextEncoder.from_file(Path(job["tokenizer"]), job["max_length"])
    labels, threads = job["labels"], job["threads"]
    result: dict = {"limit": {}, "batch1": {}, "agreement": {}}
    spec = job["limit"]
    for name in spec["sets"]:
        group = spec["group"] if name in spec["sorted_sets"] else None
        result["limit"][name] = limit(job["int8"], encoder, labels, job["text_sets"][name], spec["batch_sizes"], threads, spec["min_seconds"], group)
        print(f"{time.strftime('%H:%M:%S')} L {name}: {result['limit'][name]}", flush=True)

    classifiers: dict[str, Classifier] = {}

    def classifier(name: str) -> Classifier:
        if name not in classifiers:
            variant = job["variants"][name]
            if variant["kind"] == "torch":
                classifiers[name] = torch_classifier(variant["path"], encoder, labels, threads)
            else:
                classifiers[name] = onnx_classifier(variant["path"], encoder, labels, threads)
        return classifiers[name]

    spec = job["batch1"]
    for name in job["variants"]:
        result["batch1"][name] = batch1_latency(classifier(name), spec["texts"], spec["max_texts"], spec["max_seconds"])
        print(f"{time.strftime('%H:%M:%S')} batch 1 {name}: {result['batch1'][name]}", flush=True)

    spec = job["agreement"]
    for set_name, texts in spec["sets"].items():
        expected = classifier(spec["reference"]).predict_labels(texts)
        for name in spec["candidates"]:
            result["agreement"].setdefault(set_name, {})[name] = agreement(expected, classifier(name), texts)
            print(f"{time.strftime('%H:%M:%S')} agreement {set_name} {name} vs {spec['reference']}: {result['agreement'][set_name][name]['agreement']}", flush=True)
    return result


def main(argv: list[str]) -> int:
    job_file, out_file = map(Path, argv)
    out_file.write_text(json.dumps(run(json.loads(job_file.read_text(encoding="utf-8"))), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
