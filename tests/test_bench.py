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

QUICK_SERVERS = ("ours", "ours-2w", "O", "T")  # the quick mode's ours, O and T, and the 2-worker layout
QUICK_LEVELS = (1, 8)
TARGETS = [
    "ours >= 1.2x O, same int8 file (c=32 and c=64)",
    "p50 at c=1: ours <= O + 1.0 ms",
    "ours >= 5x T (c=32), default and bert-base-size model",
    "ours: zero errors at every level",
    "peak RSS of ours <= 300 MB (default model, mixed texts)",
]

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
               "--cache", str(out / "cache"), "--servers", ",".join(QUICK_SERVERS)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.integration
def test_quick_run_writes_a_complete_json_report(quick_run: Path) -> None:
    result = json.loads((quick_run / "bench.json").read_text())
    assert set(result) == {"meta", "models", "servers", "runs", "rounds", "inprocess", "failures", "ratios", "repeated", "by_length", "targets"}
    assert result["failures"] == []
    assert result["meta"]["quick"] is True
    assert {s["server"] for s in result["servers"]} == set(QUICK_SERVERS)
    assert {s["phase"] for s in result["servers"]} == {"main", "rounds"}
    for server in result["servers"]:
        assert server["peak_rss_mb"] > 0 and server["start_s"] > 0
    # `bentoml serve` and its HTTP workers: TEXTCLF_WORKERS reached the service; the baselines are one process
    processes = {s["server"]: s["processes"] for s in result["servers"] if s["phase"] == "main"}
    assert processes == {"ours": 2, "ours-2w": 3, "O": 1, "T": 1}, processes
    runs = {(r["server"], r["texts"], r["concurrency"]): r for r in result["runs"]}
    expected = {(s, "mixed", c) for s in QUICK_SERVERS for c in QUICK_LEVELS} | {(s, "len16", 8) for s in ("ours", "O", "T")}
    assert set(runs) == expected, set(runs) ^ expected
    for key, run in runs.items():
        assert run["errors"] == 0, (key, run["error_kinds"])
        assert run["ok"] == run["sent"] > 0
        assert run["rps"] > 0 and run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"]
        assert run["peak_rss_mb"] > 0
        ours = key[0].startswith("ours")
        assert set(run["server_cpu_ms_per_ok"]) == ({"worker", "supervisor"} if ours else {"server"}), (key, run["server_cpu_ms_per_ok"])
        # the batcher's runs, from textclf_batch_texts (summed over both workers of ours-2w): every answered text ran once
        assert ("model_runs" in run) == ours, key
        if ours:
            assert 1 <= run["model_runs"] <= run["ok"] and run["texts_per_run"] == round(run["ok"] / run["model_runs"], 2), (key, run)
    for server in ("ours", "ours-2w"):  # one request at a time: each runs alone, at once
        assert runs[(server, "mixed", 1)]["model_runs"] == runs[(server, "mixed", 1)]["ok"]
    limit = result["inprocess"]["default"]["limit"]["mixed"]
    assert limit["rps"] > 0 and limit["best_batch"] in (1, 8)
    assert {"int8", "torch"} <= set(result["inprocess"]["default"]["batch1"])
    assert 0 <= result["inprocess"]["default"]["agreement"]["heldout"]["int8"]["agreement"] <= 1
    assert [r["concurrency"] for r in result["ratios"]["default"]] == list(QUICK_LEVELS)
    assert all(r["ours/T"] and r["ours/O"] and r["ours-2w/O"] and r["ours/L"] for r in result["ratios"]["default"])
    # ours / L per text set, at the level the buckets ran at
    by_length = result["by_length"]["default"]
    assert [(row["texts"], row["concurrency"]) for row in by_length] == [("mixed", 8), ("len16", 8)]
    for row in by_length:
        assert row["ours/L"] == round(runs[("ours", row["texts"], 8)]["rps"] / result["inprocess"]["default"]["limit"][row["texts"]]["rps"], 2)
    # the rounds: ours, O and ours-2w up together, in turns, the order reversed from one block to the next
    turns = [(r["round"], r["concurrency"], r["block"], r["server"]) for r in result["rounds"]]
    forward, backward = ["ours", "O", "ours-2w"], ["ours-2w", "O", "ours"]
    assert turns == [(n, c, b, s) for n in (1, 2) for c in QUICK_LEVELS for b in (1, 2) for s in (forward if (n + b) % 2 == 0 else backward)], turns
    assert all(r["errors"] == 0 and r["ok"] == r["sent"] == max(20, 16 * r["concurrency"]) for r in result["rounds"])
    assert sorted(s["server"] for s in result["servers"] if s["phase"] == "rounds") == sorted(forward)
    for row in result["repeated"]:
        assert row["rounds"] == [1, 2] and row["blocks"] == {s: 4 for s in forward}
        for server in forward:  # a server's figure in a round: the median of its two blocks there
            blocks = [[r for r in result["rounds"] if (r["server"], r["concurrency"], r["round"]) == (server, row["concurrency"], n)] for n in (1, 2)]
            assert row["rps"][server] == [pytest.approx(sum(b["rps"] for b in pair) / 2, abs=1e-3) for pair in blocks]
            assert row["p50_ms"][server] == [pytest.approx(sum(b["p50_ms"] for b in pair) / 2, abs=1e-3) for pair in blocks]
        assert row["ratios"]["ours/O"]["per_round"] == [round(a / b, 2) for a, b in zip(row["rps"]["ours"], row["rps"]["O"])]
    assert [row["concurrency"] for row in result["repeated"]] == list(QUICK_LEVELS)
    # the targets, each judged where the quick run measured it: it has no c=32, c=64 or base model
    targets = {t["target"]: t for t in result["targets"]}
    assert list(targets) == TARGETS
    assert [targets[t]["met"] for t in TARGETS[:1] + TARGETS[2:4]] == [None, None, True]
    c1 = result["repeated"][0]["ours_minus_O_p50_ms"]
    assert targets[TARGETS[1]]["met"] == (c1["median"] <= 1.0) and f"{c1['median']:+.2f} ms" in targets[TARGETS[1]]["measured"]
    rss = max(r["peak_rss_mb"] for r in result["runs"] + result["rounds"] if (r["server"], r["texts"]) == ("ours", "mixed"))
    assert targets[TARGETS[4]]["met"] == (rss <= 300) and f"{rss:,.0f} MB" in targets[TARGETS[4]]["measured"]


@pytest.mark.slow
@pytest.mark.integration
def test_quick_run_writes_the_markdown_table_and_the_chart(quick_run: Path) -> None:
    markdown = (quick_run / "bench.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| c |"))
    for column in ("ours / T", "ours / O", "ours-2w / O", "ours / L"):
        assert column in header
    assert "tiny-onnx:" in markdown
    assert "## Rounds: the close comparisons, servers up together (default model, mixed texts, 2 rounds)" in markdown
    assert "Ours / L by text length (default model, c=8" in markdown
    assert next(line for line in markdown.splitlines() if line.startswith("| texts | tokens |")).count("ours / L") == 1
    assert "runner" not in markdown  # no runner service on the CPU any more
    assert (quick_run / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (quick_run / "logs" / "default-ours.log").is_file()
