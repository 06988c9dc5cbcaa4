"""Nothing lost: no command writes over one of its inputs, and a run folder is never clobbered (a refused
command changes nothing)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from imf.cli import main
from imf.data.video import VideoWriter
from train_helpers import moving_blob_clip


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "in.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(path, 10, 64, 64) as w:
        for _ in range(3):
            w.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return path


def _refused(capsys, argv, protected):
    before = protected.read_bytes()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "is also an input" in err and "Traceback" not in err
    assert protected.read_bytes() == before


def test_commands_refuse_to_write_over_their_input(tmp_path, video, capsys):
    _refused(capsys, ["reconstruct", video, "-o", video], video)
    _refused(capsys, ["reenact", "--source", video, "--driving", video, "-o", video], video)
    _refused(capsys, ["encode", video, "-o", video], video)
    _refused(capsys, ["encode", video, "-o", tmp_path / "x.imf", "--json", video], video)
    _refused(capsys, ["conditions", video, "-o", video], video)
    _refused(capsys, ["eval", video, "--json", video, "--no-fid"], video)
    link = tmp_path / "link.mp4"
    os.link(video, link)  # the same file by another name
    _refused(capsys, ["reconstruct", video, "-o", link], video)
    imf_file = tmp_path / "a.imf"
    assert main(["encode", str(video), "-o", str(imf_file), "--quiet"]) == 0
    _refused(capsys, ["decode", imf_file, "-o", imf_file], imf_file)
    assert main(["decode", str(imf_file), "-o", str(tmp_path / "out.mp4"), "--quiet"]) == 0  # a real output works


def _train_argv(tmp_path, clip, run, *extra):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model: {preset: tiny-64}\nloss: {perceptual_pretrained: false, gan: 0.0}\n"
                   "data: {split_by: frames, val_fraction: 0.3}\nrun: {batch_size: 2, num_workers: 0, "
                   "checkpoint_every: 1, val_every: 100, image_every: 100, log_every: 1}\n")
    return ["train", "--config", str(cfg), "--data", str(clip), "--out", str(run), "--max-steps", "1", *extra]


def test_a_run_folder_is_never_clobbered(tmp_path, capsys):
    clip = tmp_path / "blob.mp4"
    moving_blob_clip(clip)
    run = tmp_path / "run"
    assert main(_train_argv(tmp_path, clip, run)) == 0
    ckpts = sorted((run / "checkpoints").iterdir())
    snapshot = {p: p.read_bytes() for p in [*ckpts, run / "config.yaml", run / "validation.jsonl"]}
    capsys.readouterr()
    assert main(_train_argv(tmp_path, clip, run)) == 2  # neither --resume nor --overwrite
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert main(_train_argv(tmp_path, clip, run, "--resume", "--overwrite")) == 2
    assert all(p.read_bytes() == b for p, b in snapshot.items())
    assert sorted((run / "checkpoints").iterdir()) == ckpts
    assert main(_train_argv(tmp_path, clip, run, "--overwrite")) == 0  # starts over
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == ["step_00000001.pt"]
    assert len((run / "validation.jsonl").read_text().splitlines()) == 1  # one run's log, not two
    assert main(_train_argv(tmp_path, clip, tmp_path / "none", "--resume")) == 2  # nothing to resume


def test_a_refused_resume_leaves_the_run_config_as_it_was(tmp_path, capsys):
    clip = tmp_path / "blob.mp4"
    moving_blob_clip(clip)
    run = tmp_path / "run"
    assert main(_train_argv(tmp_path, clip, run)) == 0
    before = (run / "config.yaml").read_text()
    argv = _train_argv(tmp_path, clip, run, "--resume")
    cfg = tmp_path / "cfg.yaml"  # now another model: the resume must be refused
    cfg.write_text(cfg.read_text().replace("preset: tiny-64", "preset: tiny-64, d_m: 16"))
    assert main(argv) != 0
    assert "another model config" in capsys.readouterr().err
    assert (run / "config.yaml").read_text() == before


def test_a_failed_checkpoint_write_is_one_line_and_leaves_nothing_behind(tmp_path, monkeypatch):
    import torch

    from imf.errors import CheckpointError
    from imf.train.checkpointing import list_checkpoints, save_checkpoint

    save_checkpoint(tmp_path, 1, {"w": torch.ones(3)}, keep=3)
    first = (tmp_path / "checkpoints" / "step_00000001.pt").read_bytes()
    (tmp_path / "checkpoints" / "step_00000002.pt.tmp").write_bytes(b"half")  # a killed run's leftover

    def disk_full(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device.*earlier checkpoints are intact"):
        save_checkpoint(tmp_path, 3, {"w": torch.zeros(3)}, keep=3)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000001.pt"]
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000001.pt"]
    assert (tmp_path / "checkpoints" / "step_00000001.pt").read_bytes() == first


def test_untrusted_checkpoints_are_refused_before_or_while_loading(tmp_path, tiny_model):
    import json

    import torch
    from safetensors.torch import load_file, save_file

    import imf
    from imf.errors import CheckpointError, ConfigError

    tiny_model.save_pretrained(tmp_path / "m")
    state = load_file(str(tmp_path / "m" / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=f"{name} holds NaN or Inf"):
        imf.load_model(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["config"]["frame_decoder_channels"] = [10**7, 64, 32, 32, 16]  # gigabytes if built
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises((ConfigError, CheckpointError), match="widths in 1..2048"):
        imf.load_model(tmp_path / "m")


def test_a_malformed_training_state_is_one_line(tmp_path, capsys):
    import torch

    clip = tmp_path / "blob.mp4"
    moving_blob_clip(clip)
    run = tmp_path / "run"
    assert main(_train_argv(tmp_path, clip, run)) == 0
    ckpt = run / "checkpoints" / "step_00000001.pt"
    state = torch.load(ckpt, weights_only=True)
    del state["opt_g"]
    torch.save(state, ckpt)
    capsys.readouterr()
    assert main(_train_argv(tmp_path, clip, run, "--resume", "--max-steps", "2")) == 2
    err = capsys.readouterr().err
    assert "not a training state" in err and "Traceback" not in err
