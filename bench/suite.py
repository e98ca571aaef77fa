"""One benchmark run: prepare the models, measure in-process, then start each server in turn, warm it
up, load it level by level and stop it. Returns everything as one JSON-ready dict."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import load
from bench.models import REPO, StoredModel, base_model, seed_in_store, seed_recipe, stored, validation_texts
from bench.servers.launch import RunningServer, ServerSpec, cpu_seconds, start, stop
from bench.texts import TextSet, build_sets
from train_export.default_corpus.heldout import heldout_lines

SERVER_NAMES = ("ours", "ours-2w", "O", "O-seed", "ours-seed", "T")
# The servers of the ours / O targets (and ours-2w and O-seed, reported beside them): measured again,
# up together and in turns (measure_rounds), for the figures the targets are judged on; in this order,
# so that ours and O take their turns next to each other.
ROUND_SERVERS = ("ours", "O", "ours-2w", "O-seed")
DESCRIPTIONS = {
    "ours": "our service: `bentoml serve service:TextClassifier`, int8 ONNX run inside its HTTP worker (1 worker x 2 onnxruntime "
            "threads), adaptive batching by its own batcher",
    "ours-2w": "our service with the other thread layout: 2 HTTP workers x 1 onnxruntime thread, each worker with its own model "
               "and batcher (TEXTCLF_WORKERS=2, TEXTCLF_INTRA_OP_THREADS=1)",
    "ours-seed": "our service serving the seed-recipe int8 model",
    "O": "baseline O: FastAPI + onnxruntime + tokenizers, one request per forward pass, on OUR int8 file",
    "O-seed": "baseline O on the seed-recipe int8 file (plain optimum export + quantize_dynamic defaults)",
    "T": "baseline T: FastAPI + transformers pipeline, torch fp32, one request per forward pass",
}


@dataclass
class BenchConfig:
    out: Path
    store: Path
    model: str
    cache: Path
    quick: bool = False
    levels: list[int] = field(default_factory=lambda: [1, 8, 32, 64])
    requests: int = 1500
    max_seconds: float = 10.0
    warmup: int = 200  # requests at the highest level (up to 32) before the levels above 1
    warmup_c1: int = 20  # requests at c=1 before the c=1 level
    buckets: tuple[int, ...] = (16, 64, 256)
    scaling_level: int = 32
    models: list[str] = field(default_factory=lambda: ["default", "base"])
    servers: list[str] = field(default_factory=lambda: list(SERVER_NAMES))
    threads: int = 2
    mixed_count: int = 400
    bucket_per_language: int = 3
    limit_batch_sizes: list[int] = field(default_factory=lambda: [1, 8, 16, 32, 64])
    limit_seconds: float = 1.0
    limit_group: int = 64  # L's "sorted" mode: groups of this many texts, like a full adaptive batch
    base_limit_batch_sizes: list[int] = field(default_factory=lambda: [1, 8, 32])  # a batch of 32 x 256 tokens takes seconds
    rounds: int = 3  # the default model's ROUND_SERVERS, up together, measured in turns this many times (measure_rounds)
    round_levels: list[int] = field(default_factory=lambda: [1, 32, 64])
    round_blocks: int = 3  # blocks per server, level and round
    round_requests: int = 400  # requests per block (at least 16 a client)
    batch1_texts: int = 400
    batch1_seconds: float = 5.0
    agreement_heldout: int = 600

    @classmethod
    def quick_defaults(cls, **overrides: object) -> BenchConfig:
        values: dict = dict(
            quick=True, levels=[1, 8], requests=30, max_seconds=5.0, warmup=8, warmup_c1=5, buckets=(16,), scaling_level=8,
            models=["default"], servers=["ours", "O", "T"], mixed_count=80, bucket_per_language=1,
            limit_batch_sizes=[1, 8], limit_seconds=0.2, limit_group=16, base_limit_batch_sizes=[1, 8],
            rounds=2, round_levels=[1, 8], round_blocks=2, round_requests=20, batch1_texts=20, batch1_seconds=1.0, agreement_heldout=40,
        )
        return cls(**(values | overrides))


@dataclass
class Prepared:
    """One model under test and the variants made from it."""

    key: str  # "default" or "base"
    model: StoredModel
    texts: dict[str, TextSet]
    seed: StoredModel | None = None  # the seed-recipe int8 model in a private store
    variants: dict[str, dict] = field(default_factory=dict)  # in-process variants: name -> {kind, path}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Timer:
    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def __call__(self, name: str, began: float) -> None:
        self.spent[name] = round(self.spent.get(name, 0.0) + time.perf_counter() - began, 1)


# --- servers -------------------------------------------------------------------------------------


def _ours_spec(model: StoredModel, scratch: Path, threads: int, description: str, workers: int = 1) -> ServerSpec:
    return ServerSpec(
        argv=[sys.executable, "-m", "bentoml", "serve", "service:TextClassifier", "--host", "127.0.0.1", "--port", "{port}"],
        env={"BENTOML_HOME": str(serving_home(model, scratch)), "TEXTCLF_MODEL_NAME": model.name, "TEXTCLF_INTRA_OP_THREADS": str(threads),
             "TEXTCLF_WORKERS": str(workers), "BENTOML_DO_NOT_TRACK": "True"},
        cwd=REPO,
        description=description,
    )


def _uvicorn_spec(app: str, env: dict[str, str], threads: int, description: str) -> ServerSpec:
    return ServerSpec(
        argv=[sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}", "--workers", "1", "--no-access-log"],
        env=env | {"BENCH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)},
        cwd=REPO,
        description=description,
    )


def serving_home(model: StoredModel, scratch: Path) -> Path:
    """`bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir at start: it gets a home of its own
    whose models folder links the store's, so a server the user runs on that store is not disturbed."""
    home = Path(tempfile.mkdtemp(prefix="serve-home-", dir=scratch))
    (home / "models").symlink_to(model.home / "models", target_is_directory=True)
    return home


def server_spec(name: str, prepared: Prepared, threads: int, scratch: Path) -> ServerSpec | None:
    model = prepared.model
    onnx_env = {"BENCH_TOKENIZER_FILE": str(model.tokenizer_file), "BENCH_LABELS": ",".join(model.labels), "BENCH_MAX_LENGTH": str(model.max_length)}
    if name == "ours":
        return _ours_spec(model, scratch, threads, DESCRIPTIONS[name])
    if name == "ours-2w":  # the same cores split the other way: a worker process (and model) per core, one thread each
        return _ours_spec(model, scratch, 1, DESCRIPTIONS[name], workers=threads)
    if name == "ours-seed" and prepared.seed is not None:
        return _ours_spec(prepared.seed, scratch, threads, DESCRIPTIONS[name])
    if name == "O":
        return _uvicorn_spec("bench.servers.baseline_onnx:app", onnx_env | {"BENCH_ONNX_FILE": str(model.int8_file)}, threads, DESCRIPTIONS[name])
    if name == "O-seed" and prepared.seed is not None:
        return _uvicorn_spec("bench.servers.baseline_onnx:app", onnx_env | {"BENCH_ONNX_FILE": str(prepared.seed.int8_file)}, threads, DESCRIPTIONS[name])
    if name == "T" and model.torch_dir is not None:
        env = {"BENCH_MODEL_DIR": str(model.torch_dir), "BENCH_MAX_LENGTH": str(model.max_length)}
        return _uvicorn_spec("bench.servers.baseline_torch:app", env, threads, DESCRIPTIONS[name])
    return None


def phases(name: str, key: str, config: BenchConfig) -> list[tuple[str, int]]:
    """(text set, concurrency) pairs measured on one server, in order."""
    levels = config.levels
    if config.quick:
        chosen = levels
    elif name == "ours-seed" or key == "base":
        chosen = [c for c in levels if c in (1, config.scaling_level)] or levels[:1]  # only what the ratios need
    else:
        chosen = levels
    steps = [("mixed", c) for c in chosen]
    if name in ("ours", "O", "T"):
        steps += [(f"len{n}", config.scaling_level) for n in config.buckets]
    return steps


def _level(name: str, server: RunningServer, prepared: Prepared, config: BenchConfig, texts: str, concurrency: int, requests: int,
           tags: dict | None = None) -> dict:
    """One measured level on a running server: the load, the server's peak RSS and CPU per answer
    during it, and (for ours) the runs of its batcher."""
    before = batch_metrics(server.url) if "bentoml" in server.spec.argv else None
    cpu_before = cpu_seconds(server.process.pid)
    level = load.run_level(server.predict_url, prepared.texts[texts].texts, concurrency, requests, config.max_seconds)
    level.peak_rss_mb = server.sampler.phase_peak_mb()
    cpu = {role: seconds - cpu_before.get(role, 0.0) for role, seconds in cpu_seconds(server.process.pid).items()}
    extra: dict = {"server_cpu_ms_per_ok": {role: round(seconds * 1000 / level.ok, 3) for role, seconds in cpu.items()} if level.ok else {},
                   "server_cpu_cores": round(sum(cpu.values()) / level.duration_s, 2) if level.duration_s else None}
    after = batch_metrics(server.url) if before else None
    if before and after and after[1] > before[1]:  # the batcher's model runs during the level
        extra |= {"model_runs": int(after[1] - before[1]), "texts_per_run": round((after[0] - before[0]) / (after[1] - before[1]), 2)}
    tags = tags or {}
    notes = [str(level.error_kinds)] if level.errors else []
    notes += ["time-bounded"] if level.time_bounded else []
    notes += [f"{extra['model_runs']} model runs, {extra['texts_per_run']} texts per run"] if "model_runs" in extra else []
    notes += [f"server CPU ms/answer {extra['server_cpu_ms_per_ok']}"]
    where = "".join(f" {k} {v}" for k, v in tags.items())
    log(f"  {prepared.key}/{name}{where} {texts} c={concurrency}: {level.rps} req/s, p50 {level.p50_ms} ms, p99 {level.p99_ms} ms, "
        f"{level.errors} errors, {level.peak_rss_mb} MB ({'; '.join(notes)})")
    return {"model": prepared.key, "server": name, "texts": texts} | tags | level.to_dict() | extra


def _warm_up(server: RunningServer, prepared: Prepared, config: BenchConfig, concurrency: int, requests: int) -> int:
    """Unmeasured requests of the mixed texts; returns how many failed."""
    return load.run_level(server.predict_url, prepared.texts["mixed"].texts, concurrency, requests, max(config.max_seconds, 5.0)).errors


def _record(name: str, spec: ServerSpec, prepared: Prepared, server_log: Path, phase: str) -> dict:
    return {"model": prepared.key, "server": name, "phase": phase, "description": spec.description, "log": str(server_log),
            "load_before": os.getloadavg()[0]}


def _finish(record: dict, server: RunningServer) -> dict:
    return record | {"peak_rss_mb": server.sampler.peak_mb, "processes": server.sampler.processes, "load_after": os.getloadavg()[0]}


def measure_server(name: str, spec: ServerSpec, prepared: Prepared, config: BenchConfig, logs: Path) -> tuple[dict, list[dict]]:
    """The main pass of one server, started alone:

    1. warm-up at c=1, then the c=1 level (on a server that has not seen a burst yet);
    2. warm-up at the highest level (up to 32), then the other levels and the length buckets.
    """
    server_log = logs / f"{prepared.key}-{name}.log"
    record = _record(name, spec, prepared, server_log, "main")
    runs: list[dict] = []
    server = start(spec, server_log)
    try:
        record["start_s"] = server.start_s
        steps = phases(name, prepared.key, config)
        record["warmup_errors"] = _warm_up(server, prepared, config, 1, config.warmup_c1)
        record["idle_rss_mb"] = server.sampler.phase_peak_mb()
        if ("mixed", 1) in steps:
            runs.append(_level(name, server, prepared, config, "mixed", 1, config.requests))
        record["warmup_errors"] += _warm_up(server, prepared, config, min(max(config.levels), 32), config.warmup)
        for texts, concurrency in steps:
            if (texts, concurrency) != ("mixed", 1):
                runs.append(_level(name, server, prepared, config, texts, concurrency, config.requests))
    finally:
        stop(server)
    return _finish(record, server), runs


def measure_rounds(prepared: Prepared, config: BenchConfig, scratch: Path, logs: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """The servers of the ours / O targets, up together and measured in turns, so that a ratio
    compares servers that saw the same seconds of a noisy machine (run alone minutes apart, the same
    server moved by up to a half). In each round, at each of config.round_levels, every server takes
    config.round_blocks blocks of config.round_requests requests, the order of the servers reversed
    from one block to the next; each block follows a short warm-up at its level, since the previous
    block loaded another server. Returns the server records, the blocks and the failures."""
    records: dict[str, dict] = {}
    servers: dict[str, RunningServer] = {}
    runs: list[dict] = []
    failures: list[dict] = []
    levels = [c for c in config.round_levels if c in config.levels]
    try:
        for name in (n for n in ROUND_SERVERS if n in config.servers):
            spec = server_spec(name, prepared, config.threads, scratch)
            if spec is None:
                continue
            server_log = logs / f"{prepared.key}-{name}-rounds.log"
            record = _record(name, spec, prepared, server_log, "rounds")
            try:
                servers[name] = start(spec, server_log)
            except (RuntimeError, TimeoutError, OSError) as error:
                log(f"{prepared.key}/{name} (rounds): failed to start: {str(error)[:500]}")
                failures.append({"model": prepared.key, "server": name, "step": "rounds", "error": str(error)[-2000:]})
                continue
            records[name] = record | {"start_s": servers[name].start_s}
        log(f"{prepared.key}: rounds of {', '.join(servers)}, up together")
        for name, server in servers.items():
            records[name]["warmup_errors"] = _warm_up(server, prepared, config, 1, config.warmup_c1)
            records[name]["warmup_errors"] += _warm_up(server, prepared, config, min(max(config.levels), 32), config.warmup)
        for number in range(1, config.rounds + 1):
            for concurrency in levels:
                for block in range(1, config.round_blocks + 1):
                    order = list(servers) if (number + block) % 2 == 0 else list(servers)[::-1]
                    for name in order:
                        records[name]["warmup_errors"] += _warm_up(servers[name], prepared, config, concurrency, max(2 * concurrency, 10))
                        servers[name].sampler.phase_peak_mb()  # the block's peak, not the warm-up's
                        requests = max(config.round_requests, 16 * concurrency)  # 16 a client: the ramp and the tail stay short
                        runs.append(_level(name, servers[name], prepared, config, "mixed", concurrency, requests, {"round": number, "block": block}))
    finally:
        for name, server in servers.items():
            stop(server)
            records[name] = _finish(records[name], server)
    return list(records.values()), runs, failures


def batch_metrics(url: str) -> tuple[float, float] | None:
    """(sum, count) of textclf_batch_texts, the texts per model run of our batcher, from the
    service's Prometheus /metrics (summed over its workers by BentoML's multiprocess collector)."""
    try:
        text = httpx.get(url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    values = {"textclf_batch_texts_sum": 0.0, "textclf_batch_texts_count": 0.0}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in values:
            values[name] += float(line.rsplit(" ", 1)[1])
    return values["textclf_batch_texts_sum"], values["textclf_batch_texts_count"]


# --- in-process ----------------------------------------------------------------------------------


def heldout_texts(limit: int) -> list[str]:
    per_language = list(heldout_lines().values())
    interleaved = [lines[i] for i in range(max(map(len, per_language))) for lines in per_language if i < len(lines)]
    return interleaved[:limit]


def inprocess(prepared: Prepared, config: BenchConfig, scratch: Path, logs: Path) -> dict:
    model = prepared.model
    job = {
        "tokenizer": str(model.tokenizer_file),
        "max_length": model.max_length,
        "labels": model.labels,
        "threads": config.threads,
        "int8": str(model.int8_file),
        "text_sets": {name: s.texts for name, s in prepared.texts.items()},
        "limit": {"sets": list(prepared.texts), "sorted_sets": ["mixed"], "min_seconds": config.limit_seconds, "group": config.limit_group,
                  "batch_sizes": config.base_limit_batch_sizes if prepared.key == "base" else config.limit_batch_sizes},
        "variants": prepared.variants,
        "batch1": {"texts": prepared.texts["mixed"].texts, "max_texts": config.batch1_texts, "max_seconds": config.batch1_seconds},
        "agreement": {"reference": "torch", "candidates": [v for v in ("int8", "int8-seed") if v in prepared.variants], "sets": {}},
    }
    if "torch" in prepared.variants and prepared.key == "default":  # a random-weight model has nothing to agree on
        validation = None if config.quick else validation_texts(model, config.cache)
        if validation:
            job["agreement"]["sets"]["validation"] = validation
        job["agreement"]["sets"]["heldout"] = heldout_texts(config.agreement_heldout)
    job_file, out_file = scratch / f"inprocess-{prepared.key}.json", scratch / f"inprocess-{prepared.key}-out.json"
    job_file.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    log_file = logs / f"{prepared.key}-inprocess.log"
    with log_file.open("wb") as out:
        done = subprocess.run([sys.executable, "-m", "bench.inprocess", str(job_file), str(out_file)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                              env=os.environ | {"OMP_NUM_THREADS": str(config.threads)})
    if done.returncode != 0:
        raise RuntimeError(f"in-process measurements failed:\n{log_file.read_text(errors='replace')[-3000:]}")
    return json.loads(out_file.read_text())


# --- the run -------------------------------------------------------------------------------------


def prepare(key: str, config: BenchConfig, logs: Path) -> Prepared:
    source = stored(config.store, config.model)
    model = source if key == "default" else base_model(source, config.cache, logs / "prepare-base.log")
    texts = build_sets(model.tokenizer_file, model.max_length, config.mixed_count, config.buckets, config.bucket_per_language)
    prepared = Prepared(key, model, texts)
    prepared.variants["int8"] = {"kind": "onnx", "path": str(model.int8_file)}
    needs_seed = key == "default" and ({"O-seed", "ours-seed"} & set(config.servers))
    if needs_seed and model.torch_dir is not None:
        seed = seed_recipe(model, config.cache, logs / "prepare-seed.log")
        prepared.seed = seed_in_store(model, seed, config.cache / "store", logs / "prepare-seed.log")
        prepared.variants |= {
            "int8-seed": {"kind": "onnx", "path": str(seed.int8)},
            "fp32-onnx-ours": {"kind": "onnx", "path": str(seed.fp32_ours)},
            "fp32-onnx-plain": {"kind": "onnx", "path": str(seed.fp32_plain)},
        }
    if model.torch_dir is not None:
        prepared.variants["torch"] = {"kind": "torch", "path": str(model.torch_dir)}
    return prepared


def describe_model(prepared: Prepared) -> dict:
    model = prepared.model
    return {
        "tag": model.tag,
        "store": str(model.home),
        "int8_file": str(model.int8_file),
        "int8_mb": round(model.int8_file.stat().st_size / 1e6, 1),
        "seed_int8_mb": round(prepared.seed.int8_file.stat().st_size / 1e6, 1) if prepared.seed else None,
        "max_length": model.max_length,
        "labels": len(model.labels),
        "texts": {name: s.summary() for name, s in prepared.texts.items()},
    }


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import onnxruntime

    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
            "platform": platform.platform()}


def run(config: BenchConfig, progress: Callable[[dict], None] = lambda result: None) -> dict:
    """Everything in config, in order; `progress` gets the results so far after each step."""
    config.out.mkdir(parents=True, exist_ok=True)
    logs = config.out / "logs"
    logs.mkdir(exist_ok=True)
    timer = Timer()
    began = time.perf_counter()
    result: dict = {
        "meta": {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": config.quick, "machine": machine(), "load_start": os.getloadavg(),
                 "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items()}},
        "models": {}, "servers": [], "runs": [], "rounds": [], "inprocess": {}, "failures": [],
    }
    scratch = Path(tempfile.mkdtemp(prefix="textclf-bench-"))
    try:
        for key in config.models:
            t = time.perf_counter()
            log(f"{key} model: preparing")
            try:
                prepared = prepare(key, config, logs)
            except (OSError, RuntimeError) as error:
                log(f"{key} model: preparation failed: {error}")
                result["failures"].append({"model": key, "step": "prepare", "error": str(error)[-2000:]})
                continue
            finally:
                timer(f"prepare {key}", t)
            result["models"][key] = describe_model(prepared)
            log(f"{key} model: {prepared.model.tag}; in-process measurements")
            t = time.perf_counter()
            try:
                result["inprocess"][key] = inprocess(prepared, config, scratch, logs)
            except RuntimeError as error:
                result["failures"].append({"model": key, "step": "inprocess", "error": str(error)[-2000:]})
            timer(f"in-process {key}", t)
            for name in (n for n in config.servers if key == "default" or n in ("ours", "ours-2w", "O", "T")):
                spec = server_spec(name, prepared, config.threads, scratch)
                if spec is None:
                    log(f"{key}/{name}: skipped (its model variant is not available)")
                    continue
                log(f"{key}/{name}: starting")
                t = time.perf_counter()
                try:
                    record, runs = measure_server(name, spec, prepared, config, logs)
                    result["servers"].append(record)
                    result["runs"] += runs
                except (RuntimeError, TimeoutError, OSError) as error:
                    log(f"{key}/{name}: failed: {str(error)[:500]}")
                    result["failures"].append({"model": key, "server": name, "error": str(error)[-2000:]})
                timer(f"server {key}/{name}", t)
                progress(result)
            if key == "default" and config.rounds:
                t = time.perf_counter()
                records, runs, failures = measure_rounds(prepared, config, scratch, logs)
                result["servers"] += records
                result["rounds"] += runs
                result["failures"] += failures
                timer(f"rounds {key}", t)
                progress(result)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["meta"] |= {"load_end": os.getloadavg(), "total_s": round(time.perf_counter() - began, 1), "time_spent_s": timer.spent}
    return result
