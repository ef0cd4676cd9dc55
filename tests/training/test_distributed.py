"""Two-process data parallelism on CPU (gloo) through the real entry point, as torchrun starts it on GPUs."""

import json
import os
import re
import subprocess
import sys

import torch

from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.config import REPO_ROOT

SMOKE = [
    "--set",
    "epochs=2",
    "--set",
    "batch_size=16",
    "--set",
    "threads=1",
    "--set",
    "model_kwargs={widths: [8, 16, 16]}",
    "--set",
    "mix=[cutmix]",
]


def test_torchrun_two_processes_train_one_model(fake_data_dir, tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "training",
        "train",
        "--run-dir",
        str(run_dir),
        "--set",
        f"data_dir={fake_data_dir}",
        *SMOKE,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2]  # rank 0 alone wrote: one line per epoch
    checkpoint = load_checkpoint(run_dir / "best.pt")
    assert checkpoint["hardware"] == "cpu float32 × 2"
    assert not any(key.startswith("module.") for key in checkpoint["model_state"])  # the plain model's keys
    assert model_from_checkpoint(checkpoint)(torch.zeros(1, 1, 28, 28))["letter"].shape == (1, 26)
    assert done.stdout.count("epoch 2:") == 1  # only rank 0 reports
    # batch_size is global: 8 per process, each on its half, so as many steps as one process with 16
    n_train = int(re.search(r"^train (\d+)", done.stdout, re.MULTILINE).group(1))
    assert checkpoint["ema_steps"] == 2 * (n_train // 16)
