"""Turns texts into padded batches of token ids with the `tokenizers` library (no transformers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer


@dataclass(frozen=True)
class EncodedBatch:
    """What every backend consumes: int64 arrays of shape (batch, longest text in the batch)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    truncated: list[bool]

    def __len__(self) -> int:
        return len(self.truncated)


class TextEncoder:
    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        # Below 2, `tokenizers` silently skips truncation ([CLS] and [SEP] alone do not fit).
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2, got {max_length}")
        self.max_length = max_length
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())  # a copy: its settings change below
        self._tokenizer.enable_truncation(max_length=max_length)
        # Padding happens per batch in `pad`: a tokenizer.json that pads to a fixed length (the
        # MiniLM one pads to 128) would make every short text pay for the full length.
        self._pad_id = tokenizer.padding["pad_id"] if tokenizer.padding else 0  # masked out either way
        self._tokenizer.no_padding()

    @classmethod
    def from_file(cls, tokenizer_file: Path, max_length: int) -> TextEncoder:
        return cls(Tokenizer.from_file(str(tokenizer_file)), max_length)

    def tokenize(self, texts: list[str]) -> list[Encoding]:
        return self._tokenizer.encode_batch(texts)

    def pad(self, encodings: list[Encoding]) -> EncodedBatch:
        width = max(len(e.ids) for e in encodings)
        input_ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(encodings), width), dtype=np.int64)
        token_type_ids = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            input_ids[row, :n] = encoding.ids
            attention_mask[row, :n] = encoding.attention_mask
            token_type_ids[row, :n] = encoding.type_ids
        return EncodedBatch(input_ids, attention_mask, token_type_ids, truncated=[bool(e.overflowing) for e in encodings])

    def encode(self, texts: list[str]) -> EncodedBatch:
        return self.pad(self.tokenize(texts))
