"""The benchmark harness (bench/): its quick mode end to end on the tiny model, and its text sets.

The quick run proves the harness works (servers start, load runs, reports are written); it asserts
nothing about speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

QUICK_SERVERS = ("ours", "O", "T")
QUICK_LEVELS = (1, 8)


@pytest.mark.slow
def test_length_buckets_hold_texts_of_about_their_token_count(tiny_export) -> None:
    import bentoml
    from tokenizers import Tokenizer

    from bench.texts import bucket_texts, mixed_texts, token_counts

    tokenizer = Tokenizer.from_file(str(Path(bentoml.models.get(tiny_export.onnx_tag).path) / "tokenizer.json"))
    for target in (16, 64):
        counts = token_counts(tokenizer, bucket_texts(tokenizer, target, per_language=1))
        assert len(counts) == 20
        assert all(target * 0.75 <= n <= target for n in counts), counts
    mixed = mixed_texts(200)
    assert mixed == mixed_texts(200)  # the same texts in the same order, run after run
    counts = sorted(token_counts(tokenizer, mixed))
    assert counts[0] < 12 and counts[-1] > 128  # chat lines to paragraphs


@pytest.fixture(scope="module")
def quick_run(tiny_export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "bench", "--quick", "--out", str(out), "--store", os.environ["BENTOML_HOME"], "--model", "tiny",
               "--cache", str(out / "cache")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.integration
def test_quick_run_writes_a_complete_json_report(quick_run: Path) -> None:
    result = json.loads((quick_run / "bench.json").read_text())
    assert {"meta", "models", "servers", "runs", "inprocess", "ratios", "serving_hop", "targets", "failures"} <= set(result)
    assert result["failures"] == []
    assert result["meta"]["quick"] is True
    assert {s["server"] for s in result["servers"]} == set(QUICK_SERVERS)
    for server in result["servers"]:
        assert server["peak_rss_mb"] > 0 and server["start_s"] > 0
    runs = {(r["server"], r["texts"], r["concurrency"]): r for r in result["runs"]}
    expected = {(s, "mixed", c) for s in (*QUICK_SERVERS, "runner") for c in QUICK_LEVELS} | {(s, "len16", 8) for s in QUICK_SERVERS}
    expected.add(("ours", "after-load", 1))  # our service at c=1 again after the higher levels
    assert expected <= set(runs), expected - set(runs)
    for key, run in runs.items():
        assert run["errors"] == 0, (key, run["error_kinds"])
        assert run["ok"] == run["sent"] > 0
        assert run["rps"] > 0 and run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"]
        assert run["peak_rss_mb"] > 0
    limit = result["inprocess"]["default"]["limit"]["mixed"]
    assert limit["rps"] > 0 and limit["best_batch"] in (1, 8)
    assert {"int8", "torch"} <= set(result["inprocess"]["default"]["batch1"])
    assert 0 <= result["inprocess"]["default"]["agreement"]["heldout"]["int8"]["agreement"] <= 1
    hop = result["serving_hop"]["paired"]  # the runner called on its own socket inside the running service
    assert hop["n"] > 0 and hop["service_p50_ms"] > 0 and hop["runner_direct_p50_ms"] > 0
    assert all(runs[("ours", "mixed", c)]["mean_runner_batch"] >= 1 for c in QUICK_LEVELS)
    assert [r["concurrency"] for r in result["ratios"]["default"]] == list(QUICK_LEVELS)
    # a second round of ours and O, in reverse order, whose per-round ratios and medians are reported
    second = [(r["server"], r["concurrency"]) for r in result["rounds"]]
    assert second == [("O", 1), ("O", 8), ("ours", 1), ("ours", 8)], second
    assert all(r["round"] == 2 and r["errors"] == 0 and r["ok"] == r["sent"] > 0 for r in result["rounds"])
    for row in result["repeated"]:
        assert row["rounds"] == [1, 2]
        ours = [run["rps"] for run in result["runs"] + result["rounds"] if (run["server"], run["texts"], run["concurrency"]) == ("ours", "mixed", row["concurrency"])]
        assert row["rps"]["ours"] == ours and row["rps_median"]["ours"] == pytest.approx(sum(ours) / 2, abs=1e-3)
        assert row["ratios"]["ours/O"]["per_round"] == [round(a / b, 2) for a, b in zip(row["rps"]["ours"], row["rps"]["O"])]
    assert [row["concurrency"] for row in result["repeated"]] == list(QUICK_LEVELS)
    assert all(r["ours/T"] and r["ours/O"] and r["ours/L"] for r in result["ratios"]["default"])


@pytest.mark.slow
@pytest.mark.integration
def test_quick_run_writes_the_markdown_table_and_the_chart(quick_run: Path) -> None:
    markdown = (quick_run / "bench.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| c |"))
    for column in ("ours / T", "ours / O", "ours / L"):
        assert column in header
    assert "tiny-onnx:" in markdown
    assert "## Repeated rounds (default model, mixed texts, 2 rounds)" in markdown
    assert (quick_run / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (quick_run / "logs" / "default-ours.log").is_file()
