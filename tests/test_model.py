"""Shapes, gradients and equivalences of the IMF parts (DESIGN §1, §3)."""

import pytest
import torch

import imf
from imf.config import IMFConfig
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
    assert [tuple(m.shape[2:]) for m in ref.m_r] == [(64, 64), (32, 32), (16, 16), (8, 8)]
    assert config.d_m == 32
    assert model.token_decoder.num_styled_convs == 13
    ups = [m for m in model.token_decoder.levels.modules() if isinstance(m, ModulatedConv2d) and m.upsample]
    assert len(ups) == 4


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
            scale.pos.add_(1.0)
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
