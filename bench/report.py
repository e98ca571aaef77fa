"""The run's results as JSON, a markdown report with the ratio tables, and a PNG chart."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

SERVER_ORDER = ("ours", "ours-2w", "ours-seed", "O", "O-seed", "T")
# The server-to-server ratios: name -> (numerator, denominator). ours / L is taken apart: L is in-process.
RATIOS = {"ours/T": ("ours", "T"), "ours/O": ("ours", "O"), "ours-2w/O": ("ours-2w", "O"), "ours/O-seed": ("ours", "O-seed"),
          "ours-seed/O-seed": ("ours-seed", "O-seed")}


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


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _cpu(run: dict) -> str:
    roles = run.get("server_cpu_ms_per_ok") or {}
    if not roles:
        return "–"
    total = f"{sum(roles.values()):.1f}"
    parts = [f"{roles[r]:.1f}" for r in ("worker", "supervisor") if r in roles]
    return total + (f" ({' + '.join(parts)})" if len(parts) > 1 else "")


def _kinds(run: dict) -> str:
    return " (" + ", ".join(f"{n}x {k}" for k, n in run["error_kinds"].items()) + ")" if run["errors"] else ""


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---" if a == "l" else "--:" for a in align]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |", *("| " + " | ".join(row) + " |" for row in rows)]


def ratios(result: dict, model: str, texts: str = "mixed") -> list[dict]:
    """Per concurrency level: requests/s of each server, the RATIOS and ours / L."""
    runs = _runs(result, model, texts)
    limit = _limit(result, model, texts)
    out = []
    for c in sorted({c for (_, c) in runs}):
        rps = {name: runs[(name, c)]["rps"] for name in SERVER_ORDER if (name, c) in runs}
        out.append({"concurrency": c, "rps": rps, "L": limit["rps"] if limit else None,
                    **{name: _ratio(rps.get(top), rps.get(bottom)) for name, (top, bottom) in RATIOS.items()},
                    "ours/L": _ratio(rps.get("ours"), limit["rps"] if limit else None)})
    return out


def by_length(result: dict, model: str) -> list[dict]:
    """Per text set (mixed first, then the length buckets), at the level the buckets ran at: requests/s
    of ours, O and T in the main pass, L, and ours / O, ours / T, ours / L."""
    level = result["meta"]["config"]["scaling_level"]
    out = []
    servers = ("ours", "O", "T")
    for texts, info in result["models"][model]["texts"].items():
        runs = {r["server"]: r for r in result["runs"] if (r["model"], r["texts"], r["concurrency"]) == (model, texts, level) and r["server"] in servers}
        if "ours" not in runs:
            continue
        rps = {name: runs[name]["rps"] if name in runs else None for name in servers}
        limit = _limit(result, model, texts)
        out.append({"texts": texts, "concurrency": level, "tokens_mean": info["tokens_mean"], "tokens_run_mean": info.get("tokens_run_mean"),
                    "rps": rps, "time_bounded": {n: r["time_bounded"] for n, r in runs.items()}, "L": limit["rps"] if limit else None,
                    "L_best": f"{limit['best_mode']} b={limit['best_batch']}" if limit else None,
                    "ours/O": _ratio(rps["ours"], rps["O"]), "ours/T": _ratio(rps["ours"], rps["T"]),
                    "ours/L": _ratio(rps["ours"], limit["rps"] if limit else None),
                    "p50_ms": {n: r["p50_ms"] for n, r in runs.items()}, "errors": sum(r["errors"] for r in runs.values())})
    return out


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def repeated(result: dict, model: str = "default") -> list[dict]:
    """Per level of the rounds (the servers up together, measured in turns): each round's requests/s
    and p50 of every server (the medians of its blocks in that round), their medians, and each
    round's ratios with their median."""
    from bench.suite import ROUND_SERVERS

    blocks: dict[tuple[str, int], dict[int, list[dict]]] = {}
    for r in result.get("rounds", []):
        if r["model"] == model and r["texts"] == "mixed" and r["server"] in ROUND_SERVERS:
            blocks.setdefault((r["server"], r["concurrency"]), {}).setdefault(r["round"], []).append(r)
    numbers = sorted({n for per_round in blocks.values() for n in per_round})
    out = []
    for c in sorted({c for (_, c) in blocks}):
        servers = [s for s in ROUND_SERVERS if (s, c) in blocks]

        def per_round(server: str, metric: str) -> list[float | None]:
            return [_median([b[metric] for b in blocks[(server, c)].get(n, [])]) for n in numbers]

        rps = {s: per_round(s, "rps") for s in servers}
        p50 = {s: per_round(s, "p50_ms") for s in servers}
        ratio_rounds = {name: [_ratio(a, b) for a, b in zip(rps[top], rps[bottom])] for name, (top, bottom) in RATIOS.items()
                        if top in rps and bottom in rps}
        row = {"concurrency": c, "rounds": numbers, "blocks": {s: sum(map(len, blocks[(s, c)].values())) for s in servers},
               "rps": rps, "rps_median": {s: _median(v) for s, v in rps.items()}, "p50_ms": p50,
               "p50_median_ms": {s: _median(v) for s, v in p50.items()},
               "errors": {s: sum(b["errors"] for per in blocks[(s, c)].values() for b in per) for s in servers},
               "ratios": {name: {"per_round": v, "median": _median(v)} for name, v in ratio_rounds.items()}}
        if c == 1 and "ours" in p50 and "O" in p50:  # the c=1 latency target
            deltas = [None if a is None or b is None else round(a - b, 3) for a, b in zip(p50["ours"], p50["O"])]
            row["ours_minus_O_p50_ms"] = {"per_round": deltas, "median": _median(deltas)}
        out.append(row)
    return out


def targets(result: dict) -> list[dict]:
    """The targets of issue 13 (2 cores), measured; nothing is asserted. Where the servers ran in
    the rounds (the default model's ours and O), the medians of the per-round figures count, each
    figure taken within one round; elsewhere the main pass's."""
    rounds = {r["concurrency"]: r for r in repeated(result)}

    def ratio(name: str, c: int, model: str = "default") -> tuple[float | None, str]:
        if model == "default" and name in rounds.get(c, {}).get("ratios", {}):
            v = rounds[c]["ratios"][name]
            return v["median"], f"{_x(v['median'])} (rounds: {', '.join(_x(x) for x in v['per_round'])})"
        single = next((r[name] for r in ratios(result, model) if r["concurrency"] == c), None)
        return single, _x(single) + ("" if single is None else " (one round)")

    def at_least(values: list[float | None], goal: float) -> bool | None:
        return None if None in values else min(values) >= goal

    over_o = [ratio("ours/O", c) for c in (32, 64)]
    over_t = [ratio("ours/T", 32, model) for model in ("default", "base")]
    c1 = rounds.get(1, {}).get("ours_minus_O_p50_ms")
    if c1:
        delta, delta_text = c1["median"], f"{_signed(c1['median'])} ms (rounds: {', '.join(_signed(x) for x in c1['per_round'])})"
    else:
        p50 = {r["server"]: r["p50_ms"] for r in result["runs"] if (r["model"], r["texts"], r["concurrency"]) == ("default", "mixed", 1)}
        delta = None if p50.get("ours") is None or p50.get("O") is None else round(p50["ours"] - p50["O"], 3)
        delta_text = f"{_signed(delta)} ms (one round)"
    ours_levels = [r for r in result["runs"] + result.get("rounds", []) if r["server"].startswith("ours")]
    errors = {r["server"]: 0 for r in ours_levels}
    for r in ours_levels:
        errors[r["server"]] += r["errors"]
    rss = [r["peak_rss_mb"] for r in ours_levels if (r["model"], r["server"], r["texts"]) == ("default", "ours", "mixed")]
    return [
        {"target": "ours >= 1.2x O, same int8 file (c=32 and c=64)", "measured": f"c=32: {over_o[0][1]}; c=64: {over_o[1][1]}",
         "met": at_least([v for v, _ in over_o], 1.2)},
        {"target": "p50 at c=1: ours <= O + 1.0 ms", "measured": f"ours - O: {delta_text}", "met": None if delta is None else delta <= 1.0},
        {"target": "ours >= 5x T (c=32), default and bert-base-size model", "measured": f"default: {over_t[0][1]}; base: {over_t[1][1]}",
         "met": at_least([v for v, _ in over_t], 5)},
        {"target": "ours: zero errors at every level", "met": None if not ours_levels else not any(errors.values()),
         "measured": f"{sum(errors.values())} errors in {len(ours_levels)} levels ({', '.join(f'{s}: {n}' for s, n in errors.items())})"},
        {"target": "peak RSS of ours <= 300 MB (default model, mixed texts)", "met": None if not rss else max(rss) <= 300,
         "measured": f"{_fmt(max(rss), 0)} MB (the highest of {len(rss)} levels)" if rss else "–"},
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
        "In the main pass every server ran alone on 127.0.0.1, one after another (the rounds at the end ran the close comparisons "
        "together, in turns), on 2 intra-op threads (onnxruntime or torch) in one serving "
        "process (ours-2w: 2 processes of 1 thread each; our service also has `bentoml serve`'s supervisor process), warmed up "
        "first, with the same texts in the same order. Load: closed loop (each of c clients sends its next request when "
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
            columns = [c for c in (*RATIOS, "ours/L") if any(r[c] is not None for r in rows)]
            header = ["c", *[f"{n} req/s" for n in names], "L req/s", *[c.replace("/", " / ") for c in columns]]
            body = [[str(r["concurrency"]), *[_fmt(r["rps"].get(n)) for n in names], _fmt(r["L"]), *[_x(r[c]) for c in columns]] for r in rows]
            lines += ["Throughput (requests/s) and ratios:", "", *_table(header, body), ""]
        runs = [r for r in result["runs"] if r["model"] == key and r["texts"] == "mixed"]
        if runs:
            body = [[r["server"], str(r["concurrency"]), _fmt(r["rps"]) + ("*" if r["time_bounded"] else ""), _fmt(r["p50_ms"], 2),
                     _fmt(r["p95_ms"], 2), _fmt(r["p99_ms"], 2), f"{r['errors']}/{r['sent']}" + _kinds(r), _fmt(r["peak_rss_mb"], 0),
                     _fmt(r.get("model_runs")), _fmt(r.get("texts_per_run"), 2), _cpu(r),
                     f"{100 * r['client_cpu_s'] / r['duration_s']:.0f}%" if r["duration_s"] else "–"]
                    for r in sorted(runs, key=lambda r: (SERVER_ORDER.index(r["server"]), r["concurrency"]))]
            lines += ["Latency, errors, memory (model runs, texts per run: our batcher's model runs during the level and their mean size, "
                      "from textclf_batch_texts on /metrics: 1 text per run when requests come one at a time, more as they queue behind a run; "
                      "server CPU: CPU time of the server's processes per answer, split worker + supervisor for ours; "
                      "client CPU: the load generator's share of one core):", "",
                      *_table(["server", "c", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors/sent", "peak RSS MB", "model runs", "texts per run",
                               "server CPU ms/answer", "client CPU"], body), ""]
        lines += _by_length_section(result, key)
    lines += _rounds_section(result)
    lines += _inprocess_section(result)
    lines += _servers_section(result)
    if not meta["quick"]:
        lines += ["## Targets (issue 13, 2 cores)", "",
                  *_table(["target", "measured", "met"], [[t["target"], t["measured"], {True: "yes", False: "**no**", None: "–"}[t["met"]]] for t in targets(result)], "lrl"), ""]
    lines += ["## Where the time went", "", *_table(["step", "seconds"], [[k, f"{v:.0f}"] for k, v in meta["time_spent_s"].items()]), ""]
    if result["failures"]:
        lines += ["## Failures", "", *[f"- {f}" for f in result["failures"]], ""]
    if chart:
        lines += [f"![benchmark chart]({chart})", ""]
    return "\n".join(lines)


def _by_length_section(result: dict, key: str) -> list[str]:
    rows = by_length(result, key)
    if not rows:
        return []
    rps = lambda r, n: _fmt(r["rps"][n]) + ("*" if r["time_bounded"].get(n) else "")  # noqa: E731
    body = [[r["texts"], f"{r['tokens_mean']:.0f}", _fmt(r["tokens_run_mean"], 0), *[rps(r, n) for n in ("ours", "O", "T")], _fmt(r["L"]),
             r["L_best"] or "–", _x(r["ours/O"]), _x(r["ours/T"]), _x(r["ours/L"]), _fmt(r["p50_ms"].get("ours"), 1),
             _fmt(r["p50_ms"].get("O"), 1), str(r["errors"])] for r in rows]
    return [f"Ours / L by text length ({key} model, c={rows[0]['concurrency']}, main pass; tokens: mean as sent, then as run after the cut at "
            "max_length; L: in-process at its best mode and batch size for that set):", "",
            *_table(["texts", "tokens", "run", "ours req/s", "O req/s", "T req/s", "L req/s", "L best", "ours / O", "ours / T", "ours / L",
                     "ours p50 ms", "O p50 ms", "errors"], body, "l" + "r" * 6 + "l" + "r" * 6), ""]


def _rounds_section(result: dict) -> list[str]:
    rows = repeated(result)
    if not rows:
        return []
    numbers = rows[0]["rounds"]
    config = result["meta"]["config"]
    each = lambda values, digits=1: ", ".join(_fmt(v, digits) for v in values)  # noqa: E731
    body = [[s, str(r["concurrency"]), each(r["rps"][s]), _fmt(r["rps_median"][s]), each(r["p50_ms"][s], 2), _fmt(r["p50_median_ms"][s], 2),
             str(r["blocks"][s]), str(r["errors"][s])] for r in rows for s in r["rps"]]
    ratio_body = [[name, str(r["concurrency"]), ", ".join(_x(v) for v in ratio["per_round"]), _x(ratio["median"])] for r in rows for name, ratio in r["ratios"].items()]
    ratio_body += [["ours p50 - O p50 (ms)", str(r["concurrency"]), each(r["ours_minus_O_p50_ms"]["per_round"], 2), _fmt(r["ours_minus_O_p50_ms"]["median"], 2)]
                   for r in rows if "ours_minus_O_p50_ms" in r]
    return [f"## Rounds: the close comparisons, servers up together (default model, mixed texts, {len(numbers)} rounds)", "",
            f"After the main pass, the servers of the close comparisons ({', '.join(rows[0]['rps'])}) were started again all at once and "
            f"measured in turns: in each round, at each level, every server took {config['round_blocks']} blocks of "
            f"{config['round_requests']} requests (at least 16 a client), the order of the servers reversed from one block to the next, "
            "each block after a short warm-up at its level. A server's figure in a round is the median of its blocks; a ratio or "
            "difference is taken inside one round, where the servers ran seconds apart on the same noisy machine; the targets use "
            "the median of the rounds.", "",
            *_table(["server", "c", "req/s by round", "median req/s", "p50 ms by round", "median p50 ms", "blocks", "errors"], body), "",
            *_table(["ratio", "c", "by round", "median"], ratio_body), ""]


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
    body = [[s["model"], s["server"] + (" (rounds)" if s["phase"] == "rounds" else ""), _fmt(s.get("start_s"), 1), _fmt(s.get("idle_rss_mb"), 0), _fmt(s["peak_rss_mb"], 0), str(s["processes"]),
             f"{s['load_before']:.1f} / {s['load_after']:.1f}"] for s in result["servers"]]
    return ["## Server processes", "", "RSS is summed over the server's process tree (psutil, sampled every 0.1 s; shared pages count once per process).", "",
            *_table(["model", "server", "ready after s", "RSS after warm-up MB", "peak RSS MB", "processes", "load avg before / after"], body), ""]


# --- chart ---------------------------------------------------------------------------------------


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    colors = {"ours": "tab:blue", "ours-2w": "tab:green", "ours-seed": "tab:purple", "O": "tab:orange", "O-seed": "tab:brown", "T": "tab:red", "L": "black"}
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
    groups = [(k, row) for k in result["models"] for row in by_length(result, k)]
    width = 0.2
    for i, name in enumerate(("ours", "O", "T", "L")):
        values = [(row["L"] if name == "L" else row["rps"][name]) or 0 for _, row in groups]
        ax.bar([j + (i - 1.5) * width for j in range(len(groups))], values, width, label=name, color=colors[name])
    ax.set_xticks(range(len(groups)), [f"{k}\n{row['texts']}" for k, row in groups], fontsize=8)
    ax.set_yscale("log")
    ax.set_title("requests/s by model and text set (c=" + (str(groups[0][1]["concurrency"]) if groups else "–") + ")")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    servers = [s for s in result["servers"] if s["phase"] == "main"]
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
    result["by_length"] = {key: by_length(result, key) for key in result["models"]}
    result["targets"] = targets(result)
    paths = {"json": out / "bench.json", "md": out / "bench.md", "png": out / "bench.png"}
    chart(result, paths["png"])
    paths["json"].write_text(json.dumps(result, indent=1, ensure_ascii=False))
    paths["md"].write_text(markdown(result, paths["png"].name))
    return paths
