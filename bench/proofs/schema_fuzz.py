"""Full property-based API fuzzing from the OpenAPI schema (schemathesis) against the real server.

    .venv/bin/python -m bench.proofs.schema_fuzz                        # 2 passes of 120 s, seed 0
    .venv/bin/python -m bench.proofs.schema_fuzz --max-time 10 --max-examples 20 --out-dir /tmp/st

Two passes, each on a fresh `python -m app` on 127.0.0.1 with the committed models: authentication
off, then on (HWR_API_TOKEN set, the token sent by schemathesis, so its `ignored_auth` check runs).
Each pass is `schemathesis run --checks all --mode all` (positive and negative data, every phase)
with bench/proofs/schemathesis.toml; fuzzing repeats (at most --max-examples per operation and round)
until --max-time is spent. Afterwards the server's own JSON access log is read back: the
statuses it answered, counted independently of schemathesis. Exits 1 if schemathesis found
anything or the server answered any 5xx.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.server import REPO, running_server

CONFIG = REPO / "bench" / "proofs" / "schemathesis.toml"


def answered_statuses(log_path: Path, offset: int = 0) -> Counter[str]:
    """Statuses from the server's access log (one JSON object per line), from byte `offset` on."""
    statuses: Counter[str] = Counter()
    with log_path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode("utf-8", errors="replace").splitlines()
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a C library's own stderr line (e.g. libtiff), not ours
        if entry.get("logger") == "app.access":
            statuses[str(entry["status"])] += 1
    return statuses


def run_pass(name: str, args: argparse.Namespace, settings: dict[str, object], headers: list[str]) -> dict:
    out_dir: Path = args.out_dir / name
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "server.log"
    # The probes and the access log line of /health too: logged at INFO here.
    with running_server(args.model_dir, log_path, {"log_level": "DEBUG", **settings}) as server:
        # Only what the fuzzing was answered counts: the readiness polls before it answer 503
        # while the models load, as they should.
        ready_at = log_path.stat().st_size
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            *("--config-file", str(CONFIG), "run", f"{server.url}/openapi.json"),
            *("--checks", "all", "--mode", "all", "--workers", "1", "--no-color"),
            *("--max-examples", str(args.max_examples), "--max-time", str(args.max_time)),
            *("--seed", str(args.seed)),
            *("--report", "junit", "--report-dir", str(out_dir)),
            *headers,
        ]
        print("$", " ".join(command[:-2] if headers else command), "(+ auth header)" * bool(headers))
        returncode = subprocess.run(command, check=False).returncode
    statuses = answered_statuses(log_path, ready_at)
    server_errors = sum(count for status, count in statuses.items() if status.startswith("5"))
    return {"pass": name, "schemathesis_exit": returncode, "statuses": dict(statuses), "5xx": server_errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-examples", type=int, default=200, help="per operation (default 200)")
    parser.add_argument("--max-time", type=int, default=120, help="seconds per pass (default 120)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument("--out-dir", type=Path, default=Path("schemathesis-report"))
    args = parser.parse_args(argv)

    token = secrets.token_hex(16)
    results = [
        run_pass("auth-off", args, {}, []),
        run_pass("auth-on", args, {"api_token": token}, ["-H", f"Authorization: Bearer {token}"]),
    ]
    print(json.dumps(results, indent=2))
    (args.out_dir / "summary.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["schemathesis_exit"] == 0 and r["5xx"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
