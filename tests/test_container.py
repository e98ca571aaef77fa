"""The CPU image, built by the real `bentoml containerize` from the shipped bentofile, run for real: as
production should run it, with a read-only root filesystem and one tmpfs at /tmp."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import httpx
import pytest

from tests.conftest import docker, free_port
from tests.lockfile import excluded_deps, locked_versions, normalize

pytestmark = pytest.mark.container
BASE_IMAGE = "python:3.11-slim"  # the bentofile's docker.python_version, BentoML's default base
# The only writable place the server gets: the image keeps BENTOML_HOME and tempfile's files there.
TMPFS = "/tmp:rw,noexec,nosuid,nodev,size=64m"
TOOLING = {"pip", "setuptools", "wheel"}  # allowed in the venv though not locked (uv venv adds none)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def image_env(image: str) -> dict[str, str]:
    return dict(e.split("=", 1) for e in json.loads(docker("image", "inspect", "-f", "{{json .Config.Env}}", image)))


@pytest.fixture(scope="module")
def container(cpu_image: str) -> Iterator[str]:
    """The one container of these tests (name `textclf-test-<port>`): read-only root, a tmpfs at /tmp."""
    port = free_port()
    name = f"textclf-test-{port}"
    docker(
        "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", TMPFS,
        cpu_image, "--host", "127.0.0.1", "--port", str(port),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if docker("inspect", "-f", "{{.State.Running}}", name).strip() != "true":
                pytest.fail("container exited:\n" + logs(name)[-3000:])
            time.sleep(0.5)
        else:
            pytest.fail("container not ready in 120 s:\n" + logs(name)[-3000:])
        yield url
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def logs(name: str) -> str:
    done = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
    return done.stdout + done.stderr


def name_of(url: str) -> str:
    return f"textclf-test-{url.rsplit(':', 1)[1]}"


def exec_in(url: str, *command: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    """Runs a command in the test container (as the image's user unless `user` is given)."""
    return subprocess.run(
        ["docker", "exec", *(["-u", user] if user else []), name_of(url), *command], capture_output=True, text=True, timeout=60
    )


def test_container_answers_predictions(container: str) -> None:
    single = httpx.post(f"{container}/predict", json={"text": "Bonjour tout le monde"}, timeout=30)
    assert single.status_code == 200 and single.json()["label"] == "fr"
    batch = httpx.post(f"{container}/predict", json={"texts": ["Guten Morgen, wie geht es dir?", "こんにちは"]}, timeout=30)
    assert [p["label"] for p in batch.json()] == ["de", "ja"]
    bad = httpx.post(f"{container}/predict", json={"text": " "}, timeout=30)
    assert bad.status_code == 400 and "error" in bad.json()
    metrics = httpx.get(f"{container}/metrics", timeout=10)
    # The counters are summed over the workers' files in the Prometheus multiprocess directory (on the tmpfs).
    assert metrics.status_code == 200
    assert re.search(r'bentoml_service_request_total\{endpoint="/predict",http_response_code="200"[^}]*\} [1-9]', metrics.text)


def test_container_runs_on_a_read_only_root_filesystem(container: str) -> None:
    name = name_of(container)
    host_config = json.loads(docker("inspect", "-f", "{{json .HostConfig}}", name))
    assert host_config["ReadonlyRootfs"] is True and set(host_config["Tmpfs"]) == {"/tmp"}, host_config
    # Nobody, root included, writes outside /tmp: not the venv, the bento (owned by the service
    # user), its home or /.
    for path in ("/app/x", "/app/.venv/x", "/home/bentoml/bento/x", "/home/bentoml/bento/models/x", "/home/bentoml/x", "/x"):
        for user in (None, "0"):
            touched = exec_in(container, "touch", path, user=user)
            assert touched.returncode != 0 and "Read-only file system" in touched.stderr, (path, user, touched)
    # What the server wrote went to the tmpfs: BENTOML_HOME with the Prometheus files, the sockets.
    tmp = exec_in(
        container, "sh", "-c", 'cd /tmp && ls -A && ls -A "$BENTOML_HOME/prometheus_multiproc_dir" && echo $BENTOML_HOME'
    )
    assert tmp.returncode == 0, tmp.stderr
    assert tmp.stdout.strip().splitlines()[-1] == "/tmp/bentoml"
    assert any(line.endswith(".db") for line in tmp.stdout.splitlines()), tmp.stdout
    # Nothing complained about a read-only path (onnxruntime's telemetry would, were it on).
    server_log = logs(name)
    for complaint in ("Read-only file system", "Permission denied", "Failed to persist telemetry"):
        assert complaint not in server_log, server_log[-3000:]


def test_image_runs_as_non_root_without_torch_compilers_cuda_or_git(cpu_image: str, container: str) -> None:
    assert docker("image", "inspect", "-f", "{{.Config.User}}", cpu_image).strip() == "bentoml"
    probe = (
        "id -u; "
        "for tool in gcc cc g++ make git uv; do command -v $tool; done; "
        "find / -xdev \\( -name 'libcudart*' -o -name 'libcublas*' -o -name 'libcudnn*' -o -name 'libnccl*' \\) -print; "
        "python -c \"import importlib.util as u; print('heavy:', [m for m in ('torch', 'transformers', 'optimum', 'onnxruntime_gpu') "
        "if u.find_spec(m)], 'onnxruntime:', bool(u.find_spec('onnxruntime')))\""
    )
    done = exec_in(container, "/bin/bash", "-c", probe)
    out = done.stdout.strip().splitlines()
    assert out[0] != "0", "runs as root"
    assert out[1:] == ["heavy: [] onnxruntime: True"], out


def test_image_has_exactly_the_locked_package_versions(container: str) -> None:
    """Every distribution the service's python can import is in the lock at the locked version, and
    every locked one is there but the template's `excluded_deps`."""
    listing = (
        "import importlib.metadata as m, json; print(json.dumps([[d.metadata['Name'], d.version] for d in m.distributions()]))"
    )
    done = exec_in(container, "python", "-c", listing)
    assert done.returncode == 0, done.stderr
    installed: dict[str, str] = {}
    for dist, version in json.loads(done.stdout):
        assert normalize(dist) not in installed, f"{dist} installed twice"
        installed[normalize(dist)] = version
    locked = locked_versions()
    excluded = excluded_deps()
    assert excluded <= set(locked)
    expected = {name: version for name, version in locked.items() if name not in excluded}
    assert {name: v for name, v in installed.items() if name not in TOOLING} == expected


# ------------------------------------------------------------------------------- image layers
# Our layers are the image's layers after the base image's. What the base itself carries (the local
# stand-in's CA bundle, apt sources, SSL environment) is the base's business, not checked here.

CACHE = re.compile(r"(^|/)\.cache(/|$)|^var/cache/apt/.+\.(deb|bin)$")
SECRET_NAMES = re.compile(
    r"(^|/)(\.git|\.env(\.[^/]*)?|\.netrc|\.pypirc|\.git-credentials|\.npmrc|\.docker|pip\.conf|uv\.toml|id_(rsa|dsa|ecdsa|ed25519)[^/]*)(/|$)"
)
KEY_FILES = re.compile(r"\.(pem|key|crt|cer|p12|pfx|jks|keystore)$")
# Certificate stores and apt configuration (sources, keyrings, auth.conf): the base's, never ours.
HOST_PLACES = re.compile(
    r"^(etc/ssl|etc/pki|usr/local/share/ca-certificates|usr/share/ca-certificates|etc/ca-certificates|etc/apt)(/|$)"
)
ENV_SECRETS = re.compile(r"SSL|CERT|CA_BUNDLE|^PIP_|^UV_|TOKEN|SECRET|PASSW|CREDENTIAL|API_KEY|^AWS_|NETRC")
URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


@pytest.fixture(scope="module")
def own_layers(
    cpu_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[tuple[tarfile.TarFile, list[tarfile.TarInfo]]]]:
    """The image's own layers (after the base's), from `docker save`, each with its members."""
    saved = tmp_path_factory.mktemp("image") / "image.tar"
    docker("save", "-o", str(saved), cpu_image, timeout=300)
    base = json.loads(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", BASE_IMAGE))
    with tarfile.open(saved) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))[0]
        diff_ids = json.load(archive.extractfile(manifest["Config"]))["rootfs"]["diff_ids"]
        assert diff_ids[: len(base)] == base, f"{cpu_image} is not built on this {BASE_IMAGE}"
        layers = []
        for path in manifest["Layers"][len(base) :]:
            layer = tarfile.open(fileobj=archive.extractfile(path))
            layers.append((layer, layer.getmembers()))
        assert layers, "no layers above the base"
        yield layers
    saved.unlink()


def test_image_layers_carry_no_caches_secrets_or_host_certificates(cpu_image: str, own_layers) -> None:
    host_bundle = hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest() if HOST_CA_BUNDLE.is_file() else None
    found: list[str] = []
    for layer, members in own_layers:
        for member in members:
            path = PurePosixPath(member.name.removeprefix("./")).as_posix()
            if PurePosixPath(path).name.startswith(".wh."):
                continue  # a deletion
            if CACHE.search(path) or SECRET_NAMES.search(path) or HOST_PLACES.search(path):
                found.append(path)
            elif path.startswith("var/lib/apt/lists/") and member.isfile() and member.size and PurePosixPath(path).name != "lock":
                found.append(path)
            elif path.startswith("tmp/") and not member.isdir():
                found.append(path)  # builder leftovers
            elif KEY_FILES.search(path) and member.isfile():
                data = layer.extractfile(member).read()
                if b"PRIVATE KEY" in data or path.endswith((".p12", ".pfx", ".jks", ".keystore")):
                    found.append(path)
                elif host_bundle and hashlib.sha256(data).hexdigest() == host_bundle:
                    found.append(f"{path} (the host's CA bundle)")
    assert not found, found
    # No build-time credentials or certificate settings in the image's own configuration either.
    base_env = image_env(BASE_IMAGE)
    own_env = {key: value for key, value in image_env(cpu_image).items() if base_env.get(key) != value}
    assert not [key for key in own_env if ENV_SECRETS.search(key)], own_env
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", cpu_image).splitlines()
    base_history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", BASE_IMAGE).splitlines()
    own_steps = "\n".join(history[: len(history) - len(base_history)])  # newest first
    assert "USER bentoml" in own_steps
    assert not URL_CREDENTIALS.search(own_steps) and not re.search(r"(?i)(token|password|secret)=\S", own_steps), own_steps
