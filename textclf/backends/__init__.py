"""Backends turn an already-tokenized batch into logits. Adding one means adding one module here."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from textclf.core.tokenization import EncodedBatch


class Backend(Protocol):
    def logits(self, batch: EncodedBatch) -> np.ndarray:
        """Float32 array of shape (len(batch), number of labels)."""
        ...
