"""The explicit variants of the paper's ablation (§3.2, §3.5, Table 3): keypoint tokens and flow alignment.

Every combination builds, runs, trains (gradients everywhere), decodes with the reference cached as the plain
forward does, round-trips through a checkpoint, the codec and ``imf info``; the heatmap and warp primitives
agree with plain references; the paper's IMF stays exactly what it was."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import imf
from imf.assets import shipped_model_path
from imf.checkpoint import model_hash
from imf.config import VARIANT_FIELDS, IMFConfig
from imf.errors import ConfigError
from imf.layers.geometry import gaussian_heatmaps, pixel_centres, warp

ROOT = Path(__file__).resolve().parents[1]
ASSET = shipped_model_path()
COMBOS = [("implicit", "attention"), ("implicit", "flow"), ("keypoints", "attention"), ("keypoints", "flow")]
IDS = [f"{t}-{a}" for t, a in COMBOS]


def variant(token_kind: str, alignment_kind: str, **more) -> IMFConfig:
    return IMFConfig.preset("tiny-64", token_kind=token_kind, alignment_kind=alignment_kind, **more)


@pytest.fixture(params=COMBOS, ids=IDS)
def model(request):
    torch.manual_seed(0)
    return imf.IMF(variant(*request.param)).eval()


# ------------------------------------------------------------------------------------------ the model
def test_shapes_per_variant(model):
    c = model.config
    x_c, x_r = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        t = model.encode_token(x_c)
        ref = model.prepare_reference(x_r)
        out = model.decode(t, ref)
    assert t.shape == (2, c.d_m) == (2, 32)
    if c.token_kind == "keypoints":
        assert t.abs().max() < 1  # (x, y) pairs inside the frame
        assert model.token_decoder.keypoints(t).shape == (2, c.num_keypoints, 2)
    for l, s in enumerate(c.feature_sizes):
        assert ref.f_r[l].shape == (2, c.feature_channels[l], s, s)
        assert ref.m_r[l].shape == (2, c.motion_channels[l], s, s)
        a, b = ref.keys_values[l]
        if c.alignment_kind == "flow":  # (the m_r half of the flow net's first conv, f_r)
            assert a.shape == (2, c.motion_channels[l], s, s) and b.shape == ref.f_r[l].shape
        else:  # K (b, h, n, c_m / h), V (b, h, n, c_f / h)
            assert a.shape == (2, 1, s * s, c.motion_channels[l]) and b.shape == (2, 1, s * s, c.feature_channels[l])
    assert out.shape == (2, 3, 64, 64) and 0 <= out.min() and out.max() <= 1


def test_each_variant_swaps_exactly_its_part():
    from imf.models import (FlowMotionAlignment, ImplicitMotionAlignment, KeypointMotionDecoder,
                            LatentTokenDecoder)

    for (tk, ak) in COMBOS:
        m = imf.IMF(variant(tk, ak))
        assert isinstance(m.token_decoder, KeypointMotionDecoder if tk == "keypoints" else LatentTokenDecoder)
        assert isinstance(m.motion_alignment, FlowMotionAlignment if ak == "flow" else ImplicitMotionAlignment)


def test_gradients_reach_every_parameter(model):
    model.train()
    x_c, x_r = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    (model(x_c, x_r) - x_c).abs().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"
        assert p.grad.abs().sum() > 0, f"zero gradient for {name}"


def test_cached_decode_equals_forward(model):
    """One reference prepared once (batch 1) decodes a batch of tokens as the plain forward does frame by frame."""
    x_r, x_c = torch.rand(1, 3, 64, 64), torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        ref = model.prepare_reference(x_r)
        cached = model.decode(model.encode_token(x_c), ref)
        plain = torch.cat([model(x_c[i:i + 1], x_r) for i in range(3)])
        batched = model(x_c, x_r.expand(3, -1, -1, -1))
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(cached, batched, atol=1e-5, rtol=0)


def test_save_load_identical(model, tmp_path):
    x_c, x_r = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x_c, x_r)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = imf.load_model(tmp_path / "ckpt")
    assert loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(loaded(x_c, x_r), before)
    assert model_hash(loaded) == model_hash(model)
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())["config"]
    c = model.config
    assert saved.get("token_kind", "implicit") == c.token_kind
    assert saved.get("alignment_kind", "attention") == c.alignment_kind


def test_the_papers_imf_is_unchanged():
    """Defaults are the paper's IMF; a default config writes no variant field, so the shipped model's
    config.json, and its model hash (named by its codec tables and by every .imf file), read as before."""
    from imf.codec import load_tables

    default = IMFConfig.preset("tiny-64")
    assert (default.token_kind, default.alignment_kind) == ("implicit", "attention")
    assert not set(VARIANT_FIELDS) & set(default.to_dict())
    stored = json.loads((ASSET / "config.json").read_text())["config"]
    shipped = imf.load_model(ASSET)
    assert shipped.config.to_dict() == stored
    assert model_hash(shipped) == load_tables(ASSET).model_hash
    assert IMFConfig.from_dict(variant("keypoints", "flow").to_dict()) == variant("keypoints", "flow")


def test_config_rejects_inconsistent_variants():
    with pytest.raises(ConfigError, match="d_m must be 2 × num_keypoints = 20"):
        IMFConfig.preset("tiny-64", token_kind="keypoints", num_keypoints=10)
    assert IMFConfig.preset("tiny-64", token_kind="keypoints", num_keypoints=10, d_m=20).d_m == 20
    with pytest.raises(ConfigError, match="token_kind"):
        IMFConfig.preset("tiny-64", token_kind="landmarks")
    with pytest.raises(ConfigError, match="alignment_kind"):
        IMFConfig.preset("tiny-64", alignment_kind="optical")
    with pytest.raises(ConfigError, match="keypoint_sigma"):
        IMFConfig.preset("tiny-64", keypoint_sigma=0.0)
    with pytest.raises(ConfigError, match="flow_max_offset"):
        IMFConfig.preset("tiny-64", flow_max_offset=-1.0)


# ------------------------------------------------------------------------------------------ primitives
def test_gaussian_heatmap_peaks_at_its_keypoint():
    """A keypoint on the centre of pixel (row 3, column 11) of a 16×16 map peaks there at 1, and the map is
    the plain formula exp(−d² / 2σ²) over pixel centres (2j + 1) / n − 1."""
    n, sigma, row, col = 16, 0.2, 3, 11
    centres = [(2 * j + 1) / n - 1 for j in range(n)]
    kp = torch.tensor([[[centres[col], centres[row]], [0.0, 0.0]]])  # (1, 2, 2) as (x, y)
    heat = gaussian_heatmaps(kp, n, sigma)
    assert heat.shape == (1, 2, n, n)
    peak = int(heat[0, 0].argmax())
    assert divmod(peak, n) == (row, col) and float(heat[0, 0, row, col]) == pytest.approx(1.0)
    plain = torch.tensor([[math.exp(-((centres[j] - centres[col]) ** 2 + (centres[i] - centres[row]) ** 2)
                                    / (2 * sigma ** 2)) for j in range(n)] for i in range(n)])
    torch.testing.assert_close(heat[0, 0], plain)
    torch.testing.assert_close(pixel_centres(n), torch.tensor(centres))


def test_keypoint_heatmaps_never_vanish_at_coarse_scales():
    """σ is floored at half a pixel per scale: a keypoint midway between the 2×2 samples still shows."""
    dec = imf.IMF(variant("keypoints", "attention")).token_decoder
    assert dec.sigmas[0] == pytest.approx(0.1)  # 16×16: the configured σ
    assert dec.sigmas[-1] == pytest.approx(0.5)  # 2×2: half a pixel (one pixel is 1.0 there)
    heat = gaussian_heatmaps(torch.zeros(1, 1, 2), 2, dec.sigmas[-1])
    assert heat.min() > 0.3


@pytest.mark.parametrize("dy, dx", [(0, 3), (2, 0), (-1, 4), (5, -2)])
def test_a_known_flow_moves_the_image_where_it_should(dy, dx):
    """A constant offset of −2s/n (normalised units) moves content s pixels forward: exactly torch.roll
    wherever roll does not wrap around."""
    f = torch.rand(2, 5, 16, 20)
    offset = torch.empty(2, 2, 16, 20)
    offset[:, 0], offset[:, 1] = -2 * dx / 20, -2 * dy / 16
    moved = warp(f, offset)
    rolled = torch.roll(f, shifts=(dy, dx), dims=(2, 3))
    rows = slice(dy, None) if dy >= 0 else slice(None, dy)
    cols = slice(dx, None) if dx >= 0 else slice(None, dx)
    torch.testing.assert_close(moved[:, :, rows, cols], rolled[:, :, rows, cols], atol=1e-5, rtol=0)
    assert (moved - f).abs().max() > 0.1
    torch.testing.assert_close(warp(f, torch.zeros(2, 2, 16, 20)), f, atol=1e-6, rtol=0)


def test_flow_alignment_warps_and_masks_f_r():
    """The flow net's output channels are (dx, dy, mask): forced to a 2-pixel shift right and an open mask,
    a scale's f_c is f_r rolled by 2 pixels times sigmoid(mask)."""
    model = imf.IMF(variant("implicit", "flow")).eval()
    scale, size = model.motion_alignment.scales[0], model.config.feature_sizes[0]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = model.prepare_reference(x)
        scale.head.weight.zero_()
        shift = -2 * 2 / size / scale.max_offset
        scale.head.bias.copy_(torch.tensor([math.atanh(shift), 0.0, 3.0]))
        r, f_r = ref.keys_values[0]
        f_c = scale(ref.m_r[0], r, f_r)
        offset, mask = scale.flow_and_mask(ref.m_r[0], r)
    torch.testing.assert_close(mask, torch.full_like(mask, torch.sigmoid(torch.tensor(3.0)).item()))
    expected = torch.roll(f_r, shifts=2, dims=3) * mask
    torch.testing.assert_close(f_c[..., 2:], expected[..., 2:], atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------ codec, info, configs
def test_codec_round_trip_of_keypoint_tokens(tmp_path):
    """A keypoints model of K = 10 sends 20 numbers per frame; the .imf file decodes to the encoder's frames."""
    from imf.codec import TokenCodec, decode_file, encode_frames, fit_codec

    torch.manual_seed(0)
    model = imf.IMF(IMFConfig.preset("tiny-64", token_kind="keypoints", num_keypoints=10, d_m=20)).eval()
    rng = np.random.default_rng(0)
    base = rng.integers(30, 220, (1, 64, 64, 3))
    clip = np.clip(base + np.arange(10)[:, None, None, None] * 6 + rng.integers(-5, 6, (10, 64, 64, 3)),
                   0, 255).astype(np.uint8)
    tables = fit_codec(model, [clip], qualities=(6,), progress=False)
    assert tables.dim == 20
    tokens = model.encode_token(torch.rand(4, 3, 64, 64)).detach()
    payload, sent = TokenCodec(tables, 6, "static").compress(tokens)
    assert sent.shape == (4, 20)
    torch.testing.assert_close(TokenCodec(tables, 6, "static").decompress(payload), sent)
    recon = {}
    stats = encode_frames(model, clip, tmp_path / "kp.imf", fps=25, tables=tables, quality=6, entropy="temporal",
                          progress=False, on_frame=lambda i, f: recon.__setitem__(i, f))
    frames = list(decode_file(tmp_path / "kp.imf", model, tables=tables))
    assert len(frames) == stats.num_frames == 10
    for i, frame in enumerate(frames):
        assert np.array_equal(frame, recon[i]), f"frame {i} differs"


def test_imf_info_on_a_variant_config(capsys):
    from imf.cli import main

    config = str(ROOT / "configs" / "ablation-keypoints-flow.yaml")
    assert main(["info", "--config", config, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["variant"] == {"token_kind": "keypoints", "alignment_kind": "flow", "num_keypoints": 16}
    assert info["shapes"]["token"] == [32]
    assert all(a["flow_net"] > 0 for a in info["flops"]["alignment_per_scale"])
    assert info["flops"]["per_frame_decoder"] > 0
    params = info["parameters"]
    assert params["generator total"] == sum(v for k, v in params.items() if k.split()[0] in
                                            ("E_T", "E_F", "IMF_D", "IMF_A", "D_F"))
    assert "IMF_D (keypoint heatmaps + 1×1)" in params
    assert main(["info", "--config", config]) == 0
    text = capsys.readouterr().out
    assert "keypoints tokens, flow alignment" in text and "flow net" in text


@pytest.mark.parametrize("name", IDS)
def test_ablation_configs_differ_from_the_corpus_recipe_only_in_the_model(name):
    from imf.train.config import TrainConfig

    config = TrainConfig.from_yaml(ROOT / "configs" / f"ablation-{name}.yaml")
    assert (config.model.token_kind, config.model.alignment_kind) == tuple(name.split("-"))
    base = TrainConfig.from_yaml(ROOT / "configs" / "corpus-tiny-64.yaml")
    assert (config.data, config.loss, config.optim, config.run) == (base.data, base.loss, base.optim, base.run)
    raw = yaml.safe_load((ROOT / "configs" / f"ablation-{name}.yaml").read_text())
    assert raw["model"]["preset"] == "tiny-64"


def test_ablation_verdict_on_the_papers_ordering():
    """benchmarks/ablation.py's verdict: implicit + implicit best and explicit + explicit worst = "holds"."""
    spec = importlib.util.spec_from_file_location("ablation_benchmark", ROOT / "benchmarks" / "ablation.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    l1 = {"keypoints-flow": 0.064, "keypoints-attention": 0.060, "implicit-flow": 0.058, "implicit-attention": 0.054}

    def data(l1s):
        return {"variants": [{"name": n, "scores": {s: {"l1": v, "psnr": -v, "ssim": None, "lpips": None}
                                                    for s in bench.SPLITS}} for n, v in l1s.items()]}

    text = "\n".join(bench.ordering(data(l1)))
    assert "L1 holds" in text and "PSNR holds" in text
    assert "worst on 4 of 4 held-out metrics, implicit + implicit the best on 4 of 4" in text
    swapped = {**l1, "implicit-attention": 0.070, "keypoints-flow": 0.050}
    assert "L1 does not hold" in "\n".join(bench.ordering(data(swapped)))
    assert "needs all four" in bench.ordering(data({"implicit-flow": 0.05}))[0]
