"""The CAS/RCAS peer sharpeners of benchmarks/peers: GL shaders == NumPy references, flat stays flat, RCAS
stays within the local cross min/max."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from peers import KINDS, Sharpener, apply_reference, tune  # noqa: E402
from peers.sharpeners import _neighbour  # noqa: E402


@pytest.fixture(scope="module")
def sharpener(gl_ctx):
    sh = Sharpener(gl_ctx)
    yield sh
    sh.release()


def _image(shape=(23, 31, 3), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random(shape, dtype=np.float32)
    x[:5] = 0.0  # a black band (mx = 0) and a clipped-white one exercise the guards
    x[-4:, :8] = 1.0
    return x


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sharpness", [0.0, 0.4, 1.0])
def test_gl_equals_reference(sharpener, kind, sharpness):
    x = _image()
    gl = sharpener.apply(x, kind, sharpness)
    ref = apply_reference(x, kind, sharpness)
    assert gl.dtype == np.float32 and gl.shape == x.shape
    np.testing.assert_allclose(gl, ref, rtol=0, atol=1e-5)
    if sharpness > 0:
        assert np.abs(ref - x).max() > 1e-3  # it does sharpen


@pytest.mark.parametrize("kind", KINDS)
def test_gray_and_rgba_shapes(sharpener, kind):
    g = _image((17, 19), seed=1)
    np.testing.assert_allclose(sharpener.apply(g, kind, 0.7), apply_reference(g, kind, 0.7), atol=1e-5)
    rgba = _image((9, 12, 4), seed=2)
    out = sharpener.apply(rgba, kind, 0.7)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    np.testing.assert_allclose(out, apply_reference(rgba, kind, 0.7), atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_flat_stays_flat(sharpener, kind):
    x = np.full((16, 20, 3), 0.37, np.float32)
    x[..., 1] = 0.8
    for out in (sharpener.apply(x, kind, 1.0), apply_reference(x, kind, 1.0)):
        np.testing.assert_allclose(out, x, rtol=0, atol=1e-6)


def test_rcas_within_local_cross_range(sharpener):
    x = _image((40, 40, 3), seed=3)
    cross = [x] + [_neighbour(x, dy, dx) for dy, dx in ((-1, 0), (0, -1), (0, 1), (1, 0))]
    lo, hi = np.minimum.reduce(cross), np.maximum.reduce(cross)
    for out in (sharpener.apply(x, "rcas", 1.0), apply_reference(x, "rcas", 1.0)):
        assert np.all(out >= lo - 1e-6) and np.all(out <= hi + 1e-6)
        assert np.abs(out - x).max() > 1e-2


def test_tune_picks_from_grid():
    truth = _image((32, 32, 3), seed=4)
    blurred = 0.5 * truth + 0.125 * sum(_neighbour(truth, dy, dx) for dy, dx in ((-1, 0), (0, -1), (0, 1), (1, 0)))
    out, s = tune(blurred, truth, "rcas", border=2)
    assert 0.0 < s <= 1.0
    np.testing.assert_allclose(out, apply_reference(blurred, "rcas", s))
