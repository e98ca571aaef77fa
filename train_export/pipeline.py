"""The whole job, in seven steps: data, fine-tuning, torch model, ONNX export, int8 quantization with
the parity gate, the fp16 model for the GPU, model store.

Every intermediate file lives in a temporary folder; the store is written last, by `save_models`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bentoml
from rich.console import Console
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from textclf.backends.onnx import OnnxBackend
from textclf.backends.torch import TorchBackend
from textclf.core.classifier import Classifier
from textclf.core.model_card import ONNX, ONNX_FILE, ONNX_FP16, TOKENIZER_FILE, TORCH
from textclf.core.tokenization import TextEncoder
from train_export.config import BUILTIN_PREFIX, TrainExportConfig
from train_export.data import Example, label_list, read_examples, split
from train_export.evaluate import Accuracy, accuracy
from train_export.finetune import finetune
from train_export.onnx_export import export_onnx, optimize_for_gpu, optimize_onnx
from train_export.parity import ParityError, Reference, Trial, fp16_parity, select_variant, trial_table
from train_export.quantize import variants
from train_export.recipe import Recipe
from train_export.store import ModelFiles, save_models
from train_export.torch_model import save_torch_model
from train_export.vocab import extend_vocabulary, keep_accents

STEPS = 7


@dataclass(frozen=True)
class Data:
    train: list[Example]
    validation: list[Example]
    labels: list[str]
    recipe: Recipe


@dataclass(frozen=True)
class ExportResult:
    torch_tag: bentoml.Tag
    onnx_tag: bentoml.Tag
    fp16_tag: bentoml.Tag
    torch_accuracy: Accuracy
    int8_accuracy: Accuracy
    quantization: Trial
    fp16_parity: dict
    recipe: Recipe


@contextmanager
def step(console: Console, number: int, title: str) -> Iterator[None]:
    start = time.perf_counter()
    console.rule(f"[bold]{number}/{STEPS} {title}")
    yield
    console.print(f"[green]done[/] in {time.perf_counter() - start:.1f} s")


def read_source(config: TrainExportConfig) -> tuple[list[Example], dict[str, str]]:
    """The labelled examples, and the versions of the packages they were read from (for the recipe)."""
    if not config.data.source.startswith(BUILTIN_PREFIX):
        return read_examples(Path(config.data.source)), {}
    from train_export.default_corpus import build_corpus, source_versions  # only the default model needs it

    with tempfile.TemporaryDirectory(prefix="textclf-corpus-") as scratch:
        path = Path(scratch) / "corpus.jsonl"
        build_corpus(path, per_language=config.data.per_label, seed=config.data.seed, span_fraction=config.data.span_fraction)
        return read_examples(path), source_versions()


def load_data(config: TrainExportConfig, console: Console) -> Data:
    with step(console, 1, "data"):
        examples, packages = read_source(config)
        train, validation = split(examples, config.data.validation_fraction, config.data.seed)
        data = Data(train, validation, label_list(examples), Recipe.of(config, examples, packages))
        console.print(f"{len(train)} training and {len(validation)} held-out examples, {len(data.labels)} labels")
        console.print(f"recipe {data.recipe.fingerprint} (corpus sha256 {data.recipe.corpus_sha256[:16]})")
    return data


def run(config: TrainExportConfig, console: Console, data: Data | None = None) -> ExportResult:
    data = data or load_data(config, console)
    checkpoint = config.base_model_path()
    source_tokenizer = AutoTokenizer.from_pretrained(checkpoint, use_fast=True, local_files_only=True)
    tokenizer, labels = source_tokenizer.backend_tokenizer, data.labels
    with step(console, 2, "fine-tuning" if config.finetune.enabled else "checkpoint (no fine-tuning)"):
        if config.finetune.enabled:
            if config.finetune.extend_vocab:
                tokenizer, added = extend_vocabulary(keep_accents(tokenizer), [e.text for e in data.train], config.finetune.vocab_subwords)
                console.print(f"vocabulary extended by {added} tokens to {tokenizer.get_vocab_size()}")
            model = finetune(checkpoint, tokenizer, data.train, labels, config.finetune, config.max_length, config.data.seed)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(checkpoint, local_files_only=True)
            labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        encoder = TextEncoder(tokenizer, config.max_length)
        texts = [e.text for e in data.validation]
        reference = Reference.of(Classifier(encoder, TorchBackend(model, "cpu"), labels), texts, config.parity.near_tie_margin)
        torch_accuracy = accuracy(reference.labels, data.validation)
        console.print(f"held-out accuracy (torch): [bold]{torch_accuracy.overall:.2%}[/] on {torch_accuracy.count} texts")
        console.print("per label: " + ", ".join(f"{k} {v:.1%}" for k, v in torch_accuracy.per_label.items()))

    with tempfile.TemporaryDirectory(prefix="textclf-export-") as scratch_dir:
        scratch = Path(scratch_dir)
        with step(console, 3, "torch model"):
            torch_dir = save_torch_model(model, source_tokenizer, tokenizer, config.max_length, scratch / "torch")
        with step(console, 4, "ONNX export and graph optimization"):
            exported = export_onnx(torch_dir, scratch / "onnx-fp32", config.export)
            fp32 = optimize_onnx(exported, config.export)
            console.print(f"fp32 graph {fp32.stat().st_size / 1e6:.1f} MB")
        classifier_of = lambda f: Classifier(encoder, OnnxBackend(f), labels)  # noqa: E731  an ONNX file on the CPU

        with step(console, 5, "int8 quantization and parity gate"):
            (scratch / "int8").mkdir()
            chosen, trials = select_variant(
                variants(config.quantize), fp32, scratch / "int8", classifier_of, reference, config.parity.min_agreement,
            )
            console.print(trial_table(trials, chosen, config.parity.min_agreement))
            if chosen is None:
                best = max(trials, key=lambda t: t.parity.agreement)
                raise ParityError(
                    f"no int8 variant agrees with torch on {config.parity.min_agreement:.2%} of the {best.parity.compared} validation texts torch decides; "
                    f"the best, {best.variant.name}, on {best.parity.agreement:.2%} (e.g. {best.parity.examples()})",
                    trials,
                )
            int8_accuracy = accuracy(chosen.labels, data.validation)
            console.print(f"kept {chosen.variant.name}: {chosen.parity.summary()}; held-out accuracy (int8): {int8_accuracy.overall:.2%}")

        with step(console, 6, "fp16 ONNX model for the GPU"):
            fp16 = optimize_for_gpu(exported, scratch / "onnx-gpu-fp16", fp16=True)
            fp16_check = fp16_parity(fp16, optimize_for_gpu(exported, scratch / "onnx-gpu-fp32", fp16=False), classifier_of, reference)
            console.print(f"fp16 graph {fp16.stat().st_size / 1e6:.1f} MB; {fp16_check['summary']}")

        with step(console, 7, "model store"):
            onnx_dir, fp16_dir = model_folder(scratch / "onnx", chosen.model_file, torch_dir), model_folder(scratch / "fp16", fp16, torch_dir)
            metadata = {
                "labels": labels,
                "max_length": config.max_length,
                "base_model": config.base_model,
                "validation_accuracy_torch": round(torch_accuracy.overall, 5),
                "validation_accuracy_int8": round(int8_accuracy.overall, 5),
                "parity_agreement": round(chosen.parity.agreement, 5),
                "parity_agreement_all_texts": round(chosen.parity.agreement_all, 5),
                "parity_near_ties": chosen.parity.near_ties,
                "validation_texts": len(texts),
                "onnx_fp32_bytes": fp32.stat().st_size,
                "onnx_int8_bytes": chosen.size_bytes,
                "onnx_fp16_bytes": (fp16_dir / ONNX_FILE).stat().st_size,
                "export_config": config.model_dump(mode="json", exclude_none=True),  # the store takes no None
            } | data.recipe.metadata()
            quantization = chosen.variant.model_dump(mode="json") | {"tried": [t.record() for t in trials]}
            version = bentoml.Tag(config.name).make_new_version().version
            model_labels = {"task": "text-classification", "recipe": data.recipe.fingerprint} | config.labels
            models = [ModelFiles(TORCH, torch_dir), ModelFiles(ONNX, onnx_dir, {"quantization": quantization}),
                      ModelFiles(ONNX_FP16, fp16_dir, {"fp16_parity": fp16_check})]
            torch_tag, onnx_tag, fp16_tag = save_models(config.name, version, models, metadata, model_labels)
            console.print(f"saved [bold]{torch_tag}[/], [bold]{onnx_tag}[/] and [bold]{fp16_tag}[/]")
    return ExportResult(torch_tag, onnx_tag, fp16_tag, torch_accuracy, int8_accuracy, chosen, fp16_check, data.recipe)


def model_folder(folder: Path, onnx_file: Path, torch_dir: Path) -> Path:
    """An ONNX model as the store keeps it: the graph and the torch model's tokenizer.json."""
    folder.mkdir()
    onnx_file.rename(folder / ONNX_FILE)
    shutil.copy(torch_dir / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    return folder
