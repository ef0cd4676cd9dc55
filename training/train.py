"""The training run: data → model → epochs → checkpoints → artefacts. Read it top to bottom."""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from training.augment import CanvasAugment
from training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from training.config import TrainConfig, save_config
from training.data.datasets import CanvasDataset
from training.data.tasks import Split, TaskData, load_task
from training.ema import ModelEma
from training.engine import evaluate, pick_device, predict, train_one_epoch
from training.losses import multi_head_loss
from training.models import create_model
from training.reporting import append_metrics, plot_curves, read_metrics, write_head_report

TRAIN_EVAL_SAMPLES = 5000  # train-split metrics are measured on a fixed, un-augmented subset


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def limit(split: Split, n: int) -> Split:
    if n <= 0 or n >= len(split):
        return split
    return Split(split.images[:n], {h: t[:n] for h, t in split.targets.items()})


def load_data(cfg: TrainConfig) -> TaskData:
    data = load_task(cfg.task, cfg.data_path, cfg.val_fraction, cfg.seed, **cfg.task_kwargs)
    return replace(data, train=limit(data.train, cfg.limit_train), val=limit(data.val, cfg.limit_val))


def fit(
    cfg: TrainConfig, run_dir: Path, resume: Path | None = None, stop_after: int = 0, command: str = ""
) -> Path | None:
    """Train; return the best checkpoint's path, or None when stopped early at `stop_after` epochs.

    A run stopped early (or killed) continues with `resume=run_dir / "last.pt"`.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    seed_everything(cfg.seed)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = pick_device()
    print(f"device: {device}  run: {run_dir}")

    data = load_data(cfg)
    augment = CanvasAugment(cfg.augment, seed=cfg.seed)
    train_set = CanvasDataset(data.train, cfg.preprocess, augment, cfg.photo_variants, cfg.seed)
    train_eval_set = CanvasDataset(limit(data.train, TRAIN_EVAL_SAMPLES), cfg.preprocess)
    val_set = CanvasDataset(data.val, cfg.preprocess)
    print(f"train {len(train_set)} (dropped {train_set.dropped} blank), val {len(val_set)}")
    loader_kw = {
        "batch_size": cfg.batch_size,
        "num_workers": cfg.num_workers,
        "pin_memory": device.type == "cuda",
    }
    generator = torch.Generator().manual_seed(cfg.seed)
    train_loader = DataLoader(train_set, shuffle=True, drop_last=True, generator=generator, **loader_kw)
    train_eval_loader = DataLoader(train_eval_set, **loader_kw)
    val_loader = DataLoader(val_set, **loader_kw)

    heads = {head: len(labels) for head, labels in data.heads.items()}
    model_kwargs = {"heads": heads, **cfg.model_kwargs}
    model = create_model(cfg.model, **model_kwargs).to(device)
    ema = ModelEma(model, cfg.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * len(train_loader), pct_start=0.15
    )
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")

    def loss_fn(outputs, targets):
        return multi_head_loss(outputs, targets, cfg.head_weights, cfg.label_smoothing)

    start_epoch, best_score = 1, -1.0
    if resume is not None:
        state = load_checkpoint(resume)
        model.load_state_dict(state["model_state"])
        ema.module.load_state_dict(state["ema_state"])
        ema.steps = state["ema_steps"]
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, best_score = state["epoch"] + 1, state["best_score"]
        print(f"resumed from {resume} at epoch {start_epoch}")

    first_head = next(iter(heads))
    select_metric = cfg.select_metric or f"{first_head}_top1"
    metrics_path = run_dir / "metrics.jsonl"
    if resume is None:
        metrics_path.unlink(missing_ok=True)  # a fresh run in an old run directory starts a fresh log
    started = time.time()
    for epoch in range(start_epoch, cfg.epochs + 1):
        epoch_start = time.time()
        train_stats = train_one_epoch(
            model,
            train_loader,
            loss_fn,
            optimizer,
            scheduler,
            scaler,
            device,
            ema,
            f"epoch {epoch}/{cfg.epochs}",
        )
        scored = ema.module
        record = {"epoch": epoch, "train_loss": train_stats["loss"], "lr": train_stats["lr"]}
        weights = cfg.head_weights
        record |= {f"train_{k}": v for k, v in evaluate(scored, train_eval_loader, device, weights).items()}
        record |= {f"val_{k}": v for k, v in evaluate(scored, val_loader, device, weights).items()}
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
            "provenance": data.provenance,
            "train_seconds": time.time() - started,
            "device": str(device),
            "command": command,
        }
        if score > best_score:
            best_score = score
            save_checkpoint(run_dir / "best.pt", **state)
        save_checkpoint(run_dir / "last.pt", **state)
        plot_curves(read_metrics(metrics_path), run_dir / "curves.png")
        if epoch == stop_after and epoch < cfg.epochs:
            print(f"stopped after epoch {epoch}; continue with --resume")
            return None

    best = load_checkpoint(run_dir / "best.pt")
    logits, targets = predict(model_from_checkpoint(best).to(device), val_loader, device)
    for head, labels in data.heads.items():
        write_head_report(targets[head], logits[head].argmax(1), labels, run_dir, head)
    (run_dir / "summary.json").write_text(
        json.dumps(
            {"best_epoch": best["epoch"], "selected_by": f"val_{select_metric}", **best["metrics"]}, indent=2
        )
    )
    return run_dir / "best.pt"
