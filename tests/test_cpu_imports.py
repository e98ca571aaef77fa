"""The CPU service must not need torch or transformers: the CPU image does not carry them."""

import os
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import asyncio, sys
import service
cpu_service = service.TextClassifier()
result = asyncio.run(cpu_service.local.classify(["hello world", "Доброе утро"]))
assert len(result) == 2 and abs(sum(result[0].scores) - 1) < 1e-5
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "optimum"))
print("HEAVY:", heavy)
"""


def test_cpu_service_imports_and_runs_without_torch_or_transformers(tiny_export) -> None:
    env = os.environ | {"TEXTCLF_MODEL_NAME": "tiny"}
    process = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "HEAVY: []" in process.stdout, process.stdout
