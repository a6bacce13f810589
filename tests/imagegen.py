"""Synthetic test images with known statistics (no downloads)."""

from __future__ import annotations

import numpy as np

from gpu_deconv.core.blur import Gaussian
from gpu_deconv.core.reference import convolve_axis


def power_law_field(shape: tuple[int, int], level: float, omega0: float = 0.02, seed: int = 0) -> np.ndarray:
    """Gaussian random field with spectrum ``level / (|w|^2 + omega0^2)`` (variance = mean of S)."""
    h, w = shape
    rng = np.random.default_rng(seed)
    wy = 2 * np.pi * np.fft.fftfreq(h)[:, None]
    wx = 2 * np.pi * np.fft.fftfreq(w)[None, :]
    s = level / (wx**2 + wy**2 + omega0**2)
    s[0, 0] = 0.0
    noise = np.fft.fft2(rng.standard_normal((h, w)))
    return np.real(np.fft.ifft2(noise * np.sqrt(s))).astype(np.float32)


def textured_image(shape: tuple[int, int] = (256, 256), channels: int = 3, seed: int = 0) -> np.ndarray:
    """A linear image in ~[0.05, 0.95]: 1/f^2 texture plus hard-edged rectangles, per channel."""
    rng = np.random.default_rng(seed)
    chans = []
    for c in range(channels):
        f = power_law_field(shape, 1.0, seed=seed * 10 + c)
        f = (f - f.min()) / (np.ptp(f) + 1e-12)
        img = 0.2 + 0.4 * f
        for _ in range(12):
            y0, x0 = rng.integers(0, shape[0] - 8), rng.integers(0, shape[1] - 8)
            hh, ww = rng.integers(4, shape[0] // 3), rng.integers(4, shape[1] // 3)
            img[y0 : y0 + hh, x0 : x0 + ww] += rng.uniform(-0.15, 0.3)
        chans.append(np.clip(img, 0.05, 0.95))
    return np.stack(chans, axis=-1).astype(np.float32)


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    t = Gaussian(sigma).taps.astype(np.float32)
    return convolve_axis(convolve_axis(x, t, axis=1), t, axis=0)


def psnr(a: np.ndarray, b: np.ndarray, border: int = 16) -> float:
    sl = (slice(border, -border or None), slice(border, -border or None))
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a)[sl] - np.asarray(b)[sl]) ** 2)))
