"""Paired A/B of service settings: every variant started at once, driven in turn in short bursts.

    .venv/bin/python -m bench.perf.ab loop:COMPUTE_IN_EVENT_LOOP=true thread:
    .venv/bin/python -m bench.perf.ab --bursts 10 cv1:OPENCV_THREADS=1 cv0:OPENCV_THREADS=0
    .venv/bin/python -m bench.perf.ab new: old:TREE=/tmp/old-checkout   # two versions of the code

This machine's speed drifts by 10–20 % between runs minutes apart, more than most changes it is
asked to judge. So the variants (`NAME:KEY=VALUE,...`, HWR_ settings on top of the defaults) all
run from the start, idle while another is driven, and take turns in bursts of a few seconds, the
order reversed every other burst; each burst of the first variant is compared with the same
burst of the second. Prints req/s, server CPU per request and median latency per variant, and
the per-burst ratios (req/s, and median latency) of the first two with their medians. The key
`TREE` is not a setting: it names another checkout (`git worktree add`) whose `app` that variant
runs, so two versions of the code are compared the same way as two settings.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

from bench.perf.benchmark import (
    Connection,
    cpu_seconds,
    drive,
    make_deck,
    parse_variant,
    parse_weights,
    prepare_request,
    run_async,
)
from bench.photos import build_uploads, validation_glyphs
from bench.server import REPO, Server, process_tree, running_server


def burst(
    server: Server, deck: list, clients: int, seconds: float, offset: int
) -> tuple[float, float, int, float]:
    """(req/s, server CPU ms per request, errors, median latency ms) over `seconds`, after a 1 s
    warm-up."""
    pids = process_tree(server.process.pid)
    port = int(server.url.rsplit(":", 1)[1])

    async def run() -> tuple[list, float, float]:
        conns = [Connection("127.0.0.1", port) for _ in range(clients)]
        await drive(conns, deck, 1.0, offset)
        before = cpu_seconds(pids)
        records, elapsed = await drive(conns, deck, seconds, offset)
        used = cpu_seconds(pids) - before
        for conn in conns:
            await conn.close()
        return records, elapsed, used

    records, elapsed, used = run_async(run())
    errors = sum(r.status != "200" for r in records)
    latency_ms = statistics.median(r.seconds for r in records) * 1000
    return len(records) / elapsed, used / len(records) * 1000, errors, latency_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("variants", nargs="+", type=parse_variant, metavar="NAME:KEY=VALUE,...")
    parser.add_argument("--bursts", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per burst")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--mix", type=parse_weights, default="crop=0.3,photo_640=0.5,photo_12mp=0.2")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    args = parser.parse_args(argv)
    glyphs = validation_glyphs("letter", 32, 0)
    uploads = build_uploads({"crop": 32, "photo_640": 32, "photo_12mp": 6}, glyphs, 0)
    deck = make_deck(uploads, [prepare_request(u, "letter", "127.0.0.1") for u in uploads], args.mix, 0)
    names = [name for name, _ in args.variants]
    results: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in names}
    with contextlib.ExitStack() as stack:
        logs = Path(tempfile.mkdtemp(prefix="hwr-ab-"))
        servers = {}
        for name, settings in args.variants:
            tree = Path(settings.pop("TREE", REPO))
            log = logs / f"{name}.log"
            servers[name] = stack.enter_context(running_server(args.model_dir, log, settings, tree=tree))
        for index in range(args.bursts):
            for name in names if index % 2 == 0 else names[::-1]:
                results[name].append(burst(servers[name], deck, args.clients, args.seconds, 7 * index))
    for name, rows in results.items():
        rates = [r[0] for r in rows]
        print(
            f"{name}: req/s median {statistics.median(rates):.1f} ({min(rates):.1f}–{max(rates):.1f}), "
            f"server CPU ms/request median {statistics.median(r[1] for r in rows):.2f}, "
            f"latency p50 ms median {statistics.median(r[3] for r in rows):.1f}, "
            f"errors {sum(r[2] for r in rows)}"
        )
    if len(names) >= 2:
        ratios = [a[0] / b[0] for a, b in zip(results[names[0]], results[names[1]], strict=True)]
        print(
            f"{names[0]}/{names[1]} per burst: {' '.join(f'{r:.3f}' for r in ratios)}; "
            f"median {statistics.median(ratios):.3f}"
        )
        # Per-burst median latency, first over second: above 1, the first variant is slower.
        latency = [a[3] / b[3] for a, b in zip(results[names[0]], results[names[1]], strict=True)]
        print(
            f"{names[0]}/{names[1]} latency p50 per burst: {' '.join(f'{r:.3f}' for r in latency)}; "
            f"median {statistics.median(latency):.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
