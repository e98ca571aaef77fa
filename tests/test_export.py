"""The export pipeline end to end on tiny real models: store contents, atomicity, the parity gate."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import bentoml
import onnx
import pytest
from rich.console import Console
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tests.conftest import REPO, TINY_LABELS, tiny_config
from textclf.core.model_card import ONNX, ONNX_FILE, ONNX_FP16, TOKENIZER_FILE, TORCH, ModelCard
from train_export import store
from train_export.pipeline import run

pytestmark = pytest.mark.slow


def store_tags() -> set[str]:
    return {str(m.tag) for m in bentoml.models.list()}


def test_all_three_models_land_in_the_store_with_their_metrics(tiny_export) -> None:
    torch_model = bentoml.models.get(tiny_export.torch_tag)
    onnx_model = bentoml.models.get(tiny_export.onnx_tag)
    fp16_model = bentoml.models.get(tiny_export.fp16_tag)
    assert tiny_export.torch_tag.version == tiny_export.onnx_tag.version == tiny_export.fp16_tag.version
    assert [m.info.labels["format"] for m in (torch_model, onnx_model, fp16_model)] == ["torch", "onnx-int8", "onnx-fp16"]
    for model in (torch_model, onnx_model, fp16_model):
        card = ModelCard.from_metadata(model.info.metadata)
        assert card.labels == sorted(TINY_LABELS) and card.max_length == 64
        metadata = model.info.metadata
        assert metadata["parity_agreement"] == round(tiny_export.quantization.parity.agreement, 5) >= 0.95  # the fixture's gate
        assert metadata["recipe"] == tiny_export.recipe.fingerprint == model.info.labels["recipe"]
        assert metadata["validation_accuracy_int8"] == round(tiny_export.int8_accuracy.overall, 5)
        assert metadata["onnx_int8_bytes"] < metadata["onnx_fp32_bytes"] / 2
    # the model learned: four labels, chance is 25 %
    assert tiny_export.torch_accuracy.overall > 0.6

    onnx_dir = Path(onnx_model.path)
    assert {p.name for p in onnx_dir.iterdir() if not p.name.startswith(".")} >= {ONNX_FILE, TOKENIZER_FILE}
    assert not list(onnx_dir.glob("*.safetensors")) and not list(onnx_dir.glob("*.bin"))
    ops = Counter(node.op_type for node in onnx.load(str(onnx_dir / ONNX_FILE)).graph.node)
    assert ops["MatMulInteger"] + ops["QAttention"] > 0 and ops["MatMul"] == 0, ops
    # the tiny model passes with the plain variant, which alone is tried then
    assert onnx_model.info.metadata["quantization"]["name"] == "plain"
    assert [t["variant"] for t in onnx_model.info.metadata["quantization"]["tried"]] == ["plain"]
    assert "quantization" not in torch_model.info.metadata

    # the fp16 model: float16 weights, int64 token ids in and float32 logits out, checked against torch
    fp16_graph = onnx.load(str(Path(fp16_model.path) / ONNX_FILE)).graph
    assert {t.data_type for t in fp16_graph.initializer if t.dims and t.dims[-1] > 1} >= {onnx.TensorProto.FLOAT16}
    assert [i.type.tensor_type.elem_type for i in fp16_graph.input] == [onnx.TensorProto.INT64] * 3
    assert [o.type.tensor_type.elem_type for o in fp16_graph.output] == [onnx.TensorProto.FLOAT]
    parity = fp16_model.info.metadata["fp16_parity"]
    assert parity == tiny_export.fp16_parity and "quantization" not in fp16_model.info.metadata
    assert (parity["agreement"] or parity["fp32_source_agreement"]) >= 0.95

    # the torch model is a standard Hugging Face folder
    classifier = AutoModelForSequenceClassification.from_pretrained(torch_model.path)
    assert [classifier.config.id2label[i] for i in range(4)] == sorted(TINY_LABELS)
    assert AutoTokenizer.from_pretrained(torch_model.path)("hello")["input_ids"][0] == 101


def test_model_without_token_type_ids_exports_and_serves(checkpoints, dataset) -> None:
    from textclf.config import settings
    from textclf.core.loading import onnx_classifier

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


OUTLIER = 1000.0  # a weight that sets the int8 scale of its whole column: the others round to 0


def with_outlier_weights(classifier_dir: Path, out_dir: Path, where: str) -> Path:
    """The tiny classifier, changed so that torch computes exactly what it did before on one hidden
    feature set to 0, while int8 rounding of the weights that read that feature loses everything else.

    Feature `r` is made exactly 0 where it is read (a zero row and bias in front of it, or zero
    LayerNorm gains), and the weights that read it get OUTLIER: 0 * OUTLIER is 0 in fp32, but one
    quantization scale per tensor or output channel makes every other weight of that column 0 in
    int8. "head": the pooler's and the classifier's weights (so only an fp32 head restores the
    labels). "everywhere": the head's too, and every layer's query/key/value and feed-forward input
    weights (no variant keeps all of head, attention and feed-forward fp32)."""
    import torch

    model = AutoModelForSequenceClassification.from_pretrained(classifier_dir)
    r = 0
    with torch.no_grad():
        model.bert.pooler.dense.weight[r, :] = 0
        model.bert.pooler.dense.bias[r] = 0
        model.classifier.weight[:, r] = OUTLIER
        if where == "everywhere":
            for module in model.modules():
                if isinstance(module, torch.nn.LayerNorm):
                    module.weight[r], module.bias[r] = 0, 0
            for layer in model.bert.encoder.layer:
                for dense in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value, layer.intermediate.dense):
                    dense.weight[:, r] = OUTLIER
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(classifier_dir).save_pretrained(out_dir)
    return out_dir


def export_argv(name: str, checkpoint: Path, dataset: Path) -> list[str]:
    return ["--name", name, "--base-model", str(checkpoint), "--no-finetune", "--data", str(dataset), "--min-agreement", "0.9"]


def test_when_plain_int8_misses_the_gate_the_fastest_passing_variant_is_kept(tiny_export, dataset, tmp_path, capsys) -> None:
    from train_export.__main__ import main

    checkpoint = with_outlier_weights(Path(bentoml.models.get(tiny_export.torch_tag).path), tmp_path / "head", "head")
    assert main(export_argv("fallback", checkpoint, dataset)) == 0
    output = capsys.readouterr().out
    quantization = bentoml.models.get("fallback-onnx:latest").info.metadata["quantization"]
    tried = {t["variant"]: t for t in quantization["tried"]}
    assert list(tried) == ["plain", "per-tensor", "reduce-range", "fp32-head", "fp32-head-last", "fp32-attention", "fp32-head-last-emb"]
    # the int8 head cannot tell the labels apart: only the variants with an fp32 head pass
    assert [t["passed"] for t in tried.values()] == [False, False, False, True, True, False, True], tried
    passing = [t for t in tried.values() if t["passed"]]
    assert quantization["name"] == min(passing, key=lambda t: t["batch1_p50_ms"])["variant"]
    assert "head" in quantization["fp32"]
    # the table names every variant, and which one was kept
    assert all(name in output for name in tried) and "kept" in output and output.count("fails") == 4
    # the kept file is the one served: its head is fp32 (MatMul), the encoder int8
    graph = onnx.load(str(Path(bentoml.models.get("fallback-onnx:latest").path) / ONNX_FILE)).graph
    ops = Counter(node.op_type for node in graph.node)
    assert ops["MatMul"] >= 2 and ops["MatMulInteger"] > 0, ops


def test_when_no_variant_passes_the_export_exits_1_with_the_table_and_saves_nothing(tiny_export, dataset, tmp_path, capsys) -> None:
    from train_export.__main__ import main

    checkpoint = with_outlier_weights(Path(bentoml.models.get(tiny_export.torch_tag).path), tmp_path / "everywhere", "everywhere")
    before = store_tags()
    assert main(export_argv("nopass", checkpoint, dataset)) == 1
    output = capsys.readouterr().out
    assert "parity gate failed, nothing saved" in output and "no int8 variant agrees with torch on 90.00%" in output
    assert output.count("fails") == 7 and "What next" in output
    assert store_tags() == before


def test_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("name: Bad Name\nbase_model: x\ndata: {source: x.jsonl}\n")
    process = subprocess.run([sys.executable, "-m", "train_export", "--config", str(config)], cwd=REPO, capture_output=True, text=True)
    assert process.returncode == 2
    assert "name" in process.stdout and "bad configuration" in process.stdout


def export_files(tiny_export) -> list[store.ModelFiles]:
    """The tiny export's three models, as save_models takes them."""
    tags = (tiny_export.torch_tag, tiny_export.onnx_tag, tiny_export.fp16_tag)
    return [store.ModelFiles(fmt, Path(bentoml.models.get(tag).path)) for fmt, tag in zip((TORCH, ONNX, ONNX_FP16), tags, strict=True)]


@pytest.mark.parametrize("fault", [OSError("disk full"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_a_failure_while_writing_the_onnx_model_leaves_the_store_as_it_was(tiny_export, monkeypatch, fault) -> None:
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
        store.save_models("atomic", "v1", export_files(tiny_export), {"labels": ["a", "b"], "max_length": 8}, {})
    assert store_tags() == before


def test_a_failure_after_the_later_models_were_committed_removes_them(tiny_export, monkeypatch) -> None:
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
        store.save_models("atomic2", "v1", export_files(tiny_export), {"labels": ["a", "b"], "max_length": 8}, {})
    assert store_tags() == before
