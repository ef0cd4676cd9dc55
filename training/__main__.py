"""`python -m training {train,grid,export,evaluate,quantize,export-triton}`: the ML engineers' entry point.

`prepare-data` builds the data folder those read from the public releases (training/prepare_data.py).

`writers-closed` and `writers-open` train writer identification (training/writers/); `writers-calibrate`
sets a writer model's open-set thresholds on held-out writers and writes their report.

`train` and `grid` run unchanged under `torchrun --nproc_per_node N -m training ...` (training.distributed).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from training.config import REPO_ROOT, load_config


def _command(argv: list[str]) -> str:
    return "python -m training " + shlex.join(argv)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model (and optionally export it)")
    train.add_argument("--config", type=Path, help="experiment YAML (training/configs/*.yaml)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set epochs=5 --set preprocess.blur_sigma=0.7",
    )
    train.add_argument("--run-dir", type=Path, help="default: runs/<name>")
    train.add_argument("--resume", action="store_true", help="continue from <run-dir>/last.pt")
    train.add_argument("--export", type=Path, metavar="MODEL_DIR", help="export the best checkpoint here")
    train.add_argument(
        "--stop-after",
        type=int,
        default=0,
        metavar="EPOCH",
        help="stop (resumably) after this epoch, e.g. to fit a time slot",
    )

    grid = sub.add_parser("grid", help="train every configuration of an experiment grid and report them")
    grid.add_argument("--config", type=Path, required=True, help="grid YAML (training/grids/*.yaml)")
    grid.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value in every configuration",
    )
    grid.add_argument("--runs-dir", type=Path, default=REPO_ROOT / "runs" / "grids")
    grid.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "experiments", help="report folder")
    grid.add_argument("--force", action="store_true", help="retrain configurations already finished")

    pack = sub.add_parser(
        "pack", help="build a config's data, preprocessed, into pack folders for training.packed"
    )
    pack.add_argument("--config", type=Path, required=True)
    pack.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    pack.add_argument(
        "--out",
        type=Path,
        action="append",
        required=True,
        help="pack folder; repeat to spread the training split",
    )

    export = sub.add_parser("export", help="export a checkpoint to ONNX + manifest.json")
    export.add_argument("checkpoint", type=Path)
    export.add_argument("model_dir", type=Path)

    evaluate = sub.add_parser("evaluate", help="score an exported model on its held-out data (ONNX Runtime)")
    evaluate.add_argument("model_dir", type=Path)
    evaluate.add_argument(
        "--photos", action="store_true", help="also on the validation and test images re-shot as photos"
    )
    evaluate.add_argument("--data-dir", type=Path, help="default: HWR_DATA_DIR or ../shared/data")
    evaluate.add_argument(
        "--data-config",
        type=Path,
        help="score on this config's validation and test sets instead of the model's",
    )

    quantize = sub.add_parser(
        "quantize", help="add a static int8 variant to an exported model, with its accuracy delta"
    )
    quantize.add_argument("model_dir", type=Path)
    quantize.add_argument(
        "--calibration", type=int, default=2000, metavar="N", help="training images to calibrate on"
    )
    quantize.add_argument(
        "--max-drop",
        type=float,
        default=0.3,
        metavar="POINTS",
        help="largest drop of the primary validation metric (percentage points) for int8 to be served",
    )
    quantize.add_argument("--bench-runs", type=int, default=300, help="timed calls per batch size (0: none)")
    quantize.add_argument("--data-dir", type=Path, help="default: HWR_DATA_DIR or ../shared/data")

    triton = sub.add_parser("export-triton", help="write a Triton model repository from the exported models")
    triton.add_argument("--models", type=Path, default=REPO_ROOT / "models", help="default: models/")
    triton.add_argument(
        "--out", type=Path, default=REPO_ROOT / "runs" / "triton", help="default: runs/triton"
    )
    triton.add_argument("--max-batch-size", type=int, default=64)
    triton.add_argument("--max-queue-delay-us", type=int, default=2000, help="dynamic batching wait")
    triton.add_argument("--instance-kind", choices=["auto", "gpu", "cpu"], default="auto")
    triton.add_argument("--instances", type=int, default=1, help="model instances per device")

    for name, what in [
        ("writers-closed", "writer identification, closed set: the IAM study's classifier (FEMNIST or IAM)"),
        ("writers-open", "writer embeddings for enrol-then-identify, evaluated on held-out writers"),
    ]:
        writers = sub.add_parser(name, help=what)
        writers.add_argument("--config", type=Path, required=True, help="training/configs/writers_*.yaml")
        writers.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
        writers.add_argument("--run-dir", type=Path, help="default: runs/<name>")
        if name == "writers-open":
            writers.add_argument("--export", type=Path, metavar="MODEL_DIR", help="e.g. models/writers")
    calibrate = sub.add_parser(
        "writers-calibrate",
        help="set a writer model's open-set thresholds on held-out writers and report them (docs/)",
    )
    calibrate.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "writers")
    calibrate.add_argument("--data-dir", type=Path, help="default: HWR_DATA_DIR or ../shared/data")
    calibrate.add_argument("--report", type=Path, default=REPO_ROOT / "docs" / "writers_open_set.md")
    calibrate.add_argument(
        "--figure", type=Path, default=REPO_ROOT / "docs" / "images" / "writers_open_set.png"
    )
    calibrate.add_argument("--no-manifest", action="store_true", help="report only, leave the manifest")

    prepare = sub.add_parser(
        "prepare-data", help="build the training data folder from the public original releases"
    )
    prepare.add_argument("--out", type=Path, required=True, help="the data folder to write")
    prepare.add_argument(
        "--from",
        dest="source_root",
        type=Path,
        help="folder of unpacked releases: femnist/, mnist/, emnist/, cmaterdb_basic/,"
        " cmaterdb_numerals/, banglalekha_isolated/, numtadb/, class_map.csv, graphemes.tsv",
    )
    for flag, what in [
        ("femnist", "LEAF FEMNIST folder holding all_data_*.json"),
        ("mnist", "folder of the four MNIST *-ubyte.gz"),
        ("emnist", "folder of EMNIST's gzip release (emnist-<split>-*-ubyte.gz, mapping)"),
        ("cmaterdb-basic", "CMATERdb 3.1.2 folder with Train/ and Test/ class folders"),
        ("cmaterdb-numerals", "CMATERdb 3.1.1 folder with Train/ and Test/ class folders"),
        ("banglalekha", "BanglaLekha-Isolated folder (class folders 1..84)"),
        ("numtadb", "NumtaDB folder (training-*.csv and their image folders)"),
        ("class-map", "Bengali.AI class_map.csv"),
        ("graphemes", "graphemes.tsv (grapheme, root, vowel sign, consonant sign)"),
    ]:
        prepare.add_argument(f"--{flag}", type=Path, help=f"{what}; default: under --from")
    prepare.add_argument("--emnist-split", default="letters", help="EMNIST split (letters, digits, …)")
    prepare.add_argument(
        "--expect-sha256",
        action="append",
        default=[],
        metavar="TABLE|NAME=HEX",
        help="refuse a source whose sha256 differs: a SOURCES.sha256 of an earlier build, or NAME=HEX",
    )

    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    command = _command(argv)
    if args.command == "prepare-data":
        from training.prepare_data import Sources, parse_expectations, prepare

        given = {k: getattr(args, k) for k in Sources.__dataclass_fields__}
        sources = Sources.resolve(args.source_root, **given)
        manifest = prepare(args.out, sources, args.emnist_split, parse_expectations(args.expect_sha256))
        print(f"{len(manifest['outputs'])} files; checksums in {args.out / 'SOURCES.sha256'}")
        return
    if args.command == "export-triton":
        from training.triton import TritonOptions, export_repository

        options = TritonOptions(
            args.max_batch_size, args.max_queue_delay_us, args.instance_kind, args.instances
        )
        for path in export_repository(args.models, args.out, options):
            print(f"wrote {path}")
        return
    if args.command == "writers-calibrate":
        from training.config import default_data_dir
        from training.writers.calibrate import run_calibration

        run_calibration(
            args.model,
            args.data_dir or default_data_dir(),
            args.report,
            args.figure,
            command,
            update_manifest=not args.no_manifest,
        )
        return
    if args.command.startswith("writers-"):
        run_writers(args, command)
        return
    # Imported here so `--help` answers without loading torch.
    from training import distributed
    from training import quantize as q
    from training.data.loading import load_data
    from training.evaluate import evaluate_model
    from training.export import export_checkpoint
    from training.grid import load_grid, run_grid
    from training.grid_report import write_report
    from training.train import fit

    if args.command == "pack":
        from training.packing import build_pack

        print(build_pack(load_config(args.config, args.overrides), args.out))
    elif args.command == "quantize":
        data = q.load_quantization_data(args.model_dir, args.data_dir, args.calibration)
        result = q.quantize_model(args.model_dir, data, args.max_drop, command)
        speed = q.compare_speed(args.model_dir, runs=args.bench_runs) if args.bench_runs > 0 else {}
        print(q.summary(result, speed))
    elif args.command == "evaluate":
        for key, value in evaluate_model(
            args.model_dir, args.data_dir, args.photos, data_config=args.data_config
        ).items():
            print(f"{key:32s} {value:.4f}")
    elif args.command == "train":
        cfg = load_config(args.config, args.overrides)
        run_dir = args.run_dir or REPO_ROOT / "runs" / cfg.name
        resume = run_dir / "last.pt" if args.resume else None
        data = load_data(cfg)  # once: training, then the export's scoring
        with distributed.process_group():
            best = fit(cfg, run_dir, resume, args.stop_after, command, data)
        if best is not None and args.export:  # None on every process but rank 0
            manifest = export_checkpoint(best, args.export, command, data)
            print(f"exported {args.export}: {manifest.metrics}")
    elif args.command == "grid":
        spec = load_grid(args.config)
        with distributed.process_group() as rank:
            rows = run_grid(spec, args.runs_dir, args.overrides, args.force, command)
        if rank.is_main:
            print(f"report: {write_report(spec, rows, args.out, command)}")
    else:
        manifest = export_checkpoint(args.checkpoint, args.model_dir, command)
        print(f"exported {args.model_dir}: {manifest.metrics}")


def run_writers(args: argparse.Namespace, command: str) -> None:
    import json

    from training.writers.config import load_writer_config
    from training.writers.export import export_embedding
    from training.writers.train import train_closed, train_open

    cfg = load_writer_config(args.config, args.overrides)
    run_dir = args.run_dir or REPO_ROOT / "runs" / cfg.name
    if args.command == "writers-closed":
        report = train_closed(cfg, run_dir)
    else:
        model, report = train_open(cfg, run_dir)
        if args.export:
            print(f"exported {export_embedding(model, cfg, report, args.export, command)}")
            # The open-set thresholds, set on the validation writers through the exported graph.
            from training.writers.calibrate import run_calibration

            run_calibration(args.export, cfg.data_path, None, None, command)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
