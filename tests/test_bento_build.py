"""`bentoml build` of the three bentofiles against the tests' store: each bento carries only its own
model, its own Python requirements and its own backend module."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import REPO
from tests.lockfile import LOCK, LOCK_INPUT, Pin, excluded_deps, normalize, parse, read_lock

pytestmark = pytest.mark.integration

TAG_LINE = re.compile(r"^__tag__:(\S+)$", re.MULTILINE)


def build(bentofile: str) -> str:
    """Runs `bentoml build` as a user would, from the repository, and returns the new bento's tag."""
    env = os.environ | {
        "TEXTCLF_MODEL_NAME": "tiny",
        "BENTOML_NO_LOCAL_URL": "1",
        "BENTOML_HOME": os.environ["BENTOML_HOME"],  # the tests' private store (conftest)
        "BENTOML_DO_NOT_TRACK": "True",
    }
    command = [sys.executable, "-m", "bentoml", "build", "-f", bentofile, "-o", "tag"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"bentoml build -f {bentofile} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    match = TAG_LINE.search(result.stdout)
    assert match, f"no bento tag in the output of bentoml build:\n{result.stdout[-3000:]}"
    return match.group(1)


class Built:
    def __init__(self, tag: str) -> None:
        import bentoml

        self.bento = bentoml.bentos.get(tag)
        self.path = Path(self.bento.path)
        self.yaml = yaml.safe_load((self.path / "bento.yaml").read_text())

    def model_tags(self) -> set[str]:
        """All models of the bento: BentoML 1.4 lists them per service in bento.yaml."""
        return {str(m.tag) for m in self.bento.info.all_models}

    def yaml_model_tags(self) -> set[str]:
        tags = {m["tag"] for m in self.yaml.get("models") or []}
        for service in self.yaml.get("services") or []:
            tags |= {m["tag"] for m in service.get("models") or []}
        return tags

    def requirements(self) -> set[str]:
        """Normalized distribution names of env/python/requirements.txt."""
        names = set()
        for line in (self.path / "env" / "python" / "requirements.txt").read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
                assert name, line
                names.add(re.sub(r"[-_.]+", "-", name.group(0)).lower())
        return names

    def src_files(self) -> set[str]:
        src = self.path / "src"
        return {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def cpu_bento(tiny_export) -> Built:
    return Built(build("bentofile.yaml"))


@pytest.fixture(scope="module")
def gpu_bento(tiny_export) -> Built:
    return Built(build("bentofile.gpu.yaml"))


@pytest.fixture(scope="module")
def gpu_onnx_bento(tiny_export) -> Built:
    return Built(build("bentofile.gpu-onnx.yaml"))


def containerfile(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The Dockerfile `bentoml containerize` would use (CUDA base images cannot be pulled here)."""
    from bentoml.container import get_containerfile

    monkeypatch.chdir(tempfile.gettempdir())  # bentoml#5566: a Dockerfile template is only read from below the cwd
    get_containerfile(built.bento.tag, output_path=str(tmp_path / "Dockerfile"))
    return (tmp_path / "Dockerfile").read_text()


def test_cpu_bento_carries_exactly_the_onnx_model(cpu_bento: Built, tiny_export) -> None:
    assert cpu_bento.bento.info.name == "text-classifier"
    assert cpu_bento.bento.info.labels.get("variant") == "cpu"
    assert cpu_bento.model_tags() == {str(tiny_export.onnx_tag)}
    assert cpu_bento.yaml_model_tags() == {str(tiny_export.onnx_tag)}
    assert not any(tag.split(":")[0].endswith("-torch") for tag in cpu_bento.yaml_model_tags())


def test_gpu_bento_carries_exactly_the_torch_model(gpu_bento: Built, tiny_export) -> None:
    assert gpu_bento.bento.info.name == "text-classifier-gpu"
    assert gpu_bento.bento.info.labels.get("variant") == "gpu"
    assert gpu_bento.model_tags() == {str(tiny_export.torch_tag)}
    assert gpu_bento.yaml_model_tags() == {str(tiny_export.torch_tag)}


def test_cpu_bento_requirements_have_onnxruntime_and_no_torch(cpu_bento: Built) -> None:
    requirements = cpu_bento.requirements()
    assert {"bentoml", "onnxruntime", "tokenizers"} <= requirements
    assert not requirements & {"torch", "transformers", "onnxruntime-gpu"}, requirements


def test_lock_file_pins_the_serving_set_with_hashes() -> None:
    """requirements/cpu.lock.txt: every package exactly once, == and hashes, wheels only; it satisfies
    pyproject's serving dependencies and cpu.in's pins, and the bentofile builds from it without re-locking."""
    pins, options = read_lock()
    names = [pin.name for pin in pins]
    assert len(names) == len(set(names)), "a package is locked twice"
    assert all(pin.hashes for pin in pins), [pin.name for pin in pins if not pin.hashes]
    assert "--only-binary :all:" in options
    locked = {pin.name: pin.version for pin in pins}
    serving = [Requirement(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]]
    for requirement in serving:
        assert normalize(requirement.name) in locked, requirement
        assert requirement.specifier.contains(locked[normalize(requirement.name)], prereleases=True), (requirement, locked)
    top_level, _ = parse(LOCK_INPUT.read_text())
    assert {pin.name for pin in top_level} == {normalize(r.name) for r in serving}
    assert all(locked[pin.name] == pin.version for pin in top_level), top_level
    assert not set(locked) & {"torch", "transformers", "onnxruntime-gpu", "uv"}
    assert excluded_deps() <= set(locked), "the template excludes a package the lock does not have"
    python = yaml.safe_load((REPO / "bentofile.yaml").read_text())["python"]
    assert python["requirements_txt"] == LOCK.relative_to(REPO).as_posix() and python["lock_packages"] is False, python
    assert "packages" not in python, "python.packages would be ignored next to requirements_txt"


def test_cpu_bento_requirements_are_the_lock_file(cpu_bento: Built) -> None:
    lock_pins, lock_options = read_lock()
    pins, options = parse((cpu_bento.path / "env" / "python" / "requirements.txt").read_text())
    # `bentoml build` always appends a bare pin of the bentoml that built the bento; the template
    # drops it and fails the build unless the lock pins the same version.
    assert pins[-1] == Pin("bentoml", next(p.version for p in lock_pins if p.name == "bentoml"), frozenset())
    assert pins[:-1] == lock_pins, "the bento's requirements differ from the lock (versions, hashes or order)"
    assert options == lock_options
    assert not (cpu_bento.path / "env" / "python" / "requirements.lock.txt").exists(), "bentoml re-locked the packages"


def test_gpu_bento_requirements_have_torch_and_no_onnxruntime(gpu_bento: Built) -> None:
    requirements = gpu_bento.requirements()
    assert {"bentoml", "torch", "transformers", "tokenizers"} <= requirements
    assert not {r for r in requirements if r.startswith("onnxruntime")}, requirements


def test_cpu_bento_source_leaves_out_the_torch_backend(cpu_bento: Built) -> None:
    files = cpu_bento.src_files()
    assert {"service.py", "configs/serving.yaml", "textclf/backends/onnx.py", "textclf/core/loading.py", "textclf/core/batcher.py"} <= files
    assert "textclf/backends/torch.py" not in files


def test_gpu_bento_source_has_the_torch_backend_and_runs_on_cuda(gpu_bento: Built) -> None:
    files = gpu_bento.src_files()
    assert {"service.py", "configs/serving.yaml", "textclf/backends/torch.py"} <= files
    envs = {e["name"]: e["value"] for e in gpu_bento.yaml.get("envs") or []}
    assert envs.get("TEXTCLF_DEVICE") == "cuda"


def test_gpu_dockerfile_starts_from_cuda_runtime_and_installs_cuda_torch(gpu_bento: Built, tmp_path, monkeypatch) -> None:
    dockerfile = containerfile(gpu_bento, tmp_path, monkeypatch)
    base = next(line for line in dockerfile.splitlines() if line.startswith("FROM "))
    assert base.startswith("FROM nvidia/cuda:") and "-runtime-" in base, base
    requirements = gpu_bento.requirements()
    # PyPI's Linux x86_64 torch wheels are CUDA builds; a +cpu local version would mean a CPU wheel.
    torch_pin = next(line for line in (gpu_bento.path / "env/python/requirements.txt").read_text().splitlines() if line.startswith("torch"))
    assert "+cpu" not in torch_pin and "onnxruntime" not in requirements


def test_cpu_dockerfile_is_two_stage_without_build_tools_in_the_final_stage(cpu_bento: Built, tmp_path, monkeypatch) -> None:
    dockerfile = containerfile(cpu_bento, tmp_path, monkeypatch)
    final_stage = dockerfile.split("AS base-container", 1)[1]
    assert "AS builder" in dockerfile and "COPY --from=builder /app /app" in final_stage
    builder = dockerfile.split("AS base-container", 1)[0]
    assert "UV_REQUIRE_HASHES=1" in builder and "install.sh" in builder  # the lock, installed in hash-checking mode
    assert not any(word in final_stage for word in ("build-essential", "git ", "uv pip", "pip install"))
    assert "USER bentoml" in final_stage


def test_gpu_onnx_bento_carries_exactly_the_fp16_model(gpu_onnx_bento: Built, tiny_export) -> None:
    assert gpu_onnx_bento.bento.info.name == "text-classifier-gpu-onnx"
    assert gpu_onnx_bento.bento.info.labels.get("variant") == "gpu-onnx"
    assert gpu_onnx_bento.model_tags() == gpu_onnx_bento.yaml_model_tags() == {str(tiny_export.fp16_tag)}


def test_gpu_onnx_bento_has_onnxruntime_gpu_alone_and_no_torch(gpu_onnx_bento: Built) -> None:
    requirements = gpu_onnx_bento.requirements()
    assert {"bentoml", "onnxruntime-gpu", "tokenizers"} <= requirements
    # With the CPU onnxruntime beside it onnxruntime-gpu shows only its CPU provider.
    assert not requirements & {"onnxruntime", "torch", "transformers", "optimum"}, requirements
    files = gpu_onnx_bento.src_files()
    assert {"service.py", "textclf/backends/onnx.py", "textclf/core/loading.py"} <= files and "textclf/backends/torch.py" not in files


def test_gpu_onnx_dockerfile_starts_from_the_cuda_13_runtime_with_cudnn(gpu_onnx_bento: Built, tmp_path, monkeypatch) -> None:
    """onnxruntime-gpu 1.31.1 is built for CUDA 13 and cuDNN 9 (bentofile.gpu-onnx.yaml says how that was read)."""
    dockerfile = containerfile(gpu_onnx_bento, tmp_path, monkeypatch)
    base = next(line for line in dockerfile.splitlines() if line.startswith("FROM "))
    assert re.match(r"FROM nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu", base), base
    pins = (gpu_onnx_bento.path / "env/python/requirements.txt").read_text()
    assert "onnxruntime-gpu==1.31.1" in pins and "torch" not in pins
