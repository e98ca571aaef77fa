"""The export pipeline end to end on tiny real models: store contents, atomicity, the parity gate."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import bentoml
import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from rich.console import Console
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tests.conftest import REPO, TINY_LABELS, tiny_config
from textclf.artifacts import ONNX_FILE, TOKENIZER_FILE, ModelCard
from train_export import store
from train_export.pipeline import run

pytestmark = pytest.mark.slow


def store_tags() -> set[str]:
    return {str(m.tag) for m in bentoml.models.list()}


def test_both_models_land_in_the_store_with_their_metrics(tiny_export) -> None:
    torch_model = bentoml.models.get(tiny_export.torch_tag)
    onnx_model = bentoml.models.get(tiny_export.onnx_tag)
    assert tiny_export.torch_tag.version == tiny_export.onnx_tag.version
    for model in (torch_model, onnx_model):
        card = ModelCard.from_metadata(model.info.metadata)
        assert card.labels == sorted(TINY_LABELS) and card.max_length == 64
        metadata = model.info.metadata
        assert metadata["parity_agreement"] == round(tiny_export.parity.agreement, 5) >= 0.95  # the fixture's gate
        assert metadata["validation_accuracy_int8"] == round(tiny_export.int8_accuracy.overall, 5)
        assert metadata["onnx_int8_bytes"] < metadata["onnx_fp32_bytes"] / 2
    # the model learned: four labels, chance is 25 %
    assert tiny_export.torch_accuracy.overall > 0.6

    onnx_dir = Path(onnx_model.path)
    assert {p.name for p in onnx_dir.iterdir() if not p.name.startswith(".")} >= {ONNX_FILE, TOKENIZER_FILE}
    assert not list(onnx_dir.glob("*.safetensors")) and not list(onnx_dir.glob("*.bin"))
    ops = Counter(node.op_type for node in onnx.load(str(onnx_dir / ONNX_FILE)).graph.node)
    assert ops["MatMulInteger"] + ops["QAttention"] > 0 and ops["MatMul"] == 0, ops

    # the torch model is a standard Hugging Face folder
    classifier = AutoModelForSequenceClassification.from_pretrained(torch_model.path)
    assert [classifier.config.id2label[i] for i in range(4)] == sorted(TINY_LABELS)
    assert AutoTokenizer.from_pretrained(torch_model.path)("hello")["input_ids"][0] == 101


def test_model_without_token_type_ids_exports_and_serves(checkpoints, dataset) -> None:
    from textclf.config import settings
    from textclf.loading import onnx_classifier

    result = run(tiny_config("tiny-distil", checkpoints["distilbert"], dataset, max_length=32), Console(quiet=True))
    model = bentoml.models.get(result.onnx_tag)
    graph = onnx.load(str(Path(model.path) / ONNX_FILE)).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    predictions = onnx_classifier(model.path, model.info.metadata, settings()).predict_labels(["Доброе утро", "hello there"])
    assert set(predictions) <= set(TINY_LABELS)


def test_an_existing_classifier_exports_without_finetuning(tiny_export, dataset) -> None:
    checkpoint = bentoml.models.get(tiny_export.torch_tag).path
    config = tiny_config("tiny-refit", Path(checkpoint), dataset, finetune={"enabled": False})
    result = run(config, Console(quiet=True))
    assert ModelCard.from_metadata(bentoml.models.get(result.onnx_tag).info.metadata).labels == sorted(TINY_LABELS)
    assert result.int8_accuracy.overall == pytest.approx(tiny_export.int8_accuracy.overall, abs=0.05)


def test_parity_gate_failure_saves_nothing_and_exits_non_zero(checkpoints, dataset, monkeypatch, capsys) -> None:
    from train_export import pipeline
    from train_export.__main__ import main

    real_quantize = pipeline.quantize_onnx

    def quantize_badly(fp32: Path, out: Path, config) -> Path:
        """A broken quantization: the int8 classifier's bias pushes every text to the first label."""
        path = real_quantize(fp32, out, config)
        model = onnx.load(str(path))
        bias = next(t for t in model.graph.initializer if t.name == "classifier.bias")
        bias.CopyFrom(numpy_helper.from_array(np.array([100.0] + [0.0] * (bias.dims[0] - 1), dtype=np.float32), bias.name))
        onnx.save(model, str(path))
        return path

    monkeypatch.setattr(pipeline, "quantize_onnx", quantize_badly)
    before = store_tags()
    argv = ["--name", "gate", "--base-model", str(checkpoints["bert"]), "--data", str(dataset), "--epochs", "1", "--max-length", "32"]
    assert main(argv) == 1
    output = capsys.readouterr().out
    assert "parity gate failed, nothing saved" in output and "below the required 99.50%" in output
    assert store_tags() == before


def test_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("name: Bad Name\nbase_model: x\ndata: {source: x.jsonl}\n")
    process = subprocess.run([sys.executable, "-m", "train_export", "--config", str(config)], cwd=REPO, capture_output=True, text=True)
    assert process.returncode == 2
    assert "name" in process.stdout and "bad configuration" in process.stdout


@pytest.mark.parametrize("fault", [OSError("disk full"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_a_failure_while_writing_the_onnx_model_leaves_the_store_as_it_was(tiny_export, monkeypatch, fault) -> None:
    torch_dir = Path(bentoml.models.get(tiny_export.torch_tag).path)
    onnx_dir = Path(bentoml.models.get(tiny_export.onnx_tag).path)
    real_copytree = store.shutil.copytree
    calls = []

    def copytree_failing_on_second_copy(src, dst, **kwargs):
        calls.append(src)
        if len(calls) == 2:
            real_copytree(src, dst, **kwargs)  # half-written: the files are there, then the failure
            raise fault
        return real_copytree(src, dst, **kwargs)

    monkeypatch.setattr(store.shutil, "copytree", copytree_failing_on_second_copy)
    before = store_tags()
    with pytest.raises(type(fault)):
        store.save_models("atomic", "v1", torch_dir, onnx_dir, {"labels": ["a", "b"], "max_length": 8}, {})
    assert store_tags() == before


def test_a_failure_after_the_onnx_model_was_committed_removes_it(tiny_export, monkeypatch) -> None:
    torch_dir = Path(bentoml.models.get(tiny_export.torch_tag).path)
    onnx_dir = Path(bentoml.models.get(tiny_export.onnx_tag).path)
    real_create = store.bentoml.models.create

    @contextlib.contextmanager
    def create_failing_torch_commit(tag, **kwargs):
        with real_create(tag, **kwargs) as model:
            yield model
            if tag.name.endswith("-torch"):
                raise OSError("torch model commit failed")

    monkeypatch.setattr(store.bentoml.models, "create", create_failing_torch_commit)
    before = store_tags()
    with pytest.raises(OSError, match="torch model commit failed"):
        store.save_models("atomic2", "v1", torch_dir, onnx_dir, {"labels": ["a", "b"], "max_length": 8}, {})
    assert store_tags() == before
