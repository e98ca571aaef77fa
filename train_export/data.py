"""Labelled texts: reading a JSONL/CSV file and splitting off a stratified held-out set."""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, Field


class Example(BaseModel):
    text: str = Field(min_length=1)
    label: str = Field(min_length=1)


def read_examples(path: Path) -> list[Example]:
    """JSONL lines or CSV rows with `text` and `label`; a bad row fails with its line number."""
    is_csv = path.suffix == ".csv"
    examples = []
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f) if is_csv else f
        for line_no, row in enumerate(rows, start=2 if is_csv else 1):
            if not is_csv and not row.strip():
                continue
            try:
                examples.append(Example.model_validate(row if is_csv else json.loads(row)))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path}:{line_no}: {error}") from error
    if not examples:
        raise ValueError(f"{path} holds no examples")
    return examples


def split(examples: list[Example], validation_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out the same fraction of every label, so rare labels are validated too."""
    by_label: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_label[example.label].append(example)
    rng = random.Random(seed)
    train, validation = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        n_val = max(1, round(len(group) * validation_fraction)) if len(group) > 1 else 0
        validation += group[:n_val]
        train += group[n_val:]
    rng.shuffle(train)
    return train, validation


def label_list(examples: list[Example]) -> list[str]:
    return sorted({e.label for e in examples})
