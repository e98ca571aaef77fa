"""int8 ONNX model on the CPU with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from textclf.core.tokenization import EncodedBatch


class OnnxBackend:
    def __init__(self, model_file: Path, intra_op_threads: int = 0) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        # One request batch at a time per worker: inter-op parallelism only adds thread contention.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        # Models without segment embeddings (DistilBERT, XLM-R) take no token_type_ids.
        self._inputs = [i.name for i in self._session.get_inputs()]

    def logits(self, batch: EncodedBatch) -> np.ndarray:
        feeds = {name: getattr(batch, name) for name in self._inputs}
        (logits,) = self._session.run(["logits"], feeds)
        return logits.astype(np.float32, copy=False)
