"""Trainer: resume continues the same run, checkpoints are kept and atomic, non-finite losses are
handled, configs are checked, the CLI works, and a short run really learns."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

import imf
from imf.cli import main
from imf.errors import ConfigError
from imf.train.checkpointing import list_checkpoints
from imf.train.config import TrainConfig
from imf.train.schedule import lr_factor
from imf.train.trainer import Trainer, TrainingDiverged

from train_helpers import fast_config, moving_blob_clip


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    """Frame caches go to a temporary folder; converted backbone weights are shared with the user cache
    (they are fetched and converted once, not per test)."""
    from imf.cache import cache_dir

    weights = cache_dir() / "weights"
    weights.mkdir(exist_ok=True)
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "weights").symlink_to(weights, target_is_directory=True)


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "blob.mp4"
    moving_blob_clip(path)
    return path


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {**{f"g.{k}": v.clone() for k, v in trainer.generator.state_dict().items()},
            **{f"d.{k}": v.clone() for k, v in trainer.discriminator.state_dict().items()},
            **{f"ema.{k}": v.clone() for k, v in trainer.ema.state_dict().items()}}


@pytest.mark.slow  # two training runs compared bit for bit
def test_resume_continues_the_same_run(tmp_path, clip):
    """N steps + resume + N steps == 2N steps (CPU, fixed seed): same losses and weights to 1e-6."""
    config = fast_config()
    straight = Trainer(config, [str(clip)], tmp_path / "straight", progress=False)
    straight.fit(max_steps=6)
    first = Trainer(config, [str(clip)], tmp_path / "split", progress=False)
    first.fit(max_steps=3)
    first.close()
    resumed = Trainer(config, [str(clip)], tmp_path / "split", resume=True, progress=False)
    assert resumed.step == 3
    resumed.fit(max_steps=6)

    assert [h["step"] for h in resumed.history] == [4, 5, 6]
    for a, b in zip(straight.history[3:], resumed.history):
        for key in ("loss", "l1", "perceptual", "g_gan", "d_loss"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
    w_straight, w_resumed = _weights(straight), _weights(resumed)
    assert w_straight.keys() == w_resumed.keys()
    for k in w_straight:
        torch.testing.assert_close(w_resumed[k], w_straight[k], atol=1e-6, rtol=0, msg=k)
    # the GAN really trained (the discriminator moved), so the D state was part of what resumed
    assert any(h["d_loss"] > 0 for h in straight.history)


@pytest.mark.slow  # a training run with checkpoints and export
def test_checkpoints_kept_and_exported(tmp_path, clip):
    config = fast_config(max_steps=6, checkpoint_every=2, keep_checkpoints=2)
    trainer = Trainer(config, [str(clip)], tmp_path / "run", progress=False)
    summary = trainer.fit()
    trainer.close()
    names = [p.name for p in list_checkpoints(tmp_path / "run")]
    assert names == ["step_00000004.pt", "step_00000006.pt"]
    assert not list((tmp_path / "run" / "checkpoints").glob("*.tmp"))
    model = imf.load_model(tmp_path / "run" / "model")  # the EMA generator
    for k, v in trainer.ema.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert TrainConfig.from_dict(saved) == config
    assert math.isfinite(summary["val_psnr"]) and summary["val_l1"] > 0
    lines = (tmp_path / "run" / "validation.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 6
    assert list((tmp_path / "run" / "tensorboard").iterdir())


def test_nonfinite_loss_skips_then_stops(tmp_path, clip, caplog):
    config = fast_config(max_steps=10, max_nonfinite_steps=3)
    trainer = Trainer(config, [str(clip)], tmp_path / "run", progress=False)
    trainer.fit(max_steps=1)
    before = {k: v.detach().clone() for k, v in trainer.generator.named_parameters()}
    trainer.perceptual.forward = lambda pred, target: torch.tensor(float("nan"))
    with pytest.raises(TrainingDiverged, match="3 non-finite losses in a row"):
        trainer.fit()
    assert trainer.step == 1  # no step was taken on a non-finite loss
    # parameters are untouched (BatchNorm running statistics move in any forward pass)
    for k, v in trainer.generator.named_parameters():
        assert torch.equal(v, before[k]), f"{k} changed on a skipped step"
    assert "non-finite loss" in caplog.text


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.from_dict({"optim": {"learning_rate": 1e-3}})
    with pytest.raises(ConfigError, match="data.size"):
        TrainConfig.from_dict({"model": {"preset": "tiny-64"}, "data": {"size": 128}})
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig.from_dict({"run": {"precision": "fp8"}})
    for name in ("tiny-64", "small-128", "paper-256"):
        cfg = TrainConfig.from_yaml(f"configs/{name}.yaml")
        assert cfg.model == imf.IMFConfig.preset(name)
    paper = TrainConfig.from_yaml("configs/paper-256.yaml")
    assert (paper.loss.l1, paper.loss.perceptual, paper.loss.gan) == (10, 10, 1)
    assert paper.optim.lr == 2e-4 and paper.optim.betas == (0.5, 0.999) and paper.run.batch_size == 64


def test_schedule():
    assert lr_factor(0, 100, warmup_steps=10) == pytest.approx(0.1)
    assert lr_factor(50, 100, warmup_steps=10) == 1.0
    assert lr_factor(100, 100, decay="cosine", min_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(50, 100, decay="cosine", min_ratio=0.0) == pytest.approx(0.5)


@pytest.mark.slow  # two CLI training runs
def test_cli_train_and_resume(tmp_path, clip, capsys):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(fast_config().to_dict()))
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg_path), "--data", str(clip), "--out", str(run), "--max-steps", "2"]) == 0
    assert main(["train", "--config", str(cfg_path), "--data", str(clip), "--out", str(run), "--resume",
                 "--max-steps", "3"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.rindex("{"):])["step"] == 3
    # user mistakes: exit 2, one line
    assert main(["train", "--config", str(tmp_path / "none.yaml"), "--data", str(clip), "--out", str(run)]) == 2
    assert main(["train", "--config", str(cfg_path), "--data", str(tmp_path / "none.mp4"), "--out",
                 str(tmp_path / "r2")]) == 2
    assert main(["train", "--config", str(cfg_path), "--data", str(clip), "--out", str(tmp_path / "r3"),
                 "--resume"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 3


def test_max_minutes_stops_with_a_checkpoint_and_the_model(tmp_path, clip, capsys):
    """--max-minutes: the run stops after the first step past the deadline and ends as at max_steps."""
    config = fast_config(max_steps=10**6, checkpoint_every=10**6)
    trainer = Trainer(config, [str(clip)], tmp_path / "run", progress=False)
    summary = trainer.fit(max_minutes=1e-6)  # 60 µs: over after the first step
    trainer.close()
    assert summary["step"] == 1 and summary["stopped_by"] == "max_minutes"
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_00000001.pt"]
    imf.load_model(tmp_path / "run" / "model")
    assert math.isfinite(summary["val_psnr"])
    with pytest.raises(imf.errors.IMFError, match="max_minutes"):
        trainer.fit(max_minutes=0)
    # the CLI: the option reaches the trainer; a non-positive value is a user mistake
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(config.to_dict()))
    args = ["train", "--config", str(cfg_path), "--data", str(clip), "--out", str(tmp_path / "cli")]
    assert main([*args, "--max-minutes", "1e-6"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.rindex("{"):])["stopped_by"] == "max_minutes"
    assert main([*args, "--max-minutes", "0"]) == 2
    assert "--max-minutes must be > 0" in capsys.readouterr().err


@pytest.mark.slow
def test_short_run_learns(tmp_path, clip):
    """A minute or two of CPU training (the paper's losses with the pretrained VGG, a higher learning rate
    than the paper's to be quick) halves the training loss on the moving-disc clip. The loss of one batch of 4 is
    noisy (±10%), so the end is the mean of the last 20 steps, and how fast a run learns varies from run to run
    (thread count, CPU kernels, what ran before in the process): on a 2-core AVX-512 CPU the ratio at 250 steps
    was 0.26 alone with 1 thread, 0.44 with 2, and 0.505 inside the slow suite; CI's CPU reached 0.53 at 150
    steps (last 5). Later the runs measured were at 0.23 at 400 steps (1 thread) and 0.40 at 300 (2 threads)."""
    config = TrainConfig.from_dict({
        "model": {"preset": "tiny-64"}, "data": {"split_by": "frames", "val_fraction": 0.25, "hflip_prob": 0.0},
        "loss": {"gan_start_step": 1000, "perceptual_scales": [1.0, 0.5]},
        "optim": {"lr": 1e-3, "warmup_steps": 5},
        "run": {"batch_size": 4, "max_steps": 400, "num_workers": 0, "val_every": 1000, "image_every": 1000,
                "checkpoint_every": 1000, "log_every": 10,
                "precision": "fp32"}})  # the reference path: the same numbers on every CPU (auto is bf16 on AMX)
    trainer = Trainer(config, [str(clip)], tmp_path / "run", progress=False)
    trainer.fit()
    losses = [h["loss"] for h in trainer.history]
    first, last = sum(losses[:5]) / 5, sum(losses[-20:]) / 20
    assert last <= 0.5 * first, f"training loss went from {first:.3f} to {last:.3f}"
