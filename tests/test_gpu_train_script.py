"""``benchmarks/gpu_train.sh``: its dry run (tiny-64, 3 CPU steps on a tiny corpus cut from the sample clips,
then the held-out report) runs end to end, and the configs it trains with parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import imf
from imf.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_train.sh"


def _env(tmp_path: Path) -> dict[str, str]:
    """One thread, this interpreter, and a cache of its own that shares the user's fetched samples and
    weights (nothing is fetched twice, no frame cache is left behind)."""
    from imf.cache import cache_dir

    cache = tmp_path / "cache"
    cache.mkdir(parents=True)
    for name in ("samples", "weights", "dlib"):
        if (cache_dir() / name).is_dir():
            (cache / name).symlink_to(cache_dir() / name, target_is_directory=True)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable, "IMF_CACHE": str(cache)}


@pytest.mark.slow  # trains, exports and reports end to end
def test_dry_run_trains_exports_and_reports(tmp_path):
    out, run = tmp_path / "results", tmp_path / "run"
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out), "--run", str(run)],
                          capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((out / "gpu_train.json").read_text())
    assert r["dry_run"] and r["preset"] == "tiny-64" and r["device"] == "cpu"
    assert r["steps"] == 3 and r["stopped_by"] == "max_steps"
    model = imf.load_model(run / "model")  # the exported EMA generator
    assert model.config == imf.IMFConfig.preset("tiny-64") and r["model_bytes"] > 0
    config = TrainConfig.from_yaml(out / "config.yaml")  # the exact config of the run
    assert config.run.batch_size == 4 and list(config.data.stills) == [str(out / "corpus" / "stills")]
    manifest = json.loads((out / "corpus" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["summary"]["heldout_people"]["people"] == ["carphone_man"]
    assert (out / "train.log").is_file()
    assert r["report"] == str(out / "report")
    assert (out / "report" / "learning_report.json").is_file()
    # a second run into the same folders: the dry run's scratch run is replaced, a real one never is
    (run / ".gpu_train_dryrun").unlink()
    again = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out), "--run", str(run)],
                           capture_output=True, text=True, env=_env(tmp_path / "again"), timeout=60)
    assert again.returncode == 2 and "already holds checkpoints" in again.stderr


def test_corpus_small_128_config_parses():
    config = TrainConfig.from_yaml(ROOT / "configs" / "corpus-small-128.yaml")
    assert config.model == imf.IMFConfig.preset("small-128") and config.data.size == 128
    assert config.loss.gan == 1.0 and config.run.precision == "auto"  # the paper's GAN weight, AMP
    assert config.run.batch_size == 32 and config.run.num_workers == 8
    # the recipe of the CPU corpus config, but for the resolution, the GAN and the batch
    tiny = yaml.safe_load((ROOT / "configs" / "corpus-tiny-64.yaml").read_text())
    small = yaml.safe_load((ROOT / "configs" / "corpus-small-128.yaml").read_text())
    for key in ("split_by", "max_distance", "stills_ratio", "hflip_prob"):
        assert small["data"][key] == tiny["data"][key], key
    assert small["data"]["stills"] == ["data/corpus128/stills"]


def test_config_only_derives_paper_256(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    for preset, size, batch in (("small-128", 128, 32), ("paper-256", 256, 16)):
        out = tmp_path / preset
        proc = subprocess.run(["bash", str(SCRIPT), "--config-only", "--preset", preset, "--out", str(out),
                               "--corpus", str(tmp_path / "no-corpus")], capture_output=True, text=True, env=env,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        config = TrainConfig.from_yaml(out / "config.yaml")
        assert config.model == imf.IMFConfig.preset(preset) and config.data.size == size
        assert config.run.batch_size == batch and config.loss.gan == 1.0
        assert config.data.stills is None and config.data.stills_ratio == 0  # no corpus there: clips alone
    bad = subprocess.run(["bash", str(SCRIPT), "--preset", "tiny-64"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "--preset must be" in bad.stderr
