"""Extending a WordPiece vocabulary with what a corpus needs: every character of its scripts, so none
turns into [UNK], and optionally the corpus's own frequent subwords, so that words of scripts the
base vocabulary barely covers (Cyrillic, Greek, Arabic...) are not spelled out letter by letter."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable

from tokenizers import Tokenizer, models, normalizers, trainers

# Whole blocks of the small scripts, so a character absent from training still gets its own token
# (a single unknown character makes a whole unspaced Thai or kana word [UNK]). CJK ideographs are
# split one per token by the BERT pre-tokenizer, so only the ones seen in training are added.
SCRIPT_BLOCKS = {
    "latin-1 and extended": (0x00C0, 0x024F),
    "greek": (0x0370, 0x03FF),
    "cyrillic": (0x0400, 0x04FF),
    "arabic": (0x0600, 0x06FF),
    "devanagari": (0x0900, 0x097F),
    "thai": (0x0E00, 0x0E7F),
    "latin extended additional (vietnamese)": (0x1E00, 0x1EFF),
    "hiragana and katakana": (0x3040, 0x30FF),
}
# WordPiece gives up on words longer than this; unspaced Thai or Japanese sentences are one "word".
MAX_CHARS_PER_WORD = 1000


# Ranges the BERT normalizer surrounds with spaces: each such character is a word of its own.
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))


def keep_accents(tokenizer: Tokenizer) -> Tokenizer:
    """Lower-case but keep diacritics, tone marks and vowel signs (the stock BERT normalizer drops
    them, which erases Thai vowels, Hindi matras and the difference between es/pt/fr/vi spellings)."""
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True)]
    )
    return tokenizer


def is_cjk(char: str) -> bool:
    return any(lo <= ord(char) <= hi for lo, hi in _CJK_RANGES)


def _candidate_characters(texts: Iterable[str], normalize: Callable[[str], str]) -> set[str]:
    chars = {chr(c) for lo, hi in SCRIPT_BLOCKS.values() for c in range(lo, hi + 1) if unicodedata.category(chr(c))[0] in "LMN"}
    for text in texts:
        chars.update(c for c in normalize(text) if not c.isspace())
    return chars


def continuation_pieces(tokenizer: Tokenizer, texts: list[str]) -> list[str]:
    """Every `##` piece (a character inside a word) the texts hold, sorted."""
    normalize = tokenizer.normalizer.normalize_str if tokenizer.normalizer else str
    inner: set[str] = set()
    for text in texts:
        for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalize(text)):
            inner.update(word[1:])
    return ["##" + c for c in sorted(inner)]


def corpus_subwords(tokenizer: Tokenizer, texts: list[str], vocab_size: int) -> list[str]:
    """The vocabulary a WordPiece model learns on the corpus, through the tokenizer's own
    normalizer and pre-tokenizer, in the trainer's order.

    tokenizers 0.22's trainer numbers the `##` pieces in the order it meets them in a hash map that
    is seeded anew in every process, and breaks ties between equally frequent merges by those numbers:
    the same texts gave 8,224 to 8,229 new tokens from one run to the next (huggingface/tokenizers#1794,
    fix proposed in #2066). Declaring every `##` piece up front, sorted, as a special token numbers
    them before the trainer does, which makes the result the same in every run.
    """
    learner = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=MAX_CHARS_PER_WORD))
    learner.normalizer = tokenizer.normalizer
    learner.pre_tokenizer = tokenizer.pre_tokenizer
    fixed_order = ["[UNK]", *continuation_pieces(tokenizer, texts)]
    learner.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=fixed_order, show_progress=False))
    return sorted(learner.get_vocab(), key=learner.get_vocab().get)


def extend_vocabulary(tokenizer: Tokenizer, texts: Iterable[str], subwords: int = 0) -> tuple[Tokenizer, int]:
    """Return a tokenizer whose WordPiece vocabulary also holds every needed character (as a word
    start and as a `##` continuation) and, if `subwords` > 0, what a WordPiece of that size learns
    on the texts; and how many tokens were added (new ids follow the old ones)."""
    spec = json.loads(tokenizer.to_str())
    if spec["model"]["type"] != "WordPiece":
        raise ValueError(f"extend_vocab needs a WordPiece tokenizer (BERT family), not {spec['model']['type']}")
    vocab: dict[str, int] = spec["model"]["vocab"]
    texts = list(texts)
    normalize = tokenizer.normalizer.normalize_str if tokenizer.normalizer else str
    new_tokens = [t for c in sorted(_candidate_characters(texts, normalize)) for t in ((c,) if is_cjk(c) else (c, "##" + c))]
    if subwords:
        new_tokens += corpus_subwords(tokenizer, texts, subwords)
    next_id = max(vocab.values()) + 1
    added = 0
    for token in new_tokens:
        if token not in vocab:
            vocab[token] = next_id
            next_id += 1
            added += 1
    spec["model"]["max_input_chars_per_word"] = MAX_CHARS_PER_WORD
    return Tokenizer.from_str(json.dumps(spec)), added
