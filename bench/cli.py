"""What the command-line tools under bench/ share: a `--help` that prints the module's docstring as
written, the seeded generators' `--count` and `--seed`, the pass/fail verdict of a proof, and the
whole entry point of a proof that sends generated inputs to the committed models, and another
checkout's contract/preprocessing.py loaded beside this one (timed, or compared, side by side)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from bench.server import Server, committed_models_server

Results = TypeVar("Results")


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose `--help` shows `doc` (the module's docstring) with its own line breaks."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def seeded_parser(doc: str | None, count: int) -> argparse.ArgumentParser:
    """`parser(doc)` with `--count` (default `count`): how many inputs to generate, and `--seed`
    (default 0): which ones, the same for the same seed."""
    result = parser(doc)
    result.add_argument("--count", type=int, default=count)
    result.add_argument("--seed", type=int, default=0)
    return result


def verdict(failures: list[str], shown: int = 20) -> int:
    """Print the first `shown` failures; the exit code: 1 if there were any, else 0."""
    for failure in failures[:shown]:
        print("FAIL:", failure)
    return 1 if failures else 0


def seeded_proof(
    doc: str | None,
    argv: list[str] | None,
    count: int,
    run: Callable[[Server, int, int], tuple[Results, list[str]]],
    summary: Callable[[int, int, Results], str],
) -> int:
    """The `main` of a proof against `python -m app` with the committed models and default settings:
    `run(server, count, seed)` sends the generated inputs and gives (results, failures); prints
    `summary(count, seed, results)` and the first failures. The exit code: 1 on any failure."""
    args = seeded_parser(doc, count).parse_args(argv)
    with committed_models_server() as server:
        results, failures = run(server, args.count, args.seed)
    print(summary(args.count, args.seed, results))
    return verdict(failures)


def load_version(name: str, path: Path) -> ModuleType:
    """contract/preprocessing.py of any checkout, as a module named after its version."""
    spec = importlib.util.spec_from_file_location(f"preprocessing_{name}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
