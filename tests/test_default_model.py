"""The default language identifier, as the main command builds it, served for real.

It lives in the user's BentoML store (the README's test command trains it first when absent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, USER_BENTOML_HOME, Server
from tests.figures import record
from train_export.default_corpus import LANGUAGES
from train_export.default_corpus.heldout import heldout_lines

pytestmark = [pytest.mark.slow, pytest.mark.integration]
# The default model's goals (issue 12): 99 % of all held-out sentences and 97 % of each language's.
# The recipe is deterministic (three trainings from nothing gave the same weights, bit for bit), so
# the test holds it to the goals themselves, not to guards below them; scripts/accuracy_report.py prints the figures.
MIN_HELDOUT_ACCURACY = 0.99  # all 2,000 held-out sentences
MIN_LANGUAGE_ACCURACY = 0.97  # each language's 100


@pytest.mark.parametrize(
    ("text", "label"),
    [("Bonjour tout le monde", "fr"), ("Guten Morgen, wie geht es dir?", "de"), ("Доброе утро", "ru"), ("こんにちは", "ja")],
)
def test_the_readme_examples(default_server: Server, text: str, label: str) -> None:
    assert default_server.post({"text": text}).json()["label"] == label


def test_heldout_accuracy_on_unseen_natural_sentences(default_server: Server) -> None:
    texts, truth = [], []
    for language, lines in heldout_lines().items():
        texts += lines
        truth += [language] * len(lines)
    predicted = []
    for start in range(0, len(texts), 32):
        response = default_server.post({"texts": texts[start : start + 32]})
        assert response.status_code == 200, response.text
        predicted += [p["label"] for p in response.json()]
    wrong = [(t, p, x) for t, p, x in zip(truth, predicted, texts) if t != p]
    accuracy = 1 - len(wrong) / len(texts)
    per_language = {language: 1 - sum(t == language for t, _, _ in wrong) / truth.count(language) for language in LANGUAGES}
    record("default model: held-out accuracy (served)", f"{accuracy:.2%} of {len(texts)}; lowest: "
           + ", ".join(f"{k} {v:.0%}" for k, v in sorted(per_language.items(), key=lambda kv: kv[1])[:3]))
    print(f"\nheld-out accuracy of the default model: {accuracy:.2%} on {len(texts)} sentences; misses: {wrong}")
    assert accuracy >= MIN_HELDOUT_ACCURACY, wrong
    assert min(per_language.values()) >= MIN_LANGUAGE_ACCURACY, (per_language, wrong)


def test_both_default_models_carry_their_metrics_and_recipe() -> None:
    shown = {}
    for suffix in ("onnx", "torch"):
        process = subprocess.run(
            [sys.executable, "-m", "bentoml", "models", "get", f"langid-{suffix}:latest", "-o", "json"],
            cwd=REPO, env=os.environ | {"BENTOML_HOME": USER_BENTOML_HOME}, capture_output=True, text=True, check=True,
        )
        shown[suffix] = json.loads(process.stdout)
        metadata = shown[suffix]["metadata"]
        assert metadata["labels"] == sorted(LANGUAGES)
        assert metadata["parity_agreement"] >= 0.995
        # the validation split holds short interface strings and 2-4 word spans: int8 must match torch there
        assert metadata["validation_accuracy_int8"] >= metadata["validation_accuracy_torch"] - 0.005
    onnx, torch = shown["onnx"], shown["torch"]
    assert onnx["labels"]["recipe"] == torch["labels"]["recipe"] == onnx["metadata"]["recipe"]
    assert onnx["metadata"]["corpus_sha256"] == torch["metadata"]["corpus_sha256"]
    quantization = onnx["metadata"]["quantization"]
    assert quantization["name"] in [t["variant"] for t in quantization["tried"] if t["passed"]]
