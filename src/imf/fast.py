"""Inference fast paths that change how the model computes, not what (each tested against the plain path).

- ``channels_last_``: convolution weights in channels-last (NHWC) layout. oneDNN (CPU) and cuDNN (tensor
  cores) then run the convolutions without reordering weights and activations on every call; a conv
  whose weight is channels-last returns channels-last activations, so the layout flows through E_T, E_F
  and D_F, and IMF_A's flatten of a channels-last map is already (b, n, c) contiguous. Checkpoints are
  unaffected (``save_model`` and ``model_hash`` store contiguous copies). Meant for inference: in
  training mode, BatchNorm over tiny batches amplifies the different rounding far beyond float tolerance.
- ``optimize_for_inference``: eval mode, no gradients, channels-last. Modulated convolutions already pick
  their faster path per call (``ModulatedConv2d.fused = None``); attention already runs on SDPA's fused
  kernels (``imf.layers.attention``).
BatchNorm is left unfolded: in eval mode it is one per-channel affine pass, under 0.5 % of a paper-256
decode's time on CPU (torch.profiler), and FeatResBlock's
pre-activation BN (BN → ReLU → conv) cannot be folded into a conv anyway.
"""

from __future__ import annotations

import torch
from torch import nn

from imf.layers.equalized import EqualConv2d


def channels_last_(model: nn.Module) -> nn.Module:
    """Convert the weight of every 2-D convolution under ``model`` to channels-last, in place."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, EqualConv2d)):
            w = module.weight
            if w.ndim == 4:
                w.data = w.data.contiguous(memory_format=torch.channels_last)
    return model


def optimize_for_inference(model: nn.Module) -> nn.Module:
    """``model`` in eval mode, without gradients, with channels-last convolutions (in place)."""
    model.eval().requires_grad_(False)
    return channels_last_(model)
