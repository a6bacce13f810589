"""Spatially varying blur in the adaptive mode: the 2D (sigma, level) table of pass 5 on the GPU against its
NumPy mirror (gpu_deconv.core.adaptive.apply_sigma_map), and the sigma-map plumbing (engine, CLI, errors).

Tolerances as tests/test_adaptive_gl.py states them (fp32 <= 1e-5, fp16 <= 4e-3 absolute); on Mesa llvmpipe
the sigma-map pass is bit-identical to the reference (the map's bilinear interpolation, the node index and
both interpolations are float32 ``precise`` arithmetic in the same order), which is asserted there.
"""

from __future__ import annotations

import numpy as np
import pytest
from adaptive_support import TOL, adaptive_passes, from_texture, llvmpipe, texture_data

from gpu_deconv.core.adaptive import AdaptiveSolver, SigmaTable, apply_adaptive, apply_sigma_map, sigma_nodes
from gpu_deconv.core.blur import Gaussian
from gpu_deconv.core.gaussian_laplacian import GaussianLaplacian
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.sigma_map import SigmaMap, radial_from_center_corner

SOLVER = AdaptiveSolver(GaussianLaplacian())


@pytest.fixture(scope="module")
def gl(gl_ctx):
    yield from adaptive_passes(gl_ctx)


def _run(gl, image, table, sigma_map=None, *, precision=16, limiter=None, map_origin=(0, 0)):
    from gpu_deconv.gl.executor import TEXTURE_UNITS, DrawTarget, Layout, Region
    from gpu_deconv.gl.state import GLStateGuard

    ctx, ex, ad = gl
    channels = 1 if image.ndim == 2 else image.shape[2]
    layout = Layout.for_channels(channels)
    data, comps = texture_data(image)
    h, w = image.shape[:2]
    src = ctx.texture((w, h), comps, data.tobytes(), dtype="f4")
    out = ctx.texture((w, h), comps, dtype="f4")
    fb = ctx.framebuffer([out])
    try:
        with GLStateGuard(ctx, ex.raw, TEXTURE_UNITS):
            ad.prepare(Region(src, w, h), layout, table.basis, table.bands, precision=precision)
            ad.apply(table, DrawTarget(fb, (0, 0, w, h)), limiter=limiter, sigma_map=sigma_map,
                     map_origin=map_origin)
        got = np.frombuffer(out.read(), np.float32).reshape(h, w, out.components)
    finally:
        fb.release()
        out.release()
        src.release()
    return from_texture(got, channels)


def _sigma_table(sigma_map: SigmaMap, noise: float = 0.01) -> SigmaTable:
    return SOLVER.solve_map(Gaussian, noise * noise, sigma_map.range, float(np.median(sigma_map.values)))


SHAPES = [(37, 53, 3), (40, 33), (33, 40, 4), (29, 31, 2), (1, 1, 3), (1, 20), (20, 1, 3), (3, 2), (17, 16, 3)]


@pytest.mark.parametrize("precision", [16, 32])
@pytest.mark.parametrize("shape", SHAPES)
def test_radial_map_matches_reference(gl, shape, precision):
    rng = np.random.default_rng(sum(shape) + precision)
    img = rng.random(shape, dtype=np.float32)
    smap = radial_from_center_corner(shape[0], shape[1], 0.5, 1.5)
    table = _sigma_table(smap)
    got = _run(gl, img, table, smap, precision=precision)
    ref = apply_sigma_map(img, table, smap, precision=precision)
    np.testing.assert_allclose(got, ref.output, rtol=0, atol=TOL[precision])
    if llvmpipe(gl[0]):
        np.testing.assert_array_equal(got, ref.output)


@pytest.mark.parametrize("cells", [(1, 1), (1, 5), (7, 3), (9, 13)])
def test_coarse_and_fine_grids_with_limiter(gl, cells):
    """Arbitrary user grids (any cell count, 0 px = identity nodes included) and the halo limiter."""
    rng = np.random.default_rng(cells[0] * 10 + cells[1])
    img = rng.random((41, 47, 3), dtype=np.float32)
    smap = SigmaMap(rng.uniform(0.0, 2.0, cells), 41, 47)
    table = _sigma_table(smap)
    got = _run(gl, img, table, smap, limiter=0.5)
    ref = apply_sigma_map(img, table, smap, limiter=0.5)
    np.testing.assert_allclose(got, ref.output, rtol=0, atol=TOL[16])
    if llvmpipe(gl[0]):
        np.testing.assert_array_equal(got, ref.output)


@pytest.mark.parametrize("levels", [2, 3])
def test_comb_basis_with_a_map(gl, levels):
    """The comb bases (K = 2, 3: one table row per node) - what method 'auto' picks for maps <= 0.4 px."""
    from gpu_deconv.core.comb import Comb

    rng = np.random.default_rng(levels)
    img = rng.random((31, 44, 3), dtype=np.float32)
    smap = SigmaMap(rng.uniform(0.1, 0.4, (3, 4)), 31, 44)
    table = AdaptiveSolver(Comb(levels)).solve_map(Gaussian, 1e-4, smap.range, float(np.median(smap.values)))
    got = _run(gl, img, table, smap)
    ref = apply_sigma_map(img, table, smap)
    np.testing.assert_allclose(got, ref.output, rtol=0, atol=TOL[16])
    if llvmpipe(gl[0]):
        np.testing.assert_array_equal(got, ref.output)


@pytest.mark.parametrize("precision", [16, 32])
def test_constant_map_equals_plain_adaptive(gl, precision):
    """A constant map at a node's sigma is the plain adaptive filter at that sigma (g = 0: every
    interpolation in sigma returns node 0 exactly)."""
    rng = np.random.default_rng(5)
    img = rng.random((30, 45, 3), dtype=np.float32)
    smap = SigmaMap(np.full((3, 4), 1.2), 30, 45)
    table = _sigma_table(smap)
    plain = SOLVER.solve(Gaussian(table.sigma_at(0)), 1e-4)
    assert table.start == pytest.approx(1.2) and table.bands == plain.bands
    ref_plain = apply_adaptive(img, plain, precision=precision).output
    np.testing.assert_array_equal(apply_sigma_map(img, table, smap, precision=precision).output, ref_plain)
    got = _run(gl, img, table, smap, precision=precision)
    np.testing.assert_allclose(got, ref_plain, rtol=0, atol=TOL[precision])


def test_map_between_nodes_is_the_blend_of_node_filters():
    """Half-way between two nodes the output is the mean of the two nodes' outputs where the level
    model agrees: checked on the coefficients (c linear in sigma between nodes)."""
    smap = SigmaMap(np.full((2, 2), 1.05), 8, 8)
    table = _sigma_table(smap)
    assert (table.start, table.nodes) == (pytest.approx(1.0), 2)
    energy = np.full((1,), 3.0, np.float32)
    c_mid, _ = table.lookup(np.full((1,), 0.5, np.float32), energy, 3)
    c0, _ = table.lookup(np.zeros(1, np.float32), energy, 3)
    c1, _ = table.lookup(np.ones(1, np.float32), energy, 3)
    # the level scale moves with sigma too, so c_mid sits between the node values, not exactly at their mean
    lo, hi = np.minimum(c0, c1), np.maximum(c0, c1)
    assert np.all(c_mid >= lo - 1e-6) and np.all(c_mid <= hi + 1e-6)
    assert not np.allclose(c0, c1)


def test_tile_origin_shifts_the_map(gl):
    """A region processed with its frame origin reads the map where the frame has it (what tiles need)."""
    rng = np.random.default_rng(9)
    img = rng.random((64, 80, 3), dtype=np.float32)
    smap = radial_from_center_corner(64, 80, 0.5, 1.5)
    table = _sigma_table(smap)
    from gpu_deconv.core.adaptive import finish, pixel_node_coordinates, prepare

    part = img[16:48, 32:80]
    frame = prepare(part, table.basis, table.bands)
    coords = pixel_node_coordinates(table.cell_coordinates(smap), 64, 80, (32, 16, 48, 32))
    ref, _ = finish(frame, table, None, coords)
    got = _run(gl, part, table, smap, map_origin=(32, 16))
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL[16])
    if llvmpipe(gl[0]):
        np.testing.assert_array_equal(got, ref)


def test_sigma_nodes_and_table_validation():
    assert sigma_nodes(0.5, 1.5) == (0.5, 11)
    assert sigma_nodes(1.0, 1.0) == (1.0, 2)
    assert sigma_nodes(0.0, 0.05) == (0.0, 2)
    with pytest.raises(ValueError, match="sigma range"):
        sigma_nodes(float("nan"), 1.0)
    sharp = _sigma_table(SigmaMap(np.array([[0.0, 0.3]]), 4, 8))
    assert not sharp.coefficients()[0].any() and sharp.coefficients()[1].any()  # node 0 px is the identity
    with pytest.raises(ValueError, match="share"):
        SigmaTable((SOLVER.solve(Gaussian(1.0), 1e-4), SOLVER.solve(Gaussian(1.1), 4e-4)), 1.0, 0.1)


def test_apply_refuses_mismatched_map(gl):
    from gpu_deconv.gl.executor import DrawTarget, Layout, Region

    ctx, ex, ad = gl
    img = np.zeros((8, 8), np.float32)
    src = ctx.texture((8, 8), 1, img.tobytes(), dtype="f4")
    out = ctx.texture((8, 8), 1, dtype="f4")
    fb = ctx.framebuffer([out])
    smap = SigmaMap(np.full((1, 1), 1.0), 8, 8)
    plain = SOLVER.solve(Gaussian(1.0), 1e-4)
    try:
        ad.prepare(Region(src, 8, 8), Layout.for_channels(1), plain.basis, plain.bands)
        with pytest.raises(ValueError, match="needs a SigmaTable"):
            ad.apply(plain, DrawTarget(fb, (0, 0, 8, 8)), sigma_map=smap)
        with pytest.raises(ValueError, match="needs a SigmaTable"):
            ad.apply(_sigma_table(smap), DrawTarget(fb, (0, 0, 8, 8)))
    finally:
        fb.release()
        out.release()
        src.release()


# ---------------------------------------------------------------------------------------------- the engine
def _noisy(shape=(70, 90), seed=2, sigma=1.0, noise=0.01) -> np.ndarray:
    from imagegen import gaussian_blur, textured_image

    x = gaussian_blur(textured_image(shape, 3, seed=seed), sigma)
    return np.clip(x + noise * np.random.default_rng(seed).standard_normal(x.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("precision", [16, 32])
def test_engine_radial_equals_the_numpy_reference(gl_ctx, precision):
    from gpu_deconv.gl.engine import Deconvolver

    y = _noisy((61, 87))
    params = DeconvParams(sigma=1.0, noise=0.01, sigma_map="radial", sigma_center=0.5, sigma_corner=1.5,
                          precision=precision)
    with Deconvolver(gl_ctx, params) as d:
        got = d.process(y)
        smap = radial_from_center_corner(61, 87, 0.5, 1.5)
        table = SOLVER.solve_map(Gaussian, 1e-4, smap.range, float(np.median(smap.values)))
        ref = apply_sigma_map(y, table, smap, precision=precision, fp16_rounding=d.fp16_rounding)
        tol = 0 if llvmpipe(gl_ctx) else TOL[precision]
        assert np.abs(got - ref.output).max() <= tol
        plain = d.design.table
        assert plain.bands == table.bands and d._adaptive.passes.sigma_table.nodes == 11


@pytest.mark.parametrize("noise", [0.01, "auto"])
def test_engine_tiled_equals_untiled_with_a_map(gl_ctx, noise):
    from gpu_deconv.gl.engine import Deconvolver

    y = _noisy((83, 101))
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise=noise, sigma_map="radial", limiter=0.5)) as d:
        whole = d.process(y)
        for tile in (16, 48):
            np.testing.assert_array_equal(d.process(y, tile=tile), whole)


def test_engine_constant_map_equals_no_map(gl_ctx, tmp_path):
    from gpu_deconv.gl.engine import Deconvolver

    y = _noisy((40, 52))
    path = tmp_path / "flat.npy"
    np.save(path, np.full((3, 4), 1.3))
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.3, noise=0.01)) as d:
        plain = d.process(y)
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise=0.01, sigma_map=str(path))) as d:
        mapped = d.process(y)
    np.testing.assert_array_equal(mapped, plain)


def test_params_refuse_a_map_without_the_adaptive_mode():
    with pytest.raises(ValueError, match="needs the adaptive mode"):
        DeconvParams(sigma_map="radial", mode="global")
    with pytest.raises(ValueError, match="needs the adaptive mode"):
        DeconvParams(sigma_map="radial", method="fir")
    with pytest.raises(ValueError, match="Gaussian"):
        DeconvParams(sigma=3, blur="box", sigma_map="radial")
    with pytest.raises(ValueError, match="exclude each other"):
        DeconvParams(sigma="auto", sigma_map="radial")
    with pytest.raises(ValueError, match="sigma_corner"):
        DeconvParams(sigma_map="radial", sigma_corner=4.5)


# ---------------------------------------------------------------------------------------------- the CLI
def _cli(*args: str) -> tuple[int, str]:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "gpu_deconv.apps.cli", *args], capture_output=True, text=True,
                       timeout=300)
    return r.returncode, r.stderr


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    import imageio.v3 as iio

    d = tmp_path_factory.mktemp("sigma_map_cli")
    rng = np.random.default_rng(0)
    iio.imwrite(d / "a.png", (rng.random((48, 64, 3)) * 255).astype(np.uint8))
    iio.imwrite(d / "b.png", (rng.random((48, 64, 3)) * 255).astype(np.uint8))
    np.save(d / "good.npy", np.full((6, 8), 1.0))
    np.save(d / "nan.npy", np.array([[1.0, np.nan], [1.0, 1.0]]))
    np.save(d / "negative.npy", -np.ones((6, 8)))
    np.save(d / "too_big.npy", np.full((6, 8), 5.0))
    np.save(d / "transposed.npy", np.ones((8, 6)))
    np.save(d / "rgb.npy", np.ones((6, 8, 3)))
    (d / "text.png").write_text("not an image")
    iio.imwrite(d / "map8.png", np.full((12, 16), 51, np.uint8))  # 51/255 * 4 px = 0.8 px
    return d


@pytest.mark.parametrize("name, reason", [
    ("nan.npy", "NaN"), ("negative.npy", ">= 0 px"), ("too_big.npy", "<= 4 px"),
    ("transposed.npy", "aspect"), ("rgb.npy", "one channel"), ("text.png", "not a PNG image"),
    ("missing.npy", "no such file")])
def test_cli_bad_map_is_one_line_per_file(cli_dir, name, reason):
    """A bad map fails each input with one line naming the map and the reason, exit 1 (a per-file error:
    the map is validated against each frame's size, so one map may fit one input and not another), and
    writes nothing."""
    d = cli_dir
    out = d / f"out_{name.replace('.', '_')}"
    rc, err = _cli("run", str(d / "a.png"), str(d / "b.png"), "-o", str(out), "--sigma-map", str(d / name))
    assert rc == 1, err
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(lines) == 2 and all(name in ln and reason in ln for ln in lines), err
    # each line names the input first, then the map
    assert sorted(ln.split(": sigma map ")[0].rsplit("/", 1)[-1] for ln in lines) == ["a.png", "b.png"], err
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_cli_map_file_and_radial_flags(cli_dir):
    import imageio.v3 as iio

    d = cli_dir
    outs = {}
    runs = {"npy": ["--sigma-map", str(d / "good.npy")], "png": ["--sigma-map", str(d / "map8.png")], "plain": [],
            "plain08": ["--sigma", "0.8"],
            "radial": ["--sigma-map", "radial", "--sigma-center", "0.6", "--sigma-corner", "1.4"]}
    for tag, extra in runs.items():
        out = d / f"ok_{tag}.png"
        rc, err = _cli("run", str(d / "a.png"), "-o", str(out), "--sigma", "1", "--noise", "0.01", *extra)
        assert rc == 0, err
        outs[tag] = iio.imread(out)
    # a constant map is that sigma (the .npy holds 1 px; the 8-bit image code 51 is 0.8 px)
    np.testing.assert_array_equal(outs["npy"], outs["plain"])
    np.testing.assert_array_equal(outs["png"], outs["plain08"])
    assert np.any(outs["radial"] != outs["plain"])


def test_cli_map_in_global_mode_is_a_usage_error(cli_dir):
    d = cli_dir
    rc, err = _cli("run", str(d / "a.png"), "-o", str(d / "g.png"), "--sigma", "1", "--sigma-map", "radial",
                   "--mode", "global")
    assert rc == 2 and "needs the adaptive mode" in err and len(err.strip().splitlines()) == 1, err


def test_benchmark_sigma_map_quick_runs():
    """``blur_estimation.py --quick --sigma-map-only``: the GPU radial study and the cost table on toy sizes
    (never writes RESULTS.md)."""
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    r = subprocess.run([sys.executable, "blur_estimation.py", "--quick", "--sigma-map-only"], cwd=bench,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Spatially varying blur on the GPU" in r.stdout and "per-pixel reference" in r.stdout
    assert "pass 5, sigma map" in r.stdout and "units (passthrough)" in r.stdout
