"""The token editor ψ (paper §3.4): shapes, save/load, training on a frozen IMF, resume, `imf edit`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import imf
from imf.checkpoint import load_editor
from imf.editing.measures import LANDMARK_MEASURES
from imf.errors import CheckpointError, ConfigError
from imf.models.editor import EditorConfig, TokenEditor


def _editor(d_m=32, names=("a", "b", "c"), **kw) -> TokenEditor:
    return TokenEditor(EditorConfig(d_m=d_m, cond_dim=len(names), condition_names=names, hidden=16, layers=2, **kw))


# ------------------------------------------------------------------------------------ ψ itself
def test_editor_shapes_and_identity_at_init():
    editor = _editor()
    t_s, h = torch.randn(4, 32), torch.randn(4, 3)
    out = editor(t_s, h)
    assert out.shape == (4, 32)
    torch.testing.assert_close(out, t_s)  # residual ψ with a zero last layer starts as the identity
    with torch.no_grad():
        editor.decoder[-1].bias.fill_(0.5)
    assert not torch.allclose(editor(t_s, h), t_s)
    plain = _editor(residual=False)
    assert plain(t_s, h).shape == (4, 32) and not torch.allclose(plain(t_s, h), t_s)
    with pytest.raises(ValueError, match=r"h must have shape \(4, 3\) \(a, b, c\)"):
        editor(t_s, torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"t_s must have shape \(B, 32\)"):
        editor(torch.randn(4, 16), h)


def test_condition_normalisation_changes_the_output():
    editor = _editor(residual=False)
    t_s, h = torch.randn(2, 32), torch.randn(2, 3)
    before = editor(t_s, h)
    editor.set_condition_stats(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 0.0, 1.0]))
    assert editor.cond_std[1] == pytest.approx(1e-3)  # clamped, never a division by zero
    assert not torch.allclose(editor(t_s, h), before)


def test_editor_config_validation():
    with pytest.raises(ConfigError, match="cond_dim is 2 but 3 condition name"):
        EditorConfig(d_m=8, cond_dim=2, condition_names=("a", "b", "c"))
    with pytest.raises(ConfigError, match="repeat"):
        EditorConfig(d_m=8, cond_dim=2, condition_names=("a", "a"))
    with pytest.raises(ConfigError, match="condition_source"):
        EditorConfig(d_m=8, cond_dim=1, condition_names=("a",), condition_source="magic")
    with pytest.raises(ConfigError, match="unknown editor config key"):
        EditorConfig.from_dict({"d_m": 8, "cond_dim": 1, "condition_names": ["a"], "depth": 3})


def test_save_load_round_trip_and_errors(tmp_path):
    editor = _editor()
    with torch.no_grad():
        for p in editor.parameters():
            p.add_(0.1 * torch.randn_like(p))
    editor.set_condition_stats(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 3.0, 4.0]))
    editor.save_pretrained(tmp_path / "ed", extra={"model_hash": "abc"})
    loaded = load_editor(tmp_path / "ed")
    assert loaded.config == editor.config
    t_s, h = torch.randn(3, 32), torch.randn(3, 3)
    torch.testing.assert_close(loaded(t_s, h), editor.eval()(t_s, h), rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_editor(tmp_path / "nope")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="IMF model folder, not an editor"):
        load_editor(tmp_path / "model")
    (tmp_path / "ed" / "editor.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_editor(tmp_path / "ed")


# ------------------------------------------------------------------------------------ training
@pytest.fixture
def tiny_run(tmp_path, monkeypatch, tiny_model):
    """A saved random tiny-64 IMF and a 6-frame clip (frame folder) with user conditions beside it."""
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))
    tiny_model.save_pretrained(tmp_path / "model")
    clip = tmp_path / "clip"
    clip.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    for i in range(6):  # a bright blob moving across a dark frame
        blob = np.exp(-((xx - 20 - 4 * i) ** 2 + (yy - 32) ** 2) / 80.0)
        frame = (255 * np.stack([blob, 0.5 * blob, 0.2 + 0 * blob], -1)).astype(np.uint8)
        Image.fromarray(frame).save(clip / f"{i:03d}.png")
    np.save(tmp_path / "clip.conditions.npy", rng.normal(size=(6, 2)).astype(np.float32))
    return tmp_path


def _config(**kw):
    from imf.train.editor_config import EditorTrainConfig

    base = dict(conditions=("c0", "c1"), condition_source="file", hidden=16, layers=2, batch_size=2,
                perceptual=1.0, perceptual_pretrained=False, perceptual_scales=(1.0,), val_batches=1,
                checkpoint_every=1, log_every=1, lr=1e-2)
    return EditorTrainConfig.from_dict({**base, **kw})


def _state_bytes(model: torch.nn.Module) -> dict[str, bytes]:
    return {k: v.detach().cpu().numpy().tobytes() for k, v in model.state_dict().items()}


def test_training_keeps_imf_frozen_and_moves_the_editor(tiny_run):
    from imf.train.editor import EditorTrainer

    trainer = EditorTrainer(_config(), tiny_run / "model", [str(tiny_run / "clip")], tiny_run / "run", progress=False)
    frozen_before = _state_bytes(trainer.model)
    editor_before = _state_bytes(trainer.editor)
    summary = trainer.fit(max_steps=2)

    assert summary["step"] == 2 and np.isfinite(summary["train_loss"]) and summary["train_perceptual"] > 0
    assert _state_bytes(trainer.model) == frozen_before  # the IMF did not move, BatchNorm statistics included
    assert _state_bytes(imf.load_model(tiny_run / "model")) == frozen_before
    assert all(not p.requires_grad and p.grad is None for p in trainer.model.parameters())
    assert not trainer.model.training
    editor_after = _state_bytes(trainer.editor)
    assert any(editor_after[k] != editor_before[k] for k in editor_before if k.startswith("decoder"))
    # condition statistics come from the training frames (the first 4 of 6 with split_by=frames)
    table = np.load(tiny_run / "clip.conditions.npy")[:4]
    np.testing.assert_allclose(trainer.editor.cond_mean.numpy(), table.mean(0), rtol=1e-5)

    saved = load_editor(tiny_run / "run" / "editor")
    assert saved.config.condition_names == ("c0", "c1") and saved.config.condition_source == "file"
    assert _state_bytes(saved) == editor_after


def test_resume_continues_the_same_run(tiny_run):
    from imf.train.editor import EditorTrainer

    data = [str(tiny_run / "clip")]
    straight = EditorTrainer(_config(), tiny_run / "model", data, tiny_run / "a", progress=False)
    straight.fit(max_steps=3)
    first = EditorTrainer(_config(), tiny_run / "model", data, tiny_run / "b", progress=False)
    first.fit(max_steps=2)
    resumed = EditorTrainer(_config(), tiny_run / "model", data, tiny_run / "b", resume=True, progress=False)
    assert resumed.step == 2
    resumed.fit(max_steps=3)
    assert _state_bytes(resumed.editor) == _state_bytes(straight.editor)
    with pytest.raises(CheckpointError, match="hidden=16"):
        EditorTrainer(_config(hidden=32), tiny_run / "model", data, tiny_run / "b", resume=True, progress=False)


def test_user_conditions_of_wrong_width_are_refused(tiny_run):
    from imf.train.editor import EditorTrainer
    from imf.errors import InputError

    np.save(tiny_run / "clip.conditions.npy", np.zeros((6, 3), np.float32))
    with pytest.raises(InputError, match=r"has 3 value\(s\) per frame, but 2 are expected \(c0, c1\)"):
        EditorTrainer(_config(), tiny_run / "model", [str(tiny_run / "clip")], tiny_run / "run", progress=False)
    np.save(tiny_run / "clip.conditions.npy", np.zeros((5, 2), np.float32))
    with pytest.raises(InputError, match=r"5 row\(s\), the clip .* has 6 frame"):
        EditorTrainer(_config(), tiny_run / "model", [str(tiny_run / "clip")], tiny_run / "run", progress=False)


# ------------------------------------------------------------------------------------ imf edit
def _cli(monkeypatch, argv):
    import imf.cli

    if "imf.cli.edit" not in imf.cli._COMMAND_MODULES:
        monkeypatch.setattr(imf.cli, "_COMMAND_MODULES", imf.cli._COMMAND_MODULES + ["imf.cli.edit"])
    return imf.cli.main([str(a) for a in argv])


@pytest.fixture
def edit_setup(tmp_path, tiny_model):
    pytest.importorskip("dlib")
    from imf.data.samples import sample_path

    tiny_model.save_pretrained(tmp_path / "model")
    TokenEditor(EditorConfig(d_m=tiny_model.config.d_m, cond_dim=5, condition_names=LANDMARK_MEASURES,
                             hidden=32, layers=2)).save_pretrained(tmp_path / "editor")
    return tmp_path, sample_path("astronaut.png")


def test_edit_set_writes_a_png(edit_setup, monkeypatch, capsys):
    tmp_path, source = edit_setup
    out = tmp_path / "out.png"
    rc = _cli(monkeypatch, ["edit", "--ckpt", tmp_path / "model", "--editor", tmp_path / "editor", "--source", source,
                            "--set", "yaw=15,pitch=-5,mouth=0.6", "-o", out, "--quiet"])
    assert rc == 0
    image = np.asarray(Image.open(out))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert '"yaw"' in capsys.readouterr().out  # the source's measured conditions are reported


def test_edit_conditions_track_writes_a_video(edit_setup, monkeypatch):
    from imf.data.video import probe

    tmp_path, source = edit_setup
    track = tmp_path / "track.csv"
    track.write_text("yaw,mouth\n-10,0.1\n0,\n10,0.5\n")  # names and cells left out keep the source's values
    out = tmp_path / "out.mp4"
    rc = _cli(monkeypatch, ["edit", "--ckpt", tmp_path / "model", "--editor", tmp_path / "editor", "--source", source,
                            "--conditions", track, "-o", out, "--quiet"])
    assert rc == 0 and probe(out).num_frames == 3


@pytest.mark.parametrize("args, message", [
    (["--set", "yow=15"], "unknown condition 'yow'"),
    (["--conditions", "bad.npy"], r"has 3 value\(s\) per frame, but 5 are expected"),
])
def test_edit_user_mistakes_exit_2(edit_setup, monkeypatch, capsys, args, message):
    import re

    tmp_path, source = edit_setup
    np.save(tmp_path / "bad.npy", np.zeros((4, 3), np.float32))
    args = [tmp_path / a if a == "bad.npy" else a for a in args]
    rc = _cli(monkeypatch, ["edit", "--ckpt", tmp_path / "model", "--editor", tmp_path / "editor", "--source", source,
                            *args, "-o", tmp_path / "out.png", "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_editor_for_another_token_size_is_refused(edit_setup, monkeypatch, capsys):
    tmp_path, source = edit_setup
    TokenEditor(EditorConfig(d_m=7, cond_dim=5, condition_names=LANDMARK_MEASURES)).save_pretrained(tmp_path / "e7")
    rc = _cli(monkeypatch, ["edit", "--ckpt", tmp_path / "model", "--editor", tmp_path / "e7", "--source", source,
                            "--set", "yaw=0", "-o", tmp_path / "out.png", "--quiet"])
    assert rc == 2 and "d_m=7" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ the shipped editor
def test_shipped_editor_belongs_to_the_shipped_model():
    from imf.assets import shipped_editor_path, shipped_model_path
    from imf.checkpoint import load_model, model_hash
    from imf.checkpoint import load_editor, read_editor_meta

    model = load_model(shipped_model_path())
    editor = load_editor(shipped_editor_path(), "cpu")
    assert editor.config.d_m == model.config.d_m
    assert read_editor_meta(shipped_editor_path())["model_hash"] == model_hash(model)


def test_edit_runs_out_of_the_box_with_the_shipped_pair(tmp_path, monkeypatch, capsys):
    pytest.importorskip("dlib")
    from imf.data.samples import sample_path

    out = tmp_path / "out.png"
    rc = _cli(monkeypatch, ["edit", "--source", sample_path("astronaut.png"), "--set", "yaw=15", "-o", out, "--quiet"])
    assert rc == 0
    assert np.asarray(Image.open(out)).shape == (64, 64, 3)


def test_edit_with_another_model_needs_its_editor(edit_setup, monkeypatch, capsys):
    tmp_path, source = edit_setup
    rc = _cli(monkeypatch, ["edit", "--ckpt", tmp_path / "model", "--source", source, "--set", "yaw=0",
                            "-o", tmp_path / "out.png", "--quiet"])
    assert rc == 2 and "give its editor with --editor" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()
