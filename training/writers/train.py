"""The two training runs: `writers-closed` (the study's classifier) and `writers-open` (embeddings).

Both keep the epoch with the best validation score, write `metrics.json` and `best.pt` in the run
directory and print the report; the open-set run can also export its model (training.writers.export).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.writers import iam
from training.writers.config import WriterConfig
from training.writers.data import WriterSet, femnist_closed, femnist_open
from training.writers.metrics import closed_set_report, open_set_report
from training.writers.models import ArcFace, WriterCNN3, WriterEmbeddingNet

Score = Callable[[], float]


Batches = Callable[[np.random.Generator | None], list[np.ndarray]]


def batches(n: int, size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i : i + size] for i in range(0, n, size)]


def group_batches(y: np.ndarray, group: int, size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Batches of whole groups: each writer's samples shuffled and cut into groups of `group`
    consecutive indices (a remainder sits out this epoch), the groups shuffled, `size // group`
    groups a batch."""
    rng = rng if rng is not None else np.random.default_rng(0)
    groups = []
    for writer in np.unique(y):
        own = rng.permutation(np.flatnonzero(y == writer))
        groups += [own[i : i + group] for i in range(0, len(own) - group + 1, group)]
    order = rng.permutation(len(groups))
    per_batch = max(size // group, 1)
    return [
        np.concatenate([groups[j] for j in order[i : i + per_batch]]) for i in range(0, len(order), per_batch)
    ]


def random_shift(x: torch.Tensor, shift: int, fill: float, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by up to `shift` pixels each way, the uncovered border filled with paper."""
    if shift <= 0:
        return x
    size = x.shape[-1]
    padded = F.pad(x, (shift, shift, shift, shift), value=fill)
    offsets = torch.randint(0, 2 * shift + 1, (len(x), 2), generator=generator).tolist()
    return torch.stack([padded[i, :, r : r + size, c : c + size] for i, (r, c) in enumerate(offsets)])


@torch.no_grad()
def outputs(model: nn.Module, x: np.ndarray, batch: int = 512) -> np.ndarray:
    model.eval()
    return np.concatenate(
        [model(torch.from_numpy(x[i : i + batch])).numpy() for i in range(0, len(x), batch)]
    )


def fit(
    model: nn.Module,
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    params: list[nn.Parameter],
    train: WriterSet,
    score: Score,
    cfg: WriterConfig,
    make_batches: Batches | None = None,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """AdamW + cosine schedule; returns the model at its best validation score, and the history."""
    if make_batches is None:

        def make_batches(rng: np.random.Generator | None) -> list[np.ndarray]:
            return batches(len(train), cfg.batch_size, rng)

    optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * len(make_batches(None))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg.lr, total_steps=max(steps, 1))
    rng = np.random.default_rng(cfg.seed)
    best, best_state, history = -np.inf, copy.deepcopy(model.state_dict()), []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        started, total = time.perf_counter(), 0.0
        for index in make_batches(rng):
            if len(index) < 2:  # BatchNorm needs two
                continue
            loss = loss_of(torch.from_numpy(train.x[index]), torch.from_numpy(train.y[index]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
        value = score()
        history.append(
            {"epoch": epoch, "loss": total / len(train), "val": value, "s": time.perf_counter() - started}
        )
        print(f"epoch {epoch}: loss {total / len(train):.4f}  val {value:.4f}", flush=True)
        if value > best:
            best, best_state = value, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model, history


def closed_data(cfg: WriterConfig) -> tuple[WriterSet, WriterSet, WriterSet, list[str]]:
    if cfg.source == "femnist":
        train, val, test, classes = femnist_closed(cfg)
        return train, val, test, [str(c) for c in classes]
    if cfg.source != "iam":
        raise ValueError(f"source must be 'femnist' or 'iam', got {cfg.source!r}")
    images = iam.sentence_images(Path(cfg.iam_dir))
    writers = iam.top_writers(images, cfg.limit_writers or cfg.top_writers)
    images = [image for image in images if image.writer in writers]
    sets = []
    for i, index in enumerate(iam.split_images(images, cfg.split, cfg.seed)):
        per_image = cfg.crops_per_image if i == 0 else 0  # random crops to train, sequential to judge
        x, y = iam.crops_of(
            [images[j] for j in index], writers, cfg.iam_height, cfg.crop, per_image, cfg.seed
        )
        sets.append(WriterSet(x, y, np.asarray(writers)[y]))
    return sets[0], sets[1], sets[2], writers


def train_closed(cfg: WriterConfig, run_dir: Path) -> dict[str, float]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train, val, test, writers = closed_data(cfg)
    size = train.x.shape[-1]
    kwargs = {"input_size": size, "first_stride": 2 if size > 64 else 1, **cfg.model_kwargs}
    model = WriterCNN3(len(writers), **kwargs)

    def score() -> float:
        return float((outputs(model, val.x).argmax(axis=1) == val.y).mean())

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y)

    started = time.perf_counter()
    model, history = fit(model, loss_of, list(model.parameters()), train, score, cfg)
    report = {
        f"test_{k}": v
        for k, v in closed_set_report(outputs(model, test.x), test.y, cfg.aggregate, cfg.seed).items()
    }
    report |= {
        "writers": float(len(writers)),
        "train_samples": float(len(train)),
        "test_samples": float(len(test)),
    }
    report["train_s"] = time.perf_counter() - started
    save_run(run_dir, cfg, model, report, history, {"writers": writers, "model_kwargs": kwargs})
    return report


def train_open(cfg: WriterConfig, run_dir: Path) -> tuple[WriterEmbeddingNet, dict[str, float]]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train, val, held_out = femnist_open(cfg)
    model = WriterEmbeddingNet(cfg.embedding_dim, input_size=train.x.shape[-1], **cfg.model_kwargs)
    arcface = ArcFace(cfg.embedding_dim, int(train.y.max()) + 1, cfg.arcface_scale, cfg.arcface_margin)
    # Validation writers: top-1 in the `select` cell picks the epoch (and the threshold cell below).
    pick = (min(cfg.select[0], max(cfg.enrol)), cfg.select[1])

    def score() -> float:
        cell = open_set_report(outputs(model, val.x), val.writer_ids, (pick[0],), (pick[1],), cfg.seed)
        return cell.get(f"k{pick[0]}_q{pick[1]}_top1", 0.0)

    group = max(cfg.group_size, 1)
    paper = -cfg.preprocess.mean / cfg.preprocess.std  # an empty canvas pixel, normalised
    generator = torch.Generator().manual_seed(cfg.seed)

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        embeddings = model(random_shift(x, cfg.shift, paper, generator))
        loss = F.cross_entropy(arcface(embeddings, y), y)
        if group > 1:  # rows come in groups of one writer (group_batches)
            means = F.normalize(embeddings.view(-1, group, embeddings.shape[1]).mean(dim=1), dim=1)
            labels = y.view(-1, group)[:, 0]
            loss = loss + cfg.group_weight * F.cross_entropy(arcface(means, labels), labels)
        return loss

    def make_batches(rng: np.random.Generator | None) -> list[np.ndarray]:
        if group > 1:
            return group_batches(train.y, group, cfg.batch_size, rng)
        return batches(len(train), cfg.batch_size, rng)

    started = time.perf_counter()
    params = [*model.parameters(), *arcface.parameters()]
    model, history = fit(model, loss_of, params, train, score, cfg, make_batches)
    report = {
        f"heldout_{k}": v
        for k, v in open_set_report(
            outputs(model, held_out.x), held_out.writer_ids, cfg.enrol, cfg.query, cfg.seed
        ).items()
    }
    # The service's "unknown" thresholds: the EER thresholds on validation writers (not the held-out
    # ones), at the picked enrolment size, for each query size (a mean over more characters scores higher).
    val_report = open_set_report(outputs(model, val.x), val.writer_ids, (pick[0],), cfg.query, cfg.seed)
    report["val_eer_threshold"] = val_report.get(f"k{pick[0]}_q{pick[1]}_eer_threshold", 0.5)
    for q in cfg.query:
        if f"k{pick[0]}_q{q}_eer_threshold" in val_report:
            report[f"val_q{q}_eer_threshold"] = val_report[f"k{pick[0]}_q{q}_eer_threshold"]
    report |= {
        f"{name}_writers": float(len(np.unique(s.writer_ids)))
        for name, s in [("train", train), ("val", val), ("heldout", held_out)]
    }
    report["train_s"] = time.perf_counter() - started
    save_run(run_dir, cfg, model, report, history, {"model_kwargs": cfg.model_kwargs})
    return model, report


def save_run(
    run_dir: Path, cfg: WriterConfig, model: nn.Module, report: dict, history: list, extra: dict
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"config": cfg.to_dict(), "state": model.state_dict(), **extra}, run_dir / "best.pt")
    (run_dir / "metrics.json").write_text(json.dumps({"report": report, "history": history}, indent=2) + "\n")
