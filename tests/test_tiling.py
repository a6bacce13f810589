"""Tiled processing (forced with tile=, automatic beyond GL_MAX_TEXTURE_SIZE / the memory budget) equals untiled
processing bit for bit, statistics included."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.plan import MixtureStage, Plan


def _natural(shape, seed=0):
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.45 + 0.25 * np.sin(x / 5.0 + y / 9.0) + 0.1 * np.cos(y / 3.0)
    img = base[..., None] * np.linspace(1.0, 0.7, shape[2] if len(shape) == 3 else 1) + rng.normal(0, 0.01, (h, w, 1))
    img = img.astype(np.float32)
    return img[..., 0] if len(shape) == 2 else img


@pytest.mark.parametrize("method", ["laplacian", "comb", "polyblur", "fir"])
@pytest.mark.parametrize("precision", [32, 16])
def test_tiled_equals_untiled(engine, method, precision):
    img = _natural((75, 101, 4), seed=1)
    engine.set_params(DeconvParams(sigma=1.0 if method != "comb" else 0.5, noise="auto", method=method, mode="global",
                                   precision=precision))
    whole = engine.process(img)
    stats_whole = engine.last_stats
    plan_whole = engine.design.plan
    tiled = engine.process(img, tile=32)
    assert engine.design.plan.stages[0].weights.tobytes() == plan_whole.stages[0].weights.tobytes()
    np.testing.assert_array_equal(engine.last_stats.band_sums, stats_whole.band_sums)
    np.testing.assert_array_equal(engine.last_stats.hh_block_sums, stats_whole.hh_block_sums)
    np.testing.assert_array_equal(tiled, whole)


@pytest.mark.parametrize("shape,dtype", [((50, 70), np.float32), ((66, 40, 3), np.uint8), ((45, 52, 2), np.uint16)])
def test_tiled_layouts_and_sizes(engine, shape, dtype):
    img = _natural(shape, seed=2)
    if dtype != np.float32:
        img = np.round(np.clip(img, 0, 1) * np.iinfo(dtype).max).astype(dtype)
    engine.set_params(DeconvParams(sigma=1.2, noise="auto", mode="global"))
    whole = engine.process(img)
    for tile in (16, (48, 16), 1000):
        np.testing.assert_array_equal(engine.process(img, tile=tile), whole)


def test_multistage_halo_is_sum_of_radii(engine):
    """Three stages of radius 5: a halo of only the largest radius would differ near tile seams."""
    g = np.exp(-np.arange(-5, 6) ** 2 / 8.0)
    st = MixtureStage((g / g.sum(),), [2.0, -1.0])
    plan = Plan("polyblur", (st, MixtureStage(st.taps, [-1.0, 1.5], "previous"),
                             MixtureStage(st.taps, [1.0, 0.5], "previous")))
    img = _natural((64, 80, 3), seed=3)
    engine.set_params(DeconvParams(precision=32))
    np.testing.assert_array_equal(engine.process(img, plan=plan, tile=16), engine.process(img, plan=plan))


def test_stats_latency_tiled_matches_untiled(gl_ctx):
    from gpu_deconv.gl.engine import Deconvolver

    img = _natural((70, 90, 3), seed=4)
    outs = []
    for tile in (None, 32):
        with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise="auto", mode="global"), stats_latency=1) as dec:
            outs.append([dec.process(img, tile=tile) for _ in range(3)])
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_automatic_tiling_over_budget(gl_ctx):
    from gpu_deconv.gl.engine import Deconvolver

    img = _natural((96, 128, 4), seed=5)
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise="auto", mode="global")) as dec:
        whole = dec.process(img)
        dec.memory_budget_mb = 0.5  # ~ 96*128 px * >100 B/px is over this: tiles of 64 px
        dec.tile_size = 64
        dec.executor.pool.release()
        tiled = dec.process(img)
        assert max(t.width for t in dec.executor.pool._tex.values()) < 128
    np.testing.assert_array_equal(tiled, whole)
