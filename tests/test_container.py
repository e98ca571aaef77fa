"""The CPU image, built by the real `bentoml containerize` from the shipped bentofile, run for real."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, USER_BENTOML_HOME, free_port

pytestmark = pytest.mark.container
IMAGE = "textclf-test:latest"


def docker(*args: str, timeout: float = 60) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=timeout).stdout


@pytest.fixture(scope="module")
def cpu_image() -> str:
    """The default model's CPU image. The bento is built in a private home that links the user's models."""
    home = Path(tempfile.mkdtemp(prefix="textclf-image-home-"))
    (home / "models").symlink_to(Path(USER_BENTOML_HOME) / "models", target_is_directory=True)
    env = {"BENTOML_HOME": str(home), "TEXTCLF_MODEL_NAME": "langid", "PATH": "/usr/local/bin:/usr/bin:/bin"}
    process = subprocess.run(
        ["bash", "scripts/containerize.sh", "bentofile.yaml", IMAGE], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200
    )
    assert process.returncode == 0, process.stderr[-4000:]
    return IMAGE


@pytest.fixture(scope="module")
def container(cpu_image: str) -> Iterator[str]:
    port = free_port()
    name = f"textclf-test-{port}"
    docker("run", "-d", "--rm", "--name", name, "--network", "host", cpu_image, "--host", "127.0.0.1", "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("container not ready in 120 s:\n" + docker("logs", name)[-3000:])
        yield url
    finally:
        subprocess.run(["docker", "stop", "-t", "10", name], capture_output=True)


def test_container_answers_predictions(container: str) -> None:
    single = httpx.post(f"{container}/predict", json={"text": "Bonjour tout le monde"}, timeout=30)
    assert single.status_code == 200 and single.json()["label"] == "fr"
    batch = httpx.post(f"{container}/predict", json={"texts": ["Guten Morgen, wie geht es dir?", "こんにちは"]}, timeout=30)
    assert [p["label"] for p in batch.json()] == ["de", "ja"]
    bad = httpx.post(f"{container}/predict", json={"text": " "}, timeout=30)
    assert bad.status_code == 400 and "error" in bad.json()
    assert httpx.get(f"{container}/metrics", timeout=10).status_code == 200


def test_image_runs_as_non_root_without_torch_compilers_cuda_or_git(cpu_image: str) -> None:
    assert docker("image", "inspect", "-f", "{{.Config.User}}", cpu_image).strip() == "bentoml"
    probe = (
        "id -u; "
        "for tool in gcc cc g++ make git uv; do command -v $tool; done; "
        "find / -xdev \\( -name 'libcudart*' -o -name 'libcublas*' -o -name 'libcudnn*' -o -name 'libnccl*' \\) -print; "
        "python -c \"import importlib.util as u; print('heavy:', [m for m in ('torch', 'transformers', 'optimum', 'onnxruntime_gpu') "
        "if u.find_spec(m)], 'onnxruntime:', bool(u.find_spec('onnxruntime')))\""
    )
    out = docker("run", "--rm", "--entrypoint", "/bin/bash", cpu_image, "-c", probe).strip().splitlines()
    assert out[0] != "0", "runs as root"
    assert out[1:] == ["heavy: [] onnxruntime: True"], out
