"""ONNX models on onnxruntime: the int8 model on the CPU, and the fp16 model on a GPU through
onnxruntime-gpu's CUDA execution provider (TensorRT's optional, off by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from textclf.core.tokenization import EncodedBatch

CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


class NoGpuError(RuntimeError):
    """The GPU runner was asked to run where onnxruntime cannot reach a CUDA device."""


def gpu_providers(available: list[str], tensorrt: bool, allow_cpu: bool) -> list[str]:
    """The execution providers of a GPU session, best first. Without CUDA the runner stops with a
    clear error, unless `allow_cpu` (the `gpu_allow_cpu` setting) lets it run on the CPU."""
    if CUDA in available:
        return ([TENSORRT] if tensorrt and TENSORRT in available else []) + [CUDA]
    if allow_cpu:
        return [CPU]
    raise NoGpuError(
        f"onnxruntime offers no CUDA execution provider here (it has: {', '.join(available)}). The GPU image needs "
        "onnxruntime-gpu alone (with onnxruntime beside it only the CPU provider shows up), a CUDA 13 runtime with cuDNN 9, "
        "and a GPU the container can see (--gpus / nvidia.com/gpu). Set TEXTCLF_GPU_ALLOW_CPU=true to run on the CPU instead."
    )


class OnnxBackend:
    def __init__(self, model_file: Path, intra_op_threads: int = 0, providers: list[str] | None = None) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        # One request batch at a time per worker: inter-op parallelism only adds thread contention.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.providers = providers or [CPU]
        self._session = ort.InferenceSession(str(model_file), options, providers=self.providers)
        # onnxruntime drops a provider it cannot start (no driver, no cuDNN) and runs on the next:
        # a GPU runner must not end up on the CPU unnoticed.
        if self._session.get_providers()[0] != self.providers[0]:
            raise NoGpuError(f"onnxruntime could not start {self.providers[0]} for {model_file.name} (it runs on {self._session.get_providers()})")
        # Models without segment embeddings (DistilBERT, XLM-R) take no token_type_ids.
        self._inputs = [i.name for i in self._session.get_inputs()]

    def logits(self, batch: EncodedBatch) -> np.ndarray:
        feeds = {name: getattr(batch, name) for name in self._inputs}
        (logits,) = self._session.run(["logits"], feeds)
        return logits.astype(np.float32, copy=False)
