"""Step 2 (optional): fine-tune a Hugging Face checkpoint into a sequence classifier."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification, PreTrainedModel, Trainer, TrainingArguments, set_seed

from textclf.backends.torch import model_inputs
from textclf.core.tokenization import TextEncoder
from train_export.config import FinetuneConfig
from train_export.data import Example


@contextmanager
def reproducible(seed: int, threads: int) -> Iterator[None]:
    """The same inputs give the same weights: every draw (the new head, the new embedding rows that
    transformers' mean-resizing samples from a normal distribution, dropout, the batch order) comes
    from `seed`, torch picks its deterministic kernels, and a fixed thread count keeps the order of
    float sums fixed. Restores torch's settings afterwards."""
    saved_threads, saved_deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    set_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(saved_threads)
        torch.use_deterministic_algorithms(saved_deterministic)


def load_classifier(checkpoint: str, labels: list[str], vocab_size: int) -> PreTrainedModel:
    """A classification head with our labels on top of the checkpoint's encoder."""
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,  # a checkpoint fine-tuned for other labels gets a fresh head
        local_files_only=True,
    )
    if vocab_size != model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(vocab_size)  # new rows start at the mean embedding
    return model


def finetune(
    checkpoint: str,
    tokenizer: Tokenizer,
    train: list[Example],
    labels: list[str],
    config: FinetuneConfig,
    max_length: int,
    seed: int,
) -> PreTrainedModel:
    with reproducible(seed, config.threads):
        model = load_classifier(checkpoint, labels, tokenizer.get_vocab_size())
        train_classifier(model, tokenizer, train, labels, config, max_length, seed)
    return model


def train_classifier(
    model: PreTrainedModel, tokenizer: Tokenizer, train: list[Example], labels: list[str], config: FinetuneConfig, max_length: int, seed: int
) -> None:
    encoder = TextEncoder(tokenizer, config.max_length or max_length)
    label_ids = {label: i for i, label in enumerate(labels)}
    names = model_inputs(model)
    # Pre-tokenized features: the Trainer groups texts of similar length into a batch
    # (group_by_length reads "input_ids"), so a batch is not padded to its one long outlier.
    encodings = encoder.tokenize([e.text for e in train])
    features = [{"input_ids": enc.ids, "encoding": enc, "label": label_ids[e.label]} for enc, e in zip(encodings, train)]

    def collate(batch: list[dict]) -> dict[str, torch.Tensor]:
        padded = encoder.pad([f["encoding"] for f in batch])
        tensors = {n: torch.from_numpy(getattr(padded, n)) for n in names}
        tensors["labels"] = torch.tensor([f["label"] for f in batch])
        return tensors

    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_ratio=0.06,
            weight_decay=0.01,
            group_by_length=True,
            logging_steps=100,
            save_strategy="no",
            report_to=[],
            remove_unused_columns=False,
            seed=seed,
            data_seed=seed,
            use_cpu=not torch.cuda.is_available(),
        )
        Trainer(model=model, args=args, train_dataset=features, data_collator=collate).train()
