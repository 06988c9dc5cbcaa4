"""``imf info`` for every preset: JSON parses, paper-256 reports the paper's tensors."""

import json

import pytest

from imf.cli import main


@pytest.mark.parametrize("preset", [pytest.param("paper-256", marks=pytest.mark.slow),  # counts 165 M parameters' FLOPs
                                    "small-128", "cpu-128", "tiny-64"])
def test_info_json(preset, capsys):
    assert main(["info", "--preset", preset, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    flops = info["flops"]
    assert flops["per_frame_decoder"] > 0 and flops["per_reference"] > 0
    assert flops["full_forward"] == flops["per_frame_encoder"] + flops["per_reference"] + flops["per_frame_decoder"]
    # self-attention must be counted (torch's registry misses the CPU flash kernel)
    assert all(a["transformer"] > 0 for a in flops["alignment_per_scale"])
    assert info["parameters"]["generator total"] == sum(
        v for k, v in info["parameters"].items() if k.split()[0] in ("E_T", "E_F", "IMF_D", "IMF_A", "D_F"))
    if preset == "paper-256":
        assert info["shapes"]["f"] == [[128, 64, 64], [256, 32, 32], [512, 16, 16], [512, 8, 8]]
        assert info["shapes"]["m"] == [[256, 64, 64], [512, 32, 32], [512, 16, 16], [512, 8, 8]]
        assert info["shapes"]["token"] == [32] and info["shapes"]["output"] == [3, 256, 256]
        assert info["shapes"]["styled_convs"] == 13


def test_info_bad_checkpoint_exits_2(tmp_path, capsys):
    assert main(["info", "--ckpt", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
