"""The explicit-token variant of IMF_D (paper §3.2, §3.3, §3.5): keypoints → Gaussian heatmaps → m^1..m^4.

Dimension letters: b batch, k keypoints, c_m motion channels of the scale, H = W its side.
"""

from __future__ import annotations

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.geometry import gaussian_heatmaps


class KeypointMotionDecoder(nn.Module):
    """IMF_D for ``token_kind: keypoints``: the explicit token of §3.2 (d = K × 2) turned into motion features
    the way keypoint methods do it (§3.3: "the motion features are Gaussian heatmaps converted from the
    keypoints", FOMM [57]), with the interface of ``LatentTokenDecoder``:

        t (b, 2K) ─► (b, K, 2) keypoints (x, y) in [-1, 1]
          ─► per scale l: Gaussian heatmaps (b, K, H_l, W_l), σ_l = max(keypoint_sigma, half a pixel)
          ─► 1×1 conv K → c_m^l ─► m^l (b, c_m^l, H_l, W_l)
        tiny-64, K = 16: m^1..m^4 32×16², 64×8², 64×4², 64×2²

    The same module decodes t_c and t_r (as IMF_D does), so m_c and m_r share one projection per scale and
    IMF_A (attention or flow) sees them at the widths it expects (``motion_channels``).

    Config: ``num_keypoints`` K, ``keypoint_sigma`` (normalised coordinates), ``motion_channels`` and
    ``feature_sizes``.
    """

    num_styled_convs = 0  # no StyleGAN synthesis stack here (``imf info`` reports it)

    def __init__(self, config: IMFConfig):
        super().__init__()
        self.num_keypoints = config.num_keypoints
        self.sizes = config.feature_sizes
        # below half a pixel a keypoint between two sample points would all but vanish from the coarse scales
        self.sigmas = tuple(max(config.keypoint_sigma, 1.0 / s) for s in self.sizes)
        self.projections = nn.ModuleList(nn.Conv2d(config.num_keypoints, c, 1) for c in config.motion_channels)

    def keypoints(self, t: torch.Tensor) -> torch.Tensor:
        """t (b, 2K) → (b, K, 2), (x, y) per keypoint."""
        return t.view(t.shape[0], self.num_keypoints, 2)

    def forward(self, t: torch.Tensor) -> list[torch.Tensor]:
        """t (b, 2K) → [m^1, m^2, m^3, m^4], finest first."""
        kp = self.keypoints(t)
        return [proj(gaussian_heatmaps(kp, size, sigma))  # (b, K, H, W) → (b, c_m, H, W)
                for proj, size, sigma in zip(self.projections, self.sizes, self.sigmas)]
