
import pytest
import torch

# Tests run on CPU in fp32 with a fixed seed and one thread: their tensors are tiny, and on a shared
# 2-core machine several OpenMP threads per process slow them down by orders of magnitude.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
    torch.set_num_threads(1)  # a test that ran `imf bench --threads N` in-process must not change the next ones


@pytest.fixture
def tiny_config():
    import imf

    return imf.IMFConfig.preset("tiny-64")


@pytest.fixture
def tiny_model(tiny_config):
    import imf

    torch.manual_seed(0)
    return imf.IMF(tiny_config).eval()
