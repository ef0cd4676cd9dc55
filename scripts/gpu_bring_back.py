"""What a GPU run of scripts/train_graphemes_gpu.sh can send back through the device tool's $OUT.

    python3 scripts/gpu_bring_back.py RESULTS OUT

A transfer back holds at most `MAX_FILES` files of at most `MAX_FILE` bytes, `MAX_TOTAL` together,
and the variants' checkpoints are larger than that together. So OUT gets:
- `logs.tar.gz`: device.txt, summary.log, every <variant>.log and <variant>/history.json;
- each variant's best.pt with its weight matrices and kernels in float16 (half the bytes; loading
  it into the float32 model casts them back, and BatchNorm statistics stay float32), best
  selection score first, cut into numbered pieces under the per-file limit, as long as the file
  and byte budgets last. Reassemble: `cat main.best.pt.* > runs/gpu/main/best.pt`.
- `brought.txt`: what was brought and what was left behind, and why.

Needs only torch (it runs on the bare GPU image).
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import torch

MAX_FILES = 8
MAX_FILE = 15 << 20  # under the 16 MiB limit per file
MAX_TOTAL = 60 << 20  # under the 64 MiB limit together


def half_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Matrices and kernels (two or more dimensions) as float16; vectors (biases, BatchNorm) as they are."""
    return {k: v.half() if v.is_floating_point() and v.dim() >= 2 else v for k, v in state.items()}


def compact_checkpoint(path: Path) -> bytes:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    checkpoint["model_state"] = half_weights(checkpoint["model_state"])
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def best_score(run: Path) -> float:
    history = run / "history.json"
    if not history.exists():
        return float("-inf")
    return max(
        (r.get("select", float("-inf")) for r in json.loads(history.read_text())), default=float("-inf")
    )


def logs_archive(results: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(results.glob("*.log")) + sorted(results.glob("*.txt")):
            tar.add(path, arcname=path.name)
        for path in sorted(results.glob("*/history.json")):
            tar.add(path, arcname=f"{path.parent.name}/history.json")
    return buffer.getvalue()


def bring_back(results: Path, out: Path) -> list[str]:
    """Write OUT's files (module docstring); return the lines of brought.txt."""
    out.mkdir(parents=True, exist_ok=True)
    logs = logs_archive(results)
    (out / "logs.tar.gz").write_bytes(logs)
    files, total, notes = 2, len(logs), [f"logs.tar.gz: {len(logs)} bytes"]  # brought.txt is one file
    runs = sorted((p.parent for p in results.glob("*/best.pt")), key=best_score, reverse=True)
    for run in runs:
        data = compact_checkpoint(run / "best.pt")
        pieces = [data[i : i + MAX_FILE] for i in range(0, len(data), MAX_FILE)]
        if files + len(pieces) > MAX_FILES or total + len(data) > MAX_TOTAL:
            notes.append(f"{run.name}: left behind ({len(data)} bytes in {len(pieces)} pieces would not fit)")
            continue
        for i, piece in enumerate(pieces):
            (out / f"{run.name}.best.pt.{i:02d}").write_bytes(piece)
        files, total = files + len(pieces), total + len(data)
        notes.append(
            f"{run.name}: {len(data)} bytes in {len(pieces)} pieces, selection {best_score(run):.4f}"
        )
    (out / "brought.txt").write_text("\n".join(notes) + "\n")
    return notes


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print("\n".join(bring_back(Path(sys.argv[1]), Path(sys.argv[2]))))
