"""Held-out reconstruction scores against the copy-the-reference baseline.

The honest floor for a reconstruction model: every held-out frame is compared with the model's
reconstruction (reference prepared once, tokens of the frame) and with the reference itself. PSNR is
RGB in [0, 1] (10·log10(1/MSE)), L1 the mean absolute error, both averaged over frames.
"""

from __future__ import annotations

import torch

from imf.eval.metrics import psnr


@torch.inference_mode()
def held_out_scores(model, reference: torch.Tensor, frames: torch.Tensor, batch: int = 32,
                    lpips=None) -> dict[str, float]:
    """reference (3, S, S), frames (N, 3, S, S) in [0, 1] → mean PSNR / L1 (and LPIPS if an
    ``imf.eval.lpips.LPIPS`` module is given) of the model and of copying the reference."""
    model.eval()
    ref = model.prepare_reference(reference[None])
    scores: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(frames), batch):
        x = frames[i:i + batch]
        x_hat = model.decode(model.encode_token(x), ref)
        for prefix, pred in (("", x_hat), ("copy_", reference[None].expand_as(x))):
            scores.setdefault(prefix + "psnr", []).append(psnr(pred, x, mse_floor=1e-10))
            scores.setdefault(prefix + "l1", []).append((pred - x).abs().flatten(1).mean(1))
            if lpips is not None:
                scores.setdefault(prefix + "lpips", []).append(lpips(pred, x))
    return {k: float(torch.cat(v).mean()) for k, v in scores.items()}
