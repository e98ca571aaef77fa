"""The GPU images on paper: what each GPU bentofile would install, sized from the package registry,
beside the CPU image `make sizes` measured (reports/image_sizes.json) and the 7.05 GB CUDA torch
image the product started from. No CUDA base image can be pulled here, so nothing is built.

For each GPU bentofile, pip resolves its `python.packages` for the image's platform (Linux x86_64,
CPython 3.11) without installing anything (`pip install --dry-run --report`), and each wheel's size
is read from the registry's JSON index (PEP 691). For the onnxruntime-gpu variant the CUDA
runtime and cuDNN come from the base image; their size is given as that of the same libraries in
the registry's wheels (onnxruntime-gpu's `cuda` and `cudnn` extras), which is what the base image's
CUDA layers hold, compressed. Wheel sizes are download sizes; installed, they are about 1.5-2.5x.

    .venv/bin/python scripts/gpu_sizes.py      (writes reports/gpu_sizes.{md,json})
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import yaml

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "reports"
MB = 1_000_000
INDEX = "https://pypi.org/simple"
SEED_IMAGE_MB = 7050  # the CUDA torch image this product's seed served from (issue 14)
# The image's Linux: Ubuntu 24.04 has glibc 2.39, so wheels tagged up to manylinux_2_39 install.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(5, 40)] + ["manylinux2014_x86_64", "manylinux1_x86_64", "any"]
CUDA_EXTRAS = {"onnxruntime-gpu": "cuda,cudnn"}  # the packages whose extras are the base image's CUDA libraries


def resolve(requirements: list[str]) -> list[dict]:
    """The wheels pip would install for the image's platform: name, version, file, url."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
        # --isolated: the registry only, not wheels that a local pip configuration adds (a CPU torch, say).
        command = [sys.executable, "-m", "pip", "--isolated", "install", "--index-url", INDEX, "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
                   "--only-binary", ":all:", *platforms, "--python-version", "3.11", "--implementation", "cp", *requirements]
        subprocess.run(command, check=True)
        installs = json.loads(report.read_text())["install"]
    return [{"name": i["metadata"]["name"], "version": i["metadata"]["version"], "url": i["download_info"]["url"]} for i in installs]


@cache
def project_files(name: str) -> dict[str, int]:
    """File name -> size in bytes of every file of a project, from the index's JSON API (PEP 691)."""
    request = urllib.request.Request(f"{INDEX}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return {f["filename"]: f["size"] for f in json.load(response)["files"]}


def wheel_bytes(wheel: dict) -> int:
    return project_files(wheel["name"])[unquote(wheel["url"].rsplit("/", 1)[-1])]


def variant(bentofile: str) -> dict:
    spec = yaml.safe_load((REPO / bentofile).read_text())
    packages = spec["python"]["packages"]
    wheels = resolve(packages)
    for wheel in wheels:
        wheel["bytes"] = wheel_bytes(wheel)
    names = {w["name"] for w in wheels}
    base_libraries = []
    for package, extras in CUDA_EXTRAS.items():
        pin = next((p for p in packages if p.startswith(package + "==")), None)
        if pin:
            with_libraries = resolve([pin.replace("==", f"[{extras}]==", 1)])
            base_libraries = [w | {"bytes": wheel_bytes(w)} for w in with_libraries if w["name"] not in names and w["name"].startswith("nvidia-")]
    total = sum(w["bytes"] for w in wheels)
    return {
        "bentofile": bentofile,
        "base_image": spec["docker"]["base_image"],
        "wheels_mb": round(total / MB),
        "largest": [{"name": w["name"], "version": w["version"], "mb": round(w["bytes"] / MB)} for w in sorted(wheels, key=lambda w: -w["bytes"])[:8]],
        "nvidia_wheels_mb": round(sum(w["bytes"] for w in wheels if w["name"].startswith("nvidia-")) / MB),
        "base_cuda_libraries_mb": round(sum(w["bytes"] for w in base_libraries) / MB) if base_libraries else None,
        "packages": len(wheels),
    }


def markdown(variants: list[dict], cpu: dict | None) -> str:
    out = ["# GPU images on paper", "", "Made by `python scripts/gpu_sizes.py` (see its docstring): wheel sizes from the registry, nothing built.", "",
           "| image | base | Python wheels (download) | of which NVIDIA libraries | CUDA + cuDNN the base must carry (as wheels) |",
           "|---|---|--:|--:|--:|"]
    for v in variants:
        base_libraries = "in the wheels" if v["base_cuda_libraries_mb"] is None else f"{v['base_cuda_libraries_mb']:,} MB"
        out.append(f"| `{v['bentofile']}` | `{v['base_image']}` | {v['wheels_mb']:,} MB ({v['packages']} packages) | {v['nvidia_wheels_mb']:,} MB | {base_libraries} |")
    if cpu:
        out.append(f"| CPU image, measured (`bentofile.yaml`) | `python:3.11-slim` stand-in | {cpu['total_mb']:,} MB whole image | – | – |")
    out.append(f"| the seed's CUDA torch image, measured before this product | | {SEED_IMAGE_MB:,} MB whole image | | |")
    out += ["", "Largest wheels:", ""]
    for v in variants:
        out.append(f"- `{v['bentofile']}`: " + ", ".join(f"{w['name']} {w['version']} {w['mb']:,} MB" for w in v["largest"]))
    return "\n".join(out) + "\n"


def main() -> int:
    variants = [variant("bentofile.gpu.yaml"), variant("bentofile.gpu-onnx.yaml")]
    measured = REPORTS / "image_sizes.json"
    cpu = None
    if measured.exists():
        ours = next((image for image in json.loads(measured.read_text())["images"] if image["tag"] == "textclf-cpu:report"), None)
        cpu = {"total_mb": round(ours["total"] / MB)} if ours else None
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "gpu_sizes.json").write_text(json.dumps({"variants": variants, "cpu_image": cpu, "seed_image_mb": SEED_IMAGE_MB}, indent=1))
    text = markdown(variants, cpu)
    (REPORTS / "gpu_sizes.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
