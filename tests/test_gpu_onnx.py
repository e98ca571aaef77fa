"""The onnxruntime GPU path, on the CPU: the execution providers it asks for and its refusal to run
on the CPU unnoticed, and TextClassifierOnnxGPU -> OnnxGpuRunner served for real on the fp16 model
with the CPU provider allowed (gpu_allow_cpu), answering as the CPU service does. On a machine with
onnxruntime-gpu and a CUDA device, the fp16 model on CUDA as well."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import bentoml
import onnxruntime as ort
import pytest

from tests.conftest import SENTENCES, TINY_LABELS, Server, serving, start_server
from textclf.backends.onnx import CPU, CUDA, TENSORRT, NoGpuError, OnnxBackend, gpu_providers
from textclf.config import load_settings
from textclf.core.model_card import ONNX_FILE

TEXTS = [line for label in TINY_LABELS for line in (SENTENCES / f"{label}.txt").read_text("utf-8").splitlines()[3:5]]  # 8: cpu_server's batch limit
# fp16 against int8, each run by onnxruntime on the CPU: the same label, probabilities this close.
FP16_VS_INT8 = 0.05
HAS_CUDA = CUDA in ort.get_available_providers()


def test_the_gpu_runner_asks_for_cuda_and_refuses_the_cpu_unless_allowed() -> None:
    assert gpu_providers([CUDA, CPU], tensorrt=False, allow_cpu=False) == [CUDA]
    assert gpu_providers([TENSORRT, CUDA, CPU], tensorrt=True, allow_cpu=False) == [TENSORRT, CUDA]
    assert gpu_providers([CUDA, CPU], tensorrt=True, allow_cpu=False) == [CUDA]  # TensorRT asked for, not there
    assert gpu_providers([CPU], tensorrt=False, allow_cpu=True) == [CPU]
    with pytest.raises(NoGpuError, match=r"no CUDA execution provider here \(it has: CPUExecutionProvider\).*onnxruntime-gpu alone.*TEXTCLF_GPU_ALLOW_CPU"):
        gpu_providers([CPU], tensorrt=False, allow_cpu=False)


@pytest.mark.skipif(HAS_CUDA, reason="needs an onnxruntime without CUDA, to see it fall back")
def test_a_session_that_fell_back_to_the_cpu_is_refused(tiny_export) -> None:
    """onnxruntime starts a session on the CPU, with a warning, when the provider asked for is missing."""
    fp16_file = Path(bentoml.models.get(tiny_export.fp16_tag).path) / ONNX_FILE
    with pytest.raises(NoGpuError, match="could not start CUDAExecutionProvider for model.onnx"):
        OnnxBackend(fp16_file, providers=[CUDA])


@pytest.mark.skipif(HAS_CUDA, reason="needs an onnxruntime without CUDA")
def test_without_cuda_the_gpu_classifier_stops_with_the_reason(tiny_export) -> None:
    from textclf.core.loading import gpu_onnx_classifier

    model = bentoml.models.get(tiny_export.fp16_tag)
    with pytest.raises(NoGpuError, match="no CUDA execution provider"):
        gpu_onnx_classifier(model.path, model.info.metadata, load_settings(environ={}))


@pytest.fixture(scope="module")
def gpu_onnx_server(tiny_export, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"TEXTCLF_MODEL_NAME": "tiny", "TEXTCLF_GPU_ALLOW_CPU": "true"}
    with serving("service:TextClassifierOnnxGPU", env, tmp_path_factory.mktemp("logs") / "gpu-onnx-on-cpu.log") as server:
        yield server


@pytest.mark.integration
def test_the_onnx_gpu_service_on_the_cpu_provider_answers_like_the_cpu_service(gpu_onnx_server: Server, cpu_server: Server) -> None:
    payload = {"texts": TEXTS, "top_k": len(TINY_LABELS)}
    fp16, int8 = gpu_onnx_server.post(payload), cpu_server.post(payload)
    assert fp16.status_code == int8.status_code == 200, (fp16.text[:300], int8.text[:300])
    for text, a, b in zip(TEXTS, fp16.json(), int8.json(), strict=True):
        assert a["label"] == b["label"], text
        scores = {s["label"]: s["score"] for s in b["top_k"]}
        assert all(abs(s["score"] - scores[s["label"]]) < FP16_VS_INT8 for s in a["top_k"]), (text, a, b)
    bad = gpu_onnx_server.post({"text": "hello", "top_k": len(TINY_LABELS) + 1})
    assert bad.status_code == 400 and "exceeds the model's 4 labels" in bad.json()["error"]


@pytest.mark.integration
@pytest.mark.skipif(HAS_CUDA, reason="needs an onnxruntime without CUDA")
def test_without_the_fallback_the_onnx_gpu_service_never_becomes_ready_and_says_why(tiny_export, tmp_path: Path) -> None:
    with pytest.raises(TimeoutError, match="onnxruntime offers no CUDA execution provider here"):
        start_server("service:TextClassifierOnnxGPU", {"TEXTCLF_MODEL_NAME": "tiny"}, tmp_path / "serve.log", timeout=40)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a CUDA device (onnxruntime has no CUDAExecutionProvider here)")
def test_the_fp16_model_on_cuda_agrees_with_the_int8_model_on_the_cpu(tiny_export) -> None:
    from textclf.core.loading import gpu_onnx_classifier, onnx_classifier

    fp16, int8 = bentoml.models.get(tiny_export.fp16_tag), bentoml.models.get(tiny_export.onnx_tag)
    settings = load_settings(environ={})
    cuda = gpu_onnx_classifier(fp16.path, fp16.info.metadata, settings)
    assert cuda.backend.providers[0] == CUDA
    cpu = onnx_classifier(int8.path, int8.info.metadata, settings)
    assert cuda.predict_labels(TEXTS) == cpu.predict_labels(TEXTS)
