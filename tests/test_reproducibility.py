"""The same recipe gives the same model: each deterministic part of a build (the default corpus, the
split, the learned vocabulary, fine-tuned weights) comes out identical in two fresh processes with
other hash seeds, so that neither Python's nor Rust's hash-map order can leak into the result."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, make_checkpoint, write_dataset

pytestmark = pytest.mark.slow


def sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def build_fingerprints(scratch: Path, caller_seed: int) -> dict[str, str]:
    """Digests of what one build makes, with the default model's data settings; run in a child
    process by the test. `caller_seed` stands for whatever random state the caller left behind."""
    import torch
    from tokenizers import Tokenizer

    from train_export.__main__ import DEFAULT_CONFIG
    from train_export.config import FinetuneConfig, load_config
    from train_export.data import read_examples, split
    from train_export.default_corpus import build_corpus
    from train_export.finetune import finetune
    from train_export.vocab import extend_vocabulary, keep_accents

    default = load_config(DEFAULT_CONFIG)
    corpus = scratch / "corpus.jsonl"
    build_corpus(corpus, per_language=default.data.per_label, seed=default.data.seed, span_fraction=default.data.span_fraction)
    train, validation = split(read_examples(corpus), default.data.validation_fraction, default.data.seed)
    checkpoint = make_checkpoint(scratch / "checkpoint", "bert")
    minilm = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    tokenizer, _ = extend_vocabulary(keep_accents(minilm), [e.text for e in train], default.finetune.vocab_subwords)
    torch.manual_seed(caller_seed)
    tiny_train, _ = split(read_examples(write_dataset(scratch / "tiny.jsonl")), 0.2, seed=0)
    labels = sorted({e.label for e in tiny_train})
    config = FinetuneConfig(epochs=1, batch_size=16, learning_rate=3e-3, max_length=32)
    model = finetune(str(checkpoint), tokenizer, tiny_train, labels, config, max_length=64, seed=0)
    weights = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        weights.update(name.encode() + tensor.detach().to(torch.float32).numpy().tobytes())
    return {
        "corpus": sha256(corpus.read_bytes()),
        "split": sha256(json.dumps([[e.text for e in train], [e.text for e in validation]])),
        "vocabulary": sha256(tokenizer.to_str()),
        "tiny model weights": weights.hexdigest(),
    }


def fingerprints_in_a_new_process(scratch: Path, hash_seed: int) -> dict[str, str]:
    scratch.mkdir()
    script = f"import json, pathlib, tests.test_reproducibility as t; print(json.dumps(t.build_fingerprints(pathlib.Path({str(scratch)!r}), {hash_seed})))"
    env = os.environ | {"PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": str(REPO)}
    process = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_two_builds_in_fresh_processes_are_identical(tmp_path: Path) -> None:
    first = fingerprints_in_a_new_process(tmp_path / "first", 1)
    second = fingerprints_in_a_new_process(tmp_path / "second", 2)
    assert set(first) == {"corpus", "split", "vocabulary", "tiny model weights"}
    assert first == second
