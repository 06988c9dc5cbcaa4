"""DDP on two CPU processes with gloo: the run completes, rank 0 alone writes, and both ranks hold
identical weights after their steps. Also the real command under torchrun."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import yaml

import imf

from train_helpers import ddp_worker, fast_config, moving_blob_clip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def clip(tmp_path, monkeypatch):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "blob.mp4"
    moving_blob_clip(path)
    return path


@pytest.mark.slow  # two gloo processes
def test_two_gloo_ranks_hold_identical_weights(tmp_path, clip):
    run_dir, out_dir = tmp_path / "run", tmp_path / "dumps"
    out_dir.mkdir()
    mp.spawn(ddp_worker, args=(2, _free_port(), str(clip), str(run_dir), str(out_dir)), nprocs=2, join=True)
    r0 = torch.load(out_dir / "rank0.pt", weights_only=True)
    r1 = torch.load(out_dir / "rank1.pt", weights_only=True)
    assert r0["steps"] == r1["steps"] == [1, 2]
    assert r0["local_batch"] == r1["local_batch"] == 2  # global batch 4 split over 2 ranks
    torch.manual_seed(0)  # the trainer's seed → the weights before training
    initial = imf.IMF(fast_config().model).state_dict()
    moved = 0
    for k, v in r0["state"].items():
        assert torch.equal(v, r1["state"][k]), f"ranks disagree on {k}"
        if k.startswith("g.") and v.is_floating_point() and k[2:] in initial and not torch.equal(v, initial[k[2:]]):
            moved += 1
    assert moved > 0, "no generator weight changed: no step was taken"
    # rank 0 alone wrote the run folder's files (one checkpoint at step 2, the exported model)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_00000002.pt"]
    assert (run_dir / "model" / "model.safetensors").is_file()


@pytest.mark.slow  # torchrun starts two Python processes that each import torch and build a model
def test_torchrun_command(tmp_path, clip):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(fast_config().to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "imf.cli", "train", "--config", str(cfg), "--data", str(clip), "--out", str(tmp_path / "run"),
           "--max-steps", "2", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert imf.load_model(tmp_path / "run" / "model").config == fast_config().model
    assert Path(tmp_path / "run" / "checkpoints" / "step_00000002.pt").is_file()
