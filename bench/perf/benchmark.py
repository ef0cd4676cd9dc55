"""The service benchmark: ours vs a seed-style baseline over HTTP, on a realistic upload mix.

    .venv/bin/python -m bench.perf.benchmark                                   # 20 s per run, c = 1, 4, 16
    .venv/bin/python -m bench.perf.benchmark --report docs/benchmarks.md --json /tmp/bench.json
    .venv/bin/python -m bench.perf.benchmark --variant batching_off:BATCH_MAX_SIZE=1 \\
        --variant batching_on:BATCH_MAX_SIZE=8,BATCH_MAX_WAIT_MS=2   # batch sizes from /metrics

Builds the upload set (bench/photos.py: real characters as crops, 640×480 and 12 MP JPEG photos),
times the stages in-process (bench/perf/stages.py), then starts each server in turn — ours (`python -m
app`, once per variant) and the baseline (`python -m bench.perf.baseline`) — never two at once. For each
server and concurrency it warms up, then drives the mix for `--duration` seconds, plus one run of a
single client sending only 640×480 photos. Reports latency percentiles overall and per upload kind,
throughput, errors, top-1 accuracy, the server's CPU and peak RSS, the client's CPU and how busy the
whole machine was (the load generator runs on the same cores), ratios ours/baseline, and the targets.

`--json` keeps the raw results; `python -m bench.perf.report results.json out.md` re-renders the report.
The client is a minimal HTTP/1.1 keep-alive client on asyncio with each request serialised once in
advance, so that its own CPU per request stays small and constant on a machine it shares.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from app.config import Settings
from bench.perf import report
from bench.perf.baseline import running_baseline
from bench.perf.stages import parse_kwargs, run_stages
from bench.photos import KINDS, Upload, build_uploads, validation_glyphs
from bench.server import REPO, Server, process_tree, running_server

REQUEST_TIMEOUT_S = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")

# ---------------------------------------------------------------------------------------- HTTP client


@dataclass(frozen=True)
class Prepared:
    """One upload as the exact bytes of its HTTP request."""

    kind: str
    label: str
    request: bytes


def prepare_request(upload: Upload, task: str, host: str) -> Prepared:
    boundary = "bench7f3a9c1e5d"
    media = "image/png" if upload.name.endswith(".png") else "image/jpeg"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{upload.name}"\r\n'
            f"Content-Type: {media}\r\n\r\n"
        ).encode()
        + upload.data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /predict/{task} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return Prepared(upload.kind, upload.label, head.encode() + body)


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened after an error or `Connection: close`."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def close(self) -> None:
        if self.streams is not None:
            writer = self.streams[1]
            self.streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        reader, writer = self.streams
        writer.write(request)
        await writer.drain()
        status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if b"content-length" not in headers:
            raise ValueError("response without Content-Length")  # the servers never chunk JSON
        body = await reader.readexactly(int(headers[b"content-length"]))
        if headers.get(b"connection") == b"close":
            await self.close()
        return status, body


@dataclass
class Record:
    kind: str
    seconds: float
    status: str
    correct: bool
    stages_ms: dict[str, float]


async def request_once(conn: Connection, item: Prepared) -> Record:
    begin = time.perf_counter()
    try:
        status, body = await asyncio.wait_for(conn.send(item.request), REQUEST_TIMEOUT_S)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
        await conn.close()
        return Record(item.kind, time.perf_counter() - begin, type(exc).__name__, False, {})
    seconds = time.perf_counter() - begin
    if status != 200:
        return Record(item.kind, seconds, str(status), False, {})
    answer = json.loads(body)
    top1 = answer["predictions"][0]["label"] if answer.get("predictions") else None
    stages = {k: float(v) for k, v in answer.get("timing_ms", {}).items()}
    return Record(item.kind, seconds, "200", top1 == item.label, stages)


async def drive(
    conns: list[Connection], deck: list[Prepared], seconds: float, offset: int
) -> tuple[list[Record], float]:
    """Every connection is one client looping over the deck (interleaved) until the time is up."""
    loop = asyncio.get_running_loop()
    records: list[Record] = []
    started = loop.time()
    deadline = started + seconds

    async def client(index: int) -> None:
        sent = offset + index
        while loop.time() < deadline:
            records.append(await request_once(conns[index], deck[sent % len(deck)]))
            sent += len(conns)

    await asyncio.gather(*(client(i) for i in range(len(conns))))
    return records, loop.time() - started


def run_async(coroutine: Coroutine[object, object, T]) -> T:
    """uvloop when installed (uvicorn[standard] brings it): less client CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# ---------------------------------------------------------------------------------- process statistics


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (all their threads)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pids: list[int]) -> bool:
    """Writing 5 to clear_refs resets VmHWM (Linux ≥ 4.0), so each run gets its own peak."""
    try:
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


BATCH_SERIES = {
    "calls": "hwr_batch_size_count",
    "rows": "hwr_batch_size_sum",
    "queue_s": "hwr_batch_queue_seconds_sum",
}


def batch_totals(url: str) -> dict[str, float] | None:
    """The dynamic batcher's running totals in the server's /metrics (every task and worker
    summed): model calls, rows and queue seconds; None when the server has no such endpoint."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    totals = dict.fromkeys(BATCH_SERIES, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        for key, series in BATCH_SERIES.items():
            if name == series:
                totals[key] += float(line.rsplit(" ", 1)[1])
    return totals


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, every process included."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


# ------------------------------------------------------------------------------------------- the runs


@dataclass
class KindStats:
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    top1: float  # fraction of 200 answers whose top-1 is the character drawn
    server_ms: dict[str, float]  # the server's own median per stage (decode, preprocess, inference)
    # Median of client latency − the server's own total: HTTP, multipart parsing, middleware, the
    # hop to a worker thread, JSON, and any wait the server's timings do not cover.
    outside_ms: float | None


@dataclass
class RunResult:
    server: str
    scenario: str  # "mix" or "photo_640" (single client, 640×480 only)
    concurrency: int
    seconds: float
    requests: int
    errors: int
    statuses: dict[str, int]
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    top1: float
    server_cpu_ms_per_request: float
    server_cpu_pct: float  # of all cores
    client_cpu_pct: float
    machine_busy_pct: float  # every process, the training run or anything else included
    other_cpu_pct: float  # machine busy − server − client: what else ran (should be ≈ 0)
    peak_rss_mb: float
    peak_rss_note: str
    kinds: dict[str, KindStats] = field(default_factory=dict)
    # Dynamic batching over the measured window, from the server's /metrics (None: no batcher ran).
    model_calls: int | None = None
    rows_per_call: float | None = None
    batch_queue_ms: float | None = None  # mean wait of an input for its batch's model call


def percentile(ms: np.ndarray, q: float) -> float:
    return round(float(np.percentile(ms, q)), 2) if ms.size else float("nan")


def kind_stats(records: list[Record]) -> KindStats:
    ms = np.asarray([r.seconds for r in records]) * 1000
    ok = [r for r in records if r.status == "200"]
    stages = sorted({name for r in ok for name in r.stages_ms})
    server = {s: round(float(np.median([r.stages_ms[s] for r in ok if s in r.stages_ms])), 2) for s in stages}
    outside = [r.seconds * 1000 - r.stages_ms["total"] for r in ok if "total" in r.stages_ms]
    return KindStats(
        requests=len(records),
        errors=len(records) - len(ok),
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        p99_ms=percentile(ms, 99),
        top1=round(sum(r.correct for r in ok) / max(len(ok), 1), 3),
        server_ms=server,
        outside_ms=round(float(np.median(outside)), 2) if outside else None,
    )


def run_load(
    server: Server, name: str, scenario: str, deck: list[Prepared], concurrency: int, args: argparse.Namespace
) -> RunResult:
    """Warm up (not counted), then measure one concurrency level, the server's CPU and peak RSS."""
    host, port = server.url.removeprefix("http://").split(":")
    pids = process_tree(server.process.pid)
    cores = len(os.sched_getaffinity(0))
    Totals = dict[str, float] | None

    async def both() -> tuple[list[Record], float, dict[str, float], tuple[Totals, Totals]]:
        conns = [Connection(host, int(port)) for _ in range(concurrency)]
        try:
            await drive(conns, deck, args.warmup, offset=len(deck) // 2)
            peak_reset = reset_peak_rss(pids)
            batches_before = batch_totals(server.url)
            before = cpu_seconds(pids), time.process_time(), machine_busy()
            records, seconds = await drive(conns, deck, args.duration, offset=0)
            after = cpu_seconds(pids), time.process_time(), machine_busy()
            batches = batches_before, batch_totals(server.url)
        finally:
            for conn in conns:
                await conn.close()
        busy = (after[2][0] - before[2][0]) / max(after[2][1] - before[2][1], 1)
        stats = {
            "server_cpu": after[0] - before[0],
            "client_cpu": after[1] - before[1],
            "busy": busy,
            "peak_reset": float(peak_reset),
        }
        return records, seconds, stats, batches

    records, seconds, stats, (first, last) = run_async(both())
    server_cpu, client_cpu = stats["server_cpu"], stats["client_cpu"]
    peak_kb = sum(status_kb(pid, "VmHWM") for pid in pids)
    ms = np.asarray([r.seconds for r in records]) * 1000
    statuses = Counter(r.status for r in records)
    overall = kind_stats(records)
    result = RunResult(
        server=name,
        scenario=scenario,
        concurrency=concurrency,
        seconds=round(seconds, 2),
        requests=len(records),
        errors=overall.errors,
        statuses=dict(statuses),
        throughput_rps=round(len(records) / seconds, 2),
        p50_ms=overall.p50_ms,
        p95_ms=overall.p95_ms,
        p99_ms=overall.p99_ms,
        max_ms=round(float(ms.max()), 2) if ms.size else float("nan"),
        top1=overall.top1,
        server_cpu_ms_per_request=round(stats["server_cpu"] * 1000 / max(len(records), 1), 2),
        server_cpu_pct=round(100 * stats["server_cpu"] / (seconds * cores), 1),
        client_cpu_pct=round(100 * stats["client_cpu"] / (seconds * cores), 1),
        machine_busy_pct=round(100 * stats["busy"], 1),
        other_cpu_pct=round(
            max(0.0, 100 * (stats["busy"] - (server_cpu + client_cpu) / (seconds * cores))), 1
        ),
        peak_rss_mb=round(peak_kb / 1024, 1),
        peak_rss_note="VmHWM, reset before the run" if stats["peak_reset"] else "VmHWM since start",
        kinds={kind: kind_stats([r for r in records if r.kind == kind]) for kind in KINDS},
    )
    result.kinds = {k: v for k, v in result.kinds.items() if v.requests}
    if first and last:
        delta = {k: last[k] - first[k] for k in BATCH_SERIES}
        if delta["calls"] > 0:
            result.model_calls = int(delta["calls"])
            result.rows_per_call = round(delta["rows"] / delta["calls"], 2)
            result.batch_queue_ms = round(1000 * delta["queue_s"] / max(delta["rows"], 1), 2)
    print(
        f"  {name:<14} {scenario:<9} c={concurrency:<3} {result.requests:6d} req  {result.errors} err  "
        f"{result.throughput_rps:8.1f} req/s  p50 {result.p50_ms:8.1f}  p95 {result.p95_ms:8.1f}  "
        f"p99 {result.p99_ms:8.1f} ms  top-1 {result.top1:.2f}  server CPU {result.server_cpu_pct:5.1f} %  "
        f"peak RSS {result.peak_rss_mb:.0f} MB  other processes {result.other_cpu_pct:.0f} %",
        flush=True,
    )
    return result


def run_server_suite(
    server: Server, name: str, decks: dict[str, list[Prepared]], args: argparse.Namespace
) -> list[RunResult]:
    idle_rss = status_kb(server.process.pid, "VmRSS") / 1024
    print(f"{name}: pid {server.process.pid}, RSS after start {idle_rss:.0f} MB, log {server.log_path}")
    runs = [run_load(server, name, "mix", decks["mix"], c, args) for c in args.concurrency]
    if decks["photo_640"]:
        runs.append(run_load(server, name, "photo_640", decks["photo_640"], 1, args))
    return runs


def make_deck(
    uploads: list[Upload], prepared: list[Prepared], mix: dict[str, float], seed: int
) -> list[Prepared]:
    """500 requests drawn by the mix's weights (seeded); each kind cycles through its own uploads."""
    kinds = [k for k in KINDS if mix.get(k, 0) > 0 and any(u.kind == k for u in uploads)]
    weights = np.asarray([mix[k] for k in kinds]) / sum(mix[k] for k in kinds)
    picks = np.random.default_rng(seed).choice(len(kinds), size=500, p=weights)
    pools = {k: [p for u, p in zip(uploads, prepared, strict=True) if u.kind == k] for k in kinds}
    taken = Counter[str]()
    deck = []
    for pick in picks:
        kind = kinds[pick]
        deck.append(pools[kind][taken[kind] % len(pools[kind])])
        taken[kind] += 1
    return deck


def size_range(uploads: list[Upload]) -> str:
    sizes = sorted({(u.width, u.height) for u in uploads})
    if len(sizes) == 1:
        return f"{sizes[0][0]}×{sizes[0][1]}"
    return f"{sizes[0][0]}–{sizes[-1][0]} px square" if all(w == h for w, h in sizes) else "mixed"


# ---------------------------------------------------------------------------------------------- main


def parse_pairs(text: str) -> dict[str, str]:
    """Parse "A=1,B=2" into {"A": "1", "B": "2"}, dropping any `HWR_` prefix (bench.server adds it)."""
    pairs = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {part!r}")
        pairs[key.strip().upper().removeprefix("HWR_")] = value.strip()
    return pairs


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, sep, settings = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE,..., got {text!r}")
    return name, parse_pairs(settings)


def parse_weights(text: str) -> dict[str, float]:
    weights = {k.lower(): float(v) for k, v in parse_pairs(text).items()}
    unknown = set(weights) - set(KINDS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown kinds {sorted(unknown)}; kinds are {KINDS}")
    return weights


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per run, not counted")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat every server's top-concurrency mix run this many times in all, servers "
        "alternating; the throughput target then takes the median ratio of the rounds",
    )
    parser.add_argument("--task", default="letter", choices=["letter", "digit"])
    parser.add_argument(
        "--report", type=Path, help="write the markdown report here (e.g. docs/benchmarks.md)"
    )
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument(
        "--ours-settings",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="HWR_ settings for every run of ours",
    )
    parser.add_argument(
        "--variant",
        action="append",
        type=parse_variant,
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="benchmark ours once per variant, each started fresh with these settings on top",
    )
    parser.add_argument(
        "--mix",
        type=parse_weights,
        default="crop=0.3,photo_640=0.5,photo_12mp=0.2",
        help="request share by kind",
    )
    parser.add_argument(
        "--files",
        type=parse_weights,
        default="crop=32,photo_640=32,photo_12mp=6",
        help="distinct uploads by kind",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model-dir", type=Path, default=REPO / "models", help="ours serves every model here"
    )
    parser.add_argument(
        "--n-init", default="auto", help="the baseline's KMeans n_init ('auto' = sklearn's default)"
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-stages", action="store_true")
    parser.add_argument("--stage-repeats", type=int, default=200)
    parser.add_argument(
        "--decode-kwargs",
        type=parse_kwargs,
        default={},
        metavar="NAME=VALUE,...",
        help="extra app.service.images.decode_image keywords for the in-process stages (not settings)",
    )
    return parser


@contextlib.contextmanager
def log_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hwr-bench-"))
    yield path
    print(f"server logs: {path}")


def describe_uploads(uploads: list[Upload], deck: list[Prepared]) -> dict[str, dict[str, object]]:
    return {
        kind: {
            "files": len(mine),
            "size": size_range(mine),
            "mean_bytes": round(float(np.mean([len(u.data) for u in mine]))),
            "share": sum(p.kind == kind for p in deck) / len(deck),
        }
        for kind in KINDS
        if (mine := [u for u in uploads if u.kind == kind])
    }


def measure_servers(
    variants: dict[str, dict[str, str]], decks: dict[str, list[Prepared]], args: argparse.Namespace
) -> tuple[list[RunResult], list[dict], str]:
    """Each variant of ours, then the baseline: one server at a time, each started fresh. Then
    `--rounds` − 1 more rounds of the same, the mix at the top concurrency only: (runs, the
    top-concurrency mix runs of every round tagged with their round, the baseline's note)."""
    runs: list[RunResult] = []
    rounds: list[dict] = []
    top_c = max(args.concurrency)
    with log_dir() as logs:
        servers: list[tuple[str, Callable[[], contextlib.AbstractContextManager[Server]]]] = [
            (name, partial(running_server, args.model_dir, logs / f"{name}.log", settings))
            for name, settings in variants.items()
        ]
        if not args.no_baseline:
            baseline = partial(running_baseline, logs / "baseline.log", args.task, args.n_init)
            servers.append(("baseline", baseline))
        for index in range(args.rounds):
            for name, start in servers:
                with start() as server:
                    if index == 0:
                        runs += run_server_suite(server, name, decks, args)
                    else:
                        again = run_load(server, name, "mix", decks["mix"], top_c, args)
                        rounds.append(asdict(again) | {"round": index})
        note = "not run"
        if not args.no_baseline:
            lines = (logs / "baseline.log").read_text(errors="replace").splitlines()
            note = next((ln for ln in lines if ln.startswith("baseline model:")), "?")
    round_0 = [asdict(r) | {"round": 0} for r in runs if r.scenario == "mix" and r.concurrency == top_c]
    return runs, round_0 + rounds, f"KMeans n_init={args.n_init}; {note}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python -m bench.perf.benchmark " + shlex.join(sys.argv[1:] if argv is None else argv)
    ours = {k: v for item in args.ours_settings for k, v in parse_pairs(item).items()}
    variants = {name: ours | extra for name, extra in args.variant} or {"ours": ours}
    if "baseline" in variants or len(variants) != len(args.variant or [None]):
        raise SystemExit("variant names must be unique and not 'baseline'")
    info = report.machine()
    load = " ".join(info["loadavg_at_start"])
    print(f"{command}\nmachine: {info['cpu']}, {info['cores_usable']} cores, load average {load}")

    counts = {k: int(v) for k, v in args.files.items()}
    glyphs = validation_glyphs(args.task, max(counts.values()), args.seed)
    uploads = build_uploads(counts, glyphs, args.seed)
    prepared = [prepare_request(u, args.task, "127.0.0.1") for u in uploads]
    decks = {
        "mix": make_deck(uploads, prepared, args.mix, args.seed),
        "photo_640": make_deck(uploads, prepared, {"photo_640": 1.0}, args.seed),
    }
    print(f"uploads: {len(uploads)} from {len(glyphs)} glyphs")

    stages: list[dict] = []
    if not args.no_stages:
        print("stages (in-process):")
        settings = Settings(**{k.lower(): v for k, v in next(iter(variants.values())).items()})
        timings = run_stages(
            uploads, args.task, settings, args.stage_repeats, decode_extra=args.decode_kwargs
        )
        stages = [asdict(s) for s in timings]

    runs, rounds, baseline = measure_servers(variants, decks, args)
    result: dict = {
        "command": command,
        "machine": info,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "concurrency": args.concurrency,
        "variants": variants,
        "baseline": baseline,
        "uploads": describe_uploads(uploads, decks["mix"]),
        "stages": stages,
        "runs": [asdict(r) for r in runs],
        "rounds": rounds,
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
    }
    result["ratios"] = report.ratios(result["runs"])
    result["targets"] = report.targets(result)

    print(f"\n{report.runs_table(result['runs'])}\n")
    for x in result["ratios"]:
        print(
            f"{x['server']} {x['scenario']} c={x['concurrency']}: throughput ours/baseline "
            f"{x['throughput_ours_over_baseline']:.1f}×, p50 ours/baseline {x['p50_ours_over_baseline']:.3f}"
        )
    print()
    for t in result["targets"]:
        print(f"{report.verdict(t['pass']):<4}  {t['target']}: {t['measured']}")
    if warning := report.quiet_warning(result["runs"]):
        print(warning.strip().removeprefix("- ").replace("**", ""))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.report:
        args.report.write_text(report.render(result), encoding="utf-8")
        print(f"report: {args.report}")
    return 0 if all(t["pass"] is not False for t in result["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
