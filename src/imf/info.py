"""Model summary: parameters per part, feature shapes and FLOPs per frame (``imf info``).

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (one multiply-add = 2 FLOPs; convolutions,
matmuls and attention counted, element-wise ops not). The cost is split as a streaming codec sees it:
per reference (E_F, E_T(x_r), IMF_D(t_r), keys/values) once; per frame E_T(x_c) at the encoder and
IMF_D(t_c) + cross-attention + transformer blocks + D_F at the decoder.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from imf.models.discriminator import MultiScaleDiscriminator


def _cpu_flash_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_flash_sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args,
                                  out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode that also counts the CPU flash-attention kernel of SDPA (torch's registry
    knows only the CUDA kernels, so on CPU self-attention would silently count as zero)."""
    aten = torch.ops.aten
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_sdpa_flop,
               aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_sdpa_backward_flop}
    return FlopCounterMode(display=False, custom_mapping=mapping)


def _count(fn) -> int:
    with flop_counter() as counter:
        fn()
    return int(counter.get_total_flops())


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def model_summary(model) -> dict[str, Any]:
    import copy

    c = model.config
    # a frozen copy: FlopCounterMode's module tracker trips over parameters that require grad under no_grad
    model = copy.deepcopy(model).eval().requires_grad_(False)
    x = torch.rand(1, 3, c.resolution, c.resolution)
    f_r = model.feature_encoder(x)
    t = model.token_encoder(x)
    m = model.token_decoder(t)
    kv = model.motion_alignment.reference_keys_values(m, f_r)
    f_c = model.motion_alignment(m, kv)

    flops = {
        "E_F": _count(lambda: model.feature_encoder(x)),
        "E_T": _count(lambda: model.token_encoder(x)),
        "IMF_D": _count(lambda: model.token_decoder(t)),
        "IMF_A": _count(lambda: model.motion_alignment(m, kv)),
        "D_F": _count(lambda: model.frame_decoder(f_c)),
    }
    align_scales = []
    for l, scale in enumerate(model.motion_alignment.scales):
        k, v = kv[l]
        total = _count(lambda: scale(m[l], k, v))
        if c.alignment_kind == "flow":  # the flow net's convs (grid_sample, element-wise, is not counted)
            align_scales.append({"scale": l + 1, "tokens": c.feature_sizes[l] ** 2, "flow_net": total})
            continue
        cross = _count(lambda: scale.forward.__func__(_NoBlocks(scale), m[l], k, v))
        align_scales.append({"scale": l + 1, "tokens": c.feature_sizes[l] ** 2, "cross_attention": cross,
                             "transformer": total - cross})
    per_reference = flops["E_F"] + flops["E_T"] + flops["IMF_D"]
    per_frame_decoder = flops["IMF_D"] + flops["IMF_A"] + flops["D_F"]
    disc = MultiScaleDiscriminator(c)
    keypoints, flow = c.token_kind == "keypoints", c.alignment_kind == "flow"
    parts = {
        "E_T (keypoint encoder)" if keypoints else "E_T (latent token encoder)": _params(model.token_encoder),
        "E_F (dense feature encoder)": _params(model.feature_encoder),
        "IMF_D (keypoint heatmaps + 1×1)" if keypoints else "IMF_D (latent token decoder)":
            _params(model.token_decoder),
        "IMF_A (flow warp, occlusion mask)" if flow else "IMF_A (implicit motion alignment)":
            _params(model.motion_alignment),
        "D_F (frame decoder)": _params(model.frame_decoder),
    }
    return {
        "config": c.to_dict(),
        "variant": {"token_kind": c.token_kind, "alignment_kind": c.alignment_kind,
                    **({"num_keypoints": c.num_keypoints} if keypoints else {})},
        "parameters": {**parts, "generator total": _params(model), "discriminator (training only)": _params(disc)},
        "shapes": {
            "token": [c.d_m],
            "f": [[ch, s, s] for ch, s in zip(c.feature_channels, c.feature_sizes)],
            "m": [[ch, s, s] for ch, s in zip(c.motion_channels, c.feature_sizes)],
            "output": [3, c.resolution, c.resolution],
            "styled_convs": model.token_decoder.num_styled_convs,
        },
        "flops": {
            "per_part": flops,
            "alignment_per_scale": align_scales,
            "per_reference": per_reference,
            "per_frame_encoder": flops["E_T"],
            "per_frame_decoder": per_frame_decoder,
            "full_forward": flops["E_T"] + per_reference + per_frame_decoder,
        },
    }


class _NoBlocks:
    """A view of a ScaleAlignment with its transformer blocks removed (to count the cross-attention alone)."""

    def __init__(self, scale):
        self._scale = scale
        self.blocks = []

    def __getattr__(self, name):
        return getattr(self._scale, name)


def format_summary(s: dict[str, Any], name: str) -> str:
    g = 1e9
    variant = s.get("variant", {})
    kind = ("" if variant.get("token_kind", "implicit") == "implicit" and variant.get("alignment_kind", "attention")
            == "attention" else f" ({variant['token_kind']} tokens, {variant['alignment_kind']} alignment)")
    lines = [f"IMF {name}{kind}: {s['config']['resolution']}×{s['config']['resolution']}, d_m = {s['config']['d_m']}",
             "", "parameters"]
    for part, n in s["parameters"].items():
        lines.append(f"  {part:<36} {n / 1e6:9.3f} M")
    sh = s["shapes"]
    lines += ["", "shapes (C×H×W)", f"  token t            {sh['token'][0]}"]
    for l, (f, m) in enumerate(zip(sh["f"], sh["m"]), start=1):
        lines.append(f"  f^{l} {f[0]}×{f[1]}×{f[2]:<10} m^{l} {m[0]}×{m[1]}×{m[2]}")
    decoder = (f"{variant['num_keypoints']} keypoints' heatmaps in IMF_D" if variant.get("token_kind") == "keypoints"
               else f"{sh['styled_convs']} StyledConvs in IMF_D")
    lines.append(f"  output x̂          {sh['output'][0]}×{sh['output'][1]}×{sh['output'][2]}  ({decoder})")
    fl = s["flops"]
    lines += ["", "GFLOPs (1 multiply-add = 2 FLOPs)"]
    for part, n in fl["per_part"].items():
        lines.append(f"  {part:<8} {n / g:10.3f}")
    for a in fl["alignment_per_scale"]:
        lines.append(f"    IMF_A scale {a['scale']} ({a['tokens']} tokens): flow net {a['flow_net'] / g:.3f}"
                     if "flow_net" in a else
                     f"    IMF_A scale {a['scale']} ({a['tokens']} tokens): cross-attention "
                     f"{a['cross_attention'] / g:.3f}, transformer {a['transformer'] / g:.3f}")
    lines += [f"  per reference (E_F + E_T + IMF_D, once)   {fl['per_reference'] / g:10.3f}",
              f"  per frame, encoder (E_T)                   {fl['per_frame_encoder'] / g:10.3f}",
              f"  per frame, decoder (IMF_D + IMF_A + D_F)   {fl['per_frame_decoder'] / g:10.3f}",
              f"  full forward(x_c, x_r)                     {fl['full_forward'] / g:10.3f}"]
    return "\n".join(lines)
