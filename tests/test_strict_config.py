"""One strict config parser (imf.strict) behind every config: unknown keys, wrong types and deep nesting are
ConfigErrors that name the key, before any model is built."""

from __future__ import annotations

import json

import pytest

from imf.config import IMFConfig
from imf.data.dataset import DataConfig
from imf.train.editor_config import EditorTrainConfig
from imf.errors import ConfigError
from imf.models.editor import EditorConfig
from imf.train.config import TrainConfig


@pytest.mark.parametrize("build, message", [
    (lambda: IMFConfig.from_dict({"resolution": 64.5}), "resolution must be an integer"),
    (lambda: IMFConfig.from_dict({"d_m": True}), "d_m must be an integer"),
    (lambda: IMFConfig.from_dict({"use_sdpa": "yes"}), "use_sdpa must be true or false"),
    (lambda: IMFConfig.from_dict({"token_decoder_layers": "1,2"}), "token_decoder_layers must be a list"),
    (lambda: IMFConfig.from_dict({"token_decoder_layers": [1, [2]]}), r"token_decoder_layers\[1\] must be an integer"),
    (lambda: IMFConfig.from_dict({"resolution": 64, "widht": 3}), "unknown model config key.*widht"),
    (lambda: DataConfig.from_dict({"max_distance": 2.5}), "max_distance"),
    (lambda: DataConfig.from_dict({"stills": "folder"}), "stills"),
    (lambda: TrainConfig.from_dict({"optim": {"betas": [0.5]}}), "betas must have 2 values"),
    (lambda: TrainConfig.from_dict({"run": {"batch_size": "8"}}), "batch_size must be an integer"),
    (lambda: TrainConfig.from_dict({"loss": {"l1": None}}), "l1 must not be null"),
    (lambda: TrainConfig.from_dict({"run": []}), "must be a mapping"),
    (lambda: EditorTrainConfig.from_dict({"lr": "fast"}), "lr must be a number"),
    (lambda: EditorConfig.from_dict({"d_m": 32, "cond_dim": 1.0}), "cond_dim must be an integer"),
])
def test_wrong_values_are_named(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_deep_nesting_is_refused_without_recursion_errors():
    deep: list = [1]
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ConfigError, match="nested deeper"):
        IMFConfig.from_dict({"token_decoder_layers": deep})


def test_yaml_forms_are_accepted_and_round_trip():
    cfg = TrainConfig.from_dict({"model": {"preset": "tiny-64"}, "loss": {"l1": 10},  # an int for a float
                                 "optim": {"betas": [0.5, 0.999]}, "data": {"stills": ["a"], "stills_ratio": 0.5}})
    assert cfg.loss.l1 == 10.0 and isinstance(cfg.loss.l1, float) and cfg.optim.betas == (0.5, 0.999)
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    model = IMFConfig.preset("tiny-64")
    assert IMFConfig.from_dict(json.loads(json.dumps(model.to_dict()))) == model


@pytest.mark.parametrize("section, values, message", [
    ("run", {"checkpoint_every": 0}, "run.checkpoint_every must be >= 1"),
    ("run", {"log_every": -1}, "run.log_every must be >= 1"),
    ("optim", {"lr": -1}, "optim.lr must be a finite number > 0"),
    ("optim", {"lr": float("nan")}, "optim.lr must be a finite number > 0"),
    ("optim", {"betas": [0.5, 1.5]}, "optim.betas must be two numbers in"),
    ("loss", {"gan": -1}, "loss.gan must be a finite number >= 0"),
    ("loss", {"l1": 0, "perceptual": 0}, "both 0"),
    ("loss", {"perceptual_scales": [2.0]}, r"scales in \(0, 1\]"),
])
def test_training_ranges_are_checked_up_front(section, values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict({section: values})


def test_an_empty_training_config_is_the_default_config():
    assert TrainConfig.from_dict({}) == TrainConfig()


@pytest.mark.parametrize("build, message", [
    (lambda: DataConfig(size="64"), "data.size must be an integer"),
    (lambda: IMFConfig(resolution="64"), "model.resolution must be an integer"),
    (lambda: IMFConfig(pos_embed_init_std="big"), "model.pos_embed_init_std must be a number"),
    (lambda: DataConfig(hflip_prob=True), "data.hflip_prob must be a number"),
    (lambda: DataConfig(hflip_prob=1.5), r"data.hflip_prob must be in \[0.0, 1.0\]"),
    (lambda: DataConfig(stills=[]), "data.stills must be null or a non-empty list"),
    (lambda: EditorConfig(d_m=32, cond_dim=1, condition_names=("yaw",), residual=1), "editor.residual must be true"),
    (lambda: EditorConfig(d_m=0, cond_dim=1, condition_names=("yaw",)), "editor.d_m must be a positive integer"),
    (lambda: EditorTrainConfig(betas=(0.9, 1.5)), r"editor training.betas must be two numbers in \[0, 1\)"),
    (lambda: EditorTrainConfig(lr=float("nan")), "editor training.lr must be a finite number >= 0"),
])
def test_configs_built_in_python_are_checked_as_from_yaml(build, message):
    """imf.strict.check_types and require run in __post_init__: a config built directly in Python gets the same
    type and range checks as one read from YAML, with one message naming the field."""
    with pytest.raises(ConfigError, match=message):
        build()


def test_python_construction_converts_like_yaml(tmp_path):
    """Lists become the tuples the fields hold, ints become floats, a single stills folder (str or Path)
    becomes a list, as from_mapping does."""
    c = DataConfig(stills=tmp_path, stills_ratio=1 / 2, hflip_prob=1)
    assert c.stills == [str(tmp_path)] and isinstance(c.hflip_prob, float)
    e = EditorTrainConfig(betas=[0.5, 0.9], perceptual_scales=[1, 0.5])
    assert e.betas == (0.5, 0.9) and e.perceptual_scales == (1.0, 0.5)
    m = IMFConfig(token_decoder_layers=[1, 2, 2, 2, 3], pos_embed_init_std=1)
    assert m.token_decoder_layers == (1, 2, 2, 2, 3) and isinstance(m.pos_embed_init_std, float)
