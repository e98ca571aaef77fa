"""The steps of scripts/gpu_check.sh that are Python: the training data, the CPU reference, and one
GPU service served, checked against the reference and timed.

    python scripts/gpu_check.py data OUT.jsonl
    python scripts/gpu_check.py reference DATA.jsonl OUT.json        (development venv: the int8 CPU model)
    python scripts/gpu_check.py serve service:NAME REFERENCE.json LOG  (GPU venv)
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
LANGUAGES = ("de", "en", "es", "fr", "ja", "ru")
MODEL = "gpucheck"
MIN_AGREEMENT = 0.98  # fp16 (ONNX) or fp16 (torch) on the GPU against int8 on the CPU, same labels
SCORE_TOLERANCE = 0.05
TIMED = {1: 50, 32: 20}  # batch size -> requests timed


def write_data(out: Path) -> None:
    sentences = REPO / "train_export" / "default_corpus" / "sentences"
    with out.open("w", encoding="utf-8") as f:
        for language in LANGUAGES:
            for line in (sentences / f"{language}.txt").read_text("utf-8").splitlines():
                f.write(json.dumps({"text": line, "label": language}, ensure_ascii=False) + "\n")


def held_out() -> list[str]:
    return [line for language in LANGUAGES for line in (REPO / "tests/data/heldout" / f"{language}.txt").read_text("utf-8").splitlines()]


def write_reference(out: Path) -> None:
    import bentoml

    from textclf.config import load_settings
    from textclf.core.loading import onnx_classifier

    model = bentoml.models.get(f"{MODEL}-onnx:latest")
    classifier = onnx_classifier(model.path, model.info.metadata, load_settings(environ={}))
    texts = held_out()
    probabilities, _ = classifier.probabilities(texts)
    out.write_text(json.dumps({"labels": classifier.labels, "texts": texts, "scores": probabilities.tolist()}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_check(service: str, reference: dict, log: Path) -> None:
    import httpx

    port = free_port()
    env = os.environ | {"TEXTCLF_MODEL_NAME": MODEL, "TEXTCLF_DEVICE": "cuda"}
    command = [sys.executable, "-m", "bentoml", "serve", service, "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            if process.poll() is not None or time.monotonic() - started > 300:
                raise SystemExit(f"{service} did not become ready:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        ready_s = time.monotonic() - started
        labels, texts = reference["labels"], reference["texts"]
        answers = []
        for start in range(0, len(texts), 32):
            response = httpx.post(f"{url}/predict", json={"texts": texts[start : start + 32], "top_k": len(labels)}, timeout=60)
            response.raise_for_status()
            answers += response.json()
        same = sum(a["label"] == labels[max(range(len(labels)), key=s.__getitem__)] for a, s in zip(answers, reference["scores"], strict=True))
        worst = max(abs({x["label"]: x["score"] for x in a["top_k"]}[label] - s[i]) for a, s in zip(answers, reference["scores"], strict=True)
                    for i, label in enumerate(labels))
        timings = {}
        for batch, count in TIMED.items():
            times = []
            for i in range(count):
                body = {"texts": [texts[(i * batch + j) % len(texts)] for j in range(batch)]}
                began = time.perf_counter()
                httpx.post(f"{url}/predict", json=body, timeout=60).raise_for_status()
                times.append((time.perf_counter() - began) * 1000)
            timings[batch] = statistics.median(times[2:])  # the first calls warm the kernels up
        agreement = same / len(texts)
        print(f"{service}: ready in {ready_s:.0f} s; same label as the int8 CPU model on {agreement:.2%} of {len(texts)} texts, "
              f"largest score difference {worst:.3f}; p50 latency batch 1 {timings[1]:.1f} ms, batch 32 {timings[32]:.1f} ms")
        if agreement < MIN_AGREEMENT or worst > SCORE_TOLERANCE:
            raise SystemExit(f"{service}: answers differ from the CPU model's beyond the bounds ({MIN_AGREEMENT:.0%}, {SCORE_TOLERANCE})")
    finally:
        process.terminate()
        process.wait(timeout=60)


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "data":
        write_data(Path(args[0]))
    elif command == "reference":
        write_reference(Path(args[1]))
    elif command == "serve":
        serve_and_check(args[0], json.loads(Path(args[1]).read_text()), Path(args[2]))
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
