"""Spatially varying blur: a low-resolution sigma map over the frame, and its NumPy application reference.

A :class:`SigmaMap` is a small grid of blur sigmas (px) whose cells tile the frame; the sigma at a pixel
is the bilinear interpolation of the cell-centre values (clamped at the border cells), so a 1 x 1 map is
a global sigma and a map may be as coarse as the blur is smooth. Three ways to get one:

* :func:`map_from_tiles` - blind: the per-tile edge fits of :mod:`gpu_deconv.core.blur_estimation`
  pooled into ``cell x cell`` px cells (energies add, so a cell's fit uses all its tiles), each cell's
  contrast-weighted quantile, then a confidence-weighted smoothing that fills cells with no usable edge
  from their neighbours (normalised convolution); optionally a radial lens model fitted to the cells;
* :func:`radial_map` / :func:`radial_from_center_corner` - the lens model
  ``sigma(r) = sigma0 + sigma2 r^2`` with ``r`` the distance from the frame centre over the half-diagonal
  (0 at the centre, 1 in the corners), given or fitted (:func:`fit_radial`);
* :func:`map_from_array` / :func:`load_sigma_map` - a user's map (an image or ``.npy``), validated and
  resampled to the frame.

On the GPU (``--sigma-map FILE|radial``, :func:`sigma_map_for`) a map runs in the adaptive mode: the
coefficient table becomes 2D over (sigma node every 0.1 px, local level), pass 5 reads the map as a small
texture and interpolates the coefficients bilinearly per pixel (:class:`gpu_deconv.core.adaptive.SigmaTable`,
:func:`gpu_deconv.core.adaptive.apply_sigma_map` is that path's bit-exact NumPy mirror). Below, the same
idea with the global filters.

Application (:func:`apply_sigma_map`, a NumPy reference for the global filters): the
deconvolution ``y = x + sum_k c_k L_k x`` is affine in its coefficients ``c``, so interpolating ``c``
per pixel linearly in sigma between table nodes ``s_i <= sigma(p) <= s_{i+1}`` with weights
``(1 - t, t)`` gives exactly ``(1 - t) y_i(p) + t y_{i+1}(p)``, the same blend of the outputs of the two
global filters designed at the nodes. On the GPU that is a per-pixel coefficient lookup in the
pass that already combines the bands (a texture fetch, not a pass); here it is a blend of whole-frame
outputs, which is the same numbers computed in a different order.

Units: sigma in px; cells in px; ``r`` dimensionless (1 at the corners).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .blur import GAUSSIAN_SIGMA_RANGE
from .blur_estimation import (
    DECONV_QUANTILE,
    DECONV_SHRINK,
    IDENTITY_BELOW,
    INTRINSIC_SIGMA,
    QUANTILE,
    TileEnergies,
    fit_tiles,
    frame_noise_var,
    remove_intrinsic,
    weighted_quantile,
)
from .plan import Plan
from .reference import apply_plan

#: Largest sigma a map may hold (px): the engine's Gaussian blur model ends there.
MAX_SIGMA = GAUSSIAN_SIGMA_RANGE[1]
#: Integer map images are read as ``sigma = MAX_SIGMA * code / (2^bits - 1)`` px; float images and .npy
#: hold sigma in px directly.
IMAGE_CODE_SCALE = MAX_SIGMA
#: Default cell edge (px) of a blind map: 4 x 4 statistics tiles.
MAP_CELL = 64
#: A user map with at least this many cells along both axes must have the frame's aspect ratio within
#: :data:`ASPECT_TOLERANCE` (relative); coarser control grids are taken as they are.
ASPECT_CHECK_CELLS = 4
ASPECT_TOLERANCE = 0.1


@dataclass(frozen=True)
class SigmaMap:
    """Blur sigma (px) on a coarse grid of cells covering a ``height x width`` frame.

    Attributes
    ----------
    values : ndarray (my, mx)
        Sigma at each cell centre, px, finite, in [0, MAX_SIGMA] (0 = sharp, the identity).
    height, width : int
        Frame size in px.
    """

    values: np.ndarray
    height: int
    width: int

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=np.float64)
        if v.ndim != 2 or v.size == 0:
            raise ValueError(f"sigma map must be a non-empty 2D grid, got shape {np.shape(self.values)}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"sigma map holds {int(np.sum(~np.isfinite(v)))} non-finite value(s) (NaN or inf)")
        if v.min() < 0:
            raise ValueError(f"sigma map values must be >= 0 px, got a minimum of {v.min():g}")
        if v.max() > MAX_SIGMA:
            raise ValueError(f"sigma map values must be <= {MAX_SIGMA:g} px, got a maximum of {v.max():g}")
        if int(self.height) < 1 or int(self.width) < 1:
            raise ValueError(f"frame size must be positive, got {self.height} x {self.width}")
        v = v.copy()
        v.setflags(write=False)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "width", int(self.width))

    @property
    def range(self) -> tuple[float, float]:
        """Smallest and largest sigma of the map (px)."""
        return float(self.values.min()), float(self.values.max())

    def per_pixel(self) -> np.ndarray:
        """Sigma at every pixel, ``(height, width)`` float32: bilinear in the cell centres, clamped at the
        border (a pixel's centre ``(i + 1/2)`` maps to ``(i + 1/2) * cells / size - 1/2`` in cell units) -
        what a GPU's LINEAR sampling of the map as a small CLAMP_TO_EDGE texture gives."""
        my, mx = self.values.shape

        def axis(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            u = np.clip((np.arange(n) + 0.5) * (m / n) - 0.5, 0.0, m - 1.0)
            i0 = np.minimum(np.floor(u).astype(np.intp), max(m - 2, 0))
            return i0, np.minimum(i0 + 1, m - 1), u - i0

        y0, y1, ty = axis(self.height, my)
        x0, x1, tx = axis(self.width, mx)
        v = self.values
        top = v[y0][:, x0] * (1 - tx) + v[y0][:, x1] * tx
        bottom = v[y1][:, x0] * (1 - tx) + v[y1][:, x1] * tx
        return (top * (1 - ty)[:, None] + bottom * ty[:, None]).astype(np.float32)


# ------------------------------------------------------------------------------------------ the lens model
def normalised_radius(height: int, width: int, rows: np.ndarray | None = None,
                      cols: np.ndarray | None = None) -> np.ndarray:
    """``r`` at pixel centres (or at the given fractional ``rows``/``cols``): distance from the frame centre
    over the half-diagonal, so 0 at the centre and 1 at the corners."""
    rows = np.arange(height) + 0.5 if rows is None else np.asarray(rows, dtype=np.float64)
    cols = np.arange(width) + 0.5 if cols is None else np.asarray(cols, dtype=np.float64)
    dy = (rows - height / 2.0)[:, None]
    dx = (cols - width / 2.0)[None, :]
    return np.sqrt(dx * dx + dy * dy) / math.hypot(height / 2.0, width / 2.0)


def radial_map(height: int, width: int, sigma0: float, sigma2: float, cells: int = 128) -> SigmaMap:
    """The lens model ``sigma(r) = sigma0 + sigma2 r^2`` sampled at the centres of a ``cells``-wide grid,
    clipped to [0, MAX_SIGMA]. Bilinear interpolation follows the quadratic to < 1e-3 px; the outer half
    cell is clamped like a GL texture (``CLAMP_TO_EDGE``), which reads the corner pixels up to
    ``2 sigma2 / cells`` px low.

    Parameters
    ----------
    height, width : int
        Frame size (px).
    sigma0 : float
        Sigma at the centre (px).
    sigma2 : float
        Growth to the corners (px): the corners get ``sigma0 + sigma2``.
    cells : int
        Grid cells along the longer side.
    """
    for name, v in (("sigma0", sigma0), ("sigma2", sigma2)):
        if not math.isfinite(float(v)):
            raise ValueError(f"{name} must be finite, got {v!r}")
    long_side = max(height, width)
    mx = max(2, round(cells * width / long_side))
    my = max(2, round(cells * height / long_side))
    rows = (np.arange(my) + 0.5) * (height / my)
    cols = (np.arange(mx) + 0.5) * (width / mx)
    r = normalised_radius(height, width, rows, cols)
    return SigmaMap(np.clip(sigma0 + sigma2 * r * r, 0.0, MAX_SIGMA), height, width)


def radial_from_center_corner(height: int, width: int, center: float, corner: float) -> SigmaMap:
    """``--sigma-center`` / ``--sigma-corner``: the lens model through the two given sigmas (px)."""
    for name, v in (("sigma center", center), ("sigma corner", corner)):
        f = float(v)
        if not math.isfinite(f) or not 0.0 <= f <= MAX_SIGMA:
            raise ValueError(f"{name} must be a number in [0, {MAX_SIGMA:g}] px, got {v!r}")
    return radial_map(height, width, float(center), float(corner) - float(center))


def fit_radial(sigmas: np.ndarray, weights: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """Robust weighted least-squares fit of ``sigma = sigma0 + sigma2 r^2``.

    Iteratively reweighted (Cauchy weights at twice the weighted median absolute residual), so cells
    whose content is soft (a blurred background reads as a larger sigma) do not drag the lens model.

    Parameters
    ----------
    sigmas, weights, r : ndarray
        Per-cell sigma (px), weight (>= 0) and normalised radius.

    Returns
    -------
    (sigma0, sigma2) : px
    """
    s = np.asarray(sigmas, dtype=np.float64).ravel()
    w0 = np.asarray(weights, dtype=np.float64).ravel()
    rr = np.asarray(r, dtype=np.float64).ravel() ** 2
    keep = (w0 > 0) & np.isfinite(s)
    if keep.sum() < 3:
        raise ValueError(f"a radial fit needs at least 3 cells with usable edges, got {int(keep.sum())}")
    s, w0, rr = s[keep], w0[keep], rr[keep]
    a = np.stack([np.ones_like(rr), rr], axis=1)
    w = w0.copy()
    for _ in range(5):
        sol, *_ = np.linalg.lstsq(a * np.sqrt(w)[:, None], s * np.sqrt(w), rcond=None)
        res = s - a @ sol
        scale = max(weighted_quantile(np.abs(res), w0, 0.5), 0.02)
        w = w0 / (1.0 + (res / (2.0 * scale)) ** 2)
    return float(sol[0]), float(sol[1])


# ------------------------------------------------------------------------------------------ blind maps
@dataclass(frozen=True)
class TileMap:
    """A blind sigma map and what it was made from.

    Attributes
    ----------
    map : SigmaMap
        The smoothed map (intrinsic offset removed, like :attr:`BlurEstimate.sigma`).
    cell_sigma : ndarray (my, mx)
        Each cell's own estimate (px; NaN where it had no usable edge).
    cell_weight : ndarray (my, mx)
        Each cell's summed edge weight (0 where unusable).
    radial : (sigma0, sigma2) or None
        The lens model fitted to the cells, when asked for.
    """

    map: SigmaMap
    cell_sigma: np.ndarray
    cell_weight: np.ndarray
    radial: tuple[float, float] | None = None


def map_from_tiles(energies: TileEnergies, height: int, width: int, noise_std: float | None = None,
                   bits: int | None = None, cell: int = MAP_CELL, smooth_cells: float = 0.5,
                   radial: bool = False, deconvolve: bool = False) -> TileMap:
    """A blind sigma map from per-tile band energies (see the module docstring).

    Parameters
    ----------
    energies : TileEnergies
        The frame's statistics tiles (:func:`gpu_deconv.core.blur_estimation.tile_energies`).
    height, width : int
        Frame size (px).
    noise_std : float or None
        Noise std (linear units); None estimates it from the frame's hh tiles.
    bits : int or None
        Integer bit depth of the source (quantization noise); None for float.
    cell : int
        Map cell edge in px (a multiple of the statistics block).
    smooth_cells : float
        Sigma (in cells) of the Gaussian of the normalised-convolution smoothing; 0 keeps the raw cells
        (cells with no usable edge then take the frame's estimate).
    radial : bool
        Replace the map by the lens model fitted to the cells (:func:`fit_radial`).
    deconvolve : bool
        False: each cell holds the blur estimate (weighted median, :data:`INTRINSIC_SIGMA` removed, like
        ``BlurEstimate.sigma``). True: the sigma to deconvolve with, by the rule of
        :func:`gpu_deconv.core.blur_estimation.deconvolution_sigma` (30th percentile, :data:`DECONV_SHRINK`
        removed, the identity below :data:`IDENTITY_BELOW`).
    """
    quantile, intrinsic = (DECONV_QUANTILE, DECONV_SHRINK) if deconvolve else (QUANTILE, INTRINSIC_SIGMA)
    if cell % energies.block:
        raise ValueError(f"map cell ({cell} px) must be a multiple of the statistics block ({energies.block} px)")
    _, var = frame_noise_var(energies, noise_std, bits)
    factor = cell // energies.block
    fit = fit_tiles(energies, var)
    ny, nx = energies.shape
    my, mx = -(-ny // factor), -(-nx // factor)
    cell_sigma = np.full((my, mx), np.nan)
    cell_weight = np.zeros((my, mx))
    tsig = fit.sigma.reshape(ny, nx)
    tw = np.where(fit.usable, fit.weight, 0.0).reshape(ny, nx)
    for j in range(my):
        for i in range(mx):
            s = tsig[j * factor:(j + 1) * factor, i * factor:(i + 1) * factor].ravel()
            w = tw[j * factor:(j + 1) * factor, i * factor:(i + 1) * factor].ravel()
            if w.sum() > 0:
                cell_sigma[j, i] = remove_intrinsic(weighted_quantile(s, w, quantile), intrinsic)
                cell_weight[j, i] = w.sum()
    if not (cell_weight > 0).any():
        return TileMap(SigmaMap(np.zeros((my, mx)), height, width), cell_sigma, cell_weight)
    # a cell's say grows with its edge energy but saturates: one bright edge must not outvote its neighbours
    conf = cell_weight / (cell_weight + np.median(cell_weight[cell_weight > 0]))
    if radial:
        rows = (np.arange(my) + 0.5) * cell
        cols = (np.arange(mx) + 0.5) * cell
        r = normalised_radius(height, width, np.minimum(rows, height), np.minimum(cols, width))
        s0, s2 = fit_radial(np.nan_to_num(cell_sigma), conf, r)
        m = radial_map(height, width, max(s0, 0.0), s2)
        if deconvolve:
            m = SigmaMap(np.where(m.values >= IDENTITY_BELOW, m.values, 0.0), height, width)
        return TileMap(m, cell_sigma, cell_weight, (s0, s2))
    filled = np.nan_to_num(cell_sigma)
    if smooth_cells > 0:
        from scipy.ndimage import gaussian_filter

        num = gaussian_filter(filled * conf, smooth_cells, mode="nearest")
        den = gaussian_filter(conf, smooth_cells, mode="nearest")
        fallback = weighted_quantile(filled[conf > 0], conf[conf > 0], 0.5)
        values = np.where(den > 1e-6, num / np.maximum(den, 1e-12), fallback)
    else:
        fallback = weighted_quantile(filled[conf > 0], conf[conf > 0], 0.5)
        values = np.where(conf > 0, filled, fallback)
    values = np.clip(values, 0.0, MAX_SIGMA)
    if deconvolve:
        values = np.where(values >= IDENTITY_BELOW, values, 0.0)
    return TileMap(SigmaMap(values, height, width), cell_sigma, cell_weight)


# ------------------------------------------------------------------------------------------ user maps
def map_from_array(array: np.ndarray, height: int, width: int) -> SigmaMap:
    """A user's sigma map (px per cell) for a ``height x width`` frame, validated.

    The array is a grid of cells over the whole frame, any resolution (it is resampled bilinearly, see
    :meth:`SigmaMap.per_pixel`); one channel (``(h, w)`` or ``(h, w, 1)``); finite; in [0, MAX_SIGMA] px.
    A grid of at least :data:`ASPECT_CHECK_CELLS` cells along both axes must have the frame's aspect ratio
    within :data:`ASPECT_TOLERANCE` (a transposed or wrong-frame map is refused, not stretched).

    Raises
    ------
    ValueError
        One line saying what is wrong.
    """
    a = np.asarray(array)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"sigma map must hold numbers, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise ValueError(f"sigma map must be one channel, shape (h, w), got shape {a.shape}")
    if min(a.shape) >= ASPECT_CHECK_CELLS:
        frame_aspect, map_aspect = width / height, a.shape[1] / a.shape[0]
        if abs(map_aspect / frame_aspect - 1.0) > ASPECT_TOLERANCE:
            raise ValueError(f"sigma map is {a.shape[1]}x{a.shape[0]} (aspect {map_aspect:.3g}) but the frame is "
                             f"{width}x{height} (aspect {frame_aspect:.3g})")
    return SigmaMap(a.astype(np.float64), height, width)


def load_sigma_map(path: str | os.PathLike[str], height: int, width: int) -> SigmaMap:
    """``--sigma-map FILE``: a ``.npy`` or float TIFF holding sigma in px, or an 8/16-bit gray image whose
    codes map linearly onto 0..:data:`IMAGE_CODE_SCALE` px (``sigma = 4 code / (2^bits - 1)``).

    Raises
    ------
    gpu_deconv.errors.ImageError
        (a ValueError) ``"<path>: <reason>"`` for a file that is not a readable image or not a valid map.
    """
    from ..errors import ImageError
    from ..io.images import read_image

    img = read_image(path)  # raises ImageError with the reason for anything unreadable
    px = img.pixels
    if np.issubdtype(px.dtype, np.integer):
        sig = px.astype(np.float64) * (IMAGE_CODE_SCALE / float((1 << img.bits) - 1))
    else:
        sig = px
    try:
        return map_from_array(sig, height, width)
    except ValueError as e:
        raise ImageError(path, str(e)) from None


def sigma_map_for(spec: str, height: int, width: int, center: float = 0.5, corner: float = 1.5) -> SigmaMap:
    """The map ``--sigma-map`` names for a ``height x width`` frame: ``'radial'`` (the lens model through
    ``center`` and ``corner`` px, :func:`radial_from_center_corner`) or a file (:func:`load_sigma_map`).

    Raises
    ------
    gpu_deconv.errors.ImageError
        For a file that is not a readable image or not a valid map for this frame.
    """
    if spec == "radial":
        return radial_from_center_corner(height, width, center, corner)
    return load_sigma_map(spec, height, width)


# ------------------------------------------------------------------------------------------ application
def node_weights(sigma: np.ndarray, nodes: Sequence[float]) -> np.ndarray:
    """Per-pixel linear-interpolation weights over sorted sigma ``nodes``: shape ``sigma.shape + (N,)``,
    two non-zero weights per pixel summing to 1 (sigmas outside the nodes are clamped to the ends)."""
    n = np.asarray(nodes, dtype=np.float64)
    if n.ndim != 1 or n.size < 1 or np.any(np.diff(n) <= 0):
        raise ValueError(f"nodes must be a strictly increasing sequence, got {nodes!r}")
    s = np.clip(np.asarray(sigma, dtype=np.float64), n[0], n[-1])
    w = np.zeros(s.shape + (n.size,))
    if n.size == 1:
        w[..., 0] = 1.0
        return w
    i = np.clip(np.searchsorted(n, s, side="right") - 1, 0, n.size - 2)
    t = (s - n[i]) / (n[i + 1] - n[i])
    np.put_along_axis(w, i[..., None], (1.0 - t)[..., None], axis=-1)
    np.put_along_axis(w, (i + 1)[..., None], t[..., None], axis=-1)
    return w


def default_nodes(sigma_map: SigmaMap, step: float = 0.1) -> tuple[float, ...]:
    """Table nodes every ``step`` px covering the map's range (0 kept as the identity node)."""
    lo, hi = sigma_map.range
    start = math.floor(lo / step) * step
    n = max(1, math.ceil((hi - start) / step - 1e-9) + 1)
    return tuple(round(start + k * step, 6) for k in range(n))


def apply_sigma_map(image: np.ndarray, sigma_map: SigmaMap, plan_for: Callable[[float], Plan],
                    nodes: Sequence[float] | None = None, precision: int = 32) -> np.ndarray:
    """Deconvolve with a spatially varying sigma: NumPy reference (see the module docstring).

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C)
        Linear-light frame, ``H x W`` = the map's frame size.
    sigma_map : SigmaMap
    plan_for : callable
        ``plan_for(sigma)`` -> the frame's :class:`~gpu_deconv.core.plan.Plan` designed for a global sigma
        (e.g. ``FilterDesigner.design(params.replace(sigma=s), stats, FrameFormat(bits)).plan``); sigmas below the
        engine's smallest Gaussian must return the identity plan.
    nodes : sequence of float or None
        Sigma table nodes (px, increasing); None: :func:`default_nodes` (every 0.1 px).
    precision : {16, 32}
        Intermediate storage of :func:`gpu_deconv.core.reference.apply_plan`.

    Returns
    -------
    ndarray, float32, the image's shape
    """
    x = np.asarray(image, dtype=np.float32)
    if x.shape[:2] != (sigma_map.height, sigma_map.width):
        raise ValueError(f"image is {x.shape[1]}x{x.shape[0]} but the sigma map is for "
                         f"{sigma_map.width}x{sigma_map.height}")
    nodes = default_nodes(sigma_map) if nodes is None else tuple(float(v) for v in nodes)
    w = node_weights(sigma_map.per_pixel(), nodes)
    out = np.zeros(x.shape, dtype=np.float64)
    for k, s in enumerate(nodes):
        wk = w[..., k]
        if not wk.any():
            continue
        yk = apply_plan(x, plan_for(s), precision=precision)
        out += (wk[..., None] * yk) if x.ndim == 3 else wk * yk
    return out.astype(np.float32)
