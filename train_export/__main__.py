"""Command line: `python -m train_export --config configs/langid.yaml [overrides]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from train_export.config import TrainExportConfig, load_config
from train_export.parity import ParityError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "langid.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train_export", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="YAML file (default: configs/langid.yaml)")
    parser.add_argument("--name", help="store the models as NAME-torch and NAME-onnx")
    parser.add_argument("--base-model", help="checkpoint folder, pkg:<package>/<folder>, or cached hub id")
    parser.add_argument("--data", help="a .jsonl/.csv file with text and label columns")
    parser.add_argument("--no-finetune", action="store_true", help="export the checkpoint as it is (it must be a classifier)")
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--min-agreement", type=float, help="parity gate threshold, 0..1")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="a BentoML label for both models (repeatable)")
    parser.add_argument("--skip-if-stored", action="store_true", help="do nothing if the store's latest NAME-torch, NAME-onnx and NAME-onnx-fp16 were made from the same recipe")
    return parser.parse_args(argv)


def apply_overrides(config: TrainExportConfig, args: argparse.Namespace) -> TrainExportConfig:
    values = config.model_dump()
    for key, value in {"name": args.name, "base_model": args.base_model, "max_length": args.max_length}.items():
        if value is not None:
            values[key] = value
    if args.data is not None:
        values["data"]["source"] = args.data
    if args.no_finetune:
        values["finetune"]["enabled"] = False
    if args.epochs is not None:
        values["finetune"]["epochs"] = args.epochs
    if args.min_agreement is not None:
        values["parity"]["min_agreement"] = args.min_agreement
    for label in args.label:
        key, sep, value = label.partition("=")
        if not sep:
            raise ValueError(f"--label wants KEY=VALUE, not {label!r}")
        values["labels"][key] = value
    return TrainExportConfig.model_validate(values)


def main(argv: list[str] | None = None) -> int:
    console = Console()
    args = parse_args(argv)
    try:
        config = apply_overrides(load_config(args.config), args)
    except (ValueError, OSError) as error:  # pydantic's ValidationError is a ValueError
        console.print(f"[red]bad configuration:[/] {error}")
        return 2
    from train_export.pipeline import load_data, run  # heavy imports (torch, optimum) after the config is known good
    from train_export.store import stored_export

    data = load_data(config, console)
    if args.skip_if_stored and (tags := stored_export(config.name, data.recipe.fingerprint)):
        console.print(f"{', '.join(map(str, tags))} are in the store, made from this recipe ({data.recipe.fingerprint}): nothing to do")
        return 0
    try:
        run(config, console, data)
    except ParityError as error:
        console.print(f"[red]parity gate failed, nothing saved:[/] {error}")
        console.print(
            "What next: more or longer fine-tuning (--epochs) usually widens the margins int8 rounding flips; "
            "or accept a lower agreement with --min-agreement (every variant's figure is in the table above)."
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
