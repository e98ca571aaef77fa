"""The workarounds of BentoML internals (textclf/bentoml_compat/) hold for the installed BentoML:
it is the version they were checked against, and each patch takes hold once applied. A BentoML
upgrade fails here first: re-check each workaround against the new version (the module's table says
what each one is for and where its behaviour is tested), then move CHECKED_AGAINST."""

import os
import subprocess
import sys
from importlib.metadata import version

from tests.conftest import REPO
from textclf import bentoml_compat


def test_bentoml_is_the_version_the_workarounds_were_checked_against() -> None:
    assert version("bentoml") == bentoml_compat.CHECKED_AGAINST


def test_every_patch_takes_hold() -> None:
    bentoml_compat.apply()
    bentoml_compat.apply()  # idempotent: service.py runs at import in every worker
    assert bentoml_compat.patches_in_effect() == {"batch_dispatch": True, "client_error_logs": True, "request_path": True}


# service.py imported as `bentoml serve`'s supervisor imports it (to read the config), or as a
# serving worker does (BentoML's worker script sets server_context.worker_index first).
IMPORT_PROBE = """
import sys
import bentoml
if sys.argv[1] == "worker":
    bentoml.server_context.worker_index = 1
import service
from textclf import bentoml_compat
print("MODEL-ONLY:", sorted(m for m in ("numpy", "tokenizers", "onnxruntime") if m in sys.modules))
print("PATCHED:", bentoml_compat.patches_in_effect())
"""


def _import_service_as(role: str) -> str:
    env = os.environ | {"TEXTCLF_MODEL_NAME": "tiny"}
    process = subprocess.run([sys.executable, "-c", IMPORT_PROBE, role], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-3000:]
    return process.stdout


def test_the_supervisor_imports_the_service_without_patches_or_model_libraries(tiny_export) -> None:
    out = _import_service_as("supervisor")
    assert "MODEL-ONLY: []" in out, out  # numpy and tokenizers cost the supervisor 16 MB RSS
    assert "PATCHED: {'batch_dispatch': False, 'client_error_logs': False, 'request_path': False}" in out, out


def test_a_serving_worker_imports_the_service_with_every_patch(tiny_export) -> None:
    out = _import_service_as("worker")
    assert "PATCHED: {'batch_dispatch': True, 'client_error_logs': True, 'request_path': True}" in out, out
