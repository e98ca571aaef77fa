"""The built-in corpus of the default model, a 20-language identifier.

Each language gets its hand-written everyday sentences (sentences/<code>.txt, one a line) and
documentation-style lines (docs/<code>.txt: technical prose, option descriptions, credit lines full
of foreign names), topped up with translated strings that PyPI packages ship (registry_text). The
output depends only on the seed, these files and the pinned package versions.
"""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path

from train_export.default_corpus.languages import LANGUAGES, UNSPACED
from train_export.default_corpus.registry_text import SOURCES, WHEELS, registry_texts

__all__ = ["DOCS_DIR", "LANGUAGES", "SENTENCES_DIR", "build_corpus", "hand_written", "missing_sentence_files", "source_versions"]


def source_versions() -> dict[str, str]:
    """The version of every distribution the corpus is read from (part of the recipe)."""
    from importlib.metadata import version

    installed = ("polib", *(name for name in SOURCES if name not in WHEELS))
    return {name: version(name) for name in installed} | {name: wheel.version for name, wheel in WHEELS.items()}

SENTENCES_DIR = Path(__file__).with_name("sentences")
DOCS_DIR = Path(__file__).with_name("docs")


def missing_sentence_files() -> list[str]:
    """Languages without a sentences file; they still get registry text, so the caller decides
    whether that is worth a warning."""
    return [language for language in LANGUAGES if not (SENTENCES_DIR / f"{language}.txt").is_file()]


def hand_written(language: str, folder: Path | None = None) -> list[str]:
    """The language's hand-written lines of `folder` (default: the sentences) in file order, blank
    lines and repeats left out."""
    path = (folder or SENTENCES_DIR) / f"{language}.txt"
    if not path.is_file():
        return []
    # NFC, as registry text is: the same sentence must not come in two encodings.
    lines = (unicodedata.normalize("NFC", line.strip()) for line in path.read_text("utf-8").splitlines())
    return list(dict.fromkeys(line for line in lines if line))


def short_spans(sentences: list[str], count: int, unspaced: bool, rng: random.Random) -> list[str]:
    """Fragments of 2-4 words (3-8 characters for unspaced scripts) cut from the sentences.

    Greetings and chat lines are short; a model trained on whole sentences leans on context and
    misreads two-word texts (it took "Доброе утро" for Bulgarian). Spans teach it single words."""
    spans: dict[str, None] = {}
    for _ in range(count * 4):  # bounded: short or repetitive sentences yield fewer distinct spans
        if len(spans) == count or not sentences:
            break
        sentence = rng.choice(sentences)
        units = list(sentence.strip(".!?。！？")) if unspaced else sentence.split()
        width = rng.randint(3, 8) if unspaced else rng.randint(2, 4)
        if len(units) <= width:
            continue
        start = rng.randrange(len(units) - width + 1)
        spans["".join(units[start : start + width]) if unspaced else " ".join(units[start : start + width])] = None
    return list(spans)


def build_corpus(out_path: Path, *, per_language: int, seed: int = 0, span_fraction: float = 0.0) -> dict[str, int]:
    """Write a shuffled JSONL corpus of {"text", "label"} lines and return the count per label.

    Every language gets up to per_language samples: its hand-written sentences and documentation
    lines first, as the most natural text there is, then short spans of the sentences
    (span_fraction of per_language), then registry text drawn at random. A language whose sources
    run short gets fewer rather than repeats.
    """
    if per_language < 1:
        raise ValueError(f"per_language must be at least 1, not {per_language}")
    registry = registry_texts()
    samples: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for language in LANGUAGES:
        # One generator per language: what one language draws does not shift another's sample.
        rng = random.Random(f"{seed}:{language}")
        sentences = hand_written(language)
        texts = list(dict.fromkeys(sentences + hand_written(language, DOCS_DIR)))
        if len(texts) > per_language:
            texts = rng.sample(texts, per_language)
        spans = short_spans(sentences, round(per_language * span_fraction), language in UNSPACED, rng)
        existing = set(texts)
        texts += [span for span in spans if span not in existing][: per_language - len(texts)]
        chosen = set(texts)
        pool = [text for text in registry[language] if text not in chosen]
        texts += rng.sample(pool, min(per_language - len(texts), len(pool)))
        samples += [(text, language) for text in texts]
        counts[language] = len(texts)
    random.Random(seed).shuffle(samples)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as f:
        for text, label in samples:
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return counts
