"""The training run: data → model → epochs → checkpoints → artefacts. Read it top to bottom.

Under torchrun (WORLD_SIZE > 1, training.distributed) every process runs this same function on its
shard of the training set; rank 0 alone evaluates and writes the run directory.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from training import distributed
from training.augment import CanvasAugment
from training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from training.config import TrainConfig, save_config
from training.data.datasets import CanvasDataset
from training.data.loading import limit, load_data
from training.data.tasks import TaskData
from training.ema import ModelEma
from training.engine import evaluate, predict, train_one_epoch
from training.hardware import Hardware, maybe_compile, select_hardware
from training.losses import make_loss
from training.mixing import BatchMixer
from training.models import create_model
from training.reporting import append_metrics, plot_curves, read_metrics, write_head_report

TRAIN_EVAL_SAMPLES = 5000  # train-split metrics are measured on a fixed, un-augmented subset


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Loaders:
    train: DataLoader
    train_eval: DataLoader
    val: DataLoader
    sampler: DistributedSampler | None  # re-seeded every epoch when distributed


def build_loaders(cfg: TrainConfig, data: TaskData, hardware: Hardware, rank: distributed.Rank) -> Loaders:
    """`batch_size` is the global batch: split over the processes, so lr and steps mean the same on any
    number of GPUs."""
    if cfg.batch_size % rank.world_size:
        raise ValueError(f"batch_size {cfg.batch_size} does not split over {rank.world_size} processes")
    augment = CanvasAugment(cfg.augment, seed=cfg.seed + rank.rank)
    train_set = CanvasDataset(data.train, cfg.preprocess, augment, cfg.photo_variants, cfg.seed)
    train_eval_set = CanvasDataset(limit(data.train, TRAIN_EVAL_SAMPLES), cfg.preprocess)
    val_set = CanvasDataset(data.val, cfg.preprocess)
    if rank.is_main:
        print(f"train {len(train_set)} (dropped {train_set.dropped} blank), val {len(val_set)}")
    loader_kw: dict[str, Any] = {
        "batch_size": cfg.batch_size // rank.world_size,
        "num_workers": cfg.num_workers,
        "pin_memory": hardware.device.type == "cuda",
        "persistent_workers": cfg.num_workers > 0,
    }
    sampler: DistributedSampler | None = None
    if rank.distributed:
        sampler = DistributedSampler(
            train_set, rank.world_size, rank.rank, shuffle=True, seed=cfg.seed, drop_last=True
        )
        train = DataLoader(train_set, sampler=sampler, drop_last=True, **loader_kw)
    else:
        generator = torch.Generator().manual_seed(cfg.seed)
        train = DataLoader(train_set, shuffle=True, drop_last=True, generator=generator, **loader_kw)
    return Loaders(train, DataLoader(train_eval_set, **loader_kw), DataLoader(val_set, **loader_kw), sampler)


def fit(
    cfg: TrainConfig,
    run_dir: Path,
    resume: Path | None = None,
    stop_after: int = 0,
    command: str = "",
    data: TaskData | None = None,
) -> Path | None:
    """Train; return the best checkpoint's path, or None when stopped early at `stop_after` epochs
    (and on every process but rank 0, which alone writes).

    A run stopped early (or killed) continues with `resume=run_dir / "last.pt"`. `data`: the config's
    task data when the caller has loaded it already (to export from the same data afterwards).
    """
    rank = distributed.current()
    if rank.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    seed_everything(cfg.seed)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    hardware = select_hardware(cfg.amp, cfg.channels_last, rank.local_rank)
    if rank.is_main:
        print(f"device: {hardware.describe()} × {rank.world_size}  run: {run_dir}")

    data = data if data is not None else load_data(cfg)
    loaders = build_loaders(cfg, data, hardware, rank)

    heads = {head: len(labels) for head, labels in data.heads.items()}
    model_kwargs = {"heads": heads, **cfg.model_kwargs}
    model = hardware.prepare(create_model(cfg.model, **model_kwargs))
    ema = ModelEma(model, cfg.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * len(loaders.train), pct_start=0.15
    )
    scaler = torch.amp.GradScaler(hardware.device.type, enabled=hardware.needs_scaler)
    loss_fn = make_loss(cfg.loss, cfg.head_weights, cfg.label_smoothing, cfg.ohem_rate)
    mixer = (
        BatchMixer(cfg.mix, heads, cfg.mix_alpha, cfg.mix_p, seed=cfg.seed + rank.rank) if cfg.mix else None
    )

    start_epoch, best_score = 1, -1.0
    if resume is not None:
        state = load_checkpoint(resume)
        model.load_state_dict(state["model_state"])
        ema.module.load_state_dict(state["ema_state"])
        ema.steps = state["ema_steps"]
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and scaler.is_enabled():  # empty when saved without float16 loss scaling
            scaler.load_state_dict(state["scaler"])
        start_epoch, best_score = state["epoch"] + 1, state["best_score"]
        if rank.is_main:
            print(f"resumed from {resume} at epoch {start_epoch}")
    # Wrapped after loading: DDP starts every process from rank 0's weights.
    train_model = maybe_compile(distributed.wrap(model, rank, hardware.device), cfg.compile, hardware)

    first_head = next(iter(heads))
    select_metric = cfg.select_metric or f"{first_head}_top1"
    metrics_path = run_dir / "metrics.jsonl"
    if resume is None and rank.is_main:
        metrics_path.unlink(missing_ok=True)  # a fresh run in an old run directory starts a fresh log
    started = time.time()
    for epoch in range(start_epoch, cfg.epochs + 1):
        epoch_start = time.time()
        if loaders.sampler is not None:
            loaders.sampler.set_epoch(epoch)
        train_stats = train_one_epoch(
            train_model,
            loaders.train,
            loss_fn,
            optimizer,
            scheduler,
            scaler,
            hardware,
            ema,
            f"epoch {epoch}/{cfg.epochs}",
            batch_transform=mixer,
            progress_bar=rank.is_main,
        )
        train_loss = distributed.mean_over_ranks(train_stats["loss"], hardware.device)
        if rank.is_main:
            scored = ema.module
            record = {"epoch": epoch, "train_loss": train_loss, "lr": train_stats["lr"]}
            weights = cfg.head_weights
            train_metrics = evaluate(scored, loaders.train_eval, hardware, weights)
            record |= {f"train_{k}": v for k, v in train_metrics.items()}
            record |= {f"val_{k}": v for k, v in evaluate(scored, loaders.val, hardware, weights).items()}
            record["seconds"] = round(time.time() - epoch_start, 1)
            append_metrics(metrics_path, record)
            score = record[f"val_{select_metric}"]
            print(
                f"epoch {epoch}: loss {record['train_loss']:.4f}  val {first_head} top1 "
                f"{record[f'val_{first_head}_top1']:.4f} top5 {record[f'val_{first_head}_top5']:.4f}  "
                f"score {record['val_score']:.4f}  ({record['seconds']}s)"
            )
            state = {
                "model_name": cfg.model,
                "model_kwargs": model_kwargs,
                "model_state": model.state_dict(),
                "ema_state": ema.module.state_dict(),
                "ema_steps": ema.steps,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "best_score": max(best_score, score),
                "metrics": record,
                "config": cfg.to_dict(),
                "heads": {h: list(labels) for h, labels in data.heads.items()},
                "composition": data.composition,
                "provenance": data.provenance,
                "train_seconds": time.time() - started,
                "device": str(hardware.device),
                "hardware": f"{hardware.describe()} × {rank.world_size}",
                "command": command,
            }
            if score > best_score:
                best_score = score
                save_checkpoint(run_dir / "best.pt", **state)
            save_checkpoint(run_dir / "last.pt", **state)
            plot_curves(read_metrics(metrics_path), run_dir / "curves.png")
        distributed.barrier()  # the others wait while rank 0 evaluates and writes
        if epoch == stop_after and epoch < cfg.epochs:
            if rank.is_main:
                print(f"stopped after epoch {epoch}; continue with --resume")
            return None

    if not rank.is_main:
        return None
    best = load_checkpoint(run_dir / "best.pt")
    logits, targets = predict(hardware.prepare(model_from_checkpoint(best)), loaders.val, hardware)
    for head, labels in data.heads.items():
        write_head_report(targets[head], logits[head].argmax(1), labels, run_dir, head)
    (run_dir / "summary.json").write_text(
        json.dumps(
            {
                "best_epoch": best["epoch"],
                "selected_by": f"val_{select_metric}",
                "hardware": best["hardware"],
                **best["metrics"],
            },
            indent=2,
        )
    )
    return run_dir / "best.pt"
