"""The default model's held-out sets: text written apart from its training data, one file a language,
that it is measured on (tests/test_default_model.py, `make accuracy`, the benchmark's texts). Kept
under tests/data so that nothing in the package can train on it; tests/test_default_corpus.py checks
that no line is also training text."""

from __future__ import annotations

from pathlib import Path

from train_export.default_corpus.languages import LANGUAGES

HELDOUT_DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
SENTENCES, DOCS = "heldout", "heldout_docs"  # everyday sentences; documentation-style lines


def heldout_lines(kind: str = SENTENCES) -> dict[str, list[str]]:
    """Each language's lines of one held-out set, in file order, blank lines left out."""
    folder = HELDOUT_DATA / kind
    return {
        language: [line.strip() for line in (folder / f"{language}.txt").read_text("utf-8").splitlines() if line.strip()]
        for language in LANGUAGES
    }
