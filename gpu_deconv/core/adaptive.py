"""Locally adaptive deconvolution: per-pixel coefficients from the local signal level.

The global filter (:mod:`gpu_deconv.core.fit`) fits one ``F = 1 + sum_k c_k L_k`` per frame to a Wiener
target built from the frame's *average* spectrum. Photographs are not stationary: flat sky and dark
areas hold almost no detail (the best linear filter there attenuates the noise), edges and texture hold
a lot (the best filter restores). The adaptive filter applies, at every pixel p,

    out(p) = x(p) + sum_k c_k(A(p)) (L_k x)(p),

with ``L_k`` the bands of the basis (:mod:`gpu_deconv.core.basis`) and ``c(A)`` the 2D output-error
weighted fit (the global design's, same nodes and weighting) to the **unclamped** Wiener target of a
natural-image spectrum of level ``A``:

    T_A(w) = B S_A / (B^2 S_A + sigma^2),    S_A = A / (|w|^2 + w0^2).

Unclamped (``T < 1`` allowed): where the local signal is weak the filter denoises, where it is strong it
restores. ``c`` depends on ``(blur, sigma^2)`` and on ``A`` only, so it is solved once per (blur, noise)
as a table over the level axis (:class:`AdaptiveSolver`), never per frame.

**Local level.** With ``e = sum over colour channels of (L_a x)^2 + (L_b x)^2`` (two bands, see
:func:`energy_bands`), smoothed by a window to ``E``, the local model expects
``E = C (A M_ab + sigma^2 N_ab)`` (C colour channels), where for each band

    M_k = mean_{[0,pi]^2} L_k^2 B^2 / (|w|^2 + w0^2),     N_k = mean_{[0,pi]^2} L_k^2

(the band's signal energy per unit level and its white-noise gain, by the fit's Gauss-Legendre rule),
so the level estimate is

    A(p) = kappa * max(E - C sigma^2 N_ab, floor * E) / (C M_ab),

with ``floor`` = :data:`LEVEL_FLOOR` (keeps A > 0 where noise happens to dominate) and ``kappa`` =
:data:`gpu_deconv.core.spectrum.LEVEL_CALIBRATION` (photographs are sparse: the linear-MSE optimum
sees ~1/3 of the average level; measured below). The table is indexed by ``v = plog2(A / sigma^2)``.

**Passes** (what :mod:`gpu_deconv.gl.adaptive` runs; :func:`apply_adaptive` is their float32 mirror, same
taps, order of operations and mirror boundary as :mod:`gpu_deconv.core.reference`):

1. ``h``: one fetch loop along x: ``H_k = g_k *_x x`` for the K lowpasses and ``hx = [-1/4, 1/2, -1/4] *_x x``
   (the horizontal factor of the noise estimator's diagonal band); stored in fp32 (see below).
2. ``bands``: ``G_k = g_k *_y H_k``, ``L_1 = x - G_1``, ``L_k = G_{k-1} - G_k``, ``hh = [-1/4, 1/2, -1/4] *_y hx``;
   stores the bands (fp16 at precision 16), ``e = S sum_c (L_a^2 + L_b^2)`` and ``q = S sum_c hh^2``
   (S = :data:`ENERGY_SCALE`, keeps small energies out of fp16's subnormal range; ``hh`` is the
   diagonal band of the noise estimator, :mod:`gpu_deconv.core.noise`).
3. ``energy`` (half resolution): ``D(q) = sum_{i,j} w_i w_j e(2q + (i, j))`` over i, j = -1..2 with
   ``w = [1, 3, 3, 1] / 8``; also the plain sums of ``e`` and ``q`` over each 2x2 block, for the statistics.
4. ``reduce``: per 16x16 tile, the sums of ``e`` and ``q`` (the only read-back; :class:`AdaptiveStats`
   turns it into the frame's noise and level - the global engine's statistics passes are not needed).
5. ``apply``: ``E(p)`` = bilinear interpolation of D at ``p`` (weights 1/4, 3/4), then ``A``, the table
   lookup (linear in ``v``) and ``x + sum_k c_k L_k``; optional halo limiter (:func:`limit_overshoot`),
   sRGB encode, alpha copied. With one sigma per colour channel (:class:`ChannelTable`) the same level
   picks each channel's coefficients from its own table; with a sigma map (:class:`SigmaTable`) the
   coefficients are bilinear in (sigma, level) per pixel.

The window (``[1, 3, 3, 1]/8`` at stride 2, then bilinear) has a standard deviation of ~1.2 px; on
the held-out photographs it equals a full-resolution Gaussian window of sigma 2 px (+0.01 dB) at a
fraction of the cost (a 4x4 gather per 4 pixels instead of two 19-tap passes).

Why the levels (``H_k``) are stored in fp32 even at precision 16: the band differences
``G_{k-1} - G_k`` of fp16 lowpasses carry the lowpasses' rounding (2^-11 of a value ~0.5) into bands of
size ~0.01, which the large coefficients at the table's top then amplify (the issue's prototype lost
0.92 dB storing sums in fp16). Bands stored in fp16 round relative to *their* size, which costs
nothing measurable, so precision 16 means fp16 bands and energies, fp32 levels.

Calibration (held-out photographs astronaut, camera, coffee, chelsea, rocket, brick, grass, gravel -
none in ``benchmarks/quality.py`` - centre 256 px, linear light, Gaussian blur 0.4/0.7/1.0/1.5 px, noise
0/0.005/0.02, float and 8-bit; mean PSNR gain over the input on the 160 cases with noise or 8-bit;
global default +3.34 dB):

* ``kappa``: 1 / 0.6 / 0.35 / 0.2 / 0.1 -> +4.28 / +4.60 / +4.71 / +4.57 / +4.05 dB, worst case
  -0.26 / +0.39 / +0.82 / +0.16 / -1.28 dB; dense texture (brick) is what punishes kappa = 1 (-2 dB).
  0.35 is also the global level calibration, so one constant serves both.
* energy bands: the two finest whose expected noise share at :data:`TYPICAL_LEVEL` is below 1/2
  +4.78 dB; always bands 2+3 +4.74, always 1+2 +4.71, all five summed +4.68 (at sigma 2-2.5 px the
  rule gains 0.15 dB over fixed bands 2+3).
* window: full-resolution Gaussian sigma 1/1.2/2/3 px +4.70/+4.80/+4.78/+4.65 dB, this half-resolution
  window +4.79; ``floor`` 0.02/0.05/0.15: +4.70/+4.71/+4.71.
* one level map for R, G, B (this module) +4.79 dB, one per channel +4.82: not worth three table
  lookups per pixel.
* result: +4.79 dB (global default +3.34, exact FFT of the global target +3.50, unclamped FFT Wiener
  with the same prior and level +3.92, true-spectrum Wiener ceiling +5.34); worst case +0.97 dB.

Artefacts seen in crops (noise 0.01, sigma 1): flat areas come out clean where the global filter leaves
them grainy, but (1) noise survives as dark speckles in a band ~2-3 px wide along strong edges (the
energy window sees the edge there, so the filter restores - and amplifies the noise - next to it),
together with the undershoot ring every linear restoration has; (2) dense texture at high noise looks
smoother ("waxy") than the grainy global output. Tried (single crops: camera, chelsea, coins):
subtracting 2-3x the expected noise energy (-0.06/-0.14 dB, no visible change); a window of sigma 3 px
(slightly less blotchy; -0.13 dB over the whole held-out set); pulling the level toward the frame's
(``A^0.7 A_frame^0.3``: -0.06 dB); eroding the energy map (3x3 minimum at half resolution: the speckles
go, but -0.7 dB on coins and a smooth dark ring stays). The halo limiter (:func:`limit_overshoot`)
bounds the ring at a PSNR cost. Orientation-aware (structure-tensor) bands, restoring across an edge
but not along it, are the principled fix and left for later.

Model failure: content whose spectrum falls much faster than ``1/|w|^2`` (the benchmark's "cell": smooth
blobs, 8-bit without noise, input already at 62-70 dB): the fine energy bands read a tiny level and
the table's low rows blur coarse structure those bands do not see (-10 dB there; the global filter's
``T >= 1`` clamp cannot fail this way). A target floor ``T >= B^4`` (keep what the blur left intact)
is neutral on held-out photos (+5.83 vs +5.83 dB, 4 photos, sigma 0.5/1) and halves that loss; it is
not adopted because the failure was found on a benchmark image. The real fix is a two-parameter local
spectrum (level and slope from a fine and a coarse band pair, a 2D table).

Reference: the seed post (Laplacian basis, Wiener target; "the 2x2 comb solve could be done per pixel
in a shader"); issue #11 of this project; locally adaptive Wiener filtering: J.-S. Lee, "Digital image
enhancement and noise filtering by use of local statistics", IEEE PAMI 1980; D. T. Kuan et al.,
"Adaptive noise smoothing filter for images with signal-dependent noise", IEEE PAMI 1985.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .basis import Basis
from .blur import BlurModel
from .fit import DEFAULT_NODES, ROUNDOFF_VAR
from .noise import noise_from_stats
from .quadrature import gauss_legendre
from .reference import alpha_channel, convolve_axis, mirror_index, to_float16
from .spectrum import LEVEL_CALIBRATION
from .stats import BLOCK, BandStats
from .targets import OMEGA0

#: Scale (a power of two, so exact) applied to the stored energies ``e`` and ``q``: keeps energies of
#: faint bands (noise 0.003 -> ~1e-6) out of fp16's subnormal range, where its relative precision drops.
ENERGY_SCALE = 1024.0
#: Floor of the local level as a fraction of the energy-implied level (see the module docstring).
LEVEL_FLOOR = 0.05
#: Level used to pick the energy bands (linear units^2 rad^2/px^2, before calibration): a typical
#: photograph's. The choice only needs the order of magnitude (0.6x-3x changes it by <= 0.1 dB).
TYPICAL_LEVEL = 6e-3
#: The table axis: ``v = plog2(A / sigma^2)`` at nodes ``TABLE_START + i``, i = 0..TABLE_SIZE-1
#: (levels 2^-10 .. 2^21 sigma^2, i.e. 1e-3 .. 2e6 times the noise variance; beyond them the end rows apply).
TABLE_START = -10.0
TABLE_SIZE = 32
#: Noise standard deviation (linear) assumed to pick the energy bands of a frame whose noise is still
#: to be measured (``noise='auto'``); if the measured noise wants other bands, passes 2-4 run again. Only
#: speed depends on it (the output is the same either way): a clean photograph's level (8-bit
#: quantisation alone is ~0.0011), so clean photos and video need no second preparation up to sigma 1.5 px
#: (measured: a 1080p photo at sigma 1, 882 -> 570 ms on llvmpipe); noisy frames pay the re-run.
PROVISIONAL_NOISE = 0.001
#: Diagonal noise band factor ``[-1/4, 1/2, -1/4]`` (per axis; ``hh`` of :mod:`gpu_deconv.core.stats`).
HH_TAPS = np.array([-0.25, 0.5, -0.25], dtype=np.float32)
#: Half-resolution energy window taps at full-resolution offsets -1, 0, 1, 2 of ``2q`` (binomial, exact in fp32).
WINDOW_TAPS = np.array([0.125, 0.375, 0.375, 0.125], dtype=np.float32)
#: Rounding variance of one stored band value used as the table's ridge (see :class:`AdaptiveSolver`).
BAND_ROUNDOFF_VAR = ROUNDOFF_VAR[32]
#: Pixels of context the energy window adds to the lowpass radius: an output pixel reads ``e`` up to
#: 3 px away (``D`` at half-resolution q-1..q+1, each over 2q-1..2q+2). Tiles need a halo of
#: ``radius + WINDOW_HALO`` *and* even origins (the half-resolution grid) to equal untiled processing.
WINDOW_HALO = 3
#: Spacing of the sigma nodes of a :class:`SigmaTable` (px). Between nodes the coefficients are linear in
#: sigma; 0.1 px is the spacing :func:`gpu_deconv.core.sigma_map.apply_sigma_map` uses for its reference.
SIGMA_STEP = 0.1


def pseudo_log2(x: np.ndarray) -> np.ndarray:
    """``plog2(x) = e + (m - 1)`` for ``x = m 2^e``, ``m`` in [1, 2): log2 linearly interpolated between
    powers of two (exact at them, monotone, continuous, at most 0.086 below log2).

    Why not ``log2``: this is exact integer and float32 arithmetic (exponent bits, mantissa bits, one
    rounded addition) that GLSL reproduces bit for bit (``floatBitsToInt``), where ``log2`` differs
    between drivers in its last bits. Zero and subnormal inputs give values <= -126 (clamped by the table).

    Parameters
    ----------
    x : ndarray
        Non-negative float32 values.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.int32)
    e = ((bits >> 23) & 0xFF).astype(np.int32) - 127
    m = ((bits & 0x7FFFFF) | 0x3F800000).view(np.float32)
    return (e.astype(np.float32) + (m - np.float32(1.0))).astype(np.float32)


def energy_bands(signal_gain: np.ndarray, noise_gain: np.ndarray, noise_var: float,
                 level: float = TYPICAL_LEVEL) -> tuple[int, int]:
    """The two bands ``(a, a + 1)`` (0-based) whose squares make the local energy: the two finest whose
    expected noise share ``sigma^2 N_k / (A M_k + sigma^2 N_k)`` at a typical level ``A`` is below 1/2
    (the coarsest pair when none is). Finer bands localise better, noise-dominated ones measure noise.

    Parameters
    ----------
    signal_gain, noise_gain : ndarray (K,)
        ``M_k`` and ``N_k`` of :class:`AdaptiveTable` (K >= 2).
    noise_var : float
        ``sigma^2``, linear units^2.
    level : float
        Typical (uncalibrated) spectrum level, linear units^2 rad^2/px^2.
    """
    share = noise_var * noise_gain / (level * signal_gain + noise_var * noise_gain)
    ok = np.flatnonzero(share < 0.5)
    k = signal_gain.size
    a = k - 2 if ok.size == 0 else min(int(ok[0]), k - 2)
    return a, a + 1


def _level_ratio(constants: tuple[np.float32, np.float32, np.float32], energy: np.ndarray) -> np.ndarray:
    """``A / sigma^2 = max(E - n_E, floor E) * inv`` in float32, as pass 5 computes it, from a table's
    :meth:`AdaptiveTable.energy_constants` ``(n_E, floor, inv)``."""
    n_e, fl, inv = constants
    e = np.asarray(energy, dtype=np.float32)
    return (np.maximum(e - n_e, fl * e) * inv).astype(np.float32)


@dataclass(frozen=True, eq=False)
class AdaptiveTable:
    """The coefficient table of one (basis, blur, noise) and everything the passes need besides it.

    Attributes
    ----------
    basis : Basis
    blur : BlurModel
    noise_var : float
        ``sigma^2`` (linear units^2, noise plus quantization) the table was solved for.
    coefficients : ndarray (TABLE_SIZE, K) float32
        Row i: ``c`` at ``v_i = TABLE_START + i``, i.e. ``A = sigma^2 2^v_i`` (exact float32 values the
        GPU gets).
    bands : (int, int)
        0-based indices of the two energy bands.
    signal_gain, noise_gain : ndarray (K,)
        ``M_k``, ``N_k`` of every band.
    kappa, floor : float
        Level calibration and floor.
    """

    basis: Basis
    blur: BlurModel
    noise_var: float
    coefficients: np.ndarray
    bands: tuple[int, int]
    signal_gain: np.ndarray
    noise_gain: np.ndarray
    kappa: float = LEVEL_CALIBRATION
    floor: float = LEVEL_FLOOR
    levels: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def size(self) -> int:
        """Number of coefficients K."""
        return self.coefficients.shape[1]

    def energy_constants(self, channels: int) -> tuple[np.float32, np.float32, np.float32]:
        """``(noise_energy, floor, inv_scale)`` as float32, so that (scaled energy E as stored)

            A / sigma^2 = max(E - noise_energy, floor * E) * inv_scale,

        with ``noise_energy = S C sigma^2 N_ab`` and ``inv_scale = kappa / (S C M_ab sigma^2)``
        (S = :data:`ENERGY_SCALE`, C = ``channels`` summed in ``e``). Precomputed so the shader needs no
        division."""
        a, b = self.bands
        m = float(self.signal_gain[a] + self.signal_gain[b])
        n = float(self.noise_gain[a] + self.noise_gain[b])
        sc = ENERGY_SCALE * channels
        return (np.float32(sc * self.noise_var * n), np.float32(self.floor),
                np.float32(self.kappa / (sc * m * self.noise_var)))

    def level_ratio(self, energy: np.ndarray, channels: int) -> np.ndarray:
        """``A / sigma^2`` (float32) from a window-smoothed stored energy ``E`` (see :meth:`energy_constants`)."""
        return _level_ratio(self.energy_constants(channels), energy)

    def lookup(self, ratio: np.ndarray) -> np.ndarray:
        """Coefficients ``(..., K)`` at ``A / sigma^2 = ratio``, exactly as the shader interpolates:
        ``t = clamp(plog2(ratio) - TABLE_START, 0, n - 1)``, ``i = min(floor(t), n - 2)``, ``f = t - i``,
        ``c = c_i + f (c_{i+1} - c_i)`` in float32."""
        t = pseudo_log2(ratio) - np.float32(TABLE_START)
        t = np.clip(t, np.float32(0.0), np.float32(TABLE_SIZE - 1)).astype(np.float32)
        i = np.minimum(np.floor(t).astype(np.int32), TABLE_SIZE - 2)
        f = (t - i.astype(np.float32)).astype(np.float32)
        c0 = self.coefficients[i]
        c1 = self.coefficients[i + 1]
        return (c0 + f[..., None] * (c1 - c0)).astype(np.float32)

    def coefficients_at(self, level: float) -> np.ndarray:
        """``c`` (float64) for a local level ``A`` (linear units^2 rad^2/px^2, *after* calibration)."""
        return self.lookup(np.array([level / self.noise_var], np.float32))[0].astype(np.float64)

    def response(self, level: float, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
        """2D response ``1 + sum c_k(A) L_k`` the passes apply where the local level is ``level``."""
        return 1.0 + self.basis.bands_2d(np.asarray(wx, np.float64), np.asarray(wy, np.float64)) @ \
            self.coefficients_at(level)


class AdaptiveSolver:
    """Solves :class:`AdaptiveTable` for one basis, batched over the level axis.

    The output-weighted normal equations of the global fit (:class:`gpu_deconv.core.fit.LaplacianFit`,
    weight ``w = B^2 S_A + sigma^2``) are, for the unclamped target, *affine in A*:

        G(A) = A G_s + sigma^2 G_n,    G_s = Phi^T diag(q B^2 s) Phi,  G_n = Phi^T diag(q) Phi,
        r(A) = A r_s - sigma^2 r_n,    r_s = Phi^T (q s B (1 - B)),     r_n = Phi^T q,

        (``s = 1 / (|w|^2 + w0^2)``), because ``w (T - 1) = S B (1 - B) - sigma^2``. So one table costs
        four small products over the nodes plus one batched K x K solve over the 32 levels
    (``np.linalg.solve`` on a (32, K, K) stack), ~0.1 ms - no per-level pass over the nodes.

    Rounding regularisation (as in :mod:`gpu_deconv.core.fit`): the bands are stored once each, so the
    output's rounding variance is ``sum_k c_k^2 delta^2``; added to the objective it is a ridge with a
    physical scale. Bands are small (~0.001-0.03), so even fp16 rounds them with a variance <= 2.5e-11
    (``ulp^2 / 3``), below the fp32 trim ``ROUNDOFF_VAR[32] = 1e-10`` that keeps near-collinear
    directions finite - so one ridge serves both precisions and the table does not depend on the
    precision. Measured: the fp16 level ridge (3e-9) instead costs 0.07 dB at noise 0.005 and 1.8 dB on
    noise-free input; fp16 band storage with this ridge is within 0.01 dB of fp32.

    Parameters
    ----------
    basis : Basis
    nodes : int
        Gauss-Legendre nodes per axis (the global 2D fit's default).
    """

    def __init__(self, basis: Basis, nodes: int = DEFAULT_NODES["2d"]) -> None:
        if basis.size < 2:
            raise ValueError(f"the adaptive filter needs a basis with >= 2 bands, got {basis!r}")
        self.basis = basis
        self.nodes = n = gauss_legendre("2d", int(nodes))
        self._levels = np.exp2(TABLE_START + np.arange(TABLE_SIZE))  # A / sigma^2 at the rows
        # blur-independent node tables, computed once: band responses, their squares, the prior's shape
        self._phi = basis.bands_2d(n.wx, n.wy)
        self._phi_t = np.ascontiguousarray(self._phi.T)
        self._phi2 = self._phi * self._phi
        self._qs = n.q / (n.r2 + OMEGA0 * OMEGA0)
        self._g_n = (self._phi_t * n.q) @ self._phi
        self._r_n = self._phi_t @ n.q
        self._n_gain = n.q @ self._phi2

    def gains(self, blur: BlurModel) -> tuple[np.ndarray, np.ndarray]:
        """``(M_k, N_k)``: each band's expected energy per unit level and per unit noise variance."""
        b = self._blur(blur)
        return (self._qs * b * b) @ self._phi2, self._n_gain

    def _blur(self, blur: BlurModel) -> np.ndarray:
        b1 = blur.response(self.nodes.axis)
        return np.outer(b1, b1).ravel()

    def solve(self, blur: BlurModel, noise_var: float, bands: tuple[int, int] | None = None) -> AdaptiveTable:
        """The table for one blur and noise variance.

        Parameters
        ----------
        blur : BlurModel
        noise_var : float
            ``sigma^2`` > 0 in linear units^2, noise plus quantization (the engine's design floor applies).
        bands : (int, int), optional
            Energy bands; default :func:`energy_bands`.
        """
        if not (math.isfinite(noise_var) and noise_var > 0):
            raise ValueError(f"noise variance must be a finite number > 0, got {noise_var!r}")
        b = self._blur(blur)
        qsb = self._qs * b
        m_gain = (qsb * b) @ self._phi2
        g_s = (self._phi_t * (qsb * b)) @ self._phi
        r_s = self._phi_t @ (qsb * (1.0 - b))
        n_gain = self._n_gain
        k = self.basis.size
        # divided through by sigma^2: G/sigma^2 = a G_s + G_n + (delta^2/sigma^2) I with a = A/sigma^2
        a = self._levels
        g = a[:, None, None] * g_s + self._g_n + (BAND_ROUNDOFF_VAR / noise_var) * np.eye(k)
        r = a[:, None] * r_s - self._r_n
        c = np.linalg.solve(g, r[:, :, None])[:, :, 0]
        if bands is None:
            bands = energy_bands(m_gain, n_gain, noise_var)
        elif not (0 <= bands[0] < k and 0 <= bands[1] < k and bands[0] != bands[1]):
            raise ValueError(f"energy bands must be two different indices in 0..{k - 1}, got {bands!r}")
        return AdaptiveTable(self.basis, blur, float(noise_var), c.astype(np.float32),
                             (int(bands[0]), int(bands[1])), m_gain, n_gain, levels=a * noise_var)

    def solve_channels(self, blurs: tuple[BlurModel, ...], noise_var: float) -> ChannelTable:
        """The :class:`ChannelTable` of a per-channel blur (R, G, B): one :meth:`solve` per channel, all
        with the energy bands :func:`energy_bands` picks for the median channel's blur (pass 2 computes one
        energy for the frame).

        Parameters
        ----------
        blurs : (BlurModel, BlurModel, BlurModel)
            The blur of R, G and B.
        noise_var : float
            As :meth:`solve` (one noise for every channel).
        """
        if len(blurs) != 3:
            raise ValueError(f"a per-channel blur needs 3 blurs (R, G, B), got {len(blurs)}")
        gains = [float(self.gains(b)[0].sum()) for b in blurs]
        median = sorted(range(3), key=lambda c: gains[c])[1]  # the middle blur (signal gains fall with the blur)
        bands = self.solve(blurs[median], noise_var).bands
        return ChannelTable(tuple(self.solve(b, noise_var, bands) for b in blurs))

    def solve_map(self, blur_for: Callable[[float], BlurModel], noise_var: float, sigma_range: tuple[float, float],
                  median: float, step: float = SIGMA_STEP) -> SigmaTable:
        """The :class:`SigmaTable` of a sigma map: one :meth:`solve` per node (~0.1 ms each; 11 for a
        0.5..1.5 px map), energy bands of the node nearest the map's ``median`` sigma.

        Parameters
        ----------
        blur_for : callable
            ``blur_for(sigma)`` -> the BlurModel of a sigma in px (>= the smallest Gaussian, 0.1 px).
        noise_var : float
            As :meth:`solve`.
        sigma_range : (float, float)
            Smallest and largest sigma of the map (px).
        median : float
            The map's median sigma (px), which picks the energy bands.
        step : float
            Node spacing (px).
        """
        from .blur import GAUSSIAN_SIGMA_RANGE

        start, n = sigma_nodes(*sigma_range, step)
        smallest = GAUSSIAN_SIGMA_RANGE[0]
        sig = [round(start + j * step, 9) for j in range(n)]
        jm = min(range(n), key=lambda j: abs(sig[j] - median))
        bands = self.solve(blur_for(max(sig[jm], smallest)), noise_var).bands
        tables = []
        for s in sig:
            t = self.solve(blur_for(max(s, smallest)), noise_var, bands)
            if s < smallest - 1e-9:  # sharp: the identity (gains kept, so the level model stays defined)
                t = AdaptiveTable(t.basis, t.blur, t.noise_var, np.zeros_like(t.coefficients), t.bands,
                                  t.signal_gain, t.noise_gain, levels=t.levels)
            tables.append(t)
        return SigmaTable(tuple(tables), start, step)


# ------------------------------------------------------------------------------------ per-channel sigma
class _TableSet:
    """What a set of :class:`AdaptiveTable` (per channel, per sigma node) shares: its first table's basis,
    energy bands, noise and size (the subclasses check that every table agrees)."""

    tables: tuple[AdaptiveTable, ...]

    @property
    def basis(self) -> Basis:
        return self.tables[0].basis

    @property
    def bands(self) -> tuple[int, int]:
        return self.tables[0].bands

    @property
    def noise_var(self) -> float:
        return self.tables[0].noise_var

    @property
    def size(self) -> int:
        return self.tables[0].size


@dataclass(frozen=True, eq=False)
class ChannelTable(_TableSet):
    """The coefficient tables of a per-channel blur: one :class:`AdaptiveTable` per colour channel (R, G,
    B), all with the same basis, noise and energy bands.

    **Level model.** The local energy ``E`` stays one sum over the channels (pass 2 is unchanged). With a
    blur per channel its expectation is ``E = A sum_c M_ab(B_c) + C sigma^2 N_ab`` (the channels share the
    local level A, the model's premise that one level map serves R, G, B; ``M`` depends on each channel's
    blur, ``N`` does not), so

        A / sigma^2 = max(E - noise_energy, floor E) * inv,     inv = kappa / (S sigma^2 sum_c M_ab(B_c)),

    one level per pixel as in the scalar mode - only ``inv`` changes (:meth:`energy_constants`). Each
    channel then takes its coefficients from its own table at that level:
    ``out_c = x_c + sum_k c_k^(c)(A) L_k,c``. With three equal blurs this *is* the scalar table's
    arithmetic (``M + M + M`` and ``3 M`` round alike in float64, S is a power of two), so the output is
    bit-identical to the scalar sigma's.

    Why one shared level rather than a level per channel read with that channel's own ``M`` (which would
    make each channel exactly the scalar-sigma result of its sigma): the shared level is what the energy
    model implies; measured on held-out photos (astronaut, coffee, chelsea, rocket; centre 256 px, linear,
    sigma (0.6, 0.9, 1.3), noise 0 / 0.005 / 0.02, fp32) it is 0.13 dB better on average (up to +0.78 dB,
    worst -0.15 dB), and it costs one level lookup per pixel instead of three. So channel c of the result
    is *not* the scalar sigma_c run's channel c: its level differs by the factor ``3 M_ab(B_c) / sum_c
    M_ab(B_c)`` (and the engine takes the basis of the largest sigma, the energy bands of the median one).
    What holds exactly: channel c is its own table looked up at the shared level (tests), and three equal
    blurs give the scalar output bit for bit.

    Attributes
    ----------
    tables : (AdaptiveTable, AdaptiveTable, AdaptiveTable)
        R, G, B.
    """

    tables: tuple[AdaptiveTable, ...]

    def __post_init__(self) -> None:
        if len(self.tables) != 3:
            raise ValueError(f"a channel table needs 3 tables (R, G, B), got {len(self.tables)}")
        if len({t.bands for t in self.tables}) != 1 or len({t.noise_var for t in self.tables}) != 1 or \
                len({t.basis.key() for t in self.tables}) != 1:
            raise ValueError("the tables of a channel table must share their basis, energy bands and noise")

    def coefficients(self) -> np.ndarray:
        """``(3, TABLE_SIZE, K)`` float32: the R, G, B tables."""
        return np.stack([t.coefficients for t in self.tables])

    def energy_constants(self, channels: int) -> tuple[np.float32, np.float32, np.float32]:
        """``(noise_energy, floor, inv_scale)`` as :meth:`AdaptiveTable.energy_constants`, with the signal gain
        summed over the channels' blurs instead of ``C M_ab`` (see the class docstring)."""
        if channels != 3:
            raise ValueError(f"a per-channel sigma needs 3 colour channels (R, G, B), got {channels}")
        a, b = self.bands
        m = 0.0
        for t in self.tables:
            m += float(t.signal_gain[a] + t.signal_gain[b])
        first = self.tables[0]
        n = float(first.noise_gain[a] + first.noise_gain[b])
        return (np.float32(ENERGY_SCALE * channels * first.noise_var * n), np.float32(first.floor),
                np.float32(first.kappa / (ENERGY_SCALE * m * first.noise_var)))

    def level_ratio(self, energy: np.ndarray, channels: int) -> np.ndarray:
        """``A / sigma^2`` (float32) from the stored energy ``E`` (the shared level)."""
        return _level_ratio(self.energy_constants(channels), energy)

    def lookup(self, ratio: np.ndarray) -> np.ndarray:
        """Coefficients ``(..., 3, K)``: channel c's table at ``ratio``, interpolated as
        :meth:`AdaptiveTable.lookup` (the shader's order)."""
        return np.stack([t.lookup(ratio) for t in self.tables], axis=-2)


# ------------------------------------------------------------------------------------------ sigma maps
@dataclass(frozen=True, eq=False)
class SigmaTable(_TableSet):
    """The 2D coefficient table of a spatially varying blur: one :class:`AdaptiveTable` per sigma node
    ``s_j = start + j step`` (j = 0..N-1, N >= 2), all with the same basis, noise and energy bands.

    Per pixel, with the pixel's node coordinate ``t_s = (sigma(p) - start) / step`` (bilinear in the sigma
    map's cells, :func:`pixel_node_coordinates`), ``j = min(floor(clamp(t_s, 0, N-1)), N-2)``, ``g = t_s - j``:

        inv(p) = inv_j + g (inv_{j+1} - inv_j)                       (the level model's 1 / (S C M_ab sigma^2))
        A / sigma^2 = max(E - noise_energy, floor E) inv(p)
        c(p) = c_j(v) + g (c_{j+1}(v) - c_j(v)),   c_j(v) = table j looked up linearly in v = plog2(A / sigma^2)

    i.e. bilinear in (sigma, v). The level model uses the pixel's own blur (``M_k`` falls with the blur:
    the same energy means more signal under a stronger blur), interpolated like the coefficients; the
    noise term ``N_k`` does not depend on the blur, so ``noise_energy`` is one number.

    Energy bands: one pair for the frame (pass 2 computes one energy), the pair :func:`energy_bands`
    picks at the *median* node of the map - the blur most pixels have; the pair moves by at most one
    band over 0.5..1.5 px and the rule's gain over fixed bands is <= 0.15 dB (module docstring), so
    the other pixels lose little.

    Nodes below the smallest Gaussian sigma (0.1 px) hold zero coefficients: sharp areas are left alone,
    as :func:`gpu_deconv.core.sigma_map.map_from_tiles` means by sigma 0.

    Attributes
    ----------
    tables : tuple of AdaptiveTable
        One per node.
    start, step : float
        Node sigma ``start + j step`` (px).
    """

    tables: tuple[AdaptiveTable, ...]
    start: float
    step: float

    def __post_init__(self) -> None:
        if len(self.tables) < 2:
            raise ValueError("a sigma table needs >= 2 nodes")
        if len({t.bands for t in self.tables}) != 1 or len({t.noise_var for t in self.tables}) != 1:
            raise ValueError("the tables of a sigma table must share their energy bands and noise")

    @property
    def nodes(self) -> int:
        return len(self.tables)

    def sigma_at(self, j: int) -> float:
        """Sigma (px) of node ``j`` (rounded to 1e-9 px, so node 1.3 is the float 1.3 a user types)."""
        return round(self.start + j * self.step, 9)

    def coefficients(self) -> np.ndarray:
        """``(N, TABLE_SIZE, K)`` float32: every node's table."""
        return np.stack([t.coefficients for t in self.tables])

    def inv_scales(self, channels: int) -> np.ndarray:
        """``(N,)`` float32: each node's ``inv_scale`` (:meth:`AdaptiveTable.energy_constants`)."""
        return np.array([t.energy_constants(channels)[2] for t in self.tables], np.float32)

    def cell_coordinates(self, sigma_map) -> np.ndarray:
        """The map's cell values as node coordinates ``(sigma - start) / step`` (float32, what the GPU's
        small map texture holds)."""
        return ((np.asarray(sigma_map.values, np.float64) - self.start) / self.step).astype(np.float32)

    def lookup(self, node_coord: np.ndarray, energy: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """``(c (..., K), A / sigma^2)`` per pixel, in the shader's float32 order (see the class docstring)."""
        n = self.nodes
        ts = np.clip(np.asarray(node_coord, np.float32), np.float32(0.0), np.float32(n - 1)).astype(np.float32)
        j = np.minimum(np.floor(ts).astype(np.int32), n - 2)
        g = (ts - j.astype(np.float32)).astype(np.float32)
        n_e, fl, _ = self.tables[0].energy_constants(channels)
        inv = self.inv_scales(channels)
        inv_p = (inv[j] + g * (inv[j + 1] - inv[j])).astype(np.float32)
        e = np.asarray(energy, np.float32)
        ratio = (np.maximum(e - n_e, fl * e) * inv_p).astype(np.float32)
        t = pseudo_log2(ratio) - np.float32(TABLE_START)
        t = np.clip(t, np.float32(0.0), np.float32(TABLE_SIZE - 1)).astype(np.float32)
        i = np.minimum(np.floor(t).astype(np.int32), TABLE_SIZE - 2)
        f = (t - i.astype(np.float32)).astype(np.float32)[..., None]
        tab = self.coefficients()
        ca = tab[j, i] + f * (tab[j, i + 1] - tab[j, i])
        cb = tab[j + 1, i] + f * (tab[j + 1, i + 1] - tab[j + 1, i])
        return (ca + g[..., None] * (cb - ca)).astype(np.float32), ratio


def sigma_nodes(lo: float, hi: float, step: float = SIGMA_STEP) -> tuple[float, int]:
    """``(start, N)``: nodes every ``step`` px from ``floor(lo / step) step`` covering ``hi``, N >= 2.

    Sigmas within ``1e-4 step`` of a node count as on it (maps read from float32 files hold 1.3 as
    1.29999995: it gets node 1.3, and the clamp of the node coordinate puts it exactly there)."""
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise ValueError(f"sigma range must be finite with 0 <= lo <= hi, got {lo!r}..{hi!r}")
    first = math.floor(lo / step + 1e-4)
    start = round(first * step, 9)
    n = max(2, math.ceil((hi - start) / step - 1e-4) + 1)
    return start, n


def pixel_node_coordinates(cells: np.ndarray, height: int, width: int,
                           region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Per-pixel node coordinate: bilinear interpolation of the ``(my, mx)`` float32 ``cells`` (a
    :class:`SigmaTable.cell_coordinates` grid over a ``height x width`` frame) at pixel centres, clamped at
    the border cells - :meth:`gpu_deconv.core.sigma_map.SigmaMap.per_pixel` in float32 and in the order
    pass 5 computes it: ``u = (x + 1/2) (mx / width) - 1/2`` clamped to [0, mx - 1],
    ``i0 = min(floor(u), max(mx - 2, 0))``, ``i1 = min(i0 + 1, mx - 1)``, ``a + f (b - a)`` along x, then y.

    Parameters
    ----------
    cells : ndarray (my, mx)
    height, width : int
        The whole frame (px).
    region : (x0, y0, w, h), optional
        The pixels wanted, in frame coordinates (a tile with its halo may reach outside the frame: the
        clamp extends the border cells). Default: the whole frame.
    """
    c = np.asarray(cells, np.float32)
    my, mx = c.shape
    x0, y0, w, h = (0, 0, width, height) if region is None else region

    def axis(start: int, n: int, m: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = np.arange(start, start + n, dtype=np.float32)
        u = (p + np.float32(0.5)) * np.float32(m / size) - np.float32(0.5)
        u = np.clip(u, np.float32(0.0), np.float32(m - 1)).astype(np.float32)
        i0 = np.minimum(np.floor(u).astype(np.int32), max(m - 2, 0))
        return i0, np.minimum(i0 + 1, m - 1), (u - i0.astype(np.float32)).astype(np.float32)

    ya, yb, fy = axis(y0, h, my, height)
    xa, xb, fx = axis(x0, w, mx, width)
    top = c[ya][:, xa] + fx * (c[ya][:, xb] - c[ya][:, xa])
    bottom = c[yb][:, xa] + fx * (c[yb][:, xb] - c[yb][:, xa])
    return (top + fy[:, None] * (bottom - top)).astype(np.float32)


# ------------------------------------------------------------------------------------------ the passes
def _store(precision: int, rounding: str):
    return (lambda a: to_float16(a, rounding)) if precision == 16 else (lambda a: np.asarray(a, np.float32))


def colour_layout(image: np.ndarray) -> tuple[np.ndarray, int, int | None]:
    """``(x (H, W, C) float32, colour channels, alpha index or None)``: gray/LA filter 1 channel, RGB/RGBA 3."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or not 1 <= x.shape[2] <= 4:
        raise ValueError(f"image must be (H, W) or (H, W, C) with C in 1..4, got shape {np.shape(image)}")
    a = alpha_channel(x.shape[2])
    return x, (1 if x.shape[2] <= 2 else 3), a


def pass_h(x: np.ndarray, basis: Basis) -> tuple[list[np.ndarray], np.ndarray]:
    """Pass 1: ``H_k = g_k *_x x`` (k = 1..K) and ``hx = HH_TAPS *_x x``, float32 (stored in fp32)."""
    return [convolve_axis(x, g, axis=1) for g in basis.lowpass_taps], convolve_axis(x, HH_TAPS, axis=1)


def pass_bands(x: np.ndarray, h: list[np.ndarray], hx: np.ndarray, basis: Basis, pair: tuple[int, int],
               precision: int = 16, fp16_rounding: str = "toward_zero"
               ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Pass 2: the stored bands ``L_k``, energy ``e`` and noise energy ``q`` (see the module docstring).

    ``G_k = g_k *_y H_k``; ``L_1 = x - G_1``, ``L_k = G_{k-1} - G_k``; ``hh = HH_TAPS *_y hx``;
    ``e = S (L_a,0^2 + L_a,1^2 + ... + L_b,0^2 + ...)`` and ``q = S (hh_0^2 + ...)``, summed channel by
    channel in this order from the float32 values *before* storage (so a GPU whose render target does
    the fp16 rounding computes the same numbers), then every output is stored (fp16 at precision 16).
    """
    store = _store(precision, fp16_rounding)
    prev = x
    raw = []
    for g, hk in zip(basis.lowpass_taps, h, strict=True):
        gk = convolve_axis(hk, g, axis=0)
        raw.append(prev - gk)
        prev = gk
    hh = convolve_axis(hx, HH_TAPS, axis=0)
    scale = np.float32(ENERGY_SCALE)

    def energy(arrs: list[np.ndarray]) -> np.ndarray:
        acc = None
        for a in arrs:
            for c in range(a.shape[2]):
                sq = a[:, :, c] * a[:, :, c]
                acc = sq if acc is None else acc + sq
        return store(acc * scale)

    return [store(b) for b in raw], energy([raw[pair[0]], raw[pair[1]]]), energy([hh])


def pass_energy(e: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pass 3 at half resolution ``(ceil(H/2), ceil(W/2))``: ``D`` and the 2x2 block sums of ``e`` and ``q``.

    ``D(q) = sum_{j=0..3} w_j (sum_{i=0..3} w_i e[m(2 q_y + j - 1), m(2 q_x + i - 1)])``, rows summed
    first, ascending; ``m`` the mirror rule at full resolution. Block sums add, in the order
    (0,0), (0,1), (1,0), (1,1) (row, column offsets), only pixels inside the image.
    """
    h, w = e.shape
    nh, nw = -(-h // 2), -(-w // 2)
    ys = 2 * np.arange(nh)
    xs = 2 * np.arange(nw)
    d = None
    for j, wj in enumerate(WINDOW_TAPS):
        rows = e[mirror_index(ys + j - 1, h)]
        row = None
        for i, wi in enumerate(WINDOW_TAPS):
            term = wi * rows[:, mirror_index(xs + i - 1, w)]
            row = term if row is None else row + term
        term = wj * row
        d = term if d is None else d + term
    sums = []
    for a in (e, q):
        acc = np.zeros((nh, nw), np.float32)
        for dy in (0, 1):
            for dx in (0, 1):
                blk = np.zeros((nh, nw), np.float32)
                part = a[dy::2, dx::2]
                blk[: part.shape[0], : part.shape[1]] = part
                acc = acc + blk
        sums.append(acc)
    return d.astype(np.float32), sums[0], sums[1]


def pass_reduce(block_sums: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Pass 4: per ``block x block`` full-resolution tile (``block/2`` squared half-resolution texels), the
    float32 sum of a half-resolution 2x2-sum map: row partial sums over x, then over y, ascending."""
    half = block // 2
    nh, nw = block_sums.shape
    ny, nx = -(-nh // half), -(-nw // half)
    pad = np.zeros((ny * half, nx * half), np.float32)
    pad[:nh, :nw] = block_sums
    t = pad.reshape(ny, half, nx, half)
    rows = t[:, :, :, 0].copy()
    for i in range(1, half):
        rows = rows + t[:, :, :, i]
    total = rows[:, 0].copy()
    for j in range(1, half):
        total = total + rows[:, j]
    return total


def upsample_energy(d: np.ndarray, h: int, w: int) -> np.ndarray:
    """``E`` at full resolution: bilinear interpolation of the half-resolution ``D`` at pixel centres.

    Pixel ``p = 2q + s`` sits at half-resolution coordinate ``q + (2s - 1)/4``, so it mixes ``D`` at
    ``q - 1, q`` with weights ``1/4, 3/4`` (s = 0) or ``q, q + 1`` with ``3/4, 1/4`` (s = 1), mirrored at the
    half-resolution size; rows first (x), then y, lower index first.
    """
    nh, nw = d.shape

    def taps(n: int, nn: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        p = np.arange(n)
        s = p & 1
        i0 = (p >> 1) - 1 + s
        w0 = np.where(s == 0, np.float32(0.25), np.float32(0.75)).astype(np.float32)
        return mirror_index(i0, nn), mirror_index(i0 + 1, nn), w0, (np.float32(1.0) - w0).astype(np.float32)

    x0, x1, wx0, wx1 = taps(w, nw)
    y0, y1, wy0, wy1 = taps(h, nh)
    r0 = wx0 * d[y0][:, x0] + wx1 * d[y0][:, x1]
    r1 = wx0 * d[y1][:, x0] + wx1 * d[y1][:, x1]
    return (wy0[:, None] * r0 + wy1[:, None] * r1).astype(np.float32)


def limit_overshoot(out: np.ndarray, x: np.ndarray, margin: float) -> np.ndarray:
    """Halo limiter: keep each output pixel near its input neighbourhood's range, with a soft knee.

    With ``lo, hi`` the min and max of the input over the pixel and its 4 neighbours (mirror rule) and
    ``m = margin (hi - lo)`` the allowed overshoot,

        out' = hi + o m / (m + o)   where  o = out - hi > 0,
        out' = lo - u m / (m + u)   where  u = lo - out > 0,       else out' = out,

    a saturation with slope 1 at the range's edge (small overshoots pass almost unchanged) and asymptote
    ``hi + m``: a ringing lobe can never exceed the local range by more than ``m``. ``margin = 0`` is a
    hard clamp to the neighbourhood range. Per channel, float32.

    Parameters
    ----------
    out : ndarray (H, W, C)
        Filtered colour channels (linear).
    x : ndarray (H, W, C)
        The filter's input, same channels.
    margin : float
        Allowed overshoot as a fraction of the local range (>= 0).

    Measured (held-out photographs of the module docstring, noisy/8-bit cases, adaptive mode): margin
    0.25 / 0.5 / 1.0 costs -1.47 / -1.06 / -0.66 dB mean PSNR (noise-free float: -9 / -8 / -6 dB: a
    deconvolution legitimately leaves the blurred input's 1-px range, so this is halo control, not a
    quality step); on the synthetic chart (sigma 1, noise 0.01) the 99th percentile of the overshoot
    beyond the true local range falls from 15.7 % of the local contrast to 4.2 / 5.6 / 7.2 % (mean 1.1 %
    to 0.2 / 0.3 / 0.4 %) for -0.86 / -0.65 / -0.41 dB there.

    Reference: the RCAS idea of limiting a sharpening lobe by the local min/max (AMD FidelityFX
    Super Resolution 1.0), here as a soft clamp after any filter.
    """
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"limiter margin must be a finite number >= 0, got {margin!r}")
    h, w = x.shape[:2]
    yy, xx = np.arange(h), np.arange(w)
    nbrs = (x[mirror_index(yy - 1, h)], x[:, mirror_index(xx - 1, w)], x[:, mirror_index(xx + 1, w)],
            x[mirror_index(yy + 1, h)])
    lo, hi = x, x
    for n in nbrs:
        lo = np.minimum(lo, n)
        hi = np.maximum(hi, n)
    m = np.float32(margin) * (hi - lo)
    o = np.maximum(out - hi, np.float32(0.0))
    u = np.maximum(lo - out, np.float32(0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        up = hi + o * m / (m + o)
        dn = lo - u * m / (m + u)
    return np.where(o > 0, up, np.where(u > 0, dn, out)).astype(np.float32)


@dataclass(frozen=True)
class AdaptiveStats:
    """Per-tile energies measured by the adaptive passes (the read-back grid), and what they estimate.

    Attributes
    ----------
    energy_sums : ndarray (ny, nx)
        Per 16x16 tile, the sum of the stored energies ``e`` (scaled by :data:`ENERGY_SCALE`).
    hh_sums : ndarray (ny, nx)
        Per tile, the sum of ``q = S sum_c hh_c^2``.
    block_counts : ndarray (ny, nx)
        Pixels per tile.
    channels : int
        Colour channels summed into ``e`` and ``q``.
    block : int
    """

    energy_sums: np.ndarray
    hh_sums: np.ndarray
    block_counts: np.ndarray
    channels: int
    block: int = BLOCK

    @staticmethod
    def from_grid(grid: np.ndarray, width: int, height: int, channels: int, block: int = BLOCK) -> AdaptiveStats:
        """From the reduce pass's ``(ny, nx, >= 2)`` grid (energy sums, hh sums) of a ``width x height`` image."""
        g = np.asarray(grid, dtype=np.float64)

        def sizes(n: int) -> np.ndarray:  # pixels per tile along one axis (the last tile may be partial)
            return np.minimum(block, n - block * np.arange(-(-n // block))).astype(np.float64)

        return AdaptiveStats(g[..., 0].copy(), g[..., 1].copy(), np.outer(sizes(height), sizes(width)), channels,
                             block)

    def band_stats(self) -> BandStats:
        """These tiles as :class:`~gpu_deconv.core.stats.BandStats`: the per-tile sums of the channel-mean
        squared diagonal band (``hh``, exactly the noise estimator's), and the local energy ``e`` per pixel as
        the first band's total - what the noise estimator and the temporal smoother
        (:mod:`gpu_deconv.core.temporal`: a jump of the energy is a scene cut) read."""
        scale = ENERGY_SCALE * self.channels
        energy = float(self.energy_sums.sum()) / scale
        return BandStats(np.array([energy, 0.0, 0.0]), self.hh_sums / scale, self.block_counts, self.block,
                         self.channels)

    def noise_std(self) -> float:
        """Noise standard deviation (linear units) by the estimator of :mod:`gpu_deconv.core.noise` - the
        10th percentile of per-tile diagonal-band energy - on this grid (``hh`` here is exactly that
        band, computed inside the adaptive passes)."""
        return noise_from_stats(self.band_stats())

    def level(self, table: AdaptiveTable) -> float:
        """Frame-average calibrated level ``A`` (linear units^2 rad^2/px^2) from the mean energy, by the
        same model as the per-pixel level (for display, and a global design if one is wanted)."""
        pixels = max(float(self.block_counts.sum()), 1.0)
        mean_e = float(self.energy_sums.sum()) / pixels
        n_e, fl, inv = table.energy_constants(self.channels)
        return max(mean_e - float(n_e), float(fl) * mean_e) * float(inv) * table.noise_var


def noise_variance(noise: float | None, bits: int | None, measured: float | None = None) -> float:
    """The noise variance a frame's table is solved for (linear units^2), by the global design's rule.

    Given noise: ``noise^2 + Delta^2/12``; measured (``noise=None``, i.e. 'auto'): ``max(measured^2,
    Delta^2/12)`` (the estimate already contains the quantization but reads it low in dark areas); both
    floored at :data:`gpu_deconv.core.design.NOISE_FLOOR` squared.

    Parameters
    ----------
    noise : float or None
        Noise standard deviation (linear units), or None for a measured one.
    bits : int or None
        Integer bit depth of the source (None: float).
    measured : float or None
        The frame's estimate (:meth:`AdaptiveStats.noise_std`) when ``noise`` is None.
    """
    from .design import NOISE_FLOOR
    from .noise import quantization_variance

    q = quantization_variance(bits)
    if noise is None:
        if measured is None:
            raise ValueError("noise 'auto' needs the frame's measured noise")
        var = max(measured * measured, q)
    else:
        var = float(noise) ** 2 + q
    return max(var, NOISE_FLOOR * NOISE_FLOOR)


@dataclass(frozen=True)
class AdaptiveResult:
    """What :func:`apply_adaptive` returns: the output and the by-products the GL path also has."""

    output: np.ndarray
    stats: AdaptiveStats
    level_ratio: np.ndarray  # A / sigma^2 per pixel (what the viewer shows as the false-colour overlay)


@dataclass(frozen=True)
class PreparedFrame:
    """Passes 1-4 of one frame (what :func:`prepare` returns and pass 5 consumes)."""

    x: np.ndarray  # (H, W, C) linear colour channels, float32
    bands: list[np.ndarray]  # stored bands L_k
    energy: np.ndarray  # half-resolution D
    stats: AdaptiveStats
    pair: tuple[int, int]  # the energy bands e was computed from


def prepare(x: np.ndarray, basis: Basis, pair: tuple[int, int], precision: int = 16,
            fp16_rounding: str = "toward_zero") -> PreparedFrame:
    """Passes 1-4 on the colour channels ``x`` (H, W, C) float32: bands, half-resolution energy, statistics."""
    if precision not in (16, 32):
        raise ValueError(f"precision must be 16 or 32, got {precision!r}")
    h_levels, hx = pass_h(x, basis)
    bands, e, q = pass_bands(x, h_levels, hx, basis, pair, precision, fp16_rounding)
    d, e_blk, q_blk = pass_energy(e, q)
    grid = np.stack([pass_reduce(e_blk), pass_reduce(q_blk)], axis=-1)
    stats = AdaptiveStats.from_grid(grid, x.shape[1], x.shape[0], x.shape[2])
    return PreparedFrame(x, bands, d, stats, tuple(pair))


def finish(frame: PreparedFrame, table: AdaptiveTable | ChannelTable | SigmaTable, limiter: float | None = None,
           node_coord: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pass 5: ``(output colour channels, A / sigma^2 per pixel)`` for a prepared frame and a table with
    the same energy bands; a :class:`SigmaTable` needs the frame's per-pixel ``node_coord``
    (:func:`pixel_node_coordinates`), a :class:`ChannelTable` a colour (3-channel) frame."""
    if tuple(table.bands) != frame.pair:
        raise ValueError(f"the table's energy bands {table.bands} differ from the frame's {frame.pair}")
    x = frame.x
    h, w = x.shape[:2]
    energy = upsample_energy(frame.energy, h, w)
    if isinstance(table, SigmaTable):
        if node_coord is None or np.shape(node_coord) != (h, w):
            raise ValueError(f"a sigma table needs the per-pixel node coordinates of the {w}x{h} frame")
        c, ratio = table.lookup(node_coord, energy, x.shape[2])
    elif isinstance(table, ChannelTable):
        ratio = table.level_ratio(energy, x.shape[2])
        out = x.copy()
        c = table.lookup(ratio)  # (H, W, 3, K): channel by channel
        for k, band in enumerate(frame.bands):
            out = out + c[:, :, :, k] * band
        return (out if limiter is None else limit_overshoot(out, x, limiter)), ratio
    else:
        ratio = table.level_ratio(energy, x.shape[2])
        c = table.lookup(ratio)
    out = x.copy()
    for k, band in enumerate(frame.bands):
        out = out + c[:, :, k:k + 1] * band
    if limiter is not None:
        out = limit_overshoot(out, x, limiter)
    return out, ratio


def _assemble(image: np.ndarray, frame: PreparedFrame, table: AdaptiveTable | ChannelTable | SigmaTable,
              limiter: float | None, node_coord: np.ndarray | None = None) -> AdaptiveResult:
    x4, colour, alpha = colour_layout(image)
    out, ratio = finish(frame, table, limiter, node_coord)
    res = x4.copy()
    res[:, :, :colour] = out
    if alpha is not None:
        res[:, :, alpha] = x4[:, :, alpha]
    if np.ndim(image) == 2:
        res = res[:, :, 0]
    return AdaptiveResult(res.astype(np.float32), frame.stats, ratio)


def apply_adaptive(image: np.ndarray, table: AdaptiveTable | ChannelTable, *, precision: int = 16,
                   limiter: float | None = None, fp16_rounding: str = "toward_zero") -> AdaptiveResult:
    """Apply the adaptive filter to a linear float image exactly as the GPU passes do (float32).

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C), C in 1..4
        Linear-light values; alpha (channel 1 of 2, 3 of 4) passes through bit-exactly.
    table : AdaptiveTable or ChannelTable
        From :class:`AdaptiveSolver` (:meth:`~AdaptiveSolver.solve`, or
        :meth:`~AdaptiveSolver.solve_channels` for one blur per colour channel: RGB/RGBA images only).
    precision : {16, 32}
        Storage of the bands and energies (the lowpass sums are always fp32).
    limiter : float or None
        Halo limiter margin (:func:`limit_overshoot`); None disables it.
    fp16_rounding : {'toward_zero', 'nearest'}
        How precision-16 stores round (llvmpipe: toward zero).

    Returns
    -------
    AdaptiveResult
    """
    x4, colour, _ = colour_layout(image)
    if isinstance(table, ChannelTable) and colour != 3:
        raise ValueError(f"a per-channel sigma (R, G, B) needs a colour image, this one has {colour} colour channel")
    frame = prepare(x4[:, :, :colour], table.basis, table.bands, precision, fp16_rounding)
    return _assemble(image, frame, table, limiter)


def apply_sigma_map(image: np.ndarray, table: SigmaTable, sigma_map, *, precision: int = 16,
                    limiter: float | None = None, fp16_rounding: str = "toward_zero") -> AdaptiveResult:
    """The adaptive filter with a spatially varying blur, exactly as the GPU passes run it (float32):
    passes 1-4 as :func:`apply_adaptive`, pass 5 with per-pixel coefficients bilinear in (sigma, level)
    (:class:`SigmaTable`), the sigma per pixel bilinear in the map's cells (:func:`pixel_node_coordinates`).

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C)
        Linear light, the map's frame size.
    table : SigmaTable
        From :meth:`AdaptiveSolver.solve_map` over the map's range.
    sigma_map : gpu_deconv.core.sigma_map.SigmaMap
        Blur sigma (px) per cell, for this frame size.
    precision, limiter, fp16_rounding
        As :func:`apply_adaptive`.

    Reference: :func:`gpu_deconv.core.sigma_map.apply_sigma_map` (blend of global filters at the nodes),
    the same interpolation in sigma with the adaptive filter's coefficients.
    """
    x4, colour, _ = colour_layout(image)
    h, w = x4.shape[:2]
    if (sigma_map.height, sigma_map.width) != (h, w):
        raise ValueError(f"image is {w}x{h} but the sigma map is for {sigma_map.width}x{sigma_map.height}")
    frame = prepare(x4[:, :, :colour], table.basis, table.bands, precision, fp16_rounding)
    coords = pixel_node_coordinates(table.cell_coordinates(sigma_map), h, w)
    return _assemble(image, frame, table, limiter, coords)


def deconvolve(image: np.ndarray, blur: BlurModel | tuple[BlurModel, ...], noise: float | None,
               bits: int | None = None, *,
               solver: AdaptiveSolver, precision: int = 16, limiter: float | None = None,
               fp16_rounding: str = "toward_zero") -> tuple[AdaptiveResult, AdaptiveTable | ChannelTable]:
    """One frame through the adaptive mode as the engine runs it, in NumPy (the flow the GL engine
    follows with :class:`gpu_deconv.gl.adaptive.AdaptiveExecutor`):

    * given noise: solve the table, run passes 1-4 and 5; the statistics come with the output;
    * ``noise=None`` ('auto'): passes 1-4 with the energy bands of :data:`PROVISIONAL_NOISE`, the noise
      from their statistics, the table for it, passes 2-4 again only if the table wants other energy
      bands, then pass 5.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C)
        Linear light.
    blur : BlurModel or (BlurModel, BlurModel, BlurModel)
        One blur, or one per colour channel (R, G, B: a :class:`ChannelTable`, whose median blur picks
        the provisional energy bands).
    noise : float or None
        Noise standard deviation (linear units), None to estimate it.
    bits : int or None
        Integer bit depth of the source (quantization noise), None for float.
    solver : AdaptiveSolver
        Cached per basis by the caller.
    precision, limiter, fp16_rounding
        As :func:`apply_adaptive`.

    Returns
    -------
    (AdaptiveResult, AdaptiveTable or ChannelTable)
    """
    x4, colour, _ = colour_layout(image)
    x = x4[:, :, :colour]
    if isinstance(blur, tuple):
        if colour != 3:
            raise ValueError(f"a per-channel sigma (R, G, B) needs a colour image, this one has {colour} colour "
                             "channel")
        middle = sorted(blur, key=lambda b: float(solver.gains(b)[0].sum()))[1]

        def solve(var: float) -> AdaptiveTable | ChannelTable:
            return solver.solve_channels(blur, var)
    else:
        middle = blur

        def solve(var: float) -> AdaptiveTable | ChannelTable:
            return solver.solve(blur, var)
    if noise is None:
        bands = solver.solve(middle, noise_variance(PROVISIONAL_NOISE, bits)).bands
        frame = prepare(x, solver.basis, bands, precision, fp16_rounding)
        table = solve(noise_variance(None, bits, frame.stats.noise_std()))
        if table.bands != bands:
            frame = prepare(x, solver.basis, table.bands, precision, fp16_rounding)
    else:
        table = solve(noise_variance(noise, bits))
        frame = prepare(x, solver.basis, table.bands, precision, fp16_rounding)
    return _assemble(image, frame, table, limiter), table


__all__ = [
    "ENERGY_SCALE", "LEVEL_FLOOR", "TABLE_SIZE", "TABLE_START", "TYPICAL_LEVEL", "WINDOW_HALO",
    "PROVISIONAL_NOISE", "SIGMA_STEP", "AdaptiveResult", "AdaptiveSolver", "AdaptiveStats", "AdaptiveTable",
    "ChannelTable",
    "PreparedFrame", "SigmaTable", "apply_adaptive", "apply_sigma_map", "deconvolve", "energy_bands", "finish",
    "limit_overshoot", "noise_variance", "pixel_node_coordinates", "prepare", "pseudo_log2", "sigma_nodes",
    "upsample_energy",
]
