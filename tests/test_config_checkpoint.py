"""Configs reject bad keys; checkpoints round-trip and fail with messages that name the problem."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import imf
from imf.checkpoint import model_hash
from imf.config import IMFConfig
from imf.errors import CheckpointError, ConfigError


def test_presets_and_unknown_preset():
    assert IMFConfig.preset("paper-256").resolution == 256
    assert IMFConfig.preset("small-128").resolution == 128
    with pytest.raises(ConfigError, match="huge-1024"):
        IMFConfig.preset("huge-1024")


def test_from_dict_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ConfigError, match="colour_depth"):
        IMFConfig.from_dict({"colour_depth": 3})
    with pytest.raises(ConfigError, match="resolution"):
        IMFConfig.preset("tiny-64", resolution=100)
    with pytest.raises(ConfigError, match="token_encoder_channels"):
        IMFConfig.preset("tiny-64", resolution=128)  # needs one more ResBlock
    with pytest.raises(ConfigError, match="head_dim"):
        IMFConfig.preset("tiny-64", transformer_head_dim=48)


def test_config_is_frozen_and_round_trips():
    c = IMFConfig.preset("tiny-64")
    with pytest.raises(Exception):
        c.d_m = 7  # type: ignore[misc]
    assert IMFConfig.from_dict(json.loads(c.to_json())) == c


def test_save_load_identical_output(tmp_path, tiny_model):
    x_c, x_r = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = tiny_model(x_c, x_r)
    tiny_model.save_pretrained(tmp_path / "ckpt")
    loaded = imf.load_model(tmp_path / "ckpt")
    with torch.no_grad():
        after = loaded(x_c, x_r)
    assert torch.equal(before, after)
    assert model_hash(loaded) == model_hash(tiny_model)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]


def test_fp16_export_loads_as_fp32(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    loaded = imf.load_model(tmp_path / "half")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert (loaded(x, x) - tiny_model(x, x)).abs().max() < 2e-2


def test_model_hash_changes_with_weights(tiny_model):
    h = model_hash(tiny_model)
    with torch.no_grad():
        next(tiny_model.parameters()).add_(1e-3)
    assert model_hash(tiny_model) != h


def test_bad_checkpoints_name_the_problem(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="does not exist"):
        imf.load_model(tmp_path / "nowhere")
    ckpt = tmp_path / "ckpt"
    tiny_model.save_pretrained(ckpt)
    (ckpt / "model.safetensors").rename(tmp_path / "weights")
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        imf.load_model(ckpt)
    (tmp_path / "weights").rename(ckpt / "model.safetensors")

    meta = json.loads((ckpt / "config.json").read_text())
    meta["config"]["warp_mode"] = "flow"
    (ckpt / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="warp_mode"):
        imf.load_model(ckpt)

    meta["config"].pop("warp_mode")
    meta["config"]["d_m"] = 16  # the weights were made for 32
    (ckpt / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"has shape \(64, 32\), the config needs \(64, 16\)"):
        imf.load_model(ckpt)

    meta["config"]["d_m"] = 32
    (ckpt / "config.json").write_text(json.dumps(meta))
    state = load_file(str(ckpt / "model.safetensors"))
    state.pop("frame_decoder.to_rgb.0.bias")
    save_file(state, str(ckpt / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing 1 tensor"):
        imf.load_model(ckpt)

    (ckpt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        imf.load_model(ckpt)

    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        imf.load_model(ckpt)


def test_old_layout_checkpoint_fails_with_one_line_naming_the_change(tmp_path, tiny_model):
    """A folder written by imf 0.1 (layout 1: no layout_version, token_decoder_layers_per_level, one P per
    scale) is refused before any weight is read, with the layout change named, not shape mismatches."""
    ckpt = tmp_path / "old"
    tiny_model.save_pretrained(ckpt)
    meta = json.loads((ckpt / "config.json").read_text())
    meta.pop("layout_version")
    meta["config"].pop("token_decoder_layers")
    meta["config"]["token_decoder_layers_per_level"] = 3
    (ckpt / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as err:
        imf.load_model(ckpt)
    msg = str(err.value)
    assert "\n" not in msg and "layout 1" in msg and "this imf builds layout 2" in msg
    assert "StyledConvs" in msg and "P_q" in msg and "shape" not in msg
    meta["layout_version"] = 7
    (ckpt / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="layout 7"):
        imf.load_model(ckpt)


def test_saved_folder_records_the_layout(tmp_path, tiny_model):
    from imf.config import LAYOUT_VERSION

    tiny_model.save_pretrained(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["layout_version"] == LAYOUT_VERSION == 2
