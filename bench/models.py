"""The model variants the benchmark serves, prepared once and reused across runs.

- our exported int8 model, read from a BentoML store (the user's, or any given one);
- the "seed recipe" int8 model of the same checkpoint: optimum's plain ONNX export (no graph
  optimization), then onnxruntime's `quantize_dynamic` with default settings; the plain fp32 export
  and our pipeline's fp32 graph (opset and fusions of the model's export config) come with it;
- a base-size model: random weights with bert-base's architecture (12 layers x 768), the default
  model's tokenizer and labels, exported by our own pipeline (`python -m train_export
  --no-finetune`) into a private store, so the user's store is never written.

Everything made here lives in a cache folder (default ~/.cache/textclf-bench), keyed by the tag of
the model it was made from. The heavy steps (torch, optimum) run in child processes:
`python -m bench.models seed|store|base-checkpoint ...`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BASE_NAME = "benchbase"  # the base-size model's name in the private store
BASE_RECIPE = "bert-base-uncased config (12 x 768, 12 heads, 3072), random weights seed 0, max_length 512, v1"
BASE_MAX_LENGTH = 512


@dataclass(frozen=True)
class StoredModel:
    """<name>-onnx (and <name>-torch when present) at the `latest` version of a BentoML store."""

    name: str
    home: Path
    version: str
    onnx_dir: Path
    torch_dir: Path | None
    metadata: dict

    @property
    def tag(self) -> str:
        return f"{self.name}-onnx:{self.version}"

    @property
    def int8_file(self) -> Path:
        return self.onnx_dir / "model.onnx"

    @property
    def tokenizer_file(self) -> Path:
        return self.onnx_dir / "tokenizer.json"

    @property
    def labels(self) -> list[str]:
        return list(self.metadata["labels"])

    @property
    def max_length(self) -> int:
        return int(self.metadata["max_length"])


def _latest(home: Path, model: str) -> Path | None:
    latest = home / "models" / model / "latest"
    if not latest.is_file():
        return None
    folder = latest.parent / latest.read_text().strip()
    return folder if (folder / "model.yaml").is_file() else None


def stored(home: Path, name: str) -> StoredModel:
    """Read the store's files directly (models/<model>/latest names the version folder): the store
    stays whatever BENTOML_HOME this process was started with."""
    onnx_dir = _latest(home, f"{name}-onnx")
    if onnx_dir is None:
        raise FileNotFoundError(f"no model {name}-onnx:latest in the BentoML store at {home}")
    info = yaml.safe_load((onnx_dir / "model.yaml").read_text())
    torch_dir = _latest(home, f"{name}-torch")
    if torch_dir is not None and torch_dir.name != onnx_dir.name:
        torch_dir = None  # not the pair exported together
    return StoredModel(name, home, onnx_dir.name, onnx_dir, torch_dir, info.get("metadata") or {})


def bench_labels(model: StoredModel) -> dict:
    info = yaml.safe_load((model.onnx_dir / "model.yaml").read_text())
    return info.get("labels") or {}


def _child(args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> None:
    """A preparation step in a child process; its output goes to `log` (and is shown on failure)."""
    log = log or Path("/dev/null")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        done = subprocess.run([sys.executable, *args], cwd=REPO, env=os.environ | (env or {}), stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{tail}")


@dataclass(frozen=True)
class SeedFiles:
    int8: Path  # the seed recipe: plain export + quantize_dynamic defaults
    fp32_plain: Path  # optimum's plain export
    fp32_ours: Path  # our pipeline's fp32 graph (export config's opset + onnxruntime fusions), before int8


def seed_recipe(model: StoredModel, cache: Path, log: Path) -> SeedFiles:
    if model.torch_dir is None:
        raise FileNotFoundError(f"{model.name}-torch:{model.version} is missing: the seed recipe starts from it")
    out = cache / "seed" / f"{model.name}-torch-{model.version}"
    files = SeedFiles(out / "int8" / "model.onnx", out / "fp32" / "model.onnx", out / "ours-fp32" / "model_optimized.onnx")
    if not all(p.is_file() for p in (files.int8, files.fp32_plain, files.fp32_ours)):
        export = (model.metadata.get("export_config") or {}).get("export") or {}
        _child(["-m", "bench.models", "seed", str(model.torch_dir), str(out), json.dumps(export)], log=log)
    return files


def seed_in_store(model: StoredModel, seed: SeedFiles, home: Path, log: Path) -> StoredModel:
    """The seed-recipe int8 file as <name>-seed-onnx in a private store, so our service can serve it."""
    name = f"{model.name}-seed"
    try:
        existing = stored(home, name)
        if existing.version == model.version:
            return existing
    except FileNotFoundError:
        pass
    metadata = {k: model.metadata[k] for k in ("labels", "max_length")} | {"recipe": "optimum plain export + quantize_dynamic defaults"}
    _child(
        ["-m", "bench.models", "store", name, model.version, str(seed.int8), str(model.tokenizer_file), json.dumps(metadata)],
        env={"BENTOML_HOME": str(home)},
        log=log,
    )
    return stored(home, name)


def base_model(source: StoredModel, cache: Path, log: Path) -> StoredModel:
    """The bert-base-size random model, exported by `python -m train_export` into cache/store."""
    if source.torch_dir is None:
        raise FileNotFoundError(f"{source.name}-torch:{source.version} is missing: the base model takes its tokenizer")
    home = cache / "store"
    key = hashlib.sha256(f"{BASE_RECIPE}|{source.tag}".encode()).hexdigest()[:16]
    try:
        existing = stored(home, BASE_NAME)
        if bench_labels(existing).get("bench_key") == key:
            return existing
    except FileNotFoundError:
        pass
    work = cache / "base-build"
    shutil.rmtree(work, ignore_errors=True)
    _child(["-m", "bench.models", "base-checkpoint", str(source.torch_dir), str(work / "checkpoint")], log=log)
    data = _parity_data(work / "data.jsonl", source.labels)
    _child(
        [
            "-m", "train_export", "--config", str(REPO / "configs" / "langid.yaml"), "--name", BASE_NAME,
            "--base-model", str(work / "checkpoint"), "--no-finetune", "--data", str(data),
            "--max-length", str(BASE_MAX_LENGTH),
            # random weights give near-uniform logits: int8 and fp32 may pick different labels; the
            # model is here to measure cost, not accuracy
            "--min-agreement", "0", "--label", f"bench_key={key}",
        ],
        env={"BENTOML_HOME": str(home)},
        log=log,
    )
    shutil.rmtree(work, ignore_errors=True)
    return stored(home, BASE_NAME)


def _parity_data(path: Path, labels: list[str]) -> Path:
    """A small labelled set for the export's parity step: 10 sentences per language."""
    from bench.texts import sentences_by_language

    pool = sentences_by_language()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for label in labels:
            for text in pool.get(label, [])[:10]:
                f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return path


def validation_texts(model: StoredModel, cache: Path) -> list[str] | None:
    """The held-out split the export checked parity on, rebuilt from the model's export config
    (the built-in corpus is rebuilt from the installed packages; a data file must still exist)."""
    config = model.metadata.get("export_config") or {}
    data = config.get("data") or {}
    source = data.get("source")
    if not source:
        return None
    key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    cached = cache / "validation" / f"{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text(encoding="utf-8"))
    from train_export.data import read_examples, split

    if source.startswith("builtin:"):
        from train_export.default_corpus import build_corpus

        path = cache / "validation" / f"{key}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        build_corpus(path, per_language=data["per_label"], seed=data.get("seed", 0), span_fraction=data.get("span_fraction", 0.0))
    elif Path(source).is_file():
        path = Path(source)
    else:
        return None
    _, validation = split(read_examples(path), data.get("validation_fraction", 0.1), data.get("seed", 0))
    texts = [e.text for e in validation]
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    return texts


# --- the child-process steps -------------------------------------------------------------------


def _seed_step(torch_dir: Path, out: Path, export: dict) -> None:
    from onnxruntime.quantization import quantize_dynamic
    from optimum.exporters.onnx import main_export

    from train_export.config import ExportConfig
    from train_export.onnx_export import export_onnx, optimize_onnx

    # 1. the seed recipe, as its README would have it: plain export, default quantization
    main_export(str(torch_dir), output=out / "fp32", task="text-classification", library_name="transformers", local_files_only=True)
    (out / "int8").mkdir(parents=True, exist_ok=True)
    quantize_dynamic(out / "fp32" / "model.onnx", out / "int8" / "model.onnx")
    # 2. our pipeline's fp32 graph, the step before its int8 quantization
    optimize_onnx(export_onnx(torch_dir, out / "ours-fp32", ExportConfig(**export)), ExportConfig(**export))


def _store_step(name: str, version: str, onnx_file: Path, tokenizer_file: Path, metadata: dict) -> None:
    import bentoml

    with bentoml.models.create(bentoml.Tag(f"{name}-onnx", version), labels={"format": "onnx-int8", "bench": "seed-recipe"}, metadata=metadata) as model:
        shutil.copy(onnx_file, Path(model.path) / "model.onnx")
        shutil.copy(tokenizer_file, Path(model.path) / "tokenizer.json")


def _base_checkpoint_step(source_dir: Path, out: Path) -> None:
    """bert-base's architecture with random weights; the source model's tokenizer and labels."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, BertConfig, BertForSequenceClassification

    source = AutoConfig.from_pretrained(source_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(source_dir, local_files_only=True)
    torch.manual_seed(0)
    config = BertConfig(  # the defaults are bert-base: 12 layers, hidden 768, 12 heads, FFN 3072, 512 positions
        vocab_size=len(tokenizer),
        num_labels=source.num_labels,
        id2label=source.id2label,
        label2id=source.label2id,
    )
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "seed":
        _seed_step(Path(args[0]), Path(args[1]), json.loads(args[2]))
    elif command == "store":
        _store_step(args[0], args[1], Path(args[2]), Path(args[3]), json.loads(args[4]))
    elif command == "base-checkpoint":
        _base_checkpoint_step(Path(args[0]), Path(args[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
