"""Execution plans: the GL-free description of what the GPU passes (and their NumPy mirror) apply.

Every method in gpu_deconv reduces to a short chain of *mixture stages*. One stage computes

    out = d[0] * base + sum_k d[k] * (g_k (x) g_k) * src          k = 1..K

where ``g_k`` is a 1D symmetric odd-length kernel applied separably (first along x, then along y),
``base`` is always the chain's input image and ``src`` is either the input or the previous stage's
output. On the GPU a stage is two passes:

* **H pass** - one fetch loop over ``src`` along x (radius = the largest ``g_k`` radius) that writes
  ``H_k = g_k *_x src`` for all k at once to K render targets (MRT);
* **V pass** - ``d[0] * base + sum_k d[k] * (g_k *_y H_k)``: the combine is fused into the last blur.

Boundary rule (everywhere): mirror with the edge pixel repeated, i.e. index -1 -> 0 and n -> n-1
(numpy ``np.pad(mode='symmetric')``, scipy.ndimage ``mode='reflect'``); applied per tap, so kernels
longer than the image mirror again (period 2n).

Order of operations (the reference and the shaders both follow it, in float32):
H_k = sum over taps i = -r..r ascending of g_k[i] * src[mirror(x + i)];
acc = d[0] * base; then for k = 1..K: acc += d[k] * (sum over i ascending of g_k[i] * H_k[mirror(y + i)]).

Which methods map to which stages:

* comb / laplacian / unsharp: one stage, ``src = input``; the ``g_k`` are the basis lowpasses and
  ``d`` the Gaussian-mixture weights of ``1 + sum c_k (G_{k-1} - G_k)``.
* fir: one stage with ``K = 1``, ``d = (0, 1)`` and the designed separable taps.
* polyblur: three stages (Horner's scheme over the blur ``B``), the later ones with ``src = previous``.
* identity: no stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Most levels one stage may hold (K render targets in the H pass; GL 3.3 guarantees 8 draw buffers).
MAX_LEVELS = 7
#: Largest kernel radius a stage may use (31 taps).
MAX_RADIUS = 15


def _as_taps(taps: np.ndarray) -> np.ndarray:
    t = np.asarray(taps, dtype=np.float64).ravel()
    if t.size % 2 != 1:
        raise ValueError(f"stage taps must have odd length, got {t.size}")
    if t.size // 2 > MAX_RADIUS:
        raise ValueError(f"stage taps radius {t.size // 2} exceeds the maximum {MAX_RADIUS} (31 taps)")
    if not np.allclose(t, t[::-1], rtol=0, atol=1e-12 * max(1.0, float(np.abs(t).max(initial=0)))):
        raise ValueError("stage taps must be symmetric")
    if not np.all(np.isfinite(t)):
        raise ValueError("stage taps must be finite")
    return t.astype(np.float32)


@dataclass(frozen=True)
class MixtureStage:
    """One separable mixture stage: ``out = d0*base + sum_k d_k * (g_k x g_k) * src``.

    Parameters
    ----------
    taps : tuple of 1D arrays
        The ``g_k`` (k = 1..K), odd length, symmetric, stored as float32 exactly as the GPU sees them.
    weights : 1D array, length K + 1
        ``d_0..d_K`` as float32.
    src : {'input', 'previous'}
        What the blur kernels read: the chain's input, or the previous stage's output.
    """

    taps: tuple[np.ndarray, ...]
    weights: np.ndarray
    src: str = "input"

    def __post_init__(self) -> None:
        taps = tuple(_as_taps(t) for t in self.taps)
        w = np.asarray(self.weights, dtype=np.float64).ravel()
        if not 1 <= len(taps) <= MAX_LEVELS:
            raise ValueError(f"a stage holds 1..{MAX_LEVELS} levels, got {len(taps)}")
        if w.size != len(taps) + 1:
            raise ValueError(f"a stage with {len(taps)} levels needs {len(taps) + 1} weights, got {w.size}")
        if not np.all(np.isfinite(w)):
            raise ValueError("stage weights must be finite")
        if self.src not in ("input", "previous"):
            raise ValueError(f"stage src must be 'input' or 'previous', got {self.src!r}")
        object.__setattr__(self, "taps", taps)
        object.__setattr__(self, "weights", w.astype(np.float32))

    @property
    def levels(self) -> int:
        return len(self.taps)

    @property
    def radius(self) -> int:
        return max(t.size // 2 for t in self.taps)

    @property
    def fetches_per_pixel(self) -> int:
        """Texture fetches per output pixel over both passes (H: one loop; V: base + every level's taps)."""
        return (2 * self.radius + 1) + 1 + sum(t.size for t in self.taps)

    def response(self, wx: np.ndarray, wy: np.ndarray, inner: np.ndarray | float = 1.0) -> np.ndarray:
        """2D frequency response given the response ``inner`` of what ``src`` holds relative to the input."""
        wx = np.asarray(wx, dtype=np.float64)
        wy = np.asarray(wy, dtype=np.float64)
        acc = np.full(np.broadcast(wx, wy).shape, float(self.weights[0]))
        for d, g in zip(self.weights[1:], self.taps, strict=True):
            acc = acc + float(d) * _cos_sum(g, wx) * _cos_sum(g, wy) * inner
        return acc


def _cos_sum(taps: np.ndarray, w: np.ndarray) -> np.ndarray:
    t = np.asarray(taps, dtype=np.float64)
    r = t.size // 2
    k = np.arange(1, r + 1)
    return t[r] + 2.0 * np.cos(np.multiply.outer(w, k)) @ t[r + 1 :] if r else np.full(np.shape(w), t[0])


@dataclass(frozen=True)
class Plan:
    """The whole chain a method applies: zero or more :class:`MixtureStage` in order."""

    method: str
    stages: tuple[MixtureStage, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.stages and self.stages[0].src != "input":
            raise ValueError("the first stage must read the input")

    @property
    def passes(self) -> int:
        """GPU passes (two per stage; identity still costs one copy pass)."""
        return max(1, 2 * len(self.stages))

    @property
    def fetches_per_pixel(self) -> int:
        return sum(s.fetches_per_pixel for s in self.stages) or 1

    def bytes_per_pixel(self, channels: int = 4, bytes_per_channel: int = 2) -> int:
        """Approximate memory traffic per output pixel (every fetch counted as one texel read, no cache)."""
        texel = channels * bytes_per_channel
        writes = sum(s.levels + 1 for s in self.stages) or 1
        return (self.fetches_per_pixel + writes) * texel

    def response(self, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
        """The plan's exact 2D frequency response (what the passes apply, as a function of (wx, wy))."""
        inner: np.ndarray | float = 1.0
        for stage in self.stages:
            inner = stage.response(wx, wy, inner if stage.src == "previous" else 1.0)
        if not self.stages:
            return np.ones(np.broadcast(np.asarray(wx), np.asarray(wy)).shape)
        return np.asarray(inner)

    def __repr__(self) -> str:
        parts = [
            f"[{s.src}: K={s.levels} r={s.radius} d={np.array2string(s.weights, precision=4)}]"
            for s in self.stages
        ]
        return f"Plan({self.method!r}, passes={self.passes}, stages={' '.join(parts) or 'none'})"
