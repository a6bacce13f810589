"""GPU band statistics (gpu_deconv.gl.stats_gpu) vs the NumPy definition (gpu_deconv.core.stats.band_statistics),
on both paths: the seven fragment passes and the fused compute dispatch (stats_fused.comp)."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_deconv.core.colour import decode_lut
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.stats import band_statistics

PATHS = ("fragment", "fused")


@pytest.fixture(scope="module", params=PATHS)
def stats(request, engine):
    """A GpuBandStats on the engine's executor: the fragment passes, or the fused dispatch."""
    from gpu_deconv.gl.compute import ComputeExecutor
    from gpu_deconv.gl.stats_gpu import GpuBandStats

    with engine._guard:
        gs = GpuBandStats(engine.executor, compute=ComputeExecutor(engine.executor) if request.param == "fused"
                          else None)
    yield gs
    with engine._guard:
        gs.release()


def _upload(engine, image: np.ndarray):
    from gpu_deconv.gl.executor import Layout

    layout = Layout.for_channels(1 if image.ndim == 2 else image.shape[2])
    return engine.transfer.upload(image, layout, "f4"), layout


def _gpu_stats(engine, stats, image: np.ndarray, stride: int = 1):
    with engine._guard:
        src, layout = _upload(engine, image)
        return stats.measure(src, layout, stride)


def _energy_floor(image: np.ndarray, block: int = 16) -> float:
    """Absolute floor of the tolerance: 1e-12 x the image's energy sum(mean_c x^2) - where a band is exactly 0
    in float64 (a flat or 1-pixel image) the float32 lowpasses still leave ~1e-7 |x| per pixel (the fused
    dispatch sums G2, G3 in another order than the cascade), ~1e-14 x^2 squared."""
    from gpu_deconv.core.stats import colour_channels

    x = colour_channels(image).astype(np.float64)
    return 1e-12 * float(np.mean(x * x, axis=2).sum()) + 1e-30


def _assert_tiles_close(got: np.ndarray, ref: np.ndarray, rtol: float, floor: float) -> None:
    """Per tile sum: within ``rtol`` of the largest tile sum of that band (tiles with ~0 energy have no
    meaningful relative error) plus ``floor``, and within ``rtol`` relative where the tile holds >= 1e-3 of
    the largest."""
    for b in range(ref.shape[-1] if ref.ndim == 3 else 1):
        g, r = (got[..., b], ref[..., b]) if ref.ndim == 3 else (got, ref)
        scale = float(np.abs(r).max())
        assert np.max(np.abs(g - r)) <= rtol * scale + floor
        nz = r > max(1e-3 * scale, floor / rtol)
        np.testing.assert_allclose(g[nz], r[nz], rtol=rtol)


def _assert_close(got, ref, rtol=1e-4, floor=1e-30):
    np.testing.assert_array_equal(got.block_counts, ref.block_counts)
    assert got.channels == ref.channels
    np.testing.assert_allclose(got.band_sums, ref.band_sums, rtol=rtol, atol=floor)
    _assert_tiles_close(got.hh_block_sums, ref.hh_block_sums, rtol, floor)
    _assert_tiles_close(got.band_block_sums, ref.band_block_sums, rtol, floor)


def _sampled(ref, stride, first_tile=(0, 0)):
    """The NumPy statistics of the tiles ``stride`` (s or (sx, sy)) keeps (the others with count 0 and sums 0)."""
    from gpu_deconv.core.stats import BandStats

    sx, sy = (stride, stride) if isinstance(stride, int) else stride
    ny, nx = ref.block_counts.shape
    keep = np.outer((np.arange(ny) + first_tile[1]) % sy == 0, (np.arange(nx) + first_tile[0]) % sx == 0)
    tiles = ref.band_block_sums * keep[..., None]
    return BandStats(tiles.sum(axis=(0, 1)), ref.hh_block_sums * keep, ref.block_counts * keep, ref.block,
                     ref.channels, band_block_sums=tiles)


@pytest.mark.parametrize("shape", [(37, 53, 4), (40, 33), (33, 40, 3), (29, 31, 2), (1, 1, 4), (1, 20), (20, 1, 3),
                                   (3, 2, 3), (16, 16), (17, 47, 1), (7, 9, 3), (6, 70, 3)])
def test_gpu_stats_match_numpy(engine, stats, shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.random(shape, dtype=np.float32)
    _assert_close(_gpu_stats(engine, stats, img), band_statistics(img), floor=_energy_floor(img))


def test_gpu_stats_natural_like_image(engine, stats):
    """Smooth content plus weak noise (tiny high bands next to large low ones) keeps 1e-4 relative."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:90, 0:120].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(x / 7.0) * np.cos(y / 11.0)
    img = np.stack([base, base * 0.8, base * 0.6], axis=2) + rng.normal(0, 0.003, (90, 120, 3))
    img = img.astype(np.float32)
    _assert_close(_gpu_stats(engine, stats, img), band_statistics(img))


def test_gpu_stats_1080p(engine, stats):
    img = np.random.default_rng(4).random((1080, 1920, 4), dtype=np.float32)
    _assert_close(_gpu_stats(engine, stats, img), band_statistics(img))


@pytest.mark.parametrize("stride", [2, 3, (4, 1), (1, 2)])
def test_gpu_stats_every_stride_th_tile(engine, stats, stride):
    """stride (sx, sy): exactly the NumPy statistics of the tiles whose column index is a multiple of sx and
    row index one of sy (partial edge tiles included), count 0 elsewhere; the fused dispatch computes only
    those tiles."""
    img = np.random.default_rng(7).random((150, 211, 3), dtype=np.float32)
    got = _gpu_stats(engine, stats, img, stride)
    _assert_close(got, _sampled(band_statistics(img), stride))
    assert 0 < got.pixels < img.shape[0] * img.shape[1]


def test_bad_stride_is_refused(engine, stats):
    img = np.zeros((20, 20, 3), dtype=np.float32)
    for bad in (0, (2, 0), (1.5, 1), -1):
        with pytest.raises(ValueError, match="tile stride"):
            _gpu_stats(engine, stats, img, bad)


@pytest.mark.parametrize("stride", [1, 2, (3, 1)])
def test_gpu_stats_tiled_roi_stitch_to_the_whole_grid(engine, stats, stride):
    """Tiles with halos, regions of interest on the global block grid: StatsAccumulator gives the untiled
    grid (and with a stride, the same global tiles are kept whatever the tiling)."""
    from gpu_deconv.gl.frames import tile_grid, with_halos
    from gpu_deconv.gl.stats_gpu import STATS_HALO, StatsAccumulator

    h, w = 100, 181
    img = np.random.default_rng(12).random((h, w, 3), dtype=np.float32)
    acc = StatsAccumulator(w, h, channels=3, stride=stride)
    with engine._guard:
        for (x0, y0, x1, y1), r in with_halos(tile_grid(w, h, 48), STATS_HALO, w, h, 4096):
            src, layout = _upload(engine, img[r[1]:r[3], r[0]:r[2]])
            cells = stats.grid(src, layout, (x0 - r[0], y0 - r[1], x1 - r[0], y1 - r[1]), stride=stride,
                               first_tile=(x0 // 16, y0 // 16))
            acc.add(cells, x0 // 16, y0 // 16)
    _assert_close(acc.result(), _sampled(band_statistics(img), stride))


def test_gpu_stats_async_read(engine, stats):
    """grid_async (latency-1 video): the pixel-pack read resolves to the same statistics."""
    img = np.random.default_rng(13).random((70, 90, 4), dtype=np.float32)
    with engine._guard:
        src, layout = _upload(engine, img)
        pending = stats.grid_async(src, layout)
    _assert_close(pending.result(), band_statistics(img))


@pytest.mark.parametrize("rows, cols, local_x", [(16, 1, 64), (32, 2, 8), (64, 4, 8), (128, 16, 4), (48, 8, 3)])
def test_fused_variants_agree(engine, rows, cols, local_x):
    """Every fused layout (column groups, strip heights, workgroup widths) gives the NumPy statistics."""
    from gpu_deconv.gl.compute import ComputeExecutor, FusedVariant
    from gpu_deconv.gl.stats_gpu import GpuBandStats

    img = np.random.default_rng(rows + cols).random((131, 150, 3), dtype=np.float32)
    with engine._guard:
        gs = GpuBandStats(engine.executor, compute=ComputeExecutor(engine.executor),
                          variant=FusedVariant(rows=rows, cols=cols, local_x=local_x))
        try:
            for stride in (1, 2, (4, 1)):
                src, layout = _upload(engine, img)
                _assert_close(gs.measure(src, layout, stride), _sampled(band_statistics(img), stride))
        finally:
            gs.release()


def test_fused_variant_must_tile_the_block(engine):
    from gpu_deconv.gl.compute import ComputeExecutor, FusedVariant
    from gpu_deconv.gl.stats_gpu import GpuBandStats

    comp = ComputeExecutor(engine.executor)
    for bad in (FusedVariant(rows=64, cols=3), FusedVariant(rows=40, cols=4)):
        with pytest.raises(ValueError, match="cols must divide"):
            GpuBandStats(engine.executor, compute=comp, variant=bad)


def test_process_measures_the_linear_image(engine):
    """For sRGB integers the statistics describe the decoded (linear) image, alpha excluded."""
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, size=(48, 64, 4), dtype=np.uint8)
    engine.set_params(DeconvParams(sigma=0.8, noise="auto", mode="global"))
    engine.process(img)
    lin = decode_lut(8)[img[..., :3]]
    _assert_close(engine.last_stats, band_statistics(lin))


def test_stats_latency_one_steers_the_next_frame(gl_ctx):
    """stats_latency=1: frame n is designed with frame n-1's statistics (frame 0 with its own)."""
    from gpu_deconv.gl.engine import Deconvolver

    rng = np.random.default_rng(6)
    quiet = (0.5 + rng.normal(0, 0.002, (40, 48, 3))).astype(np.float32)
    noisy = (0.5 + rng.normal(0, 0.05, (40, 48, 3))).astype(np.float32)
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise="auto", mode="global"), stats_latency=1) as dec:
        dec.process(quiet)
        n0 = dec.design.noise_std
        dec.process(noisy)  # designed with the quiet frame's statistics
        assert dec.design.noise_std == pytest.approx(n0)
        _assert_close(dec.last_stats, band_statistics(quiet))
        dec.process(noisy)  # now with the noisy frame's
        assert dec.design.noise_std > 5 * n0
        _assert_close(dec.last_stats, band_statistics(noisy))


def test_gpu_stats_carry_the_channel_count(gl_ctx):
    """The noise estimator's degrees of freedom depend on the channel count: gray must not read as RGB."""
    from gpu_deconv.core.noise import noise_from_stats
    from gpu_deconv.gl.engine import Deconvolver

    rng = np.random.default_rng(11)
    for shape, channels in (((96, 128), 1), ((96, 128, 3), 3), ((96, 128, 4), 3)):
        x = (0.5 + rng.normal(0, 0.01, shape)).astype(np.float32)
        with Deconvolver(ctx=gl_ctx, params=DeconvParams(sigma=1.0, noise="auto", mode="global")) as d:
            d.process(x)
            st = d.last_stats
        assert st.channels == channels
        assert noise_from_stats(st) == pytest.approx(noise_from_stats(band_statistics(x)), rel=1e-4)


def test_engine_takes_the_fused_statistics_for_the_blind_sigma_only(gl_ctx):
    """CPU rasterisers (llvmpipe here): the fused dispatch for the adaptive mode's blind sigma; the global
    design's statistics stay on the seven fragment passes, bit for bit (their outputs are recorded);
    path='fragment' keeps the fragment passes everywhere."""
    from gpu_deconv.gl.compute import _cpu_rasteriser, compute_available
    from gpu_deconv.gl.engine import Deconvolver
    from gpu_deconv.gl.stats_gpu import GpuBandStats

    img = np.random.default_rng(31).random((60, 90, 3), dtype=np.float32)
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise="auto", mode="global")) as d:
        assert d.gpu_stats.fused == (compute_available(gl_ctx) and _cpu_rasteriser(gl_ctx))
        assert d.gpu_stats.blind_only
        d.process(img)
        with d._guard:
            frag = GpuBandStats(d.executor)
            src, layout = _upload(d, img)
            want = frag.measure(src, layout)
            frag.release()
        np.testing.assert_array_equal(d.last_stats.hh_block_sums, want.hh_block_sums)
        np.testing.assert_array_equal(d.last_stats.band_block_sums, want.band_block_sums)
    with Deconvolver(gl_ctx, path="fragment") as d:
        assert not d.gpu_stats.fused


def test_blur_stride_keeps_about_the_tiles_the_estimator_fits():
    from gpu_deconv.core.blur_estimation import MAX_FIT_TILES
    from gpu_deconv.gl.stats_gpu import BLUR_TILES, blur_stride

    assert BLUR_TILES <= MAX_FIT_TILES
    assert [blur_stride(*s) for s in ((1920, 1080), (3840, 2160), (1280, 720), (40, 30))] == [2, 4, 1, 1]
    for w, h in ((1920, 1080), (3840, 2160), (2000, 1000)):
        s = blur_stride(w, h)
        kept = -(-w // (16 * s)) * -(-h // (16 * s))
        assert kept >= BLUR_TILES and -(-w // (16 * (s + 1))) * -(-h // (16 * (s + 1))) < BLUR_TILES


@pytest.mark.parametrize("path", ["compute", "fragment"])
def test_adaptive_blind_sigma_reads_every_second_tile_at_1080p(gl_ctx, path):
    """Adaptive mode, sigma 'auto', 1080p: the blind estimate's statistics are exactly the NumPy statistics of
    every 2nd tile column and row (count 0 elsewhere), on both paths, and the sigma is the one the designer
    resolves from them; ``gpu_stats.blur_tile_stride = 1`` gives back every tile, ``(4, 1)`` every 4th tile column."""
    from gpu_deconv.core.design import FilterDesigner
    from gpu_deconv.gl.engine import Deconvolver

    rng = np.random.default_rng(21)
    y, x = np.mgrid[0:1080, 0:1920].astype(np.float32)
    base = 0.5 + 0.25 * np.sign(np.sin(x / 23.0 + y / 41.0)) * np.cos(y / 17.0)
    img = np.stack([base, 0.9 * base, 0.8 * base], axis=2) + rng.normal(0, 0.004, (1080, 1920, 3))
    img = img.astype(np.float32)
    ref = band_statistics(img)
    want = _sampled(ref, 2)
    params = DeconvParams(sigma="auto", noise="auto")
    with Deconvolver(gl_ctx, params, path=path) as d:
        d.process(img)
        _assert_close(d.last_blur_stats, want)
        resolved, _ = FilterDesigner().resolve_sigma(params, want, None)
        assert d.design.params.sigma == pytest.approx(resolved.sigma, abs=0.01)
        d.gpu_stats.blur_tile_stride = 1
        d.process(img)
        _assert_close(d.last_blur_stats, ref)
        d.gpu_stats.blur_tile_stride = (4, 1)
        d.process(img)
        _assert_close(d.last_blur_stats, _sampled(ref, (4, 1)))


def test_adaptive_blind_statistics_tiled_equal_untiled(gl_ctx):
    """Tiled processing (tile interiors on the 16-px grid, halos) keeps the same global tiles with a stride:
    the blind statistics equal the untiled run's and NumPy's of those tiles."""
    from gpu_deconv.gl.engine import Deconvolver

    img = np.random.default_rng(23).random((200, 300, 3), dtype=np.float32)
    want = _sampled(band_statistics(img), 2)
    with Deconvolver(gl_ctx, DeconvParams(sigma="auto", noise="auto")) as d:
        d.gpu_stats.blur_tile_stride = 2
        d.process(img)
        _assert_close(d.last_blur_stats, want)
        d.process(img, tile=(112, 80))
        _assert_close(d.last_blur_stats, want)
