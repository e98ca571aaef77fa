"""The GPU entry service (TextClassifierGPU -> TorchRunner) run on the CPU, and the fp16 CUDA backend
when a CUDA device is present.

On the CPU the torch runner runs the fp32 torch model while the CPU service runs the int8 ONNX model
exported from it: labels must agree on the texts used here, scores only roughly.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.conftest import SENTENCES, TINY_LABELS, Server, serving

torch = pytest.importorskip("torch")

# int8 (dynamic activation quantization) against fp32: the same argmax on these texts, probabilities
# within this bound.
INT8_VS_FP32 = 0.05
SCORE_TOLERANCE = 1e-4


def sample_texts(per_label: int = 2) -> list[str]:
    lines = {label: (SENTENCES / f"{label}.txt").read_text(encoding="utf-8").splitlines() for label in TINY_LABELS}
    return [lines[label][i * 7 + 3] for i in range(per_label) for label in TINY_LABELS]


TEXTS = sample_texts()
LONG_TEXT = " ".join(SENTENCES.joinpath("fr.txt").read_text(encoding="utf-8").splitlines()[:30])[:1500]


@pytest.fixture(scope="module")
def gpu_server(tiny_export, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"TEXTCLF_MODEL_NAME": "tiny", "TEXTCLF_DEVICE": "cpu"}
    with serving("service:TextClassifierGPU", env, tmp_path_factory.mktemp("logs") / "gpu-on-cpu.log") as server:
        yield server


@pytest.fixture(scope="module")
def torch_model(tiny_export):
    import bentoml

    return bentoml.models.get(tiny_export.torch_tag)


def torch_reference(torch_model, device: str):
    from textclf.config import load_settings
    from textclf.core.loading import torch_classifier

    settings = load_settings(environ={"TEXTCLF_MODEL_NAME": "tiny", "TEXTCLF_DEVICE": device})
    return torch_classifier(torch_model.path, torch_model.info.metadata, settings)


def predict(server: Server, payload: dict) -> object:
    response = server.post(payload)
    assert response.status_code == 200, f"{response.status_code}: {response.text[:500]}"
    return response.json()


@pytest.mark.integration
def test_gpu_service_on_cpu_answers_like_the_cpu_service(gpu_server: Server, cpu_server: Server) -> None:
    texts = TEXTS + [LONG_TEXT]
    gpu_batch = predict(gpu_server, {"texts": texts, "top_k": len(TINY_LABELS)})
    cpu_batch = [predict(cpu_server, {"text": t, "top_k": len(TINY_LABELS)}) for t in texts]
    assert len(gpu_batch) == len(texts)
    for text, g, c in zip(texts, gpu_batch, cpu_batch):
        assert g["label"] in TINY_LABELS
        assert g["label"] == c["label"], text
        assert g["truncated"] == c["truncated"]
        assert g["score"] == pytest.approx(c["score"], abs=INT8_VS_FP32)
        g_scores = {item["label"]: item["score"] for item in g["top_k"]}
        c_scores = {item["label"]: item["score"] for item in c["top_k"]}
        assert set(g_scores) == set(TINY_LABELS)
        for label in TINY_LABELS:
            assert g_scores[label] == pytest.approx(c_scores[label], abs=INT8_VS_FP32), (text, label)
    assert gpu_batch[-1]["truncated"] is True


@pytest.mark.integration
def test_gpu_service_on_cpu_equals_the_in_process_torch_model(gpu_server: Server, torch_model) -> None:
    reference = torch_reference(torch_model, "cpu")
    for text in TEXTS:
        prediction = predict(gpu_server, {"text": text})
        assert set(prediction) == {"label", "score", "truncated", "top_k"}
        assert prediction["truncated"] is False and prediction["top_k"] is None
        (expected,) = reference.classify([text])
        best = int(np.argmax(expected.scores))
        assert prediction["label"] == TINY_LABELS[best]
        assert prediction["score"] == pytest.approx(expected.scores[best], abs=SCORE_TOLERANCE)


@pytest.mark.integration
def test_gpu_service_on_cpu_rejects_bad_requests_the_same_way(gpu_server: Server) -> None:
    for payload in ({"text": " "}, {"texts": []}, {"text": "hello", "top_k": len(TINY_LABELS) + 1}, {}):
        response = gpu_server.post(payload)
        assert response.status_code == 400, (payload, response.status_code, response.text[:300])
        assert "error" in response.json()
    predict(gpu_server, {"text": TEXTS[0]})


@pytest.mark.integration
def test_gpu_service_on_cpu_health(gpu_server: Server) -> None:
    for path in ("/livez", "/readyz"):
        assert httpx.get(f"{gpu_server.url}{path}", timeout=10).status_code == 200


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)")
def test_fp16_on_cuda_agrees_with_fp32_on_cpu(torch_model) -> None:
    from textclf.backends.torch import TorchBackend

    cuda = torch_reference(torch_model, "cuda")
    assert isinstance(cuda.backend, TorchBackend)
    assert next(cuda.backend._model.parameters()).dtype == torch.float16  # fp16 on the GPU
    cpu = torch_reference(torch_model, "cpu")
    texts = TEXTS + [LONG_TEXT]
    encoded = cuda.encoder.encode(texts)
    cuda_logits, cpu_logits = cuda.backend.logits(encoded), cpu.backend.logits(encoded)
    assert cuda_logits.dtype == np.float32 and cuda_logits.shape == (len(texts), len(TINY_LABELS))
    assert np.isfinite(cuda_logits).all()
    assert list(cuda_logits.argmax(axis=1)) == list(cpu_logits.argmax(axis=1))
    assert cuda.predict_labels(texts) == cpu.predict_labels(texts)
    cuda_probs, _ = cuda.probabilities(texts)
    cpu_probs, _ = cpu.probabilities(texts)
    np.testing.assert_allclose(cuda_probs, cpu_probs, atol=0.02)
