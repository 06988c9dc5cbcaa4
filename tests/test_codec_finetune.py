"""Rate-aware fine-tuning of E_T (imf.train.rate) and `imf codec finetune`, on a random tiny-64 model."""

import copy

import numpy as np
import pytest
import torch

import imf
from imf.cli import main
from imf.codec import fit_codec, has_tables, load_tables
from imf.codec.rate_model import LaplaceRateModel, laplace_bin_log2p, refit_tables
from imf.data.dataset import DataConfig, PairDataset
from imf.data.video import VideoWriter
from imf.errors import ConfigError
from imf.train.rate import RateFinetuneConfig, finetune_rate

N_FRAMES = 12
QUALITY = 5


def _clip_frames() -> np.ndarray:
    """(T, 64, 64, 3) uint8: a bright square moving over a noisy gradient (tokens differ from frame to frame)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    frames = []
    for t in range(N_FRAMES):
        f = np.stack([xx * 3, yy * 3, np.full_like(xx, 60 + 10 * t)], -1).astype(np.float64)
        x0, y0 = 6 + 3 * t, 20 + 2 * (t % 4)
        f[y0:y0 + 16, x0:x0 + 16] = (230, 200, 40)
        frames.append(np.clip(f + rng.normal(0, 6, f.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny-64 checkpoint with codec tables and a 12-frame synthetic clip; the frame cache in a temp folder."""
    root = tmp_path_factory.mktemp("codec_finetune")
    mp = pytest.MonkeyPatch()
    mp.setenv("IMF_CACHE", str(root / "cache"))
    torch.manual_seed(0)
    model = imf.IMF(imf.IMFConfig.preset("tiny-64")).eval()
    ckpt = root / "ckpt"
    model.save_pretrained(ckpt)
    video = root / "clip.mp4"
    with VideoWriter(video, 25, 64, 64) as w:
        for frame in _clip_frames():
            w.write(frame)
    fit_codec(model, [video], qualities=[3, QUALITY], progress=False).save(ckpt)
    yield {"root": root, "ckpt": ckpt, "video": video}
    mp.undo()


def _pairs(video) -> PairDataset:
    return PairDataset([video], DataConfig(size=64, split_by="frames", val_fraction=0.0, hflip_prob=0.0),
                       split="train", progress=False)


def _config(lam: float, steps: int, **kw) -> RateFinetuneConfig:
    return RateFinetuneConfig(lambda_rate=lam, quality=QUALITY, max_steps=steps, batch_size=4,
                              perceptual_weight=0.0, **kw)


# ------------------------------------------------------------------------------------ rate model
def test_discretized_laplace_matches_cdf_differences_and_sums_to_one():
    loc, scale = torch.tensor([0.3, -1.0, 0.0]), torch.tensor([0.4, 2.0, 7.0])
    z = torch.linspace(-6, 6, 49)[:, None].expand(49, 3)  # (n, d)
    lap = torch.distributions.Laplace(loc.double(), scale.double())
    expected = torch.log2(lap.cdf(z.double() + 0.5) - lap.cdf(z.double() - 0.5))
    torch.testing.assert_close(laplace_bin_log2p(z, loc, scale).double(), expected, atol=1e-4, rtol=1e-5)
    bins = torch.arange(-300, 301, dtype=torch.float32)[:, None]  # every integer bin
    total = laplace_bin_log2p(bins, loc, scale).exp2().sum(0)
    torch.testing.assert_close(total, torch.ones(3), atol=1e-4, rtol=0)
    # far tail: finite and linear in the distance (no underflow to -inf)
    far = laplace_bin_log2p(torch.tensor([[400.0, 400.0, 400.0]]), loc, scale)
    assert torch.isfinite(far).all() and far[0, 0] < -1000


def test_rate_model_bits_gradients_respect_detach():
    rate = LaplaceRateModel(4, init_scale=1.0)
    z = torch.randn(5, 4, requires_grad=True)
    rate.bits(z, detach_params=True).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert rate.loc.grad is None and rate.log_scale.grad is None
    rate.bits(z.detach()).sum().backward()
    assert rate.log_scale.grad.abs().sum() > 0


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="lambda_rate"):
        RateFinetuneConfig(lambda_rate=-1.0)
    with pytest.raises(ConfigError, match="quality"):
        RateFinetuneConfig(quality=99)
    with pytest.raises(ConfigError, match="distortion"):
        RateFinetuneConfig(l1_weight=0.0, perceptual_weight=0.0)


# ------------------------------------------------------------------------------------ fine-tuning
def test_only_the_token_encoder_changes(workdir):
    model = imf.load_model(workdir["ckpt"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = finetune_rate(model, load_tables(workdir["ckpt"]), _pairs(workdir["video"]),
                           _config(0.05, 3, lr=1e-3), progress=False)
    assert result.steps == 3 and all(np.isfinite(h["loss"]) for h in result.history)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    encoder = {k for k in before if k.startswith("token_encoder.")}
    assert changed, "nothing was trained"
    assert changed <= encoder, f"frozen weights changed: {sorted(changed - encoder)[:5]}"
    # every trainable tensor of E_T moved (they all get gradients)
    trainable = {"token_encoder." + n for n, p in model.token_encoder.named_parameters()}
    assert trainable <= changed
    assert all(p.requires_grad for p in model.parameters()) and not model.training


@pytest.mark.slow  # two fine-tuning runs
def test_higher_lambda_gives_lower_rate(workdir):
    """Same model, data, seed and steps: λ > 0 ends with fewer token bits per frame than λ = 0, measured
    with the codec's own integer tables refitted (same quantizer) on the clip."""
    base_model = imf.load_model(workdir["ckpt"])
    tables = load_tables(workdir["ckpt"])
    rates, proxy_bits = {}, {}
    for lam in (0.0, 0.5):
        model = copy.deepcopy(base_model)
        result = finetune_rate(model, tables, _pairs(workdir["video"]), _config(lam, 12, lr=2e-3), progress=False)
        refit = refit_tables(model, [workdir["video"]], tables, qualities=[QUALITY], progress=False)
        rates[lam] = refit.info["bits_per_frame"][str(QUALITY)]["static"]
        proxy_bits[lam] = result.history[-1]["bits_rounded"]
    untouched = refit_tables(base_model, [workdir["video"]], tables, qualities=[QUALITY], progress=False)
    start = untouched.info["bits_per_frame"][str(QUALITY)]["static"]
    assert rates[0.5] < 0.8 * rates[0.0], (rates, start)
    assert rates[0.5] < 0.9 * start, (rates, start)
    assert proxy_bits[0.5] < proxy_bits[0.0]


# ------------------------------------------------------------------------------------ command line
def test_cli_finetune_writes_a_loadable_checkpoint_that_encodes(workdir, tmp_path, capsys):
    out = tmp_path / "tuned"
    code = main(["codec", "finetune", "--ckpt", str(workdir["ckpt"]), "--data", str(workdir["video"]),
                 "--out", str(out), "--lambda", "0.1", "--quality", str(QUALITY), "--max-steps", "2",
                 "--batch-size", "4", "--lr", "1e-3", "--no-perceptual", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "token bits/frame on the training frames" in printed
    model = imf.load_model(out)
    assert has_tables(out) and (out / "rate_finetune.json").is_file()
    tables = load_tables(out)
    assert tables.model_hash == imf.model_hash(model) != imf.model_hash(imf.load_model(workdir["ckpt"]))
    assert tables.qualities == (3, QUALITY) and tables.info["rate_finetune"]["lambda"] == 0.1
    # the quantizer is kept: same steps as the input checkpoint's tables
    np.testing.assert_array_equal(tables.level(QUALITY).quantizer.step,
                                  load_tables(workdir["ckpt"]).level(QUALITY).quantizer.step)
    assert main(["encode", str(workdir["video"]), "--ckpt", str(out), "-o", str(tmp_path / "c.imf"),
                 "--quality", str(QUALITY), "--quiet"]) == 0


@pytest.mark.parametrize("extra, match", [(["--out", "SAME"], "is the input checkpoint"),
                                          (["--lambda", "-1"], "lambda_rate must be >= 0"),
                                          (["--quality", "9"], "quality 9 is not among")])
def test_cli_finetune_user_errors_exit_2(workdir, tmp_path, capsys, extra, match):
    argv = {"--out": str(tmp_path / "o"), "--lambda": "0.1", "--quality": str(QUALITY)}
    for flag, value in zip(extra[::2], extra[1::2]):
        argv[flag] = str(workdir["ckpt"]) if value == "SAME" else value
    args = ["codec", "finetune", "--ckpt", str(workdir["ckpt"]), "--data", str(workdir["video"]),
            "--max-steps", "1", "--no-perceptual", "--quiet"]
    for flag, value in argv.items():
        args += [flag, value]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert match in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()
