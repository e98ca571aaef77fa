"""`python -m bench`: our service against baseline T (transformers), baseline O (onnxruntime) and the
in-process limit L, one server at a time; writes bench.md, bench.json and bench.png to --out."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench.suite import SERVER_NAMES, BenchConfig, log, run


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _names(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        names = [v for v in text.split(",") if v]
        unknown = set(names) - set(allowed)
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(sorted(unknown))} (choose from {', '.join(allowed)})")
        return names

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes: a harness check whose figures mean nothing")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"), help="output folder (default reports/bench)")
    parser.add_argument("--store", type=Path, default=Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml")),
                        help="BentoML home holding the model (default $BENTOML_HOME or ~/bentoml); only read")
    parser.add_argument("--model", default="langid", help="serve <MODEL>-onnx:latest (and <MODEL>-torch for T) from --store (default langid)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "textclf-bench",
                        help="prepared model variants, reused across runs (default ~/.cache/textclf-bench)")
    parser.add_argument("--levels", type=_ints, help="concurrency levels (default 1,8,32,64; quick 1,8)")
    parser.add_argument("--requests", type=int, help="requests per level (default 1500; quick 30)")
    parser.add_argument("--max-seconds", type=float, help="time limit per level (default 10; quick 5)")
    parser.add_argument("--models", type=_names(("default", "base")), help="default: the --model; base: a bert-base-size random model (default both; quick default)")
    parser.add_argument("--rounds", type=int, help="times the default model's ours, ours-2w, O and O-seed are measured at c=1, 32, 64 "
                        "(the first time is the main pass; default 3, quick 2)")
    parser.add_argument("--servers", type=_names(SERVER_NAMES), help=f"servers to run, of {','.join(SERVER_NAMES)} (default all; quick ours,O,T)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {"levels": args.levels, "requests": args.requests, "max_seconds": args.max_seconds, "models": args.models, "servers": args.servers,
                 "rounds": args.rounds}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    common = {"out": args.out, "store": args.store.expanduser(), "model": args.model, "cache": args.cache.expanduser()}
    config = BenchConfig.quick_defaults(**common, **overrides) if args.quick else BenchConfig(**common, **overrides)
    from bench.report import write

    partial = config.out / "bench.partial.json"  # the results so far, should the run be cut short
    result = run(config, progress=lambda so_far: partial.write_text(json.dumps(so_far, indent=1, ensure_ascii=False)))
    paths = write(result, config.out)
    partial.unlink(missing_ok=True)
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
