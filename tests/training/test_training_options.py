"""The study options through the real training loop: mixing, Cutout, OHEM, seeds; hardware choice on CPU."""

import pytest
import torch

from training.__main__ import main
from training.checkpoint import load_checkpoint
from training.ema import ModelEma, unwrap
from training.hardware import Hardware, maybe_compile, select_hardware

STUDY = [
    "--set",
    "epochs=1",
    "--set",
    "batch_size=16",
    "--set",
    "threads=1",
    "--set",
    "model=simple_cnn",
    "--set",
    "model_kwargs={}",
    "--set",
    "mix=[cutmix, mixup]",
    "--set",
    "loss=ohem",
    "--set",
    "augment.preset=baseline",
    "--set",
    "augment.cutout=true",
]


@pytest.fixture(scope="module")
def twin_runs(fake_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("twins")
    for name in ("a", "b"):
        main(["train", "--run-dir", str(root / name), "--set", f"data_dir={fake_data_dir}", *STUDY])
    return root / "a", root / "b"


def test_study_options_train_and_are_recorded(twin_runs):
    checkpoint = load_checkpoint(twin_runs[0] / "best.pt")
    cfg = checkpoint["config"]
    assert (cfg["loss"], cfg["mix"], cfg["augment"]["preset"], cfg["augment"]["cutout"]) == (
        "ohem",
        ("cutmix", "mixup"),
        "baseline",
        True,
    )
    assert checkpoint["model_name"] == "simple_cnn" and checkpoint["hardware"] == "cpu float32 × 1"
    assert torch.isfinite(torch.tensor(checkpoint["metrics"]["train_loss"]))


def test_same_seed_same_weights(twin_runs):
    a, b = (load_checkpoint(run / "last.pt")["model_state"] for run in twin_runs)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_cpu_runs_in_full_precision_eager_and_contiguous():
    hardware = select_hardware(amp=True, channels_last=True)
    if hardware.device.type == "cuda":
        pytest.skip("a GPU is present")
    assert hardware == Hardware(torch.device("cpu")) and not hardware.needs_scaler
    model = torch.nn.Linear(2, 2)
    assert maybe_compile(model, True, hardware) is model


def test_only_float16_needs_loss_scaling():
    cuda = torch.device("cuda", 0)
    assert Hardware(cuda, torch.float16).needs_scaler and not Hardware(cuda, torch.bfloat16).needs_scaler


def test_ema_follows_the_model_inside_wrappers():
    model = torch.nn.Linear(2, 2)

    class Wrapper(torch.nn.Module):  # the shape of DDP (.module) and torch.compile (._orig_mod)
        def __init__(self, inner: torch.nn.Module, attribute: str) -> None:
            super().__init__()
            setattr(self, attribute, inner)

    wrapped = Wrapper(Wrapper(model, "module"), "_orig_mod")
    assert unwrap(wrapped) is model
    ema = ModelEma(model, decay=0.0)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(wrapped)
    torch.testing.assert_close(ema.module.weight, model.weight)


def test_number_overrides_are_typed_whatever_yaml_reads():
    from training.config import load_config

    cfg = load_config(None, ["lr=3e-3", "epochs=4", "preprocess.blur_sigma=1", "weight_decay=0"])
    assert cfg.lr == 0.003 and isinstance(cfg.lr, float)
    assert cfg.epochs == 4 and cfg.preprocess.blur_sigma == 1.0 and isinstance(cfg.weight_decay, float)
    for bad in ("epochs=ten", "epochs=2.5", "lr=fast"):
        with pytest.raises(ValueError, match="must be"):
            load_config(None, [bad])
