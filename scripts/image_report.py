"""Image size report: the CPU image (docker/Dockerfile.slim.j2) next to BentoML's stock image of the same bento.

Builds both images from the models in the BentoML store (TEXTCLF_MODEL_NAME picks them), measures
each one (total and above the python:3.11-slim base, model, largest layers and packages, docker-save
gzip size, cold start) and writes reports/image_sizes.{md,json,png}; the markdown also goes to
stdout, build logs to stderr. Needs a Docker engine and the base image: scripts/ensure_docker.sh.

    .venv/bin/python scripts/image_report.py
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import bentoml
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from textclf.config import settings

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "reports"
BASE_IMAGE = "python:3.11-slim"
SLIM_TAG = "textclf-cpu:report"
STOCK_TAG = "textclf-cpu-stock:report"
# What the stock bento needs from the repo; its bentofile is bentofile.yaml without the template.
STOCK_SOURCES = ("service.py", "textclf", "configs/serving.yaml", "scripts/containerize.sh", "requirements/cpu.lock.txt")
MODELS_DIR = "/home/bentoml/bento/models"
SITE_PACKAGES = "/app/.venv/lib/python3.11/site-packages"
PREDICT_BODY = json.dumps({"text": "Bonjour tout le monde"}).encode()
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only, never via a proxy
COLD_START_RUNS = 3
COLD_START_TIMEOUT_S = 300
TOP_LAYERS = 5
TOP_PACKAGES = 10
MB = 1_000_000
GPU_NOTE = (
    "GPU variant (bentofile.gpu.yaml): not built here; its nvidia/cuda base image can neither be pulled "
    "nor reproduced on this machine."
)
BASE_NOTE = (
    f"`{BASE_IMAGE}` here is a local stand-in (Debian's python3.11 on a debootstrap bookworm rootfs, "
    "scripts/ensure_docker.sh); the official image (CPython under /usr/local on bookworm-slim) differs "
    "in size, so compare the columns above the base."
)


@dataclass(frozen=True)
class Reference:
    """A size quoted from elsewhere, not measured here."""

    name: str
    total_mb: float
    libs_code_mb: float | None = None


REFERENCES = (
    Reference("hand-made FastAPI + ONNX image", 575, libs_code_mb=230),
    Reference("second hand-made image", 699),
    Reference("multi-stage DistilBERT image", 1125),
)
CUDA_NOTE = "typical CUDA image: 4,000-7,000 MB (not drawn: it would flatten the chart)"
CHART_FOOTNOTE = (
    "Not drawn: typical CUDA image, 4,000-7,000 MB. "
    "The GPU variant of this service is not built here (no CUDA base image on this machine)."
)


@dataclass(frozen=True)
class Layer:
    size: int
    instruction: str
    in_base: bool


@dataclass(frozen=True)
class Package:
    name: str
    size: int


@dataclass(frozen=True)
class ImageMeasurement:
    label: str
    tag: str
    total: int
    base: int
    model: int
    compressed: int
    cold_starts_s: list[float]
    layers: list[Layer]
    packages: list[Package]

    @property
    def above_base(self) -> int:
        return self.total - self.base

    @property
    def libs_code(self) -> int:
        """Above the base, without the model: libraries, service code, image plumbing."""
        return self.above_base - self.model

    @property
    def cold_start_s(self) -> float:
        return statistics.median(self.cold_starts_s)


def run(cmd: list[str]) -> str:
    """Run a command, return its stdout; its stderr goes to ours."""
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def try_run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command that may fail, capturing its output."""
    return subprocess.run(cmd, check=False, capture_output=True, text=True)


def in_image(tag: str, *cmd: str) -> str:
    return run(["docker", "run", "--rm", "--network", "none", "--entrypoint", cmd[0], tag, *cmd[1:]])


def image_id(tag: str) -> str | None:
    found = try_run(["docker", "image", "inspect", "-f", "{{.Id}}", tag])
    return found.stdout.strip() if found.returncode == 0 else None


# ------------------------------------------------------------------------------------------- build


def containerize(ctx: Path, tag: str) -> None:
    """Build a bento from ctx/bentofile.yaml and its image with scripts/containerize.sh; drop the replaced image."""
    old = image_id(tag)
    run(["bash", str(ctx / "scripts" / "containerize.sh"), "bentofile.yaml", tag])
    if old and old != image_id(tag):
        try_run(["docker", "rmi", old])  # kept if something still uses it


def build_stock(tag: str) -> None:
    """The same bento without `dockerfile_template`, built from a temp copy of its sources."""
    bentofile = (REPO / "bentofile.yaml").read_text()
    stock, removed = re.subn(r"(?m)^\s*dockerfile_template:.*\n", "", bentofile)
    assert removed == 1, "bentofile.yaml has no dockerfile_template line"
    with tempfile.TemporaryDirectory(prefix="textclf-stock-") as tmp:
        ctx = Path(tmp)
        for rel in STOCK_SOURCES:
            src, dst = REPO / rel, ctx / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dst)
        (ctx / "bentofile.yaml").write_text(stock)
        (ctx / ".venv").symlink_to(REPO / ".venv")  # containerize.sh runs ./.venv/bin/bentoml
        containerize(ctx, tag)


# ----------------------------------------------------------------------------------------- measure


def image_size(tag: str) -> int:
    return int(run(["docker", "image", "inspect", "-f", "{{.Size}}", tag]))


def history(tag: str) -> list[tuple[int, str]]:
    """(size, created-by) per layer, newest first."""
    out = run(["docker", "history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", tag])
    return [(int(size), created_by) for size, _, created_by in (line.partition("\t") for line in out.splitlines())]


def short_instruction(created_by: str, width: int = 80) -> str:
    text = re.sub(r"^\|\d+ (\S+=\S* )*", "", created_by)  # build args of a RUN
    text = re.sub(r"^/bin/sh -c #\(nop\)\s*", "", text)
    text = re.sub(r"^/bin/(ba)?sh (-\S+ )*(pipefail )?-c ", "RUN ", text)
    text = re.sub(r"(dir|file):[0-9a-f]{64}", r" <\1>", text)
    text = " ".join(text.split()) or "(imported rootfs)"
    return text if len(text) <= width else text[: width - 3] + "..."


def largest_layers(tag: str, base_layers: int) -> list[Layer]:
    rows = history(tag)
    layers = [
        Layer(size, short_instruction(created_by), in_base=i >= len(rows) - base_layers)
        for i, (size, created_by) in enumerate(rows)
    ]
    return sorted(layers, key=lambda layer: layer.size, reverse=True)[:TOP_LAYERS]


def largest_packages(tag: str) -> list[Package]:
    out = in_image(tag, "sh", "-c", f"du -sb {SITE_PACKAGES}/*")
    entries = (line.split("\t", 1) for line in out.splitlines())
    packages = [Package(Path(path).name, int(size)) for size, path in entries]
    return sorted(packages, key=lambda p: p.size, reverse=True)[:TOP_PACKAGES]


def compressed_size(tag: str) -> int:
    """Bytes of `docker save TAG | gzip -c`."""
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
    gzip = subprocess.Popen(["gzip", "-c"], stdin=save.stdout, stdout=subprocess.PIPE)
    assert save.stdout and gzip.stdout
    save.stdout.close()  # gzip holds the read end now
    size = 0
    while chunk := gzip.stdout.read(1 << 20):
        size += len(chunk)
    if gzip.wait() or save.wait():
        raise RuntimeError(f"docker save {tag} | gzip failed")
    return size


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def predict_ok(port: int) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", PREDICT_BODY, {"content-type": "application/json"}
    )
    try:
        with DIRECT.open(request, timeout=5) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):
        return False


def cold_start(tag: str) -> float:
    """Seconds from `docker run` to the first 200 on POST /predict; the container is removed after."""
    port = free_port()
    start = time.monotonic()
    container = run(
        ["docker", "run", "-d", "--network", "host", tag, "--host", "127.0.0.1", "--port", str(port)]
    ).strip()
    try:
        while time.monotonic() - start < COLD_START_TIMEOUT_S:
            if predict_ok(port):
                return time.monotonic() - start
            if run(["docker", "inspect", "-f", "{{.State.Running}}", container]).strip() != "true":
                break
            time.sleep(0.1)
        logs = try_run(["docker", "logs", "--tail", "30", container])
        raise RuntimeError(f"{tag} gave no 200 on /predict:\n{logs.stdout}{logs.stderr}")
    finally:
        try_run(["docker", "rm", "-f", container])


def measure(label: str, tag: str) -> ImageMeasurement:
    print(f"image_report: measuring {tag}", file=sys.stderr)
    return ImageMeasurement(
        label=label,
        tag=tag,
        total=image_size(tag),
        base=image_size(BASE_IMAGE),
        model=int(in_image(tag, "du", "-sb", MODELS_DIR).split()[0]),
        compressed=compressed_size(tag),
        cold_starts_s=[round(cold_start(tag), 2) for _ in range(COLD_START_RUNS)],
        layers=largest_layers(tag, base_layers=len(history(BASE_IMAGE))),
        packages=largest_packages(tag),
    )


# ------------------------------------------------------------------------------------------ report


def mb(size: float) -> str:
    return f"{size / MB:,.0f}"


def markdown(images: list[ImageMeasurement], model: str, run_time_s: float) -> str:
    lines = [
        "# Image sizes",
        "",
        f"Measured here, model `{model}`; MB = 10^6 bytes. {BASE_NOTE}",
        "",
        (
            "| image | total MB | base MB | above base MB | model MB | above base without model MB "
            "| compressed MB (save, gzip) | cold start s (median of 3) |"
        ),
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    lines += [
        f"| {i.label} `{i.tag}` | {mb(i.total)} | {mb(i.base)} | {mb(i.above_base)} | {mb(i.model)} "
        f"| {mb(i.libs_code)} | {mb(i.compressed)} | {i.cold_start_s:.1f} |"
        for i in images
    ]
    lines += [
        "",
        "Cold start: `docker run --network host` to the first 200 on POST /predict "
        '{"text": "Bonjour tout le monde"}; runs: '
        + "; ".join(f"`{i.tag}` " + ", ".join(f"{s:.1f}" for s in i.cold_starts_s) + " s" for i in images)
        + ".",
    ]
    for i in images:
        lines += ["", f"## Largest layers: `{i.tag}`", ""]
        lines += [f"- {mb(l.size)} MB{' (base)' if l.in_base else ''}: `{l.instruction}`" for l in i.layers]
        lines += ["", f"## Largest installed Python packages (du of site-packages/*): `{i.tag}`", ""]
        lines += [f"- {mb(p.size)} MB `{p.name}`" for p in i.packages]
    lines += ["", "## Reference figures (quoted, not measured here)", ""]
    lines += [
        f"- {r.name}: {r.total_mb:,.0f} MB total"
        + (f", about {r.libs_code_mb:,.0f} MB of libraries and code above base and model" if r.libs_code_mb else "")
        for r in REFERENCES
    ]
    lines += [f"- {CUDA_NOTE}", "", GPU_NOTE, "", f"Report run time: {run_time_s / 60:.1f} min.", ""]
    return "\n".join(lines)


def chart(images: list[ImageMeasurement], path: Path) -> None:
    """Horizontal stacked bars on one MB scale: the measured images, then the reference figures."""
    colors = {"base": "#8da0cb", "libraries + code": "#fc8d62", "model": "#66c2a5", "reference": "#bdbdbd"}
    rows = [
        (f"{i.tag}\n{i.label} (measured)", {"base": i.base, "libraries + code": i.libs_code, "model": i.model})
        for i in images
    ]
    for r in REFERENCES:
        parts = {"reference": (r.total_mb - (r.libs_code_mb or 0)) * MB}
        if r.libs_code_mb:
            parts["libraries + code"] = r.libs_code_mb * MB
        rows.append((f"{r.name}\n(reference)", parts))

    fig, ax = plt.subplots(figsize=(12, 6))
    for y, (_, parts) in enumerate(rows):
        is_reference = "reference" in parts
        left = 0.0
        for part, size in parts.items():
            hatch = "//" if is_reference else None
            ax.barh(y, size / MB, left=left, color=colors[part], hatch=hatch, edgecolor="white")
            left += size / MB
        if not is_reference:
            note = "\nbase {:,.0f} + libraries/code {:,.0f} + model {:,.0f}".format(*(s / MB for s in parts.values()))
        elif len(parts) == 2:
            note = f" (about {parts['libraries + code'] / MB:,.0f} MB libraries + code)"
        else:
            note = ""
        ax.text(left + 10, y, f"{left:,.0f} MB{note}", va="center", fontsize=9)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=9)
    ax.invert_yaxis()
    ax.axhline(len(images) - 0.5, color="black", linewidth=0.8, linestyle="--")
    ax.set_xlim(0, max(sum(parts.values()) for _, parts in rows) / MB * 1.5)
    ax.set_xlabel("MB (10^6 bytes)")
    ax.set_title("Docker image size: measured here (stand-in python:3.11-slim base) vs. reference figures")
    labels = {
        "base": "base image",
        "libraries + code": "libraries + code",
        "model": "model",
        "reference": "reference figure (hatched)",
    }
    handles = [
        Patch(facecolor=colors[part], hatch="//" if part == "reference" else None, edgecolor="white", label=label)
        for part, label in labels.items()
    ]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.04), ncol=4, fontsize=9, frameon=False)
    fig.text(0.01, 0.01, CHART_FOOTNOTE, fontsize=8)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def model_tag() -> str:
    return str(bentoml.models.get(settings().onnx_model_tag).tag)


def main() -> None:
    start = time.monotonic()
    containerize(REPO, SLIM_TAG)
    build_stock(STOCK_TAG)
    images = [measure("slim template", SLIM_TAG), measure("stock BentoML", STOCK_TAG)]
    model = model_tag()
    run_time_s = time.monotonic() - start
    report = markdown(images, model, run_time_s)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "image_sizes.md").write_text(report)
    data = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model,
        "units": "bytes",
        "base_image": {"tag": BASE_IMAGE, "stand_in": True, "note": BASE_NOTE},
        "images": [
            {
                **asdict(i),
                "above_base": i.above_base,
                "above_base_without_model": i.libs_code,
                "cold_start_s": i.cold_start_s,
            }
            for i in images
        ],
        "references_mb": [asdict(r) for r in REFERENCES],
        "notes": [CUDA_NOTE, GPU_NOTE],
        "run_time_s": round(run_time_s, 1),
    }
    (REPORTS / "image_sizes.json").write_text(json.dumps(data, indent=2) + "\n")
    chart(images, REPORTS / "image_sizes.png")
    print(report)


if __name__ == "__main__":
    main()
