"""Temporal smoothing of the per-frame statistics of a video, reset at scene cuts.

Every estimate that steers the filter - the noise (:func:`gpu_deconv.core.noise.noise_from_stats`), the
natural-spectrum level (:func:`gpu_deconv.core.spectrum.estimate_level`) - is a function of one frame's
:class:`~gpu_deconv.core.stats.BandStats`. On video those fluctuate from frame to frame with the noise
itself (a tile's energy is a chi-square variable), so the filter would flicker. :class:`TemporalSmoother`
therefore smooths the statistics, not the estimates: an exponential moving average

    s_n = s_{n-1} + a (x_n - s_{n-1}),        a = 1 / tau,

of the band energies and of every tile's diagonal-band and band energies (so the noise percentile and the blind blur
estimate are taken over smoothed tiles), with ``tau`` frames of memory. Averaging tiles over frames multiplies their
degrees of freedom by ``1 / sum(w^2)`` of the average's weights (``2 tau - 1`` in steady state), which the smoothed
statistics carry (``BandStats.frames``) so the noise estimator's low-percentile correction stays unbiased - without
it the estimate would creep up over the first ``tau`` frames of every scene.

A scene cut must not be smoothed over: when any band's mean energy differs from the running average by
more than ``cut_ratio`` (either way), the average restarts from the new frame, so the estimates settle on
the first frame of the new scene (the second with ``stats_latency=1``). A still scene with fresh noise
moves band energies by well under 1 % per frame; real cuts move them by 2x or more. A change of frame
size also restarts. Gradual changes (fades, pans) are tracked with a lag of about ``tau`` frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .stats import BandStats

#: Frames of memory of the moving average. Measured in benchmarks/bench_temporal.py (a still 256 px photo
#: with fresh noise 0.01 each frame, 8-bit): the spread of the filter's gain at w = pi/2 falls from 0.30 %
#: (no smoothing) to 0.20 % (4), 0.12 % (8) and 0.13 % (16); 8 is where it stops improving.
TIME_CONSTANT = 8.0
#: A band energy moving by more than this factor between the running average and a frame is a scene cut.
CUT_RATIO = 1.5


@dataclass
class TemporalSmoother:
    """Exponential moving average of :class:`BandStats` with a scene-cut reset (see the module docstring).

    Parameters
    ----------
    time_constant : float
        ``tau`` in frames (>= 1; 1 disables the smoothing).
    cut_ratio : float
        Band-energy ratio (> 1) above which a frame starts a new scene.
    """

    time_constant: float = TIME_CONSTANT
    cut_ratio: float = CUT_RATIO
    #: Scene cuts detected so far (the first frame counts as one).
    cuts: int = 0
    _state: BandStats | None = field(default=None, repr=False)
    _sum_w2: float = field(default=1.0, repr=False)  # sum of the squared weights of the frames in the average

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time_constant) and self.time_constant >= 1.0):
            raise ValueError(f"time_constant must be >= 1 frame, got {self.time_constant!r}")
        if not (math.isfinite(self.cut_ratio) and self.cut_ratio > 1.0):
            raise ValueError(f"cut_ratio must be > 1, got {self.cut_ratio!r}")

    def reset(self) -> None:
        """Forget the past (the next frame starts a new scene), e.g. after a seek."""
        self._state = None

    def is_cut(self, stats: BandStats) -> bool:
        """True when ``stats`` cannot continue the current scene (no scene yet, new size, energy jump)."""
        s = self._state
        if s is None or s.hh_block_sums.shape != stats.hh_block_sums.shape or s.channels != stats.channels:
            return True
        new, old = stats.band_energies, s.band_energies
        tiny = 1e-20  # energies of a flat frame: treat 0 -> 0 as no change
        ratio = (np.maximum(new, tiny)) / np.maximum(old, tiny)
        return bool(np.any(np.abs(np.log(ratio)) > math.log(self.cut_ratio)))

    def update(self, stats: BandStats) -> BandStats:
        """Fold one frame's statistics in; returns the statistics that should steer the filter."""
        if self.is_cut(stats):
            self.cuts += 1
            self._state, self._sum_w2 = stats, 1.0
            return stats
        s = self._state
        a = 1.0 / self.time_constant
        # weights: (1-a)^k for the scene's first frame, a (1-a)^(k-j) for frame j; 1/sum(w^2) frames' worth of
        # independent noise are averaged, which the noise estimator's percentile correction must know
        self._sum_w2 = (1.0 - a) ** 2 * self._sum_w2 + a * a
        tiles = None
        if s.band_block_sums is not None and stats.band_block_sums is not None:
            tiles = s.band_block_sums + a * (stats.band_block_sums - s.band_block_sums)
        self._state = BandStats(
            band_sums=s.band_sums + a * (stats.band_sums - s.band_sums),
            hh_block_sums=s.hh_block_sums + a * (stats.hh_block_sums - s.hh_block_sums),
            block_counts=stats.block_counts, block=stats.block, channels=stats.channels,
            frames=stats.frames / self._sum_w2, band_block_sums=tiles)
        return self._state
