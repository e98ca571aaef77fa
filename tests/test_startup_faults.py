"""A missing model stops `bentoml serve` with an error that names it; a broken one keeps the service
not ready with an error that names the file: it never comes up serving wrong answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import bentoml
import pytest

from tests.conftest import start_server
from textclf.artifacts import ONNX_FILE

pytestmark = pytest.mark.integration


def test_missing_model_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no-such-model-onnx"):
        start_server("service:TextClassifier", {"TEXTCLF_MODEL_NAME": "no-such-model"}, tmp_path / "serve.log", timeout=90)


def test_truncated_onnx_file_fails_at_start(tiny_export, tmp_path: Path) -> None:
    source = bentoml.models.get(tiny_export.onnx_tag)
    with bentoml.models.create("broken-onnx", metadata=source.info.metadata) as broken:
        shutil.copytree(source.path, broken.path, dirs_exist_ok=True)
        onnx_file = Path(broken.path) / ONNX_FILE
        onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    # BentoML keeps restarting the crashing runner worker, so the process lives on, never ready,
    # with onnxruntime's error in the log.
    with pytest.raises(TimeoutError, match="INVALID_PROTOBUF : Load model from .*broken-onnx"):
        start_server("service:TextClassifier", {"TEXTCLF_MODEL_NAME": "broken"}, tmp_path / "serve.log", timeout=40)
