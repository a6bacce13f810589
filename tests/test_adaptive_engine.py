"""The adaptive mode through the engine (the default): process, apply, tiles, latency, temporal smoothing,
equal to the NumPy flow :func:`gpu_deconv.core.adaptive.deconvolve` bit for bit on llvmpipe."""

from __future__ import annotations

import numpy as np
import pytest
from imagegen import gaussian_blur, textured_image

from gpu_deconv.core.adaptive import AdaptiveSolver, deconvolve
from gpu_deconv.core.blur import Gaussian
from gpu_deconv.core.colour import linear_to_srgb
from gpu_deconv.core.comb import Comb
from gpu_deconv.core.gaussian_laplacian import GaussianLaplacian
from gpu_deconv.core.params import DeconvParams


def _noisy(shape=(70, 90), seed=2, sigma=1.0, noise=0.01) -> np.ndarray:
    x = gaussian_blur(textured_image(shape, 3, seed=seed), sigma)
    return np.clip(x + noise * np.random.default_rng(seed).standard_normal(x.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("noise", [0.01, "auto"])
@pytest.mark.parametrize("method, sigma, basis", [("laplacian", 1.0, GaussianLaplacian()), ("comb", 0.4, Comb(2))])
def test_process_equals_the_numpy_flow(gl_ctx, noise, method, sigma, basis):
    from gpu_deconv.gl.engine import Deconvolver

    y = _noisy(sigma=sigma)
    with Deconvolver(gl_ctx, DeconvParams(sigma=sigma, noise=noise, method=method, precision=16)) as d:
        got = d.process(y)
        assert d.design.adaptive and d.design.method == method
        ref, table = deconvolve(y, Gaussian(sigma), None if noise == "auto" else noise, None,
                                solver=AdaptiveSolver(basis), precision=16, fp16_rounding=d.fp16_rounding)
        tol = 0 if "llvmpipe" in d.ctx.info["GL_RENDERER"] else 4e-3
        assert np.abs(got - ref.output).max() <= tol
        np.testing.assert_array_equal(d.design.table.coefficients, table.coefficients)


@pytest.mark.parametrize("limiter", [None, 0.5])
def test_tiled_equals_untiled(gl_ctx, limiter):
    from gpu_deconv.gl.engine import Deconvolver

    y = _noisy((83, 101))
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.2, noise="auto", limiter=limiter)) as d:
        whole = d.process(y)
        for tile in (16, 48):
            np.testing.assert_array_equal(d.process(y, tile=tile), whole)


def test_apply_equals_process_also_with_latency_and_smoothing(gl_ctx):
    from gpu_deconv.core.temporal import TemporalSmoother
    from gpu_deconv.gl.engine import Deconvolver

    y = _noisy()
    img = np.clip(np.rint(linear_to_srgb(y) * 255), 0, 255).astype(np.uint8)
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    h, w = img.shape[:2]
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise="auto")) as offline:
        want = offline.process(rgba)
    for latency, temporal in ((0, None), (1, None), (1, TemporalSmoother())):
        with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise="auto"), stats_latency=latency,
                         temporal=temporal) as d:
            src = gl_ctx.texture((w, h), 4, rgba.tobytes())
            dst = gl_ctx.texture((w, h), 4)
            try:
                for _ in range(3):
                    d.apply(src, dst, src_is_srgb=True, encode_srgb=True, bits=8)
                got = np.frombuffer(dst.read(), np.uint8).reshape(h, w, 4)
            finally:
                gl_ctx.detect_framebuffer(0).use()
                src.release()
                dst.release()
        # a still scene: the previous frame's (or the smoothed) noise is this frame's to within the smoothing's
        # percentile correction - a code value at most
        assert np.abs(got.astype(int) - want.astype(int)).max() <= (0 if temporal is None else 1), latency


def test_global_mode_is_still_there_and_cheaper(gl_ctx):
    from gpu_deconv.gl.engine import Deconvolver

    y = _noisy()
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise=0.01, mode="global")) as d:
        d.process(y)
        assert not d.design.adaptive and d.design.plan.stages
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise=0.01, method="fir")) as d:  # no adaptive mode
        d.process(y)
        assert not d.design.adaptive and d.design.method == "fir"


def test_sigma_auto_with_latency_keeps_the_blind_statistics(gl_ctx):
    """sigma 'auto' in the adaptive mode with one frame of statistics latency: each frame estimates the blur
    from its own statistics (kept in ``last_blur_stats`` with their per-tile sums) and the adaptive pass's
    statistics steer the next frame - the same output as without latency on a still scene."""
    from gpu_deconv.gl.engine import Deconvolver

    y = gaussian_blur(textured_image((96, 128), 3, seed=5), 1.0).astype(np.float32)
    with Deconvolver(gl_ctx, DeconvParams(sigma="auto", noise="auto")) as d0:
        want = d0.process(y)
        sigma0 = d0.design.params.sigma
    with Deconvolver(gl_ctx, DeconvParams(sigma="auto", noise="auto"), stats_latency=1) as d:
        for _ in range(3):
            got = d.process(y)
            assert d.design.adaptive and d.design.blur_estimate is not None
            assert d.last_blur_stats is not None and d.last_blur_stats.band_block_sums is not None
        assert d.design.params.sigma == sigma0
        np.testing.assert_array_equal(got, want)
