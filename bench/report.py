"""The run's results as JSON, a markdown report with the ratio tables, and a PNG chart."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

SERVER_ORDER = ("ours", "ours-2w", "runner", "ours-seed", "O", "O-seed", "T")


def _runs(result: dict, model: str, texts: str) -> dict[tuple[str, int], dict]:
    return {(r["server"], r["concurrency"]): r for r in result["runs"] if r["model"] == model and r["texts"] == texts}


def _limit(result: dict, model: str, texts: str) -> dict | None:
    return (result["inprocess"].get(model) or {}).get("limit", {}).get(texts)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def _cpu(run: dict) -> str:
    roles = run.get("server_cpu_ms_per_ok") or {}
    if not roles:
        return "–"
    total = f"{sum(roles.values()):.1f}"
    parts = [f"{roles[r]:.1f}" for r in ("api", "runner", "supervisor") if r in roles]
    return total + (f" ({' + '.join(parts)})" if len(parts) > 1 else "")


def _kinds(run: dict) -> str:
    return " (" + ", ".join(f"{n}x {k}" for k, n in run["error_kinds"].items()) + ")" if run["errors"] else ""


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---" if a == "l" else "--:" for a in align]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |", *("| " + " | ".join(row) + " |" for row in rows)]


def ratios(result: dict, model: str, texts: str = "mixed") -> list[dict]:
    """Per concurrency level: requests/s of each server and ours / T, ours / O, ours / O-seed, ours / L."""
    runs = _runs(result, model, texts)
    limit = _limit(result, model, texts)
    out = []
    for c in sorted({c for (_, c) in runs}):
        rps = {name: runs[(name, c)]["rps"] for name in SERVER_ORDER if (name, c) in runs}
        ours = rps.get("ours")
        out.append({
            "concurrency": c,
            "rps": rps,
            "L": limit["rps"] if limit else None,
            "ours/T": _ratio(ours, rps.get("T")),
            "ours/O": _ratio(ours, rps.get("O")),
            "ours-2w/O": _ratio(rps.get("ours-2w"), rps.get("O")),
            "ours/O-seed": _ratio(ours, rps.get("O-seed")),
            "ours-seed/O-seed": _ratio(rps.get("ours-seed"), rps.get("O-seed")),
            "ours/L": _ratio(ours, limit["rps"] if limit else None),
        })
    return out


def serving_hop(result: dict, model: str = "default") -> dict:
    """Median latency at c=1 along the serving path: the model in-process at batch 1 (no HTTP), the
    runner called directly on its socket, the full service (HTTP layer -> runner), baseline O on the
    same file; and the paired measurement made inside one running service."""
    runs = _runs(result, model, "mixed")
    batch1 = (result["inprocess"].get(model) or {}).get("batch1", {}).get("int8")
    paired = next((s.get("hop") for s in result["servers"] if s["model"] == model and s["server"] == "ours"), None)
    p50 = {name: runs[(name, 1)]["p50_ms"] for name in ("ours", "runner", "O") if (name, 1) in runs}
    after = _runs(result, model, "after-load").get(("ours", 1))
    inproc = batch1["p50_ms"] if batch1 else None

    def diff(a: float | None, b: float | None) -> float | None:
        return round(a - b, 3) if a is not None and b is not None else None

    return {
        "paired": paired,
        "hop_ms": paired["hop_p50_ms"] if paired else diff(p50.get("ours"), p50.get("runner")),
        "inprocess_batch1_p50_ms": inproc,
        "runner_direct_p50_ms": p50.get("runner"),
        "ours_p50_ms": p50.get("ours"),
        "O_p50_ms": p50.get("O"),
        "ours_after_load_p50_ms": after["p50_ms"] if after else None,
        "ours_minus_O_ms": diff(p50.get("ours"), p50.get("O")),
        "ours_minus_inprocess_ms": diff(p50.get("ours"), inproc),
        "O_minus_inprocess_ms": diff(p50.get("O"), inproc),
        "runner_minus_inprocess_ms": diff(p50.get("runner"), inproc),
    }


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def repeated(result: dict, model: str = "default") -> list[dict]:
    """Per level measured in more than one round: each round's requests/s and p50 of every server, their
    medians, and each round's ratios with their median. A ratio is taken within one round, where the
    two servers ran a minute or two apart, not across the whole run."""
    from bench.suite import ROUND_SERVERS

    by: dict[tuple[str, int], dict[int, dict]] = {}
    for r in result["runs"] + result.get("rounds", []):
        if r["model"] == model and r["texts"] == "mixed" and r["server"] in ROUND_SERVERS:
            by.setdefault((r["server"], r["concurrency"]), {})[r.get("round", 1)] = r
    numbers = sorted({n for per_round in by.values() for n in per_round})
    levels = sorted({c for (_, c), per_round in by.items() if len(per_round) > 1})
    out = []
    for c in levels:
        servers = [s for s in ROUND_SERVERS if (s, c) in by]
        rps = {s: [by[(s, c)].get(n, {}).get("rps") for n in numbers] for s in servers}
        p50 = {s: [by[(s, c)].get(n, {}).get("p50_ms") for n in numbers] for s in servers}
        per_round = {name: [_ratio(a, b) for a, b in zip(rps.get(top, []), rps.get(bottom, []))]
                     for name, (top, bottom) in {"ours/O": ("ours", "O"), "ours-2w/O": ("ours-2w", "O"), "ours/O-seed": ("ours", "O-seed")}.items()
                     if top in rps and bottom in rps}
        row = {"concurrency": c, "rounds": numbers, "rps": rps, "rps_median": {s: _median(v) for s, v in rps.items()}, "p50_ms": p50,
               "p50_median_ms": {s: _median(v) for s, v in p50.items()},
               "errors": {s: sum(r["errors"] for r in by[(s, c)].values()) for s in servers},
               "ratios": {name: {"per_round": v, "median": _median(v)} for name, v in per_round.items()}}
        if c == 1 and "ours" in p50 and "O" in p50:  # the c=1 latency target
            deltas = [None if a is None or b is None else round(a - b, 3) for a, b in zip(p50["ours"], p50["O"])]
            row["ours_minus_O_p50_ms"] = {"per_round": deltas, "median": _median(deltas)}
        out.append(row)
    return out


def targets(result: dict, level: int = 32) -> list[dict]:
    """The orientation targets of the issue, measured; nothing is asserted. Where the servers ran in
    several rounds, the medians of the per-round figures count."""
    rows = {r["concurrency"]: r for r in ratios(result, "default")}
    at = rows.get(level, {})
    hop = serving_hop(result)
    ours_levels = [r for r in result["runs"] + result.get("rounds", []) if r["model"] == "default" and r["texts"] == "mixed" and r["server"] == "ours"]
    errors = [r for r in ours_levels if r["errors"]]
    check = lambda v, goal: None if v is None else v >= goal  # noqa: E731
    rounds = {r["concurrency"]: r for r in repeated(result)}

    def ratio(name: str, c: int) -> tuple[float | None, str]:
        """The median over rounds if there were rounds at c, else the single run's ratio."""
        if c in rounds and name in rounds[c]["ratios"]:
            v = rounds[c]["ratios"][name]
            return v["median"], f"{_x(v['median'])} (rounds: {', '.join(_x(x) for x in v['per_round'])})"
        single = rows.get(c, {}).get(name)
        return single, _x(single)

    serving = [ratio("ours/O", c) for c in (level, 64)]
    seed, seed_text = ratio("ours/O-seed", level)
    ours_rps = rounds[level]["rps_median"].get("ours") if level in rounds else (at.get("rps") or {}).get("ours")
    over_t, over_l = _ratio(ours_rps, (at.get("rps") or {}).get("T")), _ratio(ours_rps, at.get("L"))
    median_note = " (ours: median of the rounds)" if level in rounds else ""
    delta, delta_text = hop["ours_minus_O_ms"], "–" if hop["ours_minus_O_ms"] is None else f"{hop['ours_minus_O_ms']:+.2f} ms"
    if 1 in rounds and "ours_minus_O_p50_ms" in rounds[1]:
        v = rounds[1]["ours_minus_O_p50_ms"]
        delta, delta_text = v["median"], f"{v['median']:+.2f} ms (rounds: {', '.join('–' if x is None else f'{x:+.2f}' for x in v['per_round'])})"
    if hop["ours_after_load_p50_ms"] is not None and hop["O_p50_ms"] is not None:
        delta_text += f"; {hop['ours_after_load_p50_ms'] - hop['O_p50_ms']:+.2f} ms after load in the first round"
    return [
        {"target": f"ours >= 0.95x O, same int8 file (c={level} and 64)", "measured": f"c={level}: {serving[0][1]}; c=64: {serving[1][1]}",
         "met": None if serving[0][0] is None or serving[1][0] is None else min(serving[0][0], serving[1][0]) >= 0.95},
        {"target": "p50 at c=1: ours <= O + 1.5 ms", "met": None if delta is None else delta <= 1.5, "measured": delta_text},
        {"target": f"ours >= 1.3x O on the seed-recipe model (c={level})", "measured": seed_text, "met": check(seed, 1.3)},
        {"target": f"ours >= 5x T (c={level})", "measured": _x(over_t) + median_note, "met": check(over_t, 5)},
        {"target": f"ours >= 90% of L (c={level})", "measured": _x(over_l) + median_note, "met": check(over_l, 0.9)},
        {"target": "ours: zero errors at every level", "measured": f"{sum(r['errors'] for r in errors)} errors in {len(ours_levels)} levels",
         "met": None if not ours_levels else not errors},
    ]


# --- markdown ------------------------------------------------------------------------------------


def markdown(result: dict, chart: str | None) -> str:
    meta = result["meta"]
    m = meta["machine"]
    lines = [
        "# Serving benchmark: our CPU service against the usual alternatives",
        "",
        f"{'Quick run (a harness check; its figures mean nothing)' if meta['quick'] else 'Full run'} of {meta['started']}, "
        f"{meta['total_s']:.0f} s. Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime {m['onnxruntime']}. "
        f"Load average (1 min) {meta['load_start'][0]:.1f} at start, {meta['load_end'][0]:.1f} at end: above the core count means other "
        "work shared the cores and the figures are noisy.",
        "",
        "Every server ran alone on 127.0.0.1, one after another, with 2 intra-op threads (onnxruntime or torch) and one worker, "
        "warmed up first, with the same texts in the same order. Load: closed loop (each of c clients sends its next request when "
        f"its answer arrives), {meta['config']['requests']} requests per level or {meta['config']['max_seconds']:.0f} s, whichever "
        "comes first (bounded levels are marked *). The load generator runs on the same cores as the server (its CPU time is in the JSON).",
        "",
        "Servers:",
        "",
    ]
    from bench.suite import DESCRIPTIONS

    present = {r["server"] for r in result["runs"]} | {s["server"] for s in result["servers"]}
    lines += [f"- **{s}**: {DESCRIPTIONS[s]}" for s in SERVER_ORDER if s in present]
    lines.append("- **L**: the same int8 ONNX file called in-process through the service's own code (tokenize, pad per batch, run), "
                 "no HTTP, at its best batch size")
    for key, model in result["models"].items():
        mixed = model["texts"]["mixed"]
        lines += ["", f"## Model `{model['tag']}` ({key}): {model['int8_mb']} MB int8, max_length {model['max_length']}", "",
                  f"Mixed texts: {mixed['count']} texts in {mixed['languages']} languages, chat lines to paragraphs; tokens p50 "
                  f"{mixed['tokens_p50']}, mean {mixed['tokens_mean']}, p90 {mixed['tokens_p90']}, max {mixed['tokens_max']} "
                  f"({mixed['truncated_share']:.0%} cut at max_length).", ""]
        rows = ratios(result, key)
        if rows:
            names = [n for n in SERVER_ORDER if any(n in r["rps"] for r in rows)]
            columns = [c for c in ("ours/T", "ours/O", "ours-2w/O", "ours/O-seed", "ours-seed/O-seed", "ours/L") if any(r[c] is not None for r in rows)]
            header = ["c", *[f"{n} req/s" for n in names], "L req/s", *[c.replace("/", " / ") for c in columns]]
            body = [[str(r["concurrency"]), *[_fmt(r["rps"].get(n)) for n in names], _fmt(r["L"]), *[_x(r[c]) for c in columns]] for r in rows]
            lines += ["Throughput (requests/s) and ratios:", "", *_table(header, body), ""]
        runs = [r for r in result["runs"] if r["model"] == key and r["texts"] in ("mixed", "after-load")]
        if runs:
            body = [[r["server"] + (" after load" if r["texts"] == "after-load" else ""), str(r["concurrency"]),
                     _fmt(r["rps"]) + ("*" if r["time_bounded"] else ""), _fmt(r["p50_ms"], 2), _fmt(r["p95_ms"], 2),
                     _fmt(r["p99_ms"], 2), f"{r['errors']}/{r['sent']}" + _kinds(r), _fmt(r["peak_rss_mb"], 0), _fmt(r.get("mean_runner_batch"), 1),
                     _cpu(r), f"{100 * r['client_cpu_s'] / r['duration_s']:.0f}%" if r["duration_s"] else "–"]
                    for r in sorted(runs, key=lambda r: (SERVER_ORDER.index(r["server"]), r["texts"] == "after-load", r["concurrency"]))]
            lines += ["Latency, errors, memory (mean runner batch: requests per adaptive batch of our runner, from its /metrics; "
                      "\"after load\": c=1 again at the end, after the higher levels; server CPU: CPU time of the server's processes per answer, "
                      "split api + runner (+ supervisor) for ours; client CPU: the load generator's share of one core):", "",
                      *_table(["server", "c", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors/sent", "peak RSS MB", "mean runner batch",
                               "server CPU ms/answer", "client CPU"], body), ""]
        lines += _scaling(result, key)
    lines += _rounds_section(result)
    lines += _hop_section(result)
    lines += _inprocess_section(result)
    lines += _servers_section(result)
    if not meta["quick"]:
        lines += ["## Orientation targets (2 cores)", "",
                  *_table(["target", "measured", "met"], [[t["target"], t["measured"], {True: "yes", False: "**no**", None: "–"}[t["met"]]] for t in targets(result)], "lrl"), ""]
    lines += ["## Where the time went", "", *_table(["step", "seconds"], [[k, f"{v:.0f}"] for k, v in meta["time_spent_s"].items()]), ""]
    if result["failures"]:
        lines += ["## Failures", "", *[f"- {f}" for f in result["failures"]], ""]
    if chart:
        lines += [f"![benchmark chart]({chart})", ""]
    return "\n".join(lines)


def _scaling(result: dict, key: str) -> list[str]:
    sets = [t for t in result["models"][key]["texts"] if t != "mixed"]
    body = []
    for texts in sets:
        runs = {r["server"]: r for r in result["runs"] if r["model"] == key and r["texts"] == texts}
        if not runs:
            continue
        limit = _limit(result, key, texts)
        info = result["models"][key]["texts"][texts]
        served = min(info["tokens_mean"], result["models"][key]["max_length"])
        rps = {n: runs[n]["rps"] if n in runs else None for n in ("ours", "O", "T")}
        c = next(iter(runs.values()))["concurrency"]
        body.append([texts.removeprefix("len"), f"{served:.0f}", str(c), *[_fmt(rps[n]) + ("*" if n in runs and runs[n]["time_bounded"] else "") for n in rps],
                     _fmt(limit["rps"] if limit else None), _x(_ratio(rps["ours"], rps["O"])), _x(_ratio(rps["ours"], rps["T"])),
                     _x(_ratio(rps["ours"], limit["rps"] if limit else None)), *[_fmt(runs[n]["p50_ms"], 1) if n in runs else "–" for n in ("ours", "O")],
                     str(sum(r["errors"] for r in runs.values()))])
    if not body:
        return []
    return [f"Scaling with text length ({key} model; tokens as sent, then as run after the cut at max_length):", "",
            *_table(["tokens", "run", "c", "ours req/s", "O req/s", "T req/s", "L req/s", "ours / O", "ours / T", "ours / L", "ours p50 ms", "O p50 ms", "errors"], body), ""]


def _rounds_section(result: dict) -> list[str]:
    rows = repeated(result)
    if not rows:
        return []
    numbers = rows[0]["rounds"]
    each = lambda values, digits=1: ", ".join(_fmt(v, digits) for v in values)  # noqa: E731
    body = [[s, str(r["concurrency"]), each(r["rps"][s]), _fmt(r["rps_median"][s]), each(r["p50_ms"][s], 2), _fmt(r["p50_median_ms"][s], 2), str(r["errors"][s])]
            for r in rows for s in r["rps"]]
    ratio_body = [[name, str(r["concurrency"]), ", ".join(_x(v) for v in ratio["per_round"]), _x(ratio["median"])] for r in rows for name, ratio in r["ratios"].items()]
    ratio_body += [["ours p50 - O p50 (ms)", str(r["concurrency"]), each(r["ours_minus_O_p50_ms"]["per_round"], 2), _fmt(r["ours_minus_O_p50_ms"]["median"], 2)]
                   for r in rows if "ours_minus_O_p50_ms" in r]
    return [f"## Repeated rounds (default model, mixed texts, {len(numbers)} rounds)", "",
            "The servers the serving-cost and seed-recipe targets compare were started again and measured at these levels in later rounds, "
            "in alternating order (round 2 backwards, round 3 forwards, ...); round 1 is the main pass above. A ratio is taken inside one "
            "round, where the two servers ran minutes apart; the targets use the median of those.", "",
            *_table(["server", "c", "req/s by round", "median req/s", "p50 ms by round", "median p50 ms", "errors"], body), "",
            *_table(["ratio", "c", "by round", "median"], ratio_body), ""]


def _hop_section(result: dict) -> list[str]:
    hop = serving_hop(result)
    if hop["ours_p50_ms"] is None:
        return []
    rows = [
        ["the model in-process, batch 1 (tokenize + run, no HTTP)", _fmt(hop["inprocess_batch1_p50_ms"], 2), "–"],
        ["our runner called directly on its socket (c=1 level)", _fmt(hop["runner_direct_p50_ms"], 2), _fmt(hop["runner_minus_inprocess_ms"], 2)],
        ["our service, full path (c=1 level)", _fmt(hop["ours_p50_ms"], 2), _fmt(hop["ours_minus_inprocess_ms"], 2)],
        ["baseline O, same int8 file (c=1 level)", _fmt(hop["O_p50_ms"], 2), _fmt(hop["O_minus_inprocess_ms"], 2)],
        ["our service again at c=1, after the higher levels", _fmt(hop["ours_after_load_p50_ms"], 2),
         _fmt(None if hop["ours_after_load_p50_ms"] is None or hop["inprocess_batch1_p50_ms"] is None
              else round(hop["ours_after_load_p50_ms"] - hop["inprocess_batch1_p50_ms"], 3), 2)],
    ]
    lines = ["## The serving hop (default model, c=1, median latency)", "",
             "The runner is the service's batchable model method behind BentoML's own HTTP server and batcher; our service puts its "
             "HTTP layer (validation, labels, response) in front and calls the runner over a Unix socket. The hop is what that "
             "front costs.", "", *_table(["path", "p50 ms", "above in-process ms"], rows), ""]
    paired = hop["paired"]
    if paired:
        lines += [f"Paired, in one running service ({paired['n']} texts, each sent through the full path and straight to the runner, "
                  f"alternately): full path p50 {paired['service_p50_ms']:.2f} ms, runner direct p50 {paired['runner_direct_p50_ms']:.2f} ms, "
                  f"**hop {paired['hop_p50_ms']:.2f} ms** (median of the per-text differences; mean {paired['hop_mean_ms']:.2f} ms). "
                  f"Ours minus O at c=1: {_fmt(hop['ours_minus_O_ms'], 2)} ms.", ""]
    return lines


def _inprocess_section(result: dict) -> list[str]:
    lines: list[str] = []
    names = {"int8": "int8 ONNX (ours: fusions + per-channel int8)", "int8-seed": "int8 ONNX (seed recipe: plain export + quantize_dynamic defaults)",
             "fp32-onnx-ours": "fp32 ONNX (our export: opset + fusions, before int8)", "fp32-onnx-plain": "fp32 ONNX (plain optimum export)",
             "torch": "torch fp32 (transformers, eager)"}
    for key, data in result["inprocess"].items():
        batch1 = data.get("batch1", {})
        if batch1:
            torch_p50 = (batch1.get("torch") or {}).get("p50_ms")
            body = [[names.get(n, n), _fmt(b["p50_ms"], 2), _fmt(b["p95_ms"], 2), _fmt(b["mean_ms"], 2), _x(_ratio(torch_p50, b["p50_ms"])), str(b["n"])]
                    for n, b in batch1.items()]
            lines += [f"## Batch-1 latency in-process ({key} model, mixed texts, one text per call, 2 threads)", "",
                      *_table(["model", "p50 ms", "p95 ms", "mean ms", "speed-up vs torch (p50)", "texts"], body), ""]
        limit = data.get("limit", {})
        if limit:
            sizes = sorted({int(b) for v in limit.values() for per_mode in v["by_batch"].values() for b in per_mode})
            body = [[name, mode, *[_fmt(per_mode.get(str(b), per_mode.get(b))) for b in sizes], "**best**" if mode == v.get("best_mode") else ""]
                    for name, v in limit.items() for mode, per_mode in v["by_batch"].items()]
            lines += [f"L, texts/s in-process by forward batch size ({key} model): plain = b consecutive texts padded to their longest; "
                      "sortedN = N consecutive texts sorted by length and run in slices of b (what the service does with an adaptive batch of N requests):", "",
                      *_table(["texts", "mode", *[f"b={b}" for b in sizes], ""], body, "ll" + "r" * len(sizes) + "l"), ""]
        agreement = data.get("agreement", {})
        if agreement:
            body = [[set_name, names.get(n, n), f"{a['agreement']:.2%}", str(a["n"])] for set_name, per in agreement.items() for n, a in per.items()]
            lines += [f"Label agreement with torch ({key} model):", "", *_table(["texts", "model", "same label as torch", "texts"], body, "llrr"), ""]
    return lines


def _servers_section(result: dict) -> list[str]:
    body = [[s["model"], s["server"] + (f" (round {s['round']})" if s.get("round", 1) > 1 else ""), _fmt(s.get("start_s"), 1), _fmt(s.get("idle_rss_mb"), 0), _fmt(s["peak_rss_mb"], 0), str(s["processes"]),
             f"{s['load_before']:.1f} / {s['load_after']:.1f}"] for s in result["servers"]]
    return ["## Server processes", "", "RSS is summed over the server's process tree (psutil, sampled every 0.1 s; shared pages count once per process).", "",
            *_table(["model", "server", "ready after s", "RSS after warm-up MB", "peak RSS MB", "processes", "load avg before / after"], body), ""]


# --- chart ---------------------------------------------------------------------------------------


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    colors = {"ours": "tab:blue", "ours-2w": "tab:green", "runner": "tab:cyan", "ours-seed": "tab:purple", "O": "tab:orange", "O-seed": "tab:brown", "T": "tab:red", "L": "black"}
    key = "default" if "default" in result["models"] else next(iter(result["models"]), None)
    runs = [r for r in result["runs"] if r["model"] == key and r["texts"] == "mixed"]
    for ax, metric, title in ((axes[0][0], "rps", "requests/s"), (axes[0][1], "p50_ms", "p50 latency, ms")):
        for name in SERVER_ORDER:
            points = sorted((r["concurrency"], r[metric]) for r in runs if r["server"] == name and r[metric] is not None)
            if points:
                ax.plot(*zip(*points), marker="o", label=name, color=colors[name])
        limit = _limit(result, key, "mixed") if key else None
        if metric == "rps" and limit and runs:
            ax.axhline(limit["rps"], color="black", linestyle="--", label=f"L ({limit.get('best_mode', '')} b={limit['best_batch']})")
        ax.set_xscale("log", base=2)
        levels = sorted({r["concurrency"] for r in runs})
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_yscale("log")
        ax.set_xlabel("concurrency")
        ax.set_title(f"{key} model, mixed texts: {title}")
        ax.legend(fontsize=8, loc="best", framealpha=0.6)
    ax = axes[1][0]
    groups = [(k, t) for k in result["models"] for t in result["models"][k]["texts"] if t != "mixed"]
    width = 0.2
    for i, name in enumerate(("ours", "O", "T", "L")):
        values = []
        for k, t in groups:
            if name == "L":
                limit = _limit(result, k, t)
                values.append(limit["rps"] if limit else 0)
            else:
                r = next((r for r in result["runs"] if r["model"] == k and r["texts"] == t and r["server"] == name), None)
                values.append(r["rps"] if r else 0)
        ax.bar([j + (i - 1.5) * width for j in range(len(groups))], values, width, label=name, color=colors[name])
    ax.set_xticks(range(len(groups)), [f"{k}\n{t.removeprefix('len')} tok" for k, t in groups], fontsize=8)
    ax.set_yscale("log")
    ax.set_title("scaling: requests/s by model and text length")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    servers = [s for s in result["servers"] if s.get("round", 1) == 1]
    ax.barh([f"{s['model']}/{s['server']}" for s in servers], [s["peak_rss_mb"] for s in servers], color=[colors.get(s["server"], "gray") for s in servers])
    ax.set_xlabel("MB")
    ax.set_title("peak RSS of the server's process tree")
    fig.suptitle("textclf serving benchmark" + (" (quick run: harness check only)" if result["meta"]["quick"] else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(result: dict, out: Path) -> dict[str, Path]:
    result["ratios"] = {key: ratios(result, key) for key in result["models"]}
    result["repeated"] = repeated(result)
    result["serving_hop"] = serving_hop(result)
    result["targets"] = targets(result)
    paths = {"json": out / "bench.json", "md": out / "bench.md", "png": out / "bench.png"}
    chart(result, paths["png"])
    paths["json"].write_text(json.dumps(result, indent=1, ensure_ascii=False))
    paths["md"].write_text(markdown(result, paths["png"].name))
    return paths
