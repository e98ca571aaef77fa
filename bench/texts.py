"""The benchmark's texts: a mixed set with a realistic length spread, and length buckets by token count.

Built from the held-out sentences (tests/data/heldout) and the hand-written corpus sentences
(train_export/default_corpus/sentences), 20 languages, deterministic for a given seed. Every server
gets the same texts in the same order.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from train_export.default_corpus import LANGUAGES
from train_export.default_corpus import SENTENCES_DIR as SENTENCES
from train_export.default_corpus import heldout
from train_export.default_corpus.languages import UNSPACED  # measured in characters, joined without spaces

HELDOUT = heldout.HELDOUT_DATA / heldout.SENTENCES

# Shares of the mixed set: chat lines (2-5 words), one sentence, a short message (2-3 sentences),
# a paragraph (4-8 sentences).
SHAPES = (("chat", 0.35), ("sentence", 0.35), ("message", 0.18), ("paragraph", 0.12))
BUCKET_TOKENS = (16, 64, 256)


@dataclass(frozen=True)
class TextSet:
    name: str
    texts: list[str]
    tokens: list[int]  # token count of each text with the model's tokenizer, before truncation
    max_length: int

    def summary(self) -> dict[str, float | int]:
        ordered = sorted(self.tokens)
        return {
            "count": len(self.texts),
            "tokens_mean": round(statistics.fmean(ordered), 1),
            "tokens_p50": ordered[len(ordered) // 2],
            "tokens_p90": ordered[int(len(ordered) * 0.9)],
            "tokens_max": ordered[-1],
            "tokens_run_mean": round(statistics.fmean(min(n, self.max_length) for n in ordered), 1),  # after the cut at max_length
            "chars_mean": round(statistics.fmean(len(t) for t in self.texts), 1),
            "truncated_share": round(sum(n > self.max_length for n in self.tokens) / len(self.tokens), 3),
            "languages": len(LANGUAGES),
        }


def _lines(folder: Path, language: str) -> list[str]:
    path = folder / f"{language}.txt"
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _join(parts: list[str], language: str) -> str:
    return ("" if language in UNSPACED else " ").join(parts)


def _units(text: str, language: str) -> list[str]:
    return list(text) if language in UNSPACED else text.split()


def sentences_by_language() -> dict[str, list[str]]:
    return {language: _lines(HELDOUT, language) + _lines(SENTENCES, language) for language in LANGUAGES}


def _chat(sentences: list[str], language: str, rng: random.Random) -> str:
    for _ in range(20):
        units = _units(rng.choice(sentences), language)
        width = rng.randint(3, 10) if language in UNSPACED else rng.randint(2, 5)
        if len(units) > width:
            start = rng.randrange(len(units) - width + 1)
            return _join(units[start : start + width], language)
    return rng.choice(sentences)


def mixed_texts(count: int, seed: int = 0) -> list[str]:
    """`count` texts, languages in turn, each of a shape drawn with the SHAPES shares."""
    rng = random.Random(seed)
    pool = sentences_by_language()
    names, weights = zip(*SHAPES)
    texts = []
    for i in range(count):
        language = LANGUAGES[i % len(LANGUAGES)]
        sentences = pool[language]
        shape = rng.choices(names, weights)[0]
        if shape == "chat":
            texts.append(_chat(sentences, language, rng))
        elif shape == "sentence":
            texts.append(rng.choice(sentences))
        else:
            n = rng.randint(2, 3) if shape == "message" else rng.randint(4, 8)
            texts.append(_join(rng.sample(sentences, min(n, len(sentences))), language))
    rng.shuffle(texts)  # languages and lengths interleaved in an irregular order
    return texts


def token_counts(tokenizer: Tokenizer, texts: list[str]) -> list[int]:
    counter = Tokenizer.from_str(tokenizer.to_str())
    counter.no_padding()
    counter.no_truncation()
    return [len(e.ids) for e in counter.encode_batch(texts)]


def _longest(n: int, fits: Callable[[int], bool]) -> int:
    """The largest k <= n with fits(k), by bisection, given fits(0); what it returns always fits."""
    low, high = 0, n
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


def _prefix_with_tokens(units: list[str], language: str, target: int, counter: Tokenizer) -> str:
    """The longest prefix of `units` whose encoding (special tokens included) has at most `target`
    tokens, then as many characters of the next unit as still fit: one word can take many tokens
    (9 for a Cyrillic word with the tests' tiny tokenizer), and cutting before it fell far short."""
    fits = lambda text: len(counter.encode(text).ids) <= target  # noqa: E731
    words = _longest(len(units), lambda k: fits(_join(units[:k], language)))
    head = _join(units[:words], language)
    if words == len(units):
        return head
    sep = "" if not head or language in UNSPACED else " "
    part = units[words][: _longest(len(units[words]), lambda k: fits(head + sep + units[words][:k]))]
    return head + sep + part if part else head


def bucket_texts(tokenizer: Tokenizer, target: int, per_language: int, seed: int = 0) -> list[str]:
    """Texts of about `target` tokens: a run of one language's sentences cut where the token count
    reaches the target (after a word, or inside a word of many tokens; anywhere in unspaced scripts)."""
    counter = Tokenizer.from_str(tokenizer.to_str())
    counter.no_padding()
    counter.no_truncation()
    rng = random.Random(f"{seed}:{target}")
    pool = sentences_by_language()
    texts = []
    for k in range(per_language):
        for language in LANGUAGES:
            sentences = pool[language][:]
            rng.shuffle(sentences)
            units: list[str] = []
            for sentence in sentences:  # enough text for the target, with room to spare
                units += _units(sentence, language)
                if len(units) > target * 2:
                    break
            texts.append(_prefix_with_tokens(units, language, target, counter))
    rng.shuffle(texts)
    return texts


def build_sets(tokenizer_file: Path, max_length: int, mixed_count: int, buckets: tuple[int, ...], per_language: int, seed: int = 0) -> dict[str, TextSet]:
    """The mixed set under "mixed" and one set per bucket under "len<N>", counted with this tokenizer."""
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    sets = {}
    mixed = mixed_texts(mixed_count, seed)
    sets["mixed"] = TextSet("mixed", mixed, token_counts(tokenizer, mixed), max_length)
    for target in buckets:
        texts = bucket_texts(tokenizer, target, per_language, seed)
        sets[f"len{target}"] = TextSet(f"len{target}", texts, token_counts(tokenizer, texts), max_length)
    return sets
