"""The whole job: data, tokenizer, fine-tuning, export, quantization, parity gate, model store.

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
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerFast

from textclf.artifacts import ONNX_FILE, TOKENIZER_FILE
from textclf.backends.onnx import OnnxBackend
from textclf.backends.torch import TorchBackend
from textclf.classifier import Classifier
from textclf.tokenization import TextEncoder
from train_export.config import BUILTIN_PREFIX, TrainExportConfig
from train_export.data import Example, label_list, read_examples, split
from train_export.evaluate import Accuracy, accuracy
from train_export.finetune import finetune
from train_export.onnx_export import export_onnx, optimize_onnx, quantize_onnx
from train_export.parity import ParityReport, check_parity
from train_export.store import save_models
from train_export.vocab import extend_vocabulary, keep_accents


@dataclass(frozen=True)
class ExportResult:
    torch_tag: bentoml.Tag
    onnx_tag: bentoml.Tag
    torch_accuracy: Accuracy
    int8_accuracy: Accuracy
    parity: ParityReport


@contextmanager
def step(console: Console, title: str) -> Iterator[None]:
    start = time.perf_counter()
    console.rule(f"[bold]{title}")
    yield
    console.print(f"[green]done[/] in {time.perf_counter() - start:.1f} s")


def load_examples(config: TrainExportConfig, scratch: Path) -> list[Example]:
    if config.data.source.startswith(BUILTIN_PREFIX):
        from train_export.default_corpus import build_corpus  # only the default model needs it

        path = scratch / "corpus.jsonl"
        build_corpus(path, per_language=config.data.per_label, seed=config.data.seed, span_fraction=config.data.span_fraction)
        return read_examples(path)
    return read_examples(Path(config.data.source))


def save_torch_model(model: PreTrainedModel, source: PreTrainedTokenizerFast, tokenizer: Tokenizer, max_length: int, out_dir: Path) -> None:
    """A standard Hugging Face folder (AutoModel/AutoTokenizer load it) whose tokenizer.json is
    the one the service uses: truncation at max_length, padding to the longest text of a batch."""
    tokenizer = Tokenizer.from_str(tokenizer.to_str())
    tokenizer.enable_padding(pad_id=source.pad_token_id, pad_token=source.pad_token)
    tokenizer.enable_truncation(max_length)
    model.save_pretrained(out_dir)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=max_length, **source.special_tokens_map).save_pretrained(out_dir)


def run(config: TrainExportConfig, console: Console) -> ExportResult:
    checkpoint = config.base_model_path()
    with tempfile.TemporaryDirectory(prefix="textclf-export-") as scratch_dir:
        scratch = Path(scratch_dir)
        with step(console, "1/6 data"):
            examples = load_examples(config, scratch)
            labels = label_list(examples)
            train, validation = split(examples, config.data.validation_fraction, config.data.seed)
            console.print(f"{len(train)} training and {len(validation)} held-out examples, {len(labels)} labels")

        source_tokenizer = AutoTokenizer.from_pretrained(checkpoint, use_fast=True, local_files_only=True)
        tokenizer = source_tokenizer.backend_tokenizer
        if config.finetune.enabled:
            with step(console, "2/6 fine-tuning"):
                if config.finetune.extend_vocab:
                    tokenizer, added = extend_vocabulary(keep_accents(tokenizer), [e.text for e in train], config.finetune.vocab_subwords)
                    console.print(f"vocabulary extended by {added} tokens to {tokenizer.get_vocab_size()}")
                model = finetune(checkpoint, tokenizer, train, labels, config.finetune, config.max_length, config.data.seed)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(checkpoint, local_files_only=True)
            labels = [model.config.id2label[i] for i in range(model.config.num_labels)]

        encoder = TextEncoder(tokenizer, config.max_length)
        torch_classifier = Classifier(encoder, TorchBackend(model, "cpu"), labels)
        torch_accuracy = accuracy(torch_classifier, validation)
        console.print(f"held-out accuracy (torch): [bold]{torch_accuracy.overall:.2%}[/] on {torch_accuracy.count} texts")
        console.print("per label: " + ", ".join(f"{k} {v:.1%}" for k, v in torch_accuracy.per_label.items()))

        torch_dir, onnx_dir = scratch / "torch", scratch / "onnx"
        with step(console, "3/6 torch model"):
            save_torch_model(model, source_tokenizer, tokenizer, config.max_length, torch_dir)
        with step(console, "4/6 ONNX export, optimization, int8 quantization"):
            fp32 = optimize_onnx(export_onnx(torch_dir, scratch / "onnx-fp32", config.export), config.export)
            onnx_dir.mkdir()
            int8 = quantize_onnx(fp32, onnx_dir / ONNX_FILE, config.quantize)
            shutil.copy(torch_dir / TOKENIZER_FILE, onnx_dir / TOKENIZER_FILE)
            console.print(f"fp32 {fp32.stat().st_size / 1e6:.1f} MB -> int8 {int8.stat().st_size / 1e6:.1f} MB")

        with step(console, "5/6 parity gate"):
            int8_classifier = Classifier(encoder, OnnxBackend(int8), labels)
            texts = [e.text for e in validation]
            parity = check_parity(torch_classifier, int8_classifier, texts, config.parity.min_agreement)
            int8_accuracy = accuracy(int8_classifier, validation)
            console.print(f"{parity.summary()}; held-out accuracy (int8): {int8_accuracy.overall:.2%}")

        with step(console, "6/6 model store"):
            metadata = {
                "labels": labels,
                "max_length": config.max_length,
                "base_model": config.base_model,
                "validation_accuracy_torch": round(torch_accuracy.overall, 5),
                "validation_accuracy_int8": round(int8_accuracy.overall, 5),
                "parity_agreement": round(parity.agreement, 5),
                "validation_texts": parity.compared,
                "onnx_fp32_bytes": fp32.stat().st_size,
                "onnx_int8_bytes": int8.stat().st_size,
                "export_config": config.model_dump(mode="json", exclude_none=True),  # the store takes no None
            }
            version = bentoml.Tag(config.name).make_new_version().version
            torch_tag, onnx_tag = save_models(config.name, version, torch_dir, onnx_dir, metadata, {"task": "text-classification"} | config.labels)
            console.print(f"saved [bold]{torch_tag}[/] and [bold]{onnx_tag}[/]")
    return ExportResult(torch_tag, onnx_tag, torch_accuracy, int8_accuracy, parity)
