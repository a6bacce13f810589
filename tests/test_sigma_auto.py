"""``--sigma auto``: the blur estimated from each frame's own statistics, cautiously (issue #12)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpu_deconv.apps.cli import main
from gpu_deconv.core.chart import blur_and_noise, test_chart
from gpu_deconv.core.colour import linear_to_srgb
from gpu_deconv.core.design import FilterDesigner
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.stats import band_statistics
from gpu_deconv.io.images import read_image, write_image

pytestmark = pytest.mark.usefixtures("gl_ctx")


def to8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(linear_to_srgb(x) * 255), 0, 255).astype(np.uint8)


def test_sharp_input_gets_the_identity_and_blur_gets_restored(tmp_path, capsys):
    sharp = test_chart((256, 384))
    write_image(tmp_path / "sharp.png", to8(sharp))
    write_image(tmp_path / "soft.png", to8(blur_and_noise(sharp, 1.5, 0.002, seed=1)))
    code = main(["run", str(tmp_path / "sharp.png"), str(tmp_path / "soft.png"), "-o", str(tmp_path / "o"),
                 "--sigma", "auto", "--report", str(tmp_path / "r.json"), "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in json.loads((tmp_path / "r.json").read_text())["files"]}
    assert rows["sharp.png"]["method"] == "identity" and rows["sharp.png"]["sigma"] == 0.0
    np.testing.assert_array_equal(read_image(tmp_path / "o" / "sharp.png").pixels, read_image(tmp_path /
                                                                                               "sharp.png").pixels)
    soft = rows["soft.png"]
    assert soft["method"] == "laplacian" and 0.5 <= soft["sigma"] <= 1.6 and soft["sigma_estimate"] > 0.8


def test_designer_uses_the_estimate_and_never_overshoots_a_sharp_frame():
    sharp = test_chart((192, 256))
    fd = FilterDesigner()
    d0 = fd.design(DeconvParams(sigma="auto", noise=0.002), band_statistics(sharp))
    assert d0.method == "identity" and d0.blur_estimate is not None
    d1 = fd.design(DeconvParams(sigma="auto", noise=0.002), band_statistics(blur_and_noise(sharp, 1.2, 0.002, 3)))
    assert d1.method != "identity" and d1.params.sigma < 1.2 + 0.2  # cautious: rather less than the truth


@pytest.mark.parametrize("argv", [["fit", "--sigma", "auto", "--noise", "0.01"],
                                  ["export", "--format", "mpv", "--sigma", "auto", "--noise", "0.01"],
                                  ["fit", "--sigma", "auto", "--noise", "0.01", "--blur", "box"]])
def test_auto_needs_an_image(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "sigma" in err and len(err.strip().splitlines()) == 1
