"""Turns texts into a padded batch of token ids with the `tokenizers` library (no transformers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


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
        self.max_length = max_length
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())  # a copy: padding is set below
        self._tokenizer.enable_truncation(max_length=max_length)
        # Pad to the longest text of each batch: a tokenizer.json that pads to a fixed length
        # (the MiniLM one pads to 128) makes every short text pay for the full length.
        pad_id = self._tokenizer.padding["pad_id"] if self._tokenizer.padding else 0
        pad_token = self._tokenizer.id_to_token(pad_id) or "[PAD]"
        self._tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)

    @classmethod
    def from_file(cls, tokenizer_file: Path, max_length: int) -> TextEncoder:
        return cls(Tokenizer.from_file(str(tokenizer_file)), max_length)

    def encode(self, texts: list[str]) -> EncodedBatch:
        encodings = self._tokenizer.encode_batch(texts)
        return EncodedBatch(
            input_ids=np.array([e.ids for e in encodings], dtype=np.int64),
            attention_mask=np.array([e.attention_mask for e in encodings], dtype=np.int64),
            token_type_ids=np.array([e.type_ids for e in encodings], dtype=np.int64),
            truncated=[bool(e.overflowing) for e in encodings],
        )
