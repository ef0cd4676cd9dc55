"""Train from a pack (training.pack_format) on one GPU within a time budget: the grapheme model's path.

`python -m training.packed --pack DIR [--pack DIR2] --run-dir runs/NAME --minutes 7 [--set k=v]`

Everything per step happens on the device: the whole pack sits in GPU memory as 4-bit canvases, a
batch is indexed, augmented (random affine, stroke dilation/erosion, Cutout: the committed recipe's
kinds of variation, as tensors) and fed to the model in bfloat16 autocast. The learning rate follows
a warm-up and cosine decay over the *time* budget, so a run ends on schedule on any GPU. The EMA
weights are scored on the selection splits after every pass; the best ones are kept. Checkpoints
have the format of training.train (export, evaluate and quantize take them), with the device named;
`last.pt` after every pass lets `--resume` continue a stopped run with the time it has left.

Imports only torch, numpy and the project's model, loss and EMA code: it runs on a bare GPU image
(no albumentations, fonts or data sets; the pack carries the config).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.checkpoint import load_checkpoint, save_checkpoint
from training.ema import ModelEma
from training.engine import classification_metrics
from training.losses import make_loss
from training.mixing import BatchMixer
from training.models import create_model
from training.pack_format import LEVELS, PackSplit, read_pack

SELECTION = {"banglalekha_val": "grapheme_root_top1", "val": "score"}  # split → metric, averaged


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`a.b=value` (value as JSON where it parses, else a string) into a copy of the config."""
    config = json.loads(json.dumps(config))
    for item in overrides:
        key, _, value = item.partition("=")
        *path, last = key.split(".")
        node = config
        for part in path:
            node = node.setdefault(part, {})
        node[last] = parse_value(value)
    return config


def downsampled_preprocess(preprocess: dict[str, Any], factor: int) -> dict[str, Any]:
    """The preprocessing whose canvases a `factor`× average pooling of the pack's canvases matches."""
    if factor == 1:
        return preprocess
    out = dict(preprocess)
    for key in ("box_size", "canvas_size"):
        out[key] = preprocess[key] // factor
    for key in ("min_stroke", "max_stroke", "blur_sigma"):
        out[key] = preprocess[key] / factor
    return out


class GpuAugment:
    """Per-sample random affine, stroke dilation/erosion and Cutout on a batch of [0, 1] canvases."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.rotate = math.radians(config.get("rotate", 10.0))
        self.scale = config.get("scale", [0.85, 1.08])
        self.shear = config.get("shear", 0.2)
        self.translate = config.get("translate", 0.06)
        self.affine_p = config.get("affine_p", 0.9)
        self.morph_p = config.get("morph_p", 0.3)
        self.cutout_p = config.get("cutout_p", 0.0)
        self.cutout_side = config.get("cutout_side", [0.15, 0.35])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, dev = x.shape[0], x.device

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return torch.empty(n, device=dev).uniform_(lo, hi)

        angle = uniform(-self.rotate, self.rotate)
        sx = torch.exp(uniform(math.log(self.scale[0]), math.log(self.scale[1])))
        sy = sx * torch.exp(uniform(-0.1, 0.1))
        shear = uniform(-self.shear, self.shear)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # affine_grid maps output → input coordinates: the inverse of zooming by s is 1/s.
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 1] = cos / sx, (-sin + shear) / sx
        theta[:, 1, 0], theta[:, 1, 1] = sin / sy, cos / sy
        theta[:, :, 2] = torch.empty(n, 2, device=dev).uniform_(-2 * self.translate, 2 * self.translate)
        identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=dev).expand(n, 2, 3)
        keep = (torch.rand(n, device=dev) < self.affine_p).view(n, 1, 1)
        theta = torch.where(keep, theta, identity)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

        draw = torch.rand(n, device=dev).view(n, 1, 1, 1)
        dilated = F.max_pool2d(x, 3, 1, 1)
        eroded = -F.max_pool2d(-x, 3, 1, 1)
        half = self.morph_p / 2
        x = torch.where(draw < half, dilated, torch.where(draw < self.morph_p, eroded, x))

        if self.cutout_p > 0:
            size = x.shape[-1]
            side = (uniform(*self.cutout_side) * size).long().view(n, 1, 1, 1)
            top = (torch.rand(n, device=dev) * size).long().view(n, 1, 1, 1) - side // 2
            left = (torch.rand(n, device=dev) * size).long().view(n, 1, 1, 1) - side // 2
            rows = torch.arange(size, device=dev).view(1, 1, size, 1)
            cols = torch.arange(size, device=dev).view(1, 1, 1, size)
            hole = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
            hole &= (torch.rand(n, device=dev) < self.cutout_p).view(n, 1, 1, 1)
            x = x.masked_fill(hole, 0.0)
        return x.clamp_(0.0, 1.0)


class DeviceSplit:
    """A pack split on the device: 4-bit canvases (pooled by `factor`) and targets."""

    def __init__(self, split: PackSplit, device: torch.device, factor: int) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(split.images)).to(device)
        self.targets = {h: torch.from_numpy(t).to(device) for h, t in split.targets.items()}
        self.factor = factor

    def __len__(self) -> int:
        return len(self.images)

    def canvases(self, index: torch.Tensor) -> torch.Tensor:
        x = self.images[index].unsqueeze(1).float() / LEVELS
        return F.avg_pool2d(x, self.factor) if self.factor > 1 else x


def describe(device: torch.device) -> str:
    """e.g. "cuda (NVIDIA H200)": recorded in the checkpoint and so in the model's manifest."""
    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else device.type


def lr_at(fraction: float, peak: float, warmup: float = 0.05) -> float:
    if fraction < warmup:
        return peak * fraction / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * min(1.0, (fraction - warmup) / (1 - warmup))))


@torch.no_grad()
def score_split(
    model: torch.nn.Module,
    split: DeviceSplit,
    mean: float,
    std: float,
    weights: dict[str, float],
    batch: int = 4096,
) -> dict[str, float]:
    model.eval()
    logits: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(split), batch):
        index = torch.arange(start, min(start + batch, len(split)), device=split.images.device)
        x = (split.canvases(index) - mean) / std
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
            out = model(x.contiguous(memory_format=torch.channels_last))
        for head, value in out.items():
            logits.setdefault(head, []).append(value.float().cpu().numpy())
    targets = {h: t.cpu().numpy() for h, t in split.targets.items()}
    return classification_metrics({h: np.concatenate(v) for h, v in logits.items()}, targets, weights)


def train(
    packs: list[Path],
    run_dir: Path,
    minutes: float,
    overrides: list[str],
    command: str,
    resume: bool = False,
) -> dict[str, Any]:
    """Train for `minutes` of wall time; with `resume`, continue the run in `run_dir` from its
    `last.pt` (weights, EMA, optimizer, data order and the time already spent, so the schedule
    goes on where it stopped; its config wins over `overrides`)."""
    started = time.time()
    meta, splits = read_pack(packs)
    saved = load_checkpoint(run_dir / "last.pt") if resume else None
    config = saved["config"] if saved else apply_overrides(meta["config"], overrides)
    packed = config.setdefault("packed", {})
    factor = int(packed.get("downsample", 1))
    if not saved:
        config["preprocess"] = downsampled_preprocess(meta["config"]["preprocess"], factor)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(config.get("seed", 0))
    run_dir.mkdir(parents=True, exist_ok=True)

    data = {name: DeviceSplit(split, device, factor) for name, split in splits.items()}
    train_split = data["train"]
    heads = {h: len(labels) for h, labels in meta["heads"].items()}
    model_kwargs = {"heads": heads, **config.get("model_kwargs", {})}
    model = create_model(config["model"], **model_kwargs).to(device).to(memory_format=torch.channels_last)
    ema = ModelEma(model, config.get("ema_decay", 0.999))
    peak = float(config.get("lr", 3e-3))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=peak, weight_decay=float(config.get("weight_decay", 0.05))
    )
    weights = config.get("head_weights", {})
    loss_fn = make_loss(
        config.get("loss", "ce"),
        weights,
        float(config.get("label_smoothing", 0.1)),
        float(config.get("ohem_rate", 0.5)),
    )
    augment = GpuAugment(packed.get("augment", {}))
    mix = config.get("mix") or []
    mixer = BatchMixer(
        mix, heads, config.get("mix_alpha", 0.4), config.get("mix_p", 0.5), config.get("seed", 0)
    )
    mean, std = config["preprocess"]["mean"], config["preprocess"]["std"]
    batch = int(packed.get("batch_size", config.get("batch_size", 512)))
    budget = minutes * 60.0
    print(
        f"device {describe(device)}, "
        f"train {len(train_split)}, {', '.join(f'{k} {len(v)}' for k, v in data.items() if k != 'train')}, "
        f"input {train_split.canvases(torch.arange(1, device=device)).shape[-1]} px, "
        f"{sum(p.numel() for p in model.parameters())} parameters; loaded in {time.time() - started:.0f}s"
    )

    train_start = time.time()
    epoch, step, best, history = 0, 0, -1.0, []
    generator = torch.Generator(device=device).manual_seed(config.get("seed", 0))
    if saved:
        model.load_state_dict(saved["model_state"])
        ema.module.load_state_dict(saved["ema_state"])
        ema.steps = saved["ema_steps"]
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"].to(generator.get_state().device))
        epoch, step, best, history = saved["epoch"], saved["step"], saved["best"], saved["history"]
        train_start -= saved["elapsed"]
        print(f"resumed from {run_dir / 'last.pt'} after pass {epoch} ({saved['elapsed']:.0f}s spent)")
    while time.time() - train_start < budget:
        epoch += 1
        model.train()
        order = torch.randperm(len(train_split), device=device, generator=generator)
        total, seen = torch.zeros((), device=device), 0
        for start in range(0, len(order) - batch + 1, batch):
            fraction = (time.time() - train_start) / budget
            if fraction >= 1.0:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr_at(fraction, peak)
            index = order[start : start + batch]
            x = (augment(train_split.canvases(index)) - mean) / std
            targets = {h: t[index] for h, t in train_split.targets.items()}
            if mix:
                x, targets = mixer(x, targets)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = loss_fn(model(x.contiguous(memory_format=torch.channels_last)), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ema.update(model)
            total += loss.detach() * len(index)
            seen += len(index)
            step += 1
        record: dict[str, Any] = {"epoch": epoch, "steps": step, "train_loss": float(total) / max(seen, 1)}
        for name in data:
            if name != "train":
                found = score_split(ema.module, data[name], mean, std, weights)
                record |= {f"{name}_{k}": round(v, 5) for k, v in found.items()}
        selected = [
            record[f"{name}_{metric}"] for name, metric in SELECTION.items() if f"{name}_{metric}" in record
        ]
        record["select"] = float(np.mean(selected)) if selected else -record["train_loss"]
        record["seconds"] = round(time.time() - train_start, 1)
        history.append(record)
        print(json.dumps(record), flush=True)
        state = {
            "model_name": config["model"],
            "model_kwargs": model_kwargs,
            # The EMA weights alone (what is scored and exported): half the file to bring back.
            "model_state": ema.module.state_dict(),
            "epoch": epoch,
            "best_score": max(best, record["select"]),
            "metrics": record,
            "config": config,
            "heads": meta["heads"],
            "provenance": meta["provenance"],
            "train_seconds": time.time() - train_start,
            "device": describe(device),
            "hardware": f"{describe(device)}, "
            f"{'bf16 autocast, ' if device.type == 'cuda' else ''}batch {batch}, "
            f"torch {torch.__version__}",
            "command": command,
        }
        if record["select"] > best:
            best = record["select"]
            save_checkpoint(run_dir / "best.pt", **state)
        save_checkpoint(
            run_dir / "last.pt",
            config=config,
            model_state=model.state_dict(),
            ema_state=ema.module.state_dict(),
            ema_steps=ema.steps,
            optimizer=optimizer.state_dict(),
            generator=generator.get_state(),
            epoch=epoch,
            step=step,
            best=best,
            history=history,
            elapsed=time.time() - train_start,
        )
    (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    return {"best_select": best, "epochs": epoch, "steps": step, "history": history}


def main(argv: list[str] | None = None) -> None:
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m training.packed", description=__doc__)
    parser.add_argument("--pack", type=Path, action="append", required=True, help="pack folder (repeatable)")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=7.0, help="training time budget")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--resume", action="store_true", help="continue from <run-dir>/last.pt")
    args = parser.parse_args(argv)
    command = "python -m training.packed " + shlex.join(sys.argv[1:] if argv is None else argv)
    result = train(args.pack, args.run_dir, args.minutes, args.overrides, command, args.resume)
    print(
        f"best selection score {result['best_select']:.4f} after {result['epochs']} passes, "
        f"{result['steps']} steps"
    )


if __name__ == "__main__":
    main()
