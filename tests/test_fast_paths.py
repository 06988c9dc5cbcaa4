"""Every inference fast path against its plain path: SDPA on fused kernels for unequal head widths and
non-contiguous inputs, per-call choice of the modulated-conv path, channels-last convolutions."""

import copy

import pytest
import torch

import imf
from imf.bench.attention_check import MATH_FALLBACK, attention_report, sdpa_kernels
from imf.layers.attention import attention, set_sdpa
from imf.layers.modulated import ModulatedConv2d, set_fused_modulation
from imf.fast import optimize_for_inference


def _head_view(b, h, n, d):
    """(b, h, n, d) with stride n along d: split from a (b, h·d, n) map, as IMF_A's flatten produces."""
    return torch.randn(b, h * d, n).view(b, h, d, n).transpose(-2, -1)


@pytest.mark.parametrize("qk_dim, v_dim", [(32, 16), (16, 32), (24, 24)])
def test_sdpa_stays_on_a_fused_kernel_and_equals_the_explicit_path(qk_dim, v_dim):
    q, k, v = _head_view(2, 1, 40, qk_dim), _head_view(2, 1, 56, qk_dim), _head_view(2, 1, 56, v_dim)
    assert q.stride(-1) != 1  # the layout that used to send SDPA to its math fallback
    report = attention_report(lambda: attention(q, k, v, use_sdpa=True))
    assert report["math_fallback_calls"] == 0 and report["fused_only"], report
    fast, plain = attention(q, k, v, use_sdpa=True), attention(q, k, v, use_sdpa=False)
    assert fast.shape == (2, 1, 40, v_dim)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)


def test_the_check_sees_a_math_fallback():
    # torch itself falls back for unequal widths: the check must be able to tell
    q, k, v = torch.randn(1, 1, 8, 16), torch.randn(1, 1, 8, 16), torch.randn(1, 1, 8, 8)
    kernels = sdpa_kernels(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
    assert kernels.get(MATH_FALLBACK, 0) == 1


def test_decode_with_unequal_motion_and_feature_widths_is_fused_and_exact():
    # m^1 64 wide, f^1 32 wide: the cross-attention at scale 1 has q/k 64 and v 32 (paper-256: 256 / 128)
    config = imf.IMFConfig.preset("tiny-64", token_decoder_channels=(64, 64, 64, 64, 64))
    assert config.motion_channels[0] != config.feature_channels[0]
    model = imf.IMF(config).eval()
    x_c, x_r = torch.rand(2, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        ref = model.prepare_reference(x_r)
        t = model.encode_token(x_c)
        report = attention_report(lambda: model.decode(t, ref))
        fast = model.decode(t, ref)
        set_sdpa(model, False)
        plain = model.decode(t, ref)
    assert report["math_fallback_calls"] == 0 and report["fused_only"], report
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)


def _reference_modulated_conv(conv: ModulatedConv2d, x, style):
    """The textbook StyleGAN2 formula, written out per sample (the plain path)."""
    outs = []
    for i in range(x.shape[0]):
        s = conv.modulation(style[i:i + 1])[0]  # (C_in,)
        w = conv.scale * conv.weight[0] * s[None, :, None, None]  # (C_out, C_in, k, k)
        if conv.demodulate:
            w = w / torch.sqrt(w.pow(2).sum(dim=(1, 2, 3), keepdim=True) + conv.eps)
        xi = x[i:i + 1]
        if conv.upsample:
            xi = torch.nn.functional.interpolate(xi, scale_factor=2, mode="nearest")
        outs.append(torch.nn.functional.conv2d(xi, w, padding=conv.kernel_size // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_paths_equal_the_formula(batch, upsample, demodulate):
    conv = ModulatedConv2d(6, 5, 3, style_dim=4, demodulate=demodulate, upsample=upsample)
    x, style = torch.randn(batch, 6, 7, 7), torch.randn(batch, 4) * 2
    expected = _reference_modulated_conv(conv, x, style)
    for mode in (True, False, None):
        conv.fused = mode
        torch.testing.assert_close(conv(x, style), expected, atol=1e-5, rtol=1e-5, msg=f"fused={mode}")


def test_modulated_conv_paths_have_equal_gradients():
    conv = ModulatedConv2d(6, 5, 3, style_dim=4, upsample=True)
    x, style = torch.randn(3, 6, 5, 5, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    grads = {}
    for mode in (True, False):
        conv.fused = mode
        conv.zero_grad()
        x.grad = style.grad = None
        (conv(x, style) * torch.linspace(-1, 1, 5)[:, None, None]).sum().backward()
        grads[mode] = [g.clone() for g in (x.grad, style.grad, conv.weight.grad, conv.modulation.weight.grad)]
    for a, b in zip(grads[True], grads[False]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_auto_modulation_picks_the_cheaper_path_and_can_be_forced():
    wide = ModulatedConv2d(64, 64, 3, style_dim=4)  # 37k weights per sample against 2·64·4 activations
    narrow = ModulatedConv2d(4, 4, 3, style_dim=4)  # 144 weights against 2·4·1024 activations
    small_map, big_map = torch.randn(2, 64, 2, 2), torch.randn(2, 4, 32, 32)
    assert not wide._prefer_grouped(small_map)
    assert narrow._prefer_grouped(big_map)
    set_fused_modulation(wide, True)
    assert wide._prefer_grouped(small_map)
    set_fused_modulation(narrow, False)
    assert not narrow._prefer_grouped(big_map)


def test_whole_model_modulation_modes_agree(tiny_model):
    x_c, x_r = torch.rand(3, 3, 64, 64), torch.rand(1, 3, 64, 64)
    outs = {}
    with torch.inference_mode():
        ref = tiny_model.prepare_reference(x_r)
        t = tiny_model.encode_token(x_c)
        for mode in (True, False, None):
            set_fused_modulation(tiny_model, mode)
            outs[mode] = tiny_model.decode(t, ref)
    set_fused_modulation(tiny_model, None)
    torch.testing.assert_close(outs[None], outs[True], atol=1e-5, rtol=0)
    torch.testing.assert_close(outs[False], outs[True], atol=1e-5, rtol=0)


def test_channels_last_equals_plain_and_keeps_checkpoints(tiny_model, tmp_path):
    fast = optimize_for_inference(copy.deepcopy(tiny_model))
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert not all(m.weight.is_contiguous() for m in convs)  # really converted (C_in > 1 somewhere)
    x_c, x_r = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x_c, x_r), tiny_model(x_c, x_r), atol=1e-5, rtol=0)
    assert imf.model_hash(fast) == imf.model_hash(tiny_model)
    fast.save_pretrained(tmp_path / "m")
    loaded = imf.load_model(tmp_path / "m")
    for (name, a), b in zip(tiny_model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name

