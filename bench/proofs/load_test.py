"""Bounded load test: N concurrent clients POST real photos to the real server for D seconds.

    .venv/bin/python -m bench.proofs.load_test          # 60 s at concurrency 32, committed models
    .venv/bin/python -m bench.proofs.load_test --duration 5 --concurrency 4 --out /tmp/load.json

Starts `python -m app` on 127.0.0.1 (a free port) unless `--url` names a running one, sends only to
that loopback address, and stops by itself: each client loops until the duration is spent, and every
request has a timeout. A request fails when it does not answer 200. Prints (and writes) the counts
and latency percentiles as JSON; exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx2 as httpx
import numpy as np

from bench.server import REPO, running_server

DATA = REPO / "tests" / "data"
REQUEST_TIMEOUT_S = 30


@dataclass(frozen=True)
class Upload:
    task: str
    name: str
    data: bytes


@dataclass
class LoadResult:
    duration_s: float
    concurrency: int
    requests: int
    failed: int
    statuses: dict[str, int]
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    # Per status: (p50, p99) in ms, so quick refusals do not hide slow answers.
    p50_p99_ms_by_status: dict[str, tuple[float, float]]


def sample_uploads() -> list[Upload]:
    """The repository's real test photos and scans (letters and digits), which all hold a character."""
    letters = sorted(DATA.glob("[A-Z]_*.*"))
    digits = sorted((DATA / "digits").glob("[0-9]_*.*"))
    uploads = [Upload("letter", p.name, p.read_bytes()) for p in letters]
    uploads += [Upload("digit", p.name, p.read_bytes()) for p in digits]
    if not uploads:
        raise FileNotFoundError(f"no sample images under {DATA}")
    return uploads


def _percentiles(ms: np.ndarray) -> tuple[float, float]:
    return round(float(np.percentile(ms, 50)), 1), round(float(np.percentile(ms, 99)), 1)


async def run_load(url: str, uploads: list[Upload], duration_s: float, concurrency: int) -> LoadResult:
    latencies: list[float] = []
    outcomes: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + duration_s

        async def user(index: int) -> None:
            sent = index
            while loop.time() < deadline:
                upload = uploads[sent % len(uploads)]
                sent += concurrency
                begin = time.perf_counter()
                try:
                    response = await client.post(
                        f"/predict/{upload.task}", files={"file": (upload.name, upload.data)}
                    )
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - begin)
                outcomes.append(status)

        await asyncio.gather(*(user(i) for i in range(concurrency)))
        elapsed = loop.time() - started
    ms = np.asarray(latencies) * 1000
    statuses = Counter(outcomes)
    by_status = {s: _percentiles(ms[np.asarray(outcomes) == s]) for s in sorted(statuses)}
    return LoadResult(
        duration_s=round(elapsed, 2),
        concurrency=concurrency,
        requests=len(latencies),
        failed=sum(count for status, count in statuses.items() if status != "200"),
        statuses=dict(statuses),
        throughput_rps=round(len(latencies) / elapsed, 1),
        p50_ms=round(float(np.percentile(ms, 50)), 1),
        p90_ms=round(float(np.percentile(ms, 90)), 1),
        p99_ms=round(float(np.percentile(ms, 99)), 1),
        max_ms=round(float(ms.max()), 1),
        p50_p99_ms_by_status=by_status,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--url", help="a running server on this machine (default: start one)")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument("--out", type=Path, help="also write the result here as JSON")
    args = parser.parse_args(argv)

    uploads = sample_uploads()
    if args.url:
        result = asyncio.run(run_load(args.url, uploads, args.duration, args.concurrency))
    else:
        log_path = Path(tempfile.mkdtemp(prefix="hwr-load-")) / "server.log"
        with running_server(args.model_dir, log_path) as server:
            result = asyncio.run(run_load(server.url, uploads, args.duration, args.concurrency))
        print(f"server log: {log_path}", file=sys.stderr)
    text = json.dumps(asdict(result), indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
