"""The full torch model (fp16 on CUDA). torch and transformers are imported here only."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from textclf.core.tokenization import EncodedBatch

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_inputs(model: PreTrainedModel) -> list[str]:
    """DistilBERT and XLM-R take no token_type_ids; BERT and MiniLM do."""
    parameters = inspect.signature(model.forward).parameters
    return [name for name in MODEL_INPUTS if name in parameters]


class TorchBackend:
    def __init__(self, model: PreTrainedModel, device: str) -> None:
        self._device = torch.device(device)
        # fp16 halves memory and uses tensor cores on a GPU; the CPU has no fast fp16 path.
        dtype = torch.float16 if self._device.type == "cuda" else torch.float32
        self._model = model.to(self._device, dtype=dtype).eval()
        self._inputs = model_inputs(model)

    @classmethod
    def from_dir(cls, model_dir: Path, device: str) -> TorchBackend:
        return cls(AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True), device)

    @torch.inference_mode()
    def logits(self, batch: EncodedBatch) -> np.ndarray:
        feeds = {name: torch.from_numpy(getattr(batch, name)).to(self._device) for name in self._inputs}
        return self._model(**feeds).logits.float().cpu().numpy()
