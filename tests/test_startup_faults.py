"""A missing model stops `bentoml serve` with an error that names it; a broken one, or one whose
metadata does not fit its graph, keeps the service not ready with an error that names the model and
the problem: it never comes up serving wrong answers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bentoml
import httpx
import pytest

from tests.conftest import REPO, Server, free_port, start_server, stop_server
from textclf.core.model_card import ONNX_FILE

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
    # The worker stays up, never ready (its model thread failed to load the graph), with
    # onnxruntime's error in the log.
    with pytest.raises(TimeoutError, match="INVALID_PROTOBUF : Load model from .*broken-onnx"):
        start_server("service:TextClassifier", {"TEXTCLF_MODEL_NAME": "broken"}, tmp_path / "serve.log", timeout=40)


# --- a model whose metadata does not fit it ------------------------------------------------------


def serve_never_ready(model_name: str, log: Path, pattern: str, timeout: float = 90) -> str:
    """`bentoml serve` of the CPU service on `model_name`, watched until its log matches `pattern`
    (a regex) or it exits; /readyz must never answer 200 meanwhile, nor for a few seconds after.
    Started the way conftest's start_server starts a server, which itself only returns once ready."""
    store = Path(os.environ["BENTOML_HOME"])
    home = Path(tempfile.mkdtemp(prefix="textclf-serve-home-"))
    (home / "models").symlink_to(store / "models", target_is_directory=True)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", "service:TextClassifier", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=os.environ | {"BENTOML_HOME": str(home), "TEXTCLF_MODEL_NAME": model_name},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", process, log)

    def ready(timeout: float) -> bool:
        # A worker still starting does not answer yet: no answer within the timeout is "not ready" too.
        try:
            return httpx.get(f"{server.url}/readyz", timeout=timeout).status_code == 200
        except httpx.TransportError:
            return False

    try:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, log.read_text(errors="replace")) and process.poll() is None:
            assert not ready(1), f"the service became ready on a bad model:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{pattern!r} not logged within {timeout} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.25)
        if process.poll() is None:  # the worker lives on, not ready: still never ready a little later
            time.sleep(1)
            assert not ready(2), f"the service became ready on a bad model:\n{log.read_text()[-3000:]}"
        else:
            assert process.returncode != 0
        output = log.read_text(errors="replace")
        assert re.search(pattern, output), output[-3000:]
        return output
    finally:
        stop_server(server, grace=2)


def copy_with_metadata(tiny_export, name: str, metadata: dict) -> None:
    """A model in the store with the tiny model's files under other metadata."""
    source = bentoml.models.get(tiny_export.onnx_tag)
    with bentoml.models.create(f"{name}-onnx", metadata=metadata) as model:
        shutil.copytree(source.path, model.path, dirs_exist_ok=True)


def test_graph_output_width_not_matching_the_label_count_never_serves(tiny_export, tmp_path: Path) -> None:
    metadata = bentoml.models.get(tiny_export.onnx_tag).info.metadata
    copy_with_metadata(tiny_export, "mislabeled", metadata | {"labels": [*metadata["labels"], "de"]})
    serve_never_ready(
        "mislabeled",
        tmp_path / "serve.log",
        r"model mislabeled-onnx:\w+: the graph's output width is 4 but its metadata lists 5 labels \(en, fr, ja, ru, de\)",
    )


def test_metadata_without_max_length_never_serves(tiny_export, tmp_path: Path) -> None:
    metadata = bentoml.models.get(tiny_export.onnx_tag).info.metadata
    copy_with_metadata(tiny_export, "nomaxlen", {k: v for k, v in metadata.items() if k != "max_length"})
    serve_never_ready("nomaxlen", tmp_path / "serve.log", r"model nomaxlen-onnx:\w+: bad metadata: key 'max_length' is missing")


def without(metadata: dict, key: str) -> dict:
    return {k: v for k, v in metadata.items() if k != key}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m | {"labels": m["labels"][:3]}, r"the graph's output width is 4 but its metadata lists 3 labels \(en, fr, ja\)"),
        (lambda m: without(m, "labels"), r"bad metadata: key 'labels' is missing \(it has: .*max_length"),
        (lambda m: without(m, "max_length"), r"bad metadata: key 'max_length' is missing \(it has: .*labels"),
        (lambda m: {}, r"bad metadata: key 'labels' is missing; key 'max_length' is missing \(it has: nothing\)"),
        (lambda m: m | {"max_length": "long"}, r"bad metadata: key 'max_length' = 'long': Input should be a valid integer"),
        (lambda m: m | {"labels": ["en"]}, r"bad metadata: key 'labels' = \['en'\]: List should have at least 2 items"),
        (lambda m: m | {"labels": ["en", "fr", "fr", "ru"]}, r"bad metadata: labels are not unique"),
    ],
    ids=["fewer-labels", "no-labels", "no-max_length", "no-metadata", "max_length-not-int", "one-label", "repeated-label"],
)
def test_bad_metadata_is_named_when_the_onnx_model_loads(tiny_export, change, message: str) -> None:
    from textclf.config import load_settings
    from textclf.core.loading import ModelMismatchError, onnx_classifier

    model = bentoml.models.get(tiny_export.onnx_tag)
    with pytest.raises(ModelMismatchError, match=rf"^model tiny-onnx:{model.tag.version}: {message}"):
        onnx_classifier(model.path, change(dict(model.info.metadata)), load_settings(environ={}))


def test_torch_model_with_the_wrong_label_count_fails_to_load(tiny_export) -> None:
    from textclf.config import load_settings
    from textclf.core.loading import ModelMismatchError, torch_classifier

    model = bentoml.models.get(tiny_export.torch_tag)
    metadata = dict(model.info.metadata)
    metadata["labels"] = [*metadata["labels"], "de", "es"]
    with pytest.raises(ModelMismatchError, match="the graph's output width is 4 but its metadata lists 6 labels"):
        torch_classifier(model.path, metadata, load_settings(environ={"TEXTCLF_DEVICE": "cpu"}))
