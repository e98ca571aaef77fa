"""What a model is made from, as one fingerprint: the resolved config, the examples' content, the
checkpoint's files, the export code and the versions of the packages that shape the weights.

The fingerprint is the `recipe` label of both models in the store: an export whose fingerprint the
store already holds would make the same model again (`python -m train_export --skip-if-stored`).
It hashes what was really used (the corpus as built from the installed catalogs, not the files
that describe it), so another package version or another corpus is another recipe.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from train_export.config import TrainExportConfig
from train_export.data import Example

# Everything between the examples and the saved weights: training, tokenizer learning, export,
# graph optimization, quantization.
TOOLCHAIN = ("torch", "transformers", "tokenizers", "accelerate", "safetensors", "numpy", "optimum", "optimum-onnx", "onnx", "onnxruntime")
CODE_DIR = Path(__file__).resolve().parent
# Not in the code digest: the default corpus's builders, whose output is (corpus_sha256 and the
# catalogs' versions), and its held-out readers, which only evaluate. An edit there that builds the
# same corpus is the same recipe, and the store's model is kept.
UNHASHED_CODE = ("default_corpus",)


def sha256_of_files(root: Path, pattern: str = "**/*", skip: tuple[str, ...] = ()) -> str:
    """One digest of the files under `root` (names and contents, in sorted order), but those under
    the top-level folders in `skip`."""
    digest = hashlib.sha256()
    files = (p for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts and p.relative_to(root).parts[0] not in skip)
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def code_sha256(root: Path = CODE_DIR) -> str:
    return sha256_of_files(root, "**/*.py", skip=UNHASHED_CODE)


def sha256_of_examples(examples: list[Example]) -> str:
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.text, example.label], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def checkpoint_dir(config: TrainExportConfig) -> Path:
    """The checkpoint's folder: the path given, or the local cache's copy of a hub id."""
    path = Path(config.base_model_path())
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(config.base_model, local_files_only=True))


def installed_versions(names: tuple[str, ...]) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"  # optimum-onnx without onnxruntime, say: still part of the recipe
    return versions


@dataclass(frozen=True)
class Recipe:
    config_sha256: str
    corpus_sha256: str
    corpus_texts: int
    checkpoint_sha256: str
    code_sha256: str
    versions: dict[str, str]
    device: str

    @classmethod
    def of(cls, config: TrainExportConfig, examples: list[Example], corpus_sources: dict[str, str] | None = None) -> Recipe:
        import torch

        config_json = config.model_dump_json(exclude={"labels"})  # BentoML labels do not shape the model
        return cls(
            config_sha256=hashlib.sha256(config_json.encode()).hexdigest(),
            corpus_sha256=sha256_of_examples(examples),
            corpus_texts=len(examples),
            checkpoint_sha256=sha256_of_files(checkpoint_dir(config)),
            code_sha256=code_sha256(),
            versions=installed_versions(TOOLCHAIN) | (corpus_sources or {}),
            device="cuda" if torch.cuda.is_available() else "cpu",  # where fine-tuning runs
        )

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def metadata(self) -> dict[str, object]:
        return {"recipe": self.fingerprint} | asdict(self)
