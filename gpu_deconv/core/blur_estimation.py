"""Blind estimation of the Gaussian blur sigma of a frame from per-tile band energies (the edge model).

What is measured (a GPU computes it by reduction; this module is the NumPy definition): for every
``block x block`` tile (16 px), the sums over the tile's pixels of the channel-mean squared values of the
à-trous bands of :mod:`gpu_deconv.core.stats` - ``b1 = x - G1``, ``b2 = G1 - G2``, ``b3 = G2 - G3`` (and,
optionally, ``b4 = G3 - G4`` with ``G4 = A_8 G3``) - plus the diagonal band ``hh`` (noise) and, optionally,
the gradient structure tensor ``(gx^2, gy^2, gx gy)`` with ``gx, gy`` central differences (edge orientation,
for the anisotropic estimate). The first four numbers per tile are exactly what ``stats_reduce.frag``
already writes into its grid, so the isotropic estimate costs no GPU work beyond the statistics
passes that ``noise='auto'`` runs anyway.

The model (why it works): a tile that holds one straight step edge of contrast ``C`` whose profile is
blurred by the engine's Gaussian ``B_sigma`` (:class:`gpu_deconv.core.blur.Gaussian`) has band energies

    E_j = C^2 K_j(sigma) + v n_j N,
    K_j(sigma) = (1/pi) int_0^pi |L_j(w)|^2 B_sigma(w)^2 P(w) / (4 sin^2(w/2)) dw,

per unit edge length, where ``L_j`` is band j's 1D response across the edge, ``1 / (4 sin^2(w/2))`` the
spectrum of a discrete unit step, ``P(w) = (2 + cos w) / 3`` the average over sub-pixel edge positions of
the pixel aperture (a box of one pixel, which is what a sensor records and what "sharp" means here),
``v`` the noise variance, ``n_j`` the band's white-noise gain and ``N`` the tile's pixel count. The
ratios ``K_i / K_j`` depend on sigma alone (not on the contrast); against anti-aliased straight edges
drawn by supersampling at 15-45 degrees they agree to 3 % for b2..b4 and to 11 % for b1 (the 1D cut is
exact across axis-aligned edges; the 2D band and the pixel-integrated Gaussian are not quite isotropic at
45 degrees), which is <= 0.04 px of sigma (tests/test_blur_estimation.py).

Each tile is fitted for ``(sigma_t, C_t^2)`` by least squares in relative error (weights ``1 / E_j^2``, so
a band drowned in noise carries no weight), with the noise variance given; a tile counts when the fit is
good (an edge-like spectrum: fine texture and noise fit no edge) and its edge energy in band 3 is well
above the noise. The frame's blur is a contrast-weighted quantile of the tile sigmas, low rather than
high: soft content (shading, out-of-focus background, smoke) can only read *more* blurred than the lens,
fine texture *less*. Known biases: at 2 px band 3 of an edge near a tile border spills into the next
tile, so per-tile fits read ~6 % low; texture (flatter spectrum than an edge) reads low too.

Two numbers come out, on purpose:

* :attr:`BlurEstimate.sigma` - the best estimate of the blur: ``sqrt(max(s_50^2 - b^2, 0))`` with ``s_50``
  the weighted median of the tile sigmas and ``b`` = :data:`INTRINSIC_SIGMA`, the blur the sharpest edges
  of ordinary sharp photographs already have (demosaicing, optics, JPEG), removed in quadrature like a
  Gaussian blur;
* :func:`deconvolution_sigma` - the sigma to *deconvolve* with, ``sqrt(max(s_30^2 - d^2, 0))`` from the
  30th percentile ``s_30`` (:attr:`BlurEstimate.sigma_sharp_edges`) with ``d`` = :data:`DECONV_SHRINK`, and
  0 (the identity) below :data:`IDENTITY_BELOW`: deconvolving with too large a sigma is far worse than
  with too small a one (on clean photos, over-estimating a 0.5 px blur by 0.2 px costs 3-6 dB against
  doing nothing, under-estimating it by as much only gives back part of the gain), and the per-photo
  spread of the estimate (intrinsic softness, texture) is +-0.2-0.3 px, so the safe sigma sits below it.

Constants are calibrated on held-out scikit-image photographs (astronaut, camera, coffee, chelsea,
rocket, brick, grass, gravel, clock, text; none of them in benchmarks/quality.py or the benchmark's
photo set): ``python benchmarks/blur_estimation.py --calibrate`` prints the tables they were read from.

Units: sigma in pixels; energies in linear units^2 (summed over a tile's pixels); noise as a standard
deviation in linear units.

References
----------
The edge-spread idea and the gradient-maximum peer: M. Delbracio, I. Garcia-Dorado, S. Choi,
D. Kelly, P. Milanfar, "Polyblur: Removing mild blur by polynomial reblurring", IEEE TCI 7 (2021).
Re-blur ratios at edges: S. Zhuo, T. Sim, "Defocus map estimation from a single image", Pattern
Recognition 44 (2011). À-trous bands: J.-L. Starck, F. Murtagh, *Astronomical Image and Data Analysis*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .blur import GAUSSIAN_SIGMA_RANGE, Gaussian
from .comb import atrous_lowpass_taps
from .noise import noise_from_stats, quantization_variance
from .reference import convolve_axis
from .stats import BLOCK, BandStats, atrous, block_sum, colour_channels

#: Bands the GPU statistics grid holds today (b1..b3); :data:`MAX_BANDS` adds b4 = G3 - A_8 G3.
N_BANDS = 3
MAX_BANDS = 4
#: Sigma grid (px) of the per-tile fit: 0 (the identity, a sharp pixel-aperture edge), then the
#: engine's Gaussian from its smallest sigma up to its largest.
SIGMA_STEP = 0.02
_LO, _HI = GAUSSIAN_SIGMA_RANGE
SIGMA_GRID = np.concatenate([[0.0], np.linspace(_LO, _HI, round((_HI - _LO) / SIGMA_STEP) + 1)])
SIGMA_GRID.setflags(write=False)
#: A tile is used when its relative misfit (sum over bands of the squared relative error) is below this:
#: a 16 x 16 tile's band energy has a relative sampling spread of ~0.1, so a good edge fits to ~0.01-0.03,
#: while fine texture (flatter than an edge's 1/w^2) and pure noise fit no edge at all.
RESIDUAL_MAX = 0.05
#: ... and when its edge energy in band 3 is at least this many times the noise energy there.
SNR_MIN = 4.0
#: Contrast-weighted quantile of the usable tiles' sigmas that sets the frame's blur estimate ...
QUANTILE = 0.5
#: ... and the blur (px) of the sharpest edges of ordinary sharp photographs, removed from it in quadrature
#: (held-out photos, sigma >= 0.5, noise <= 0.01: median |err| 0.117 px, p90 0.36 px; quantile 0.3 / 0.4 with
#: the same b: 0.158 / 0.128 px median).
INTRINSIC_SIGMA = 0.2
#: Lower quantile of the tile sigmas that the deconvolution sigma starts from ...
DECONV_QUANTILE = 0.3
#: ... and how much (px, in quadrature) is taken off it (held-out photos, 8-bit, end to end: shrink 0.3 /
#: 0.42 / 0.5 / 0.58 px leave 17 / 13 / 7 / 1 of 240 cases more than 0.1 dB below the input, worst -21.7 /
#: -15.8 / -3.4 / -0.3 dB).
DECONV_SHRINK = 0.58
#: Deconvolution sigmas below this many px give the identity (the comb basis starts at 0.1 px, and a
#: smaller blur is below what the estimate can resolve anyway).
IDENTITY_BELOW = 0.15
#: Effective number of usable tiles at which :attr:`BlurEstimate.confidence` reaches 1/2.
CONFIDENCE_TILES = 16.0
#: Most tiles :func:`estimate_blur` fits per frame (a 1080p frame has 8160; see :func:`fit_tiles`).
MAX_FIT_TILES = 2048


# ------------------------------------------------------------------------------------------ the edge model
def _band_responses_1d(w: np.ndarray, n_bands: int) -> np.ndarray:
    """1D à-trous band responses ``L_j(w) = G_{j-1}(w) - G_j(w)``, ``G_j = prod_{i<j} cos^2(2^i w / 2)``."""
    g = [np.ones_like(w)]
    for i in range(n_bands):
        g.append(g[-1] * np.cos(2.0**i * w / 2.0) ** 2)
    return np.stack([g[j] - g[j + 1] for j in range(n_bands)], axis=-1)


@lru_cache(maxsize=4)
def _edge_nodes(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    x, q = np.polynomial.legendre.leggauss(nodes)
    return (x + 1.0) * (np.pi / 2.0), q / q.sum()


def edge_band_gains(sigma: float, n_bands: int = N_BANDS, nodes: int = 96) -> np.ndarray:
    """``K_j(sigma)``: band energies of a blurred unit step edge per pixel of edge length.

    ``K_j = (1/pi) int_0^pi |L_j(w)|^2 B_sigma(w)^2 (2 + cos w) / (12 sin^2(w/2)) dw`` by Gauss-Legendre
    quadrature (the integrand is smooth: ``|L_j|^2`` vanishes like ``w^4`` at 0).

    Parameters
    ----------
    sigma : float
        Gaussian blur sigma in px; 0 is the identity (a sharp, pixel-aperture edge).
    n_bands : int
        Number of bands, 1..:data:`MAX_BANDS`.
    nodes : int
        Gauss-Legendre nodes on [0, pi].
    """
    w, q = _edge_nodes(nodes)
    b = Gaussian(sigma).response(w) if sigma > 0 else np.ones_like(w)
    step = b * b * (2.0 + np.cos(w)) / (12.0 * np.sin(w / 2.0) ** 2)
    return q @ (_band_responses_1d(w, n_bands) ** 2 * step[:, None])


@lru_cache(maxsize=8)
def _edge_table(n_bands: int) -> np.ndarray:
    """:func:`edge_band_gains` on :data:`SIGMA_GRID`, shape (S, n_bands)."""
    t = np.array([edge_band_gains(float(s), n_bands) for s in SIGMA_GRID])
    t.setflags(write=False)
    return t


@lru_cache(maxsize=8)
def band_noise_gains(n_bands: int = N_BANDS) -> np.ndarray:
    """White-noise variance gains ``n_j`` of the 2D bands (sum of the squared 2D taps of ``L_j``)."""
    taps = (np.array([1.0]),) + atrous_lowpass_taps(n_bands)
    size = taps[-1].size
    g2 = []
    for t in taps:
        pad = (size - t.size) // 2
        t = np.pad(t, pad)
        g2.append(np.outer(t, t))
    out = np.array([float(np.sum((g2[j] - g2[j + 1]) ** 2)) for j in range(n_bands)])
    out.setflags(write=False)
    return out


# ----------------------------------------------------------------------------------- per-tile energies
@dataclass(frozen=True)
class TileEnergies:
    """Per-tile sums of a frame's band energies (the GPU's statistics grid, kept per tile).

    Attributes
    ----------
    bands : ndarray (ny, nx, n_bands)
        Sums over each tile of the channel-mean squared band values b1..b_n (linear units^2).
    hh : ndarray (ny, nx)
        Sums of the channel-mean squared diagonal band (the noise band of :mod:`gpu_deconv.core.noise`).
    counts : ndarray (ny, nx)
        Pixels per tile (the last row/column of tiles may be partial).
    structure : ndarray (ny, nx, 3) or None
        Sums of the channel-mean ``gx^2, gy^2, gx gy`` (central differences): the edge orientation.
    block : int
        Tile edge in pixels.
    channels : int
        Colour channels averaged.
    """

    bands: np.ndarray
    hh: np.ndarray
    counts: np.ndarray
    structure: np.ndarray | None = None
    block: int = BLOCK
    channels: int = 3

    @property
    def n_bands(self) -> int:
        return int(self.bands.shape[-1])

    @property
    def shape(self) -> tuple[int, int]:
        """Tile grid shape (ny, nx)."""
        return self.counts.shape  # type: ignore[return-value]

    def band_stats(self) -> BandStats:
        """The frame's :class:`~gpu_deconv.core.stats.BandStats` (totals of b1..b3 and the hh tiles)."""
        return BandStats(self.bands[..., :3].sum(axis=(0, 1)), self.hh, self.counts, self.block, self.channels)

    def pooled(self, factor: int) -> TileEnergies:
        """Sums over ``factor x factor`` groups of tiles (partial groups at the edges kept): the energies of
        larger tiles, exactly, because energies add."""
        if factor == 1:
            return self

        def pool(a: np.ndarray) -> np.ndarray:
            ny, nx = a.shape[:2]
            py, px = -(-ny // factor) * factor, -(-nx // factor) * factor
            p = np.zeros((py, px) + a.shape[2:], dtype=np.float64)
            p[:ny, :nx] = a
            return p.reshape(py // factor, factor, px // factor, factor, *a.shape[2:]).sum(axis=(1, 3))

        s = None if self.structure is None else pool(self.structure)
        return TileEnergies(pool(self.bands), pool(self.hh), pool(self.counts), s, self.block * factor, self.channels)

    @classmethod
    def from_grid(cls, grid: np.ndarray, width: int, height: int, block: int = BLOCK, channels: int = 3,
                  structure: np.ndarray | None = None) -> TileEnergies:
        """From the GPU statistics grid ``(ny, nx, 4)`` = per-tile sums of ``(b1^2, b2^2, b3^2, hh^2)``
        (``gpu_deconv.gl.stats_gpu``), with the tile pixel counts from geometry."""
        g = np.asarray(grid, dtype=np.float64)
        nbx, nby = -(-width // block), -(-height // block)
        if g.shape != (nby, nbx, 4):
            raise ValueError(f"statistics grid must be ({nby}, {nbx}, 4) for {width}x{height}, got {g.shape}")
        cx = np.full(nbx, float(block))
        cy = np.full(nby, float(block))
        cx[-1] = width - block * (nbx - 1)
        cy[-1] = height - block * (nby - 1)
        return cls(g[..., :3].copy(), g[..., 3].copy(), np.outer(cy, cx), structure, block, channels)


def tile_energies(image: np.ndarray, block: int = BLOCK, n_bands: int = N_BANDS,
                  structure: bool = True) -> TileEnergies:
    """Compute :class:`TileEnergies` of a linear image (NumPy definition of the GPU reduction).

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C)
        Linear-light values; alpha (LA, RGBA) is ignored. Pass one channel (``image[..., c]``) for a
        per-channel estimate.
    block : int
        Tile edge in pixels.
    n_bands : int
        3 (what the statistics passes compute today) or 4 (adds ``b4 = G3 - A_8 G3``).
    structure : bool
        Also sum the gradient structure tensor (needed for the anisotropic estimate).
    """
    if not 1 <= n_bands <= MAX_BANDS:
        raise ValueError(f"n_bands must be in 1..{MAX_BANDS}, got {n_bands!r}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    x = colour_channels(image)
    lows = [x]
    for i in range(n_bands):
        lows.append(atrous(lows[-1], 2**i))
    lp = np.array([0.25, 0.5, 0.25], dtype=np.float32)
    ax = convolve_axis(x, lp, axis=1)
    ay = convolve_axis(x, lp, axis=0)
    hh = x - ax - ay + lows[1]

    def tile_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        """Per-tile sum of the channel mean of ``a * b`` (``a^2`` by default), products in float64 like
        :func:`gpu_deconv.core.stats.band_statistics`."""
        a64 = a.astype(np.float64)
        return block_sum(np.mean(a64 * (a64 if b is None else b.astype(np.float64)), axis=2), block)

    bands = np.stack([tile_sum(lows[j] - lows[j + 1]) for j in range(n_bands)], axis=-1)
    counts = block_sum(np.ones(x.shape[:2]), block)
    st = None
    if structure:
        d = np.array([-0.5, 0.0, 0.5], dtype=np.float32)
        gx = convolve_axis(x, d, axis=1)  # (x[p+1] - x[p-1]) / 2: convolve_axis correlates, taps ascending
        gy = convolve_axis(x, d, axis=0)
        st = np.stack([tile_sum(gx), tile_sum(gy), tile_sum(gx, gy)], axis=-1)
    return TileEnergies(bands, tile_sum(hh), counts, st, block, x.shape[2])


# ------------------------------------------------------------------------------------------ tile fits
@dataclass(frozen=True)
class TileFit:
    """The edge-model fit of every tile (flattened in row-major tile order).

    Attributes
    ----------
    sigma : ndarray (T,)
        Best-fitting edge blur per tile (px).
    weight : ndarray (T,)
        Edge energy in band 3, ``C^2 K_3(sigma)`` (linear units^2): the tile's say in the frame's estimate.
    residual : ndarray (T,)
        Relative misfit of the best fit.
    snr : ndarray (T,)
        Band-3 edge energy over band-3 noise energy.
    usable : ndarray (T,) bool
        Full-size tile, ``residual < RESIDUAL_MAX`` and ``snr > SNR_MIN``.
    theta : ndarray (T,) or None
        Direction of the edge normal (rad, in [0, pi)) from the structure tensor.
    """

    sigma: np.ndarray
    weight: np.ndarray
    residual: np.ndarray
    snr: np.ndarray
    usable: np.ndarray
    theta: np.ndarray | None = None


#: Coarse pass of the per-tile search: every 5th grid sigma (0, 0.1, 0.2, ... px), then the 11 grid sigmas
#: around the coarse minimum (5x less work than the whole grid; the same minimum on >99 % of tiles).
_COARSE = np.concatenate([[0], np.arange(1, SIGMA_GRID.size, 5)])
_FINE = np.arange(-5, 6)


def _misfit(w: np.ndarray, d: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(misfit, C^2)`` of tiles ``(T, nb)`` against edge tables ``k``: (S, nb) shared or (T, S, nb) per tile."""
    wd = w * d
    if k.ndim == 2:
        num, den = wd @ k.T, w @ (k * k).T
    else:
        num, den = np.einsum("tj,tsj->ts", wd, k), np.einsum("tj,tsj->ts", w, k * k)
    c2 = np.maximum(num / np.maximum(den, 1e-300), 0.0)
    return (wd * d).sum(axis=1)[:, None] - 2.0 * c2 * num + c2 * c2 * den, c2


def fit_tiles(energies: TileEnergies, noise_var: float, max_tiles: int | None = None) -> TileFit:
    """Fit the edge model to every tile (see the module docstring).

    For each sigma of :data:`SIGMA_GRID` the contrast has a closed form,
    ``C^2 = max(sum_j w_j K_j D_j / sum_j w_j K_j^2, 0)`` with ``D_j = E_j - v n_j N`` and
    ``w_j = 1 / E_j^2``, and the misfit is ``sum_j w_j (D_j - C^2 K_j)^2``; the minimum is searched coarse
    to fine and refined by a parabola through its grid neighbours. Tiles whose band-3 energy above the noise
    is less than half of ``SNR_MIN`` times the noise (flat sky, walls) are not fitted at all.

    Parameters
    ----------
    energies : TileEnergies
    noise_var : float
        Noise variance per channel (linear units^2), quantization included.
    max_tiles : int or None
        Fit at most this many candidate tiles, evenly strided over the frame (the rest stay unusable):
        a frame's quantile needs a few thousand tiles, not all of a 4K frame's 32000.
    """
    nb = energies.n_bands
    ref = min(2, nb - 1)
    e_all = energies.bands.reshape(-1, nb).astype(np.float64)
    n_all = energies.counts.ravel().astype(np.float64)
    gains = band_noise_gains(nb)
    noise_ref = noise_var * gains[ref] * n_all
    full = n_all == n_all.max()
    if full.sum() < 8:  # tiny frames: every tile counts
        full = n_all > 0
    cand = np.flatnonzero(full & (e_all[:, ref] - noise_ref > 0.5 * SNR_MIN * noise_ref))
    if max_tiles is not None and cand.size > max_tiles:
        cand = cand[:: -(-cand.size // max_tiles)]
    t_all = n_all.size
    sigma, weight = np.zeros(t_all), np.zeros(t_all)
    residual, snr = np.full(t_all, np.inf), np.zeros(t_all)
    if cand.size:
        e, n = e_all[cand], n_all[cand]
        k = _edge_table(nb)
        d = e - noise_var * gains[None, :] * n[:, None]
        w = 1.0 / np.maximum(e, 1e-30) ** 2
        res_c, _ = _misfit(w, d, k[_COARSE])
        idx = np.clip(_COARSE[np.argmin(res_c, axis=1)][:, None] + _FINE[None, :], 0, SIGMA_GRID.size - 1)
        res, c2 = _misfit(w, d, k[idx])
        j = np.argmin(res, axis=1)
        rows = np.arange(j.size)
        i = idx[rows, j]
        s = SIGMA_GRID[i].astype(np.float64)
        inner = (j >= 1) & (j < _FINE.size - 1) & (i >= 2) & (i < SIGMA_GRID.size - 1)  # uniform neighbours
        if inner.any():
            r0, r1, r2 = res[rows[inner], j[inner] - 1], res[rows[inner], j[inner]], res[rows[inner], j[inner] + 1]
            curv = r0 - 2.0 * r1 + r2
            shift = np.where(curv > 0, 0.5 * (r0 - r2) / np.where(curv > 0, curv, 1.0), 0.0)
            s[inner] += np.clip(shift, -0.5, 0.5) * SIGMA_STEP
        sigma[cand] = s
        weight[cand] = c2[rows, j] * np.interp(s, SIGMA_GRID, k[:, ref])
        snr[cand] = weight[cand] / np.maximum(noise_ref[cand], 1e-300)
        residual[cand] = np.maximum(res[rows, j], 0.0)
    usable = full & (residual < RESIDUAL_MAX) & (snr > SNR_MIN)
    theta = None
    if energies.structure is not None:
        st = energies.structure.reshape(-1, 3)
        theta = np.mod(0.5 * np.arctan2(2.0 * st[:, 2], st[:, 0] - st[:, 1]), np.pi)
    return TileFit(sigma, weight, residual, snr, usable, theta)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Quantile ``q`` of ``values`` under ``weights`` (linear interpolation of the weighted CDF)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    keep = w > 0
    v, w = v[keep], w[keep]
    if v.size == 0:
        return math.nan
    o = np.argsort(v)
    c = np.cumsum(w[o])
    return float(np.interp(q * c[-1], c - 0.5 * w[o], v[o]))


# ------------------------------------------------------------------------------------------ estimates
@dataclass(frozen=True)
class BlurEstimate:
    """A frame's blur, estimated blind.

    Attributes
    ----------
    sigma : float
        Best estimate of the Gaussian blur sigma (px), intrinsic softness of sharp photographs removed;
        0 when nothing usable was found. Deconvolve with :func:`deconvolution_sigma`, not with this.
    sigma_edges : float
        The weighted median of the usable tiles' edge sigmas (px), before the intrinsic offset.
    sigma_sharp_edges : float
        Their weighted :data:`DECONV_QUANTILE` quantile (px), what :func:`deconvolution_sigma` starts from.
    spread : tuple of float
        Weighted 25th and 75th percentiles of the usable tiles' sigmas (px): how consistent the edges are.
    tiles : int
        Usable tiles.
    confidence : float
        ``n_eff / (n_eff + CONFIDENCE_TILES)`` with ``n_eff = (sum w)^2 / sum w^2`` the effective number of
        usable tiles; 0 when there are none.
    noise_std : float
        The noise standard deviation used (linear units).
    sigma_x, sigma_y, theta : float or None
        Anisotropic estimate (``estimate_blur(..., anisotropic=True)``): sigmas (px, intrinsic offset
        removed) along the direction ``theta`` (rad, from the x axis, in [0, pi)) and across it.
    """

    sigma: float
    sigma_edges: float
    sigma_sharp_edges: float
    spread: tuple[float, float]
    tiles: int
    confidence: float
    noise_std: float
    sigma_x: float | None = None
    sigma_y: float | None = None
    theta: float | None = None

    def summary(self) -> str:
        aniso = "" if self.sigma_x is None else (
            f" sigma_x={self.sigma_x:.2f} sigma_y={self.sigma_y:.2f} theta={math.degrees(self.theta):.0f}deg")
        return (f"sigma={self.sigma:.2f}px (edges {self.sigma_edges:.2f}, IQR {self.spread[0]:.2f}-"
                f"{self.spread[1]:.2f}, {self.tiles} tiles, confidence {self.confidence:.2f}){aniso} "
                f"deconvolve with {deconvolution_sigma(self):.2f}px")


def remove_intrinsic(sigma_edges: float, intrinsic: float = INTRINSIC_SIGMA) -> float:
    """``sqrt(max(s^2 - b^2, 0))``: Gaussian blurs compose in quadrature."""
    if not math.isfinite(sigma_edges):
        return 0.0
    return math.sqrt(max(sigma_edges * sigma_edges - intrinsic * intrinsic, 0.0))


def frame_noise_var(energies: TileEnergies, noise_std: float | None, bits: int | None) -> tuple[float, float]:
    """``(std, variance)`` of the noise the fit assumes: the given std (plus quantization), or the
    :func:`gpu_deconv.core.noise.noise_from_stats` estimate from the hh tiles, never below ``Delta^2/12``
    (the same rule as :class:`gpu_deconv.core.design.FilterDesigner`)."""
    q = quantization_variance(bits)
    if noise_std is None:
        std = noise_from_stats(energies.band_stats())
        return std, max(std * std, q)
    std = float(noise_std)
    if not math.isfinite(std) or std < 0:
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
    return std, std * std + q


def _anisotropic(fit: TileFit, ok: np.ndarray, w: np.ndarray) -> tuple[float, float, float] | None:
    """Fit ``sigma_t^2 = n_t^T S n_t`` (n_t the unit edge normal) for the 2x2 covariance S by weighted least
    squares over the usable tiles below the frame's median sigma plus one spread; return its principal
    sigmas (intrinsic offset removed) and the direction of the first."""
    if fit.theta is None or ok.sum() < 8:
        return None
    th = fit.theta[ok]
    s2 = fit.sigma[ok] ** 2
    a = np.stack([np.cos(th) ** 2, np.sin(th) ** 2, 2.0 * np.sin(th) * np.cos(th)], axis=1)
    ww = w[ok]
    for _ in range(3):  # iteratively reweighted: tiles far above their prediction are soft content
        sol, *_ = np.linalg.lstsq(a * ww[:, None], s2 * ww, rcond=None)
        pred = a @ sol
        scale = max(weighted_quantile(np.abs(s2 - pred), ww, 0.5), 1e-4)
        ww = w[ok] / (1.0 + ((s2 - pred) / (2.0 * scale)) ** 2)
    cov = np.array([[sol[0], sol[2]], [sol[2], sol[1]]])
    evals, evecs = np.linalg.eigh(cov)
    lam_major, lam_minor = float(evals[1]), float(evals[0])
    theta = float(np.mod(math.atan2(evecs[1, 1], evecs[0, 1]), math.pi))
    return (remove_intrinsic(math.sqrt(max(lam_major, 0.0))), remove_intrinsic(math.sqrt(max(lam_minor, 0.0))),
            theta)


def estimate_blur(energies: TileEnergies, noise_std: float | None = None, bits: int | None = None,
                  anisotropic: bool = False, quantile: float = QUANTILE) -> BlurEstimate:
    """Estimate a frame's Gaussian blur from its per-tile band energies.

    Parameters
    ----------
    energies : TileEnergies
        From :func:`tile_energies` or the GPU grid (:meth:`TileEnergies.from_grid`).
    noise_std : float or None
        Noise standard deviation (linear units); None estimates it from the hh tiles.
    bits : int or None
        Integer bit depth of the source (adds the quantization noise ``Delta^2/12``); None for float.
    anisotropic : bool
        Also estimate ``sigma_x, sigma_y, theta`` (needs ``energies.structure``).
    quantile : float
        Contrast-weighted quantile of the tile sigmas (default :data:`QUANTILE`).

    Returns
    -------
    BlurEstimate
    """
    std, var = frame_noise_var(energies, noise_std, bits)
    fit = fit_tiles(energies, var, MAX_FIT_TILES)
    ok = fit.usable
    if not ok.any():
        return BlurEstimate(0.0, 0.0, 0.0, (0.0, 0.0), 0, 0.0, std)
    w = fit.weight
    s_edges = weighted_quantile(fit.sigma[ok], w[ok], quantile)
    spread = (weighted_quantile(fit.sigma[ok], w[ok], 0.25), weighted_quantile(fit.sigma[ok], w[ok], 0.75))
    n_eff = float(w[ok].sum() ** 2 / np.sum(w[ok] ** 2))
    s_sharp = weighted_quantile(fit.sigma[ok], w[ok], DECONV_QUANTILE)
    est = BlurEstimate(remove_intrinsic(s_edges), s_edges, s_sharp, spread, int(ok.sum()),
                       n_eff / (n_eff + CONFIDENCE_TILES), std)
    if anisotropic:
        if energies.structure is None:
            raise ValueError("the anisotropic estimate needs the structure tensor (tile_energies(structure=True))")
        # only the sharp half of the tiles: soft content would inflate every direction
        sharp = ok & (fit.sigma <= weighted_quantile(fit.sigma[ok], w[ok], 0.5) + (spread[1] - spread[0]))
        a = _anisotropic(fit, sharp, w)
        if a is not None:
            est = replace(est, sigma_x=a[0], sigma_y=a[1], theta=a[2])
    return est


def deconvolution_sigma(estimate: BlurEstimate, shrink: float = DECONV_SHRINK,
                        identity_below: float = IDENTITY_BELOW) -> float:
    """The sigma (px) to deconvolve with: ``sqrt(max(s_30^2 - shrink^2, 0))`` from the estimate's
    :attr:`~BlurEstimate.sigma_sharp_edges`, or 0 (the identity) when that is below ``identity_below`` px.

    Why: deconvolving with a sigma larger than the blur sharpens past the truth and on clean input the
    loss grows fast, while a sigma too small only gives back part of the gain (see the module docstring
    and :data:`DECONV_SHRINK` for the measurement).
    """
    s = remove_intrinsic(estimate.sigma_sharp_edges, shrink)
    return s if s >= identity_below else 0.0


def estimate_blur_image(image: np.ndarray, bits: int | None = None, noise_std: float | None = None,
                        n_bands: int = N_BANDS, anisotropic: bool = False,
                        per_channel: bool = False) -> BlurEstimate | list[BlurEstimate]:
    """:func:`estimate_blur` of a linear image (:func:`tile_energies` then the fit).

    With ``per_channel=True`` every colour channel is estimated on its own (lateral chromatic softness)
    and a list of estimates (R, G, B order) is returned.
    """
    if per_channel:
        x = colour_channels(image)
        return [estimate_blur(tile_energies(x[:, :, c], n_bands=n_bands, structure=anisotropic), noise_std, bits,
                              anisotropic) for c in range(x.shape[2])]
    return estimate_blur(tile_energies(image, n_bands=n_bands, structure=anisotropic), noise_std, bits, anisotropic)


# ------------------------------------------------------------------------------------------ video
#: Time constant (s) of the exponential smoothing of a video's blur estimate.
TIME_CONSTANT = 0.5
#: Correlation of consecutive frames' per-tile log band-3 energies below which a scene cut is declared.
CUT_CORRELATION = 0.5


def scene_changed(previous: TileEnergies | None, current: TileEnergies, threshold: float = CUT_CORRELATION) -> bool:
    """True when ``current`` does not continue ``previous``: no previous frame, a different tile grid, or a
    correlation below ``threshold`` between the two frames' per-tile ``log(E_3)`` (the same scene keeps its
    edges in place from one frame to the next; a cut moves all of them). A fast pan also trips it, which
    only costs the smoothing a restart."""
    if previous is None or previous.shape != current.shape:
        return True
    ref = min(2, current.n_bands - 1, previous.n_bands - 1)
    a = np.log(previous.bands[..., ref].ravel() + 1e-12)
    b = np.log(current.bands[..., ref].ravel() + 1e-12)
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return bool(np.std(a) != np.std(b))
    return bool(np.corrcoef(a, b)[0, 1] < threshold)


class BlurTracker:
    """Per-frame blur estimates of a video, smoothed over time with a reset at scene cuts.

    ``sigma_t = sigma_{t-1} + a c_t (s_t - sigma_{t-1})`` with ``a = 1 - exp(-dt / time_constant)`` and
    ``c_t`` the frame estimate's confidence, so a frame with few edges moves the state little and a frame
    with none (a fade to black) leaves it alone; a scene cut (:func:`scene_changed`) restarts from the
    frame's own estimate. The same rule smooths ``sigma_edges`` and ``sigma_sharp_edges`` (so
    :func:`deconvolution_sigma` of the result is smooth too) and, through :meth:`smooth_map`, a sigma map's
    values.

    Parameters
    ----------
    time_constant : float
        Seconds (0 disables smoothing).
    cut_correlation : float
        Threshold of :func:`scene_changed`.
    """

    def __init__(self, time_constant: float = TIME_CONSTANT, cut_correlation: float = CUT_CORRELATION) -> None:
        if not (math.isfinite(time_constant) and time_constant >= 0):
            raise ValueError(f"time_constant must be a finite number >= 0 s, got {time_constant!r}")
        self.time_constant = float(time_constant)
        self.cut_correlation = float(cut_correlation)
        self._state: BlurEstimate | None = None
        self._map: np.ndarray | None = None
        self._prev: TileEnergies | None = None
        self.cut = True  #: whether the last update restarted the smoothing

    def _alpha(self, dt: float, confidence: float) -> float:
        if self.time_constant == 0:
            return 1.0
        return (1.0 - math.exp(-max(float(dt), 0.0) / self.time_constant)) * min(max(confidence, 0.0), 1.0)

    def update(self, estimate: BlurEstimate, energies: TileEnergies, dt: float) -> BlurEstimate:
        """Fold in one frame (``dt`` seconds after the previous one); returns the smoothed estimate."""
        self.cut = scene_changed(self._prev, energies, self.cut_correlation)
        self._prev = energies
        if self.cut or self._state is None or self._state.tiles == 0:
            self._state = estimate
            self._map = None
            return estimate
        a = self._alpha(dt, estimate.confidence) if estimate.tiles else 0.0
        s = self._state
        self._state = replace(estimate, sigma=s.sigma + a * (estimate.sigma - s.sigma),
                              sigma_edges=s.sigma_edges + a * (estimate.sigma_edges - s.sigma_edges),
                              sigma_sharp_edges=s.sigma_sharp_edges + a * (estimate.sigma_sharp_edges -
                                                                           s.sigma_sharp_edges))
        return self._state

    def smooth_map(self, values: np.ndarray, dt: float, confidence: float = 1.0) -> np.ndarray:
        """Smooth a sigma map's cell values with the same rule; call after :meth:`update` for the frame."""
        v = np.asarray(values, dtype=np.float64)
        if self.cut or self._map is None or self._map.shape != v.shape:
            self._map = v.copy()
        else:
            self._map = self._map + self._alpha(dt, confidence) * (v - self._map)
        return self._map.copy()
