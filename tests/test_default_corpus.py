"""The built-in corpus of the default language identifier: balance, cleanliness, scripts, determinism."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import train_export.default_corpus as default_corpus
from train_export.default_corpus import DOCS_DIR, LANGUAGES, build_corpus, hand_written, missing_sentence_files
from train_export.default_corpus.heldout import DOCS, SENTENCES, heldout_lines
from train_export.default_corpus.text_filter import clean

CAP = 900  # above every language's hand-written lines, so all of them must land, and registry text tops them up
REPO = Path(__file__).resolve().parents[1]

# Unicode blocks, written out independently of the builder's own script test.
BLOCKS = {
    "ar": "\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff",
    "ur": "\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff",
    "bg": "\u0400-\u04ff",
    "ru": "\u0400-\u04ff",
    "el": "\u0370-\u03ff\u1f00-\u1fff",
    "hi": "\u0900-\u097f",
    "th": "\u0e00-\u0e7f",
    "ja": "\u3040-\u30ff\u4e00-\u9fff",
    "zh": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
}
KANA = re.compile("[\u3040-\u30ff]")


def read_corpus(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def texts_by_label(path: Path) -> dict[str, list[str]]:
    by_label: dict[str, list[str]] = defaultdict(list)
    for row in read_corpus(path):
        by_label[row["label"]].append(row["text"])
    return by_label


def in_block_share(text: str, language: str) -> float:
    letters = [c for c in text if c.isalpha()]
    block = re.compile(f"[{BLOCKS[language]}]")
    return sum(bool(block.match(c)) for c in letters) / len(letters) if letters else 0.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    return path, build_corpus(path, per_language=CAP, seed=0)


def test_every_label_is_present_and_filled_to_the_cap(corpus: tuple[Path, dict[str, int]]) -> None:
    path, counts = corpus
    by_label = texts_by_label(path)
    assert list(counts) == list(LANGUAGES)
    assert {label: len(texts) for label, texts in by_label.items()} == counts
    # Every language has more than CAP texts between its sentences and the registry.
    assert set(counts.values()) == {CAP}


def test_every_line_is_a_non_empty_text_with_its_label(corpus: tuple[Path, dict[str, int]]) -> None:
    for row in read_corpus(corpus[0]):
        assert set(row) == {"text", "label"}
        assert row["text"].strip() == row["text"] != ""
        assert row["label"] in LANGUAGES


def test_no_text_repeats_within_a_label(corpus: tuple[Path, dict[str, int]]) -> None:
    for label, texts in texts_by_label(corpus[0]).items():
        assert len(set(texts)) == len(texts), label


def written(language: str) -> set[str]:
    """The language's hand-written sentences and documentation lines."""
    return set(hand_written(language) + hand_written(language, DOCS_DIR))


def test_hand_written_sentences_and_docs_lines_all_land_in_the_output(corpus: tuple[Path, dict[str, int]]) -> None:
    by_label = texts_by_label(corpus[0])
    for language in LANGUAGES:
        assert len(written(language)) < CAP and len(hand_written(language, DOCS_DIR)) > 0, language
        assert written(language) <= set(by_label[language]), language


def test_no_hand_written_line_is_written_under_two_labels() -> None:
    labels_of: dict[str, set[str]] = defaultdict(set)
    for language in LANGUAGES:
        for line in written(language):
            labels_of[line].add(language)
    assert {line: labels for line, labels in labels_of.items() if len(labels) > 1} == {}


def same_words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def test_no_heldout_line_is_training_text() -> None:
    """The held-out figures (README, tests/test_default_model.py) are only honest if none of their
    lines is among what the model may train on, however it is cased or punctuated."""
    registry = default_corpus.registry_texts()
    for language in LANGUAGES:
        training = {same_words(text) for text in (*written(language), *registry[language])}
        for kind in (SENTENCES, DOCS):
            assert [line for line in heldout_lines(kind)[language] if same_words(line) in training] == [], (kind, language)


def test_a_small_cap_is_met_from_hand_written_lines_alone(tmp_path: Path) -> None:
    cap = 20
    by_label = texts_by_label(_build(tmp_path / "small.jsonl", per_language=cap))
    for language in LANGUAGES:
        assert set(by_label[language]) <= written(language), language


def test_registry_text_of_non_latin_languages_is_in_their_script(corpus: tuple[Path, dict[str, int]]) -> None:
    by_label = texts_by_label(corpus[0])
    for language in BLOCKS:
        registry = [text for text in by_label[language] if text not in written(language)]
        assert len(registry) >= 50, language
        in_script = [text for text in registry if in_block_share(text, language) > 0.5]
        assert len(in_script) >= 0.95 * len(registry), (language, set(registry) - set(in_script))
    # Han characters alone do not tell Japanese from Chinese: kana do.
    japanese = [text for text in by_label["ja"] if text not in written("ja")]
    chinese = [text for text in by_label["zh"] if text not in written("zh")]
    assert sum(bool(KANA.search(text)) for text in japanese) >= 0.95 * len(japanese)
    assert not any(KANA.search(text) for text in chinese)


def test_the_same_seed_writes_the_same_file_in_another_process(corpus: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    # A fresh interpreter with another hash seed: set iteration order must not leak into the output.
    again = tmp_path / "again.jsonl"
    script = (
        "from pathlib import Path; from train_export.default_corpus import build_corpus; "
        f"build_corpus(Path({str(again)!r}), per_language={CAP}, seed=0)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, env=env, timeout=300)
    assert again.read_bytes() == corpus[0].read_bytes()


def test_another_seed_draws_another_sample(corpus: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    other = texts_by_label(_build(tmp_path / "other.jsonl", per_language=CAP, seed=1))
    same = texts_by_label(corpus[0])
    assert any(set(other[language]) != set(same[language]) for language in LANGUAGES)


def test_missing_sentence_files_are_reported_and_filled_from_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "en.txt").write_text("The kettle is boiling.\n\n  The kettle is boiling.  \nSee you tomorrow!\n", "utf-8")
    monkeypatch.setattr(default_corpus, "SENTENCES_DIR", tmp_path)
    monkeypatch.setattr(default_corpus, "DOCS_DIR", tmp_path / "no-docs")
    assert missing_sentence_files() == [language for language in LANGUAGES if language != "en"]
    out = tmp_path / "corpus.jsonl"
    assert set(build_corpus(out, per_language=10).values()) == {10}
    assert {"The kettle is boiling.", "See you tomorrow!"} <= set(texts_by_label(out)["en"])


def test_a_language_short_of_text_gets_fewer_samples_not_repeats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(default_corpus, "SENTENCES_DIR", tmp_path)  # no hand-written lines
    monkeypatch.setattr(default_corpus, "DOCS_DIR", tmp_path)
    registry = {language: (f"{language} one two", f"{language} three four") for language in LANGUAGES}
    monkeypatch.setattr(default_corpus, "registry_texts", lambda: registry)
    counts = build_corpus(tmp_path / "corpus.jsonl", per_language=5)
    assert set(counts.values()) == {2}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ticket %(id)s existiert nicht.", "Ticket existiert nicht."),
        ("Please <a href='%(url)s'>download</a> the file &amp; retry.", "Please download the file & retry."),
        ("Delete {count} files from ${folder}.", "Delete files from."),
        ("&Open the selected file", "Open the selected file"),
        ("Set `log_type` to file:", "Set to file"),
        ("{n, plural, one {# file} other {# files}} removed", None),
        ("%s", None),
    ],
)
def test_catalog_strings_are_cleaned_into_prose(raw: str, expected: str | None) -> None:
    assert clean(raw) == expected


def _build(path: Path, *, per_language: int, seed: int = 0) -> Path:
    build_corpus(path, per_language=per_language, seed=seed)
    return path


def test_short_spans_are_two_to_four_word_pieces_of_the_sentences() -> None:
    import random

    from train_export.default_corpus import hand_written, short_spans

    sentences = hand_written("ru")
    spans = short_spans(sentences, 50, unspaced=False, rng=random.Random(0))
    assert len(spans) == len(set(spans)) == 50
    for span in spans:
        assert 2 <= len(span.split()) <= 4 and any(span in s for s in sentences), span
    cjk = short_spans(hand_written("zh"), 20, unspaced=True, rng=random.Random(0))
    assert all(3 <= len(s) <= 8 and any(s in t for t in hand_written("zh")) for s in cjk)
