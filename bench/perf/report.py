"""The benchmark's analysis and markdown report, from its JSON results alone.

    .venv/bin/python -m bench.perf.report results.json docs/benchmarks.md     # re-render a saved run

Ratios ours/baseline, the service's speed targets with pass/fail, the machine description and the tables.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from bench.server import REPO

TARGET_PREPROCESS_MS = 1.0
TARGET_SINGLE_P50_MS = 5.0
TARGET_SPEEDUP = 10.0
PACKAGES = ("onnxruntime", "torch", "numpy", "opencv-python-headless", "pillow", "scikit-learn")
PACKAGES += ("fastapi", "uvicorn")


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, object]:
    """CPU model, usable cores, memory, versions, git commit and the load average right now."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(ln.split()[1]) for ln in meminfo if ln.startswith("MemTotal"))
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
    return {
        "cpu": model,
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpus_online": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {p: package_version(p) for p in PACKAGES},
        "git": commit.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else ""),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def ratios(runs: list[dict], baseline: str = "baseline") -> list[dict[str, object]]:
    """Per run of ours with a baseline run of the same uploads and concurrency: ours / baseline."""
    base = {(r["scenario"], r["concurrency"]): r for r in runs if r["server"] == baseline}
    out = []
    for r in runs:
        b = base.get((r["scenario"], r["concurrency"]))
        if r["server"] == baseline or b is None:
            continue
        out.append(
            {
                "server": r["server"],
                "scenario": r["scenario"],
                "concurrency": r["concurrency"],
                "throughput_ours_over_baseline": round(
                    r["throughput_rps"] / max(b["throughput_rps"], 1e-9), 2
                ),
                "p50_ours_over_baseline": round(r["p50_ms"] / max(b["p50_ms"], 1e-9), 4),
                "cpu_per_request_ours_over_baseline": round(
                    r["server_cpu_ms_per_request"] / max(b["server_cpu_ms_per_request"], 1e-9), 3
                ),
            }
        )
    return out


def round_ratio(run: dict, rounds: list[dict], baseline: str = "baseline") -> float | None:
    """This run's throughput over the baseline's in the same round (None: baseline or no such)."""
    base = next((r for r in rounds if r["server"] == baseline and r["round"] == run["round"]), None)
    if run["server"] == baseline or base is None:
        return None
    return run["throughput_rps"] / max(base["throughput_rps"], 1e-9)


def round_ratios(rounds: list[dict], baseline: str = "baseline") -> dict[str, list[float]]:
    """Per variant of ours, its throughput over the baseline's in each round (in round order)."""
    out: dict[str, list[float]] = {}
    for r in sorted(rounds, key=lambda r: r["round"]):
        if (ratio := round_ratio(r, rounds, baseline)) is not None:
            out.setdefault(r["server"], []).append(round(ratio, 2))
    return out


def _find(rows: list[dict], **match: object) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def targets(result: dict) -> list[dict[str, object]]:
    """The service's speed targets, each with its measured value and pass (None: not measured in this run)."""
    stages, runs, out = result["stages"], result["runs"], []

    def add(target: str, measured: str, passed: bool | None) -> None:
        out.append({"target": target, "measured": measured, "pass": passed})

    pre = _find(stages, stage="preprocess", input="photo_640")
    add(
        f"preprocessing incl. K-means ≤ {TARGET_PREPROCESS_MS:g} ms, 640×480 photo (in-process median)",
        f"{pre['median_ms']:.3f} ms" if pre else "not measured",
        pre["median_ms"] <= TARGET_PREPROCESS_MS if pre else None,
    )
    decode = _find(stages, stage="decode", input="photo_12mp")
    pre12 = _find(stages, stage="preprocess", input="photo_12mp")
    route = _find(stages, stage="route decode+preprocess", input="photo_12mp")
    measured = "not measured"
    if decode and pre12:
        measured = f"{decode['note'].split(';')[0]}; decode {decode['median_ms']:.1f} ms"
        measured += f" + preprocess {pre12['median_ms']:.1f} ms"
        measured += f"; the route's decode + preprocess {route['median_ms']:.1f} ms" if route else ""
    add(
        "12-MP JPEG decoded at reduced size (in-process medians)",
        measured,
        "4000×3000" not in decode["note"] if decode else None,
    )
    top_c = max(result["concurrency"])
    for name in result["variants"]:
        single = _find(runs, server=name, scenario="photo_640")
        add(
            f"[{name}] end-to-end p50 ≤ {TARGET_SINGLE_P50_MS:g} ms, one client, 640×480 JPEG",
            f"{single['p50_ms']:.2f} ms" if single else "not measured",
            single["p50_ms"] <= TARGET_SINGLE_P50_MS if single else None,
        )
        ratio = _find(result["ratios"], server=name, scenario="mix", concurrency=top_c)
        speedup = ratio["throughput_ours_over_baseline"] if ratio else None
        measured = f"{speedup:.1f}×" if speedup is not None else "no baseline run"
        each = round_ratios(result.get("rounds", [])).get(name, [])
        if len(each) > 1:  # rounds: their median decides, not the luckiest or unluckiest
            speedup = float(np.median(each))
            measured = f"median {speedup:.1f}× of {len(each)} rounds ({min(each):.1f}–{max(each):.1f}×)"
        add(
            f"[{name}] ≥ {TARGET_SPEEDUP:g}× the baseline's throughput at concurrency {top_c} (mix)",
            measured,
            speedup >= TARGET_SPEEDUP if speedup is not None else None,
        )
        mine = [r for r in runs if r["server"] == name]
        errors = sum(r["errors"] for r in mine)
        add(
            f"[{name}] no errors (every answer 200)",
            f"{errors} errors in {sum(r['requests'] for r in mine)} requests",
            errors == 0 if mine else None,
        )
    return out


def verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[passed]


def table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def runs_table(runs: list[dict]) -> str:
    headers = ["server", "uploads", "conc.", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms"]
    headers += ["top-1", "server CPU ms/req", "server CPU %", "client CPU %", "other CPU %", "peak RSS MB"]
    rows = [
        [
            r["server"],
            r["scenario"],
            r["concurrency"],
            r["requests"],
            r["errors"],
            f"{r['throughput_rps']:.1f}",
        ]
        + [f"{r[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms")]
        + [f"{r['top1']:.2f}", f"{r['server_cpu_ms_per_request']:.1f}", f"{r['server_cpu_pct']:.0f}"]
        + [f"{r['client_cpu_pct']:.0f}", f"{r['other_cpu_pct']:.0f}", f"{r['peak_rss_mb']:.0f}"]
        for r in runs
    ]
    return table(headers, rows)


def kinds_table(runs: list[dict]) -> str:
    headers = ["server", "uploads", "conc.", "kind", "requests", "errors", "p50 ms", "p95 ms", "p99 ms"]
    rows = []
    for r in runs:
        for kind, s in r["kinds"].items():
            server = ", ".join(f"{k} {v:.1f}" for k, v in s["server_ms"].items() if k != "total")
            outside = "" if s.get("outside_ms") is None else f"{s['outside_ms']:.1f}"
            rows.append(
                [r["server"], r["scenario"], r["concurrency"], kind, s["requests"], s["errors"]]
                + [f"{s[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms")]
                + [f"{s['top1']:.2f}", server, outside]
            )
    return table([*headers, "top-1", "server-side medians, ms", "outside the server's timing, ms"], rows)


def stages_table(stages: list[dict]) -> str:
    rows = [
        [s["stage"], s["input"], f"{s['median_ms']:.3f}", f"{s['p95_ms']:.3f}", s["repeats"], s["note"]]
        for s in stages
    ]
    return table(["stage", "input", "median ms", "p95 ms", "repeats", "note"], rows)


def ratios_table(rows: list[dict]) -> str:
    headers = ["ours", "uploads", "conc.", "throughput ours/baseline", "p50 ours/baseline"]
    return table(
        [*headers, "CPU per request ours/baseline"],
        [
            [
                x["server"],
                x["scenario"],
                x["concurrency"],
                f"{x['throughput_ours_over_baseline']:.1f}×",
                f"{x['p50_ours_over_baseline']:.3f}",
                f"{x['cpu_per_request_ours_over_baseline']:.3f}",
            ]
            for x in rows
        ],
    )


def batching_table(runs: list[dict]) -> str:
    rows = [
        [
            r["server"],
            r["scenario"],
            r["concurrency"],
            f"{r['throughput_rps']:.1f}",
            r["model_calls"],
            f"{r['rows_per_call']:.2f}",
            f"{r['batch_queue_ms']:.2f}",
        ]
        for r in runs
        if r.get("model_calls")
    ]
    headers = ["server", "uploads", "conc.", "req/s", "model calls", "inputs per call"]
    return table([*headers, "mean wait for the call, ms"], rows) if rows else ""


def rounds_table(rounds: list[dict]) -> str:
    rows = [
        [
            r["round"] + 1,
            r["server"],
            r["requests"],
            r["errors"],
            f"{r['throughput_rps']:.1f}",
            f"{r['p50_ms']:.1f}",
            f"{r['server_cpu_ms_per_request']:.1f}",
            f"{r['other_cpu_pct']:.0f}",
            "" if (ratio := round_ratio(r, rounds)) is None else f"{ratio:.1f}×",
        ]
        for r in sorted(rounds, key=lambda r: r["round"])
    ]
    headers = ["round", "server", "requests", "errors", "req/s", "p50 ms", "server CPU ms/req"]
    return table([*headers, "other CPU %", "ours/baseline"], rows)


def quiet_warning(runs: list[dict]) -> str:
    worst = max((r["other_cpu_pct"] for r in runs), default=0.0)
    if worst <= 10:
        return ""
    return f"\n- **The machine was not quiet**: other processes used up to {worst:.0f} % of it during a run."


def render(result: dict) -> str:
    m = result["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    uploads = table(
        ["kind", "files", "size (px)", "mean bytes", "share of requests"],
        [
            [k, u["files"], u["size"], u["mean_bytes"], f"{u['share']:.0%}"]
            for k, u in result["uploads"].items()
        ],
    )
    variants = "; ".join(
        f"`{name}` " + (", ".join(f"HWR_{k}={v}" for k, v in settings.items()) or "defaults")
        for name, settings in result["variants"].items()
    )
    targets_table = table(
        ["target", "measured", "result"],
        [[t["target"], t["measured"], verdict(t["pass"])] for t in result["targets"]],
    )
    rounds = result.get("rounds", [])
    sections = [
        "# Benchmarks",
        "The service (`python -m app`) against a seed-style baseline (`bench/perf/baseline.py`),\n"
        "both driven over HTTP on loopback by `bench/perf/benchmark.py`, which wrote this file: rerun it\n"
        "rather than editing the numbers.",
        f"## Command\n\n```\n{result['command']}\n```",
        "## Machine\n\n"
        f"- CPU: {m['cpu']}; {m['cores_usable']} usable cores ({m['cpus_online']} online),"
        f" {m['memory_gb']} GB RAM\n"
        f"- Linux {m['kernel']}, Python {m['python']}; {packages}\n"
        f"- git {m['git']}; load average {' '.join(m['loadavg_at_start'])} at the start,"
        f" {' '.join(result['loadavg_at_end'])} at the end\n"
        "- The load generator runs on the same cores as the servers (its CPU is in the tables);\n"
        '  "other CPU" is what every other process on the machine used during the measured window.'
        + quiet_warning(result["runs"]),
        "## Upload set\n\n"
        "Real handwritten characters (the letters model's validation writers, never trained on) as\n"
        "crops, and pasted as dark ink on synthetic paper photos: lighting gradient, vignette, paper\n"
        "texture, sensor noise, JPEG quality 85 (`bench/photos.py`, seeded). Each client loops over a\n"
        f"seeded deck that mixes the kinds by weight. Per run: {result['warmup_s']:g} s warm-up (not\n"
        f"counted), then {result['duration_s']:g} s measured.\n\n{uploads}\n\n"
        f"Ours: {variants}; every committed model loaded, as users run it.\n"
        f"Baseline: {result['baseline']}.",
        f"## Targets\n\n{targets_table}",
        "## Load: every server × concurrency\n\n"
        "Latency is measured by the client (request sent → whole answer read). Server CPU is the server\n"
        "processes' user + system time over the measured window; % is of all usable cores. Peak RSS is\n"
        "the sum of the server's processes' VmHWM (a parent and its workers), reset before each run.\n"
        '"photo_640" is one client sending only 640×480 photos.\n\n' + runs_table(result["runs"]),
        "### Per upload kind\n\n"
        'Server-side medians are the stage timings each server reports in its answers; "outside" is the\n'
        "median of client latency minus the server's reported total (HTTP, multipart parsing, middleware,\n"
        "the hop to a worker thread, JSON, and any wait the server's own timing does not cover).\n\n"
        + kinds_table(result["runs"]),
        "## Rounds\n\n"
        "The mix at the top concurrency, every server started afresh for each round, in turn (round 1\n"
        "is the run in the tables above). With more than one round the throughput target takes the\n"
        "median of the rounds' ratios: this machine's speed drifts between runs minutes apart.\n\n"
        + (rounds_table(rounds) if len({r["round"] for r in rounds}) > 1 else "One round (`--rounds 1`)."),
        "## Dynamic batching\n\n"
        "Servers with the dynamic batcher on (`HWR_BATCH_MAX_SIZE` > 1): its model calls over the\n"
        "measured window, inputs per call and the mean wait of an input for its call, from the\n"
        "server's own `/metrics` (`hwr_batch_size`, `hwr_batch_queue_seconds`, read before and after).\n\n"
        + (batching_table(result["runs"]) or "No server ran with the batcher on."),
        "## Ratios ours / baseline\n\n"
        + (ratios_table(result["ratios"]) if result["ratios"] else "No baseline run."),
        "## Stages, in-process\n\n"
        "Median and p95 after a warm-up, in the benchmark process before any server starts\n"
        "(`bench/perf/stages.py`).\n\n"
        + (stages_table(result["stages"]) if result["stages"] else "Not measured (`--no-stages`)."),
    ]
    return "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    result = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    Path(args[1]).write_text(render(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
