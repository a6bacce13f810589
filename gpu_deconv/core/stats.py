"""Per-frame image statistics: band energies of an à-trous decomposition, summed per block.

These few numbers steer the noise-aware target every frame: the finest diagonal band (HH) gives the
noise level (:func:`gpu_deconv.core.noise.noise_from_stats`) and the isotropic bands give the level of the
natural-image spectrum (:func:`gpu_deconv.core.spectrum.estimate_level`). They are defined so a GPU computes
them by reduction (one value per block, read back as a small grid, never the whole frame); this module
is the NumPy definition that the GPU reduction is checked against.

Definitions (x: linear image, colour channels only - alpha is ignored; mirror boundary everywhere):

* ``A_d`` = separable à-trous lowpass ``[1/4, 1/2, 1/4]`` with dilation d, along x and y;
  ``G1 = A_1 x``, ``G2 = A_2 G1``, ``G3 = A_4 G2`` (so G_j is the comb basis lowpass of level j).
* isotropic bands ``b1 = x - G1``, ``b2 = G1 - G2``, ``b3 = G2 - G3``;
* diagonal band ``hh = (1 - a_x)(1 - a_y) x = x - a_x x - a_y x + G1`` with ``a`` the 1D dilation-1 lowpass;
  its taps are ``[1, -2, 1]/4`` along each axis, so for white noise of variance s^2 its variance is
  ``(6/16)^2 s^2 = 0.140625 s^2`` and edges along either axis cancel.
* per pixel, each band's square averaged over the colour channels; summed per ``block x block`` tile
  (the last row/column of tiles may be partial; counts are kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reference import alpha_channel, convolve_axis

#: Default statistics tile edge in pixels.
BLOCK = 16
_A = np.array([0.25, 0.5, 0.25], dtype=np.float32)


def atrous_taps(dilation: int) -> np.ndarray:
    """1D à-trous lowpass taps ``[1/4, 0.., 1/2, 0.., 1/4]`` with ``dilation - 1`` zeros between."""
    t = np.zeros(2 * dilation + 1, dtype=np.float32)
    t[0], t[dilation], t[-1] = 0.25, 0.5, 0.25
    return t


def atrous(x: np.ndarray, dilation: int) -> np.ndarray:
    """Separable à-trous lowpass of ``x`` (H, W, C) at ``dilation``, mirror boundary, float32."""
    t = atrous_taps(dilation)
    return convolve_axis(convolve_axis(x, t, axis=1), t, axis=0)


@dataclass(frozen=True)
class BandStats:
    """Band energies of one frame.

    Attributes
    ----------
    band_sums : ndarray (3,)
        Sum over pixels of the channel-mean squared band value, bands b1, b2, b3.
    hh_block_sums : ndarray (nby, nbx)
        Per-tile sums of the channel-mean squared HH band.
    block_counts : ndarray (nby, nbx)
        Pixels per tile.
    block : int
        Tile edge in pixels.
    channels : int
        Colour channels averaged (the noise estimator's degrees of freedom depend on it).
    frames : float
        Effective number of independent frames the sums average (1 for one frame; more after temporal
        smoothing, :mod:`gpu_deconv.core.temporal`) - it multiplies the degrees of freedom too.
    band_block_sums : ndarray (nby, nbx, 3) or None
        Per-tile sums of the channel-mean squared bands b1, b2, b3 (what the blind blur estimator reads,
        :mod:`gpu_deconv.core.blur_estimation`); ``band_sums`` is their total.
    """

    band_sums: np.ndarray
    hh_block_sums: np.ndarray
    block_counts: np.ndarray
    block: int = BLOCK
    channels: int = 3
    frames: float = 1.0
    band_block_sums: np.ndarray | None = None

    @property
    def pixels(self) -> int:
        return int(self.block_counts.sum())

    @property
    def band_energies(self) -> np.ndarray:
        """Mean squared value per pixel (linear units^2) of bands b1, b2, b3."""
        return self.band_sums / max(self.pixels, 1)

    @property
    def hh_block_means(self) -> np.ndarray:
        return self.hh_block_sums / np.maximum(self.block_counts, 1)


def colour_channels(image: np.ndarray) -> np.ndarray:
    """The image as float32 (H, W, C) without its alpha channel."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    a = alpha_channel(x.shape[2])
    return x[:, :, :a] if a is not None else x


def block_sum(e: np.ndarray, block: int) -> np.ndarray:
    """Sum a 2D array over ``block x block`` tiles (partial tiles at the right/bottom edge included)."""
    h, w = e.shape
    nby, nbx = -(-h // block), -(-w // block)
    padded = np.zeros((nby * block, nbx * block), dtype=np.float64)
    padded[:h, :w] = e
    return padded.reshape(nby, block, nbx, block).sum(axis=(1, 3))


def band_statistics(image: np.ndarray, block: int = BLOCK) -> BandStats:
    """Compute :class:`BandStats` for a linear image (see the module docstring for the definitions)."""
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    x = colour_channels(image)
    ax = convolve_axis(x, _A, axis=1)
    g1 = convolve_axis(ax, _A, axis=0)
    ay = convolve_axis(x, _A, axis=0)
    g2 = atrous(g1, 2)
    g3 = atrous(g2, 4)
    hh = x - ax - ay + g1
    bands = (x - g1, g1 - g2, g2 - g3)
    tiles = np.stack([block_sum(np.mean(b.astype(np.float64) ** 2, axis=2), block) for b in bands], axis=-1)
    e_hh = np.mean(hh.astype(np.float64) ** 2, axis=2)
    ones = np.ones(e_hh.shape)
    return BandStats(tiles.sum(axis=(0, 1)), block_sum(e_hh, block), block_sum(ones, block), block, x.shape[2],
                     band_block_sums=tiles)
