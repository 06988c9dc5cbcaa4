"""Shapes, gradients and equivalences of the IMF parts (docs/architecture.md)."""

import math

import pytest
import torch

import imf
from imf.config import IMFConfig
from imf.errors import ConfigError
from imf.layers.attention import set_sdpa
from imf.layers.modulated import ModulatedConv2d, set_fused_modulation
from imf.models import MultiScaleDiscriminator


def _check_shapes(model, config, batch=2):
    s = config.resolution
    x_c, x_r = torch.rand(batch, 3, s, s), torch.rand(batch, 3, s, s)
    with torch.no_grad():
        t = model.encode_token(x_c)
        ref = model.prepare_reference(x_r)
        out = model.decode(t, ref)
    assert t.shape == (batch, config.d_m)
    for l in range(4):
        side = s // 2 ** (l + 2)
        assert ref.f_r[l].shape == (batch, config.feature_channels[l], side, side)
        assert ref.m_r[l].shape == (batch, config.motion_channels[l], side, side)
    assert out.shape == (batch, 3, s, s)
    assert out.min() >= 0 and out.max() <= 1
    return ref


@pytest.mark.parametrize("preset", ["tiny-64", "small-128"])
def test_shapes_small_presets(preset):
    config = IMFConfig.preset(preset)
    _check_shapes(imf.IMF(config).eval(), config)


def test_paper_256_matches_the_paper_tensors():
    config = IMFConfig.preset("paper-256")
    model = imf.IMF(config).eval()
    ref = _check_shapes(model, config, batch=1)
    assert [tuple(f.shape[1:]) for f in ref.f_r] == [(128, 64, 64), (256, 32, 32), (512, 16, 16), (512, 8, 8)]
    assert [tuple(m.shape[1:]) for m in ref.m_r] == [(256, 64, 64), (512, 32, 32), (512, 16, 16), (512, 8, 8)]
    assert config.d_m == 32


def test_paper_256_token_decoder_is_fig1c():
    """Fig. 1(c): 10 StyledConvs on the main path (1, 2, 2, 2, 3 per level, the first of each upsampled level
    ↑2; 512 wide but the last level, 256) and 3 side branches 512 wide: 13 in all."""
    dec = imf.IMF(IMFConfig.preset("paper-256")).token_decoder
    main_path = [[layer.conv for layer in level] for level in dec.levels]
    assert [len(level) for level in main_path] == [1, 2, 2, 2, 3]
    assert [[c.out_ch for c in level] for level in main_path] == [[512], [512] * 2, [512] * 2, [512] * 2, [256] * 3]
    assert [[c.upsample for c in level] for level in main_path] == [
        [False], [True, False], [True, False], [True, False], [True, False, False]]
    assert [s.conv.out_ch for s in dec.side] == [512, 512, 512]
    assert not any(s.conv.upsample for s in dec.side)
    assert dec.num_styled_convs == 13
    assert sum(isinstance(m, ModulatedConv2d) for m in dec.modules()) == 13


def test_paper_256_frame_decoder_is_fig1e():
    """Fig. 1(e)/(f): 5 UpConvResBlocks, each Upsample + Conv-BN-ReLU, Conv, 2 FeatResBlocks; 3 FeatResBlocks
    on each of the 3 skips: 19 FeatResBlocks; no 1×1 skip conv inside the UpConvResBlocks."""
    from imf.layers.blocks import FeatResBlock, UpConvResBlock

    dec = imf.IMF(IMFConfig.preset("paper-256")).frame_decoder
    assert sum(isinstance(m, FeatResBlock) for m in dec.modules()) == 19
    ups = [m for m in dec.modules() if isinstance(m, UpConvResBlock)]
    assert len(ups) == 5
    for up in ups:
        kinds = [type(m).__name__ for m in up.body]
        assert kinds == ["Upsample", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "FeatResBlock", "FeatResBlock"]
    assert [up.body[1].out_channels for up in ups] == [512, 512, 256, 128, 64]
    assert [len(s) for s in dec.skips] == [3, 3, 3]


def test_two_positional_embeddings_per_scale():
    """§3.3: P_q added to the queries and P_k to the keys, distinct parameters (same initial draw)."""
    config = IMFConfig.preset("tiny-64")
    model = imf.IMF(config)
    for scale, n, c_m in zip(model.motion_alignment.scales, config.feature_sizes, config.motion_channels):
        assert scale.pos_q is not scale.pos_k
        assert scale.pos_q.shape == scale.pos_k.shape == (1, n * n, c_m)
        torch.testing.assert_close(scale.pos_q, scale.pos_k)  # one draw at init
        assert float(scale.pos_q.detach().std()) == pytest.approx(config.pos_embed_init_std, rel=0.3)
    names = {n for n, _ in model.named_parameters()}
    assert sum(n.endswith("pos_q") for n in names) == 4 and sum(n.endswith("pos_k") for n in names) == 4


def test_smooth_positional_init_has_a_gaussian_kernel():
    """pos_embed_init_length ℓ > 0: P_q = P_k at init, variance std², and neighbouring positions correlated as
    exp(-d²/2ℓ²) (checked on a wide draw against the formula); ℓ = 0 keeps positions uncorrelated."""
    from imf.models.alignment import initial_positions

    torch.manual_seed(0)
    p = initial_positions(16, 8192, 1.5, 2.0)[0].reshape(16, 16, -1)  # (s, s, c)
    assert float(p.var()) == pytest.approx(2.25, rel=0.05)
    for d in range(5):
        kernel = float((p[8, 4] * p[8, 4 + d]).mean())  # along a row
        assert kernel == pytest.approx(2.25 * math.exp(-d * d / 8), abs=0.1), d
    iid = initial_positions(16, 8192, 1.5)[0].reshape(16, 16, -1)
    assert abs(float((iid[8, 4] * iid[8, 5]).mean())) < 0.1

    config = imf.IMFConfig.preset("tiny-64", pos_embed_init_length=2.0)
    assert config.to_dict()["pos_embed_init_length"] == 2.0
    for scale in imf.IMF(config).motion_alignment.scales:
        torch.testing.assert_close(scale.pos_q, scale.pos_k)
    with pytest.raises(ConfigError, match="pos_embed_init_length"):
        imf.IMFConfig.preset("tiny-64", pos_embed_init_length=-1.0)


def test_queries_and_keys_use_their_own_embedding(tiny_model):
    """Permuting the positions of P_q alone, or of P_k alone, changes the aligned features f_c at every scale:
    both are used (with P's strong identity prior, a small perturbation barely moves the attention)."""
    x_c, x_r = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    align = tiny_model.motion_alignment

    def f_c():
        ref = tiny_model.prepare_reference(x_r)  # K carries P_k: recomputed after each change
        return align(tiny_model.token_decoder(tiny_model.encode_token(x_c)), ref.keys_values)

    with torch.no_grad():
        base = f_c()
        for name in ("pos_q", "pos_k"):
            for l, scale in enumerate(align.scales):
                p = getattr(scale, name)
                saved = p.clone()
                p.copy_(saved.flip(1))  # position i now carries position n-1-i's embedding
                changed = f_c()[l]
                p.copy_(saved)
                assert (changed - base[l]).abs().max() > 1e-3, f"{name} of scale {l + 1} has no effect"


def test_transformer_block_follows_eq6_by_default():
    """Supplement eq. 6 puts the LayerNorm inside the FFN only; the pre-attention LN is a config choice."""
    from torch import nn

    from imf.layers.attention import TransformerBlock

    model = imf.IMF(IMFConfig.preset("tiny-64"))
    blocks = [m for m in model.modules() if isinstance(m, TransformerBlock)]
    assert blocks and all(isinstance(b.norm1, nn.Identity) and isinstance(b.norm2, nn.LayerNorm) for b in blocks)
    normed = imf.IMF(IMFConfig.preset("tiny-64", transformer_attention_norm=True))
    assert all(isinstance(b.norm1, nn.LayerNorm) for b in normed.modules() if isinstance(b, TransformerBlock))


@pytest.mark.parametrize("preset", ["small-128", "cpu-128", "tiny-64"])
def test_small_presets_share_the_paper_layout(preset):
    config = IMFConfig.preset(preset)
    assert config.token_decoder_layers == (1, 2, 2, 2, 3) and config.num_styled_convs == 13
    assert config.motion_channels[1:] == (config.token_decoder_side_channels,) * 3


def test_cpu_preset_keeps_the_coarse_geometry():
    """cpu-128: a 2×2 learned constant and a 4×4 coarsest scale (tiny-64 has 1×1 and 2×2)."""
    model = imf.IMF(IMFConfig.preset("cpu-128"))
    assert tuple(model.token_decoder.const.shape[2:]) == (2, 2)
    assert IMFConfig.preset("cpu-128").feature_sizes == (32, 16, 8, 4)


@pytest.mark.parametrize("d_m", [16, 32, 64, 128])
def test_token_sizes(d_m):
    config = IMFConfig.preset("tiny-64", d_m=d_m)
    model = imf.IMF(config).eval()
    x = torch.rand(1, 3, 64, 64)
    assert model.encode_token(x).shape == (1, d_m)
    assert model(x, x).shape == (1, 3, 64, 64)


def test_backward_reaches_every_parameter(tiny_config):
    model = imf.IMF(tiny_config).train()
    disc = MultiScaleDiscriminator(tiny_config)
    x_c, x_r = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    out = model(x_c, x_r)
    loss = (out - x_c).abs().mean() + sum(l.mean() for l in disc(out))
    loss.backward()
    for name, p in list(model.named_parameters()) + list(disc.named_parameters()):
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"
        assert p.grad.abs().sum() > 0, f"zero gradient for {name}"


def test_cached_decode_equals_forward(tiny_model):
    x_c, x_r = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        full = tiny_model(x_c, x_r)
        ref = tiny_model.prepare_reference(x_r)
        cached = tiny_model.decode(tiny_model.encode_token(x_c), ref)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


def test_one_reference_shared_by_a_batch(tiny_model):
    x_r = torch.rand(1, 3, 64, 64)
    x_c = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        ref = tiny_model.prepare_reference(x_r)
        batched = tiny_model.decode(tiny_model.encode_token(x_c), ref)
        one_by_one = torch.cat([tiny_model(x_c[i:i + 1], x_r) for i in range(4)])
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=0)


def test_sdpa_equals_explicit_attention(tiny_model):
    x_c, x_r = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        fast = tiny_model(x_c, x_r)
        set_sdpa(tiny_model, False)
        plain = tiny_model(x_c, x_r)
        set_sdpa(tiny_model, True)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)
    # and they are not trivially equal: the attention really changes the output
    with torch.no_grad():
        for scale in tiny_model.motion_alignment.scales:
            scale.pos_q.add_(1.0)
        changed = tiny_model(x_c, x_r)
    assert (changed - fast).abs().max() > 1e-5


@pytest.mark.parametrize("v_dim", [16, 24])
def test_attention_paths_agree(v_dim):
    from imf.layers.attention import attention

    q, k = torch.randn(2, 3, 50, 16), torch.randn(2, 3, 70, 16)
    v = torch.randn(2, 3, 70, v_dim)
    fast, plain = attention(q, k, v, use_sdpa=True), attention(q, k, v, use_sdpa=False)
    assert fast.shape == (2, 3, 50, v_dim)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)


def test_fused_modulation_equals_activation_scaling(tiny_model):
    x_c, x_r = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        fused = tiny_model(x_c, x_r)
        set_fused_modulation(tiny_model, False)
        scaled = tiny_model(x_c, x_r)
        set_fused_modulation(tiny_model, True)
    torch.testing.assert_close(fused, scaled, atol=1e-5, rtol=0)


def test_demodulation_gives_unit_norm_weights():
    conv = ModulatedConv2d(8, 5, 3, style_dim=4)
    style = torch.randn(6, 4) * 3
    w = conv.modulated_weight(style)  # (B, C_out, C_in, k, k)
    norms = w.pow(2).sum(dim=(2, 3, 4)).sqrt()
    torch.testing.assert_close(norms, torch.ones(6, 5), atol=1e-4, rtol=0)
    conv.demodulate = False
    assert not torch.allclose(conv.modulated_weight(style).pow(2).sum(dim=(2, 3, 4)).sqrt(), torch.ones(6, 5))


def test_bad_input_shape_names_the_problem(tiny_model):
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        tiny_model.encode_token(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="t_c"):
        tiny_model.decode(torch.rand(1, 7), tiny_model.prepare_reference(torch.rand(1, 3, 64, 64)))


def test_discriminator_two_scales(tiny_config):
    out = MultiScaleDiscriminator(tiny_config)(torch.rand(2, 3, 64, 64))
    assert len(out) == 2
    assert out[0].shape == (2, 1, 4, 4) and out[1].shape == (2, 1, 2, 2)
