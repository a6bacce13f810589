"""A sharp synthetic test chart built by code, plus the blur/noise and PSNR helpers that go with it.

:func:`test_chart` draws, in linear light and anti-aliased by 4x4 supersampling (box-filtered, so
edges are the exact pixel coverage a perfect sensor would record):

* a Siemens star (36 cycles) and a zone plate whose frequency reaches Nyquist at its rim;
* a slanted-edge square (5 degrees, ISO 12233 style) and a disc (edges at every angle);
* bar groups at pitches 2, 2.5, 3, 4, 5, 6 and 8 px, vertical and horizontal;
* a seeded 1/f ("natural image") texture, colour patches and 12 gray steps equal in L*;
* point sources and close point pairs on black (they show the PSF and its ringing);
* text in a built-in 5x7 bitmap font at 1, 2 and 3 px per font pixel, dark on light and light on dark.

All values stay in [0.01, 0.95] so a deconvolution's overshoot is not clipped by the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .colour import decode_lut

DEFAULT_SIZE = (512, 768)
_DESIGN = (512.0, 768.0)
_SS = 4  # supersampling factor per axis

BLACK = 0.02
WHITE = 0.85
BACKGROUND = 0.18

# 5x7 glyphs, rows top to bottom, '#' = ink.
_FONT_SRC = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "####. #...# #...# #...# #...# #...# ####.",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    " ": "..... ..... ..... ..... ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    "-": "..... ..... ..... ##### ..... ..... .....",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "=": "..... ..... ##### ..... ##### ..... .....",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
}
FONT: dict[str, np.ndarray] = {
    ch: np.array([[c == "#" for c in row] for row in src.split()], dtype=bool) for ch, src in _FONT_SRC.items()
}


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """Bool mask of ``text`` in the built-in 5x7 font: ``7*scale`` rows, ``6*scale`` columns per character.

    Lower case is drawn as upper case; characters the font lacks are drawn as ``?``.
    """
    scale = max(1, int(scale))
    if not text:
        return np.zeros((7 * scale, 0), dtype=bool)
    cols = []
    for ch in text.upper():
        g = FONT.get(ch, FONT["?"])
        cols.append(np.pad(g, ((0, 0), (0, 1))))  # one column of spacing
    m = np.concatenate(cols, axis=1)[:, :-1]
    return np.kron(m, np.ones((scale, scale), dtype=bool))


def _srgb8_to_linear(rgb: tuple[int, int, int]) -> np.ndarray:
    return decode_lut(8)[np.asarray(rgb)].astype(np.float64)


def _lstar_to_y(lstar: np.ndarray) -> np.ndarray:
    f = (lstar + 16.0) / 116.0
    return np.where(f > 6.0 / 29.0, f**3, 3 * (6.0 / 29.0) ** 2 * (f - 4.0 / 29.0))


class _Canvas:
    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = h, w
        self.img = np.full((h, w, 3), BACKGROUND, dtype=np.float64)
        s = min(h / _DESIGN[0], w / _DESIGN[1])
        self.s = s
        self.oy = (h - s * _DESIGN[0]) / 2.0
        self.ox = (w - s * _DESIGN[1]) / 2.0

    def box(self, y0: float, y1: float, x0: float, x1: float) -> tuple[int, int, int, int]:
        """Design units -> clipped integer pixel box."""
        b = (
            int(round(self.oy + self.s * y0)),
            int(round(self.oy + self.s * y1)),
            int(round(self.ox + self.s * x0)),
            int(round(self.ox + self.s * x1)),
        )
        return (max(0, b[0]), min(self.h, b[1]), max(0, b[2]), min(self.w, b[3]))

    def fill(self, box: tuple[int, int, int, int], value: float | np.ndarray) -> None:
        y0, y1, x0, x1 = box
        self.img[y0:y1, x0:x1] = value

    def render(self, box: tuple[int, int, int, int], fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        """Set the box to ``fn(y, x)`` averaged over 4x4 samples per pixel (y, x in pixel units; pixel
        (i, j) covers [i, i+1) x [j, j+1))."""
        y0, y1, x0, x1 = box
        ny, nx = y1 - y0, x1 - x0
        if ny <= 0 or nx <= 0:
            return
        ys = y0 + (np.arange(ny * _SS) + 0.5) / _SS
        xs = x0 + (np.arange(nx * _SS) + 0.5) / _SS
        v = np.asarray(fn(ys[:, None], xs[None, :]), dtype=np.float64)
        v = np.broadcast_to(v, (ny * _SS, nx * _SS) + v.shape[2:])
        if v.ndim == 2:
            v = v[..., None]
        v = v.reshape(ny, _SS, nx, _SS, v.shape[-1]).mean(axis=(1, 3))
        self.img[y0:y1, x0:x1] = v

    def stamp(self, y: int, x: int, mask: np.ndarray, value: float | np.ndarray, clip: tuple[int, ...]) -> None:
        """Paint ``value`` where ``mask`` is set, top-left at pixel (y, x), clipped to a box."""
        cy0, cy1, cx0, cx1 = clip
        h, w = mask.shape
        ya, yb = max(y, cy0), min(y + h, cy1)
        xa, xb = max(x, cx0), min(x + w, cx1)
        if ya >= yb or xa >= xb:
            return
        m = mask[ya - y : yb - y, xa - x : xb - x]
        self.img[ya:yb, xa:xb][m] = value


def _center_radius(box: tuple[int, int, int, int]) -> tuple[float, float, float]:
    y0, y1, x0, x1 = box
    return (y0 + y1) / 2.0, (x0 + x1) / 2.0, min(y1 - y0, x1 - x0) / 2.0 - 2.0


def _siemens_star(cv: _Canvas, box: tuple[int, int, int, int], cycles: int = 36) -> None:
    cy, cx, r = _center_radius(box)

    def fn(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        dy, dx = y - cy, x - cx
        theta = np.arctan2(dy, dx)
        star = np.where(np.sin(cycles * theta) >= 0, WHITE, BLACK)
        return np.where(dx * dx + dy * dy <= r * r, star, BACKGROUND)

    cv.render(box, fn)


def _zone_plate(cv: _Canvas, box: tuple[int, int, int, int]) -> None:
    cy, cx, r = _center_radius(box)
    k = math.pi / (2.0 * max(r, 1.0))  # local frequency 2 k rho reaches pi (Nyquist) at the rim

    def fn(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        rho2 = (y - cy) ** 2 + (x - cx) ** 2
        zp = BLACK + (WHITE - BLACK) * 0.5 * (1.0 + np.cos(k * rho2))
        return np.where(rho2 <= r * r, zp, BACKGROUND)

    cv.render(box, fn)


def _slanted_square(cv: _Canvas, box: tuple[int, int, int, int], angle_deg: float = 5.0) -> None:
    cy, cx, r = _center_radius(box)
    half = 0.55 * r
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))

    def fn(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        u = (x - cx) * c + (y - cy) * s
        v = -(x - cx) * s + (y - cy) * c
        inside = (np.abs(u) <= half) & (np.abs(v) <= half)
        return np.where(inside, BLACK, WHITE)

    cv.render(box, fn)


def _disc(cv: _Canvas, box: tuple[int, int, int, int]) -> None:
    cy, cx, r = _center_radius(box)
    rr = 0.6 * r

    def fn(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.where((y - cy) ** 2 + (x - cx) ** 2 <= rr * rr, WHITE, BLACK)

    cv.render(box, fn)


_PITCHES = (2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)


def _bars(cv: _Canvas, box: tuple[int, int, int, int], vertical: bool, cycles: int = 5) -> None:
    """Groups of ``cycles`` bright/dark line pairs at each pitch (px), left to right."""
    y0, y1, x0, x1 = box
    cv.fill(box, WHITE * 0.5 + BLACK * 0.5)
    gap = max(2, int(round(6 * cv.s)))
    pos = x0 + gap
    for p in _PITCHES:
        width = int(math.ceil(cycles * p))
        if pos + width > x1 - gap:
            break
        start = float(pos)
        g = (y0 + gap, y1 - gap, pos, pos + width)
        if vertical:
            cv.render(g, lambda y, x, p=p, start=start: np.where(((x - start) / p) % 1.0 < 0.5, WHITE, BLACK))
        else:
            # Horizontal lines, phase anchored at the group's top.
            top = float(g[0])
            cv.render(g, lambda y, x, p=p, top=top: np.where(((y - top) / p) % 1.0 < 0.5, WHITE, BLACK))
        pos += width + gap


def _pink_noise(h: int, w: int, seed: int) -> np.ndarray:
    """Seeded colour texture with a ~1/f amplitude spectrum (natural-image statistics), in [0.05, 0.75]."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f**-1.15  # natural images: amplitude ~ 1/f^(1..1.2)
    amp[0, 0] = 0.0
    base = np.fft.irfft2(amp * np.fft.rfft2(rng.standard_normal((h, w))), s=(h, w))
    chans = []
    for _ in range(3):  # correlated channels: shared structure plus a little of their own
        own = np.fft.irfft2(amp * np.fft.rfft2(rng.standard_normal((h, w))), s=(h, w))
        chans.append(base + 0.35 * own)
    t = np.stack(chans, axis=-1)
    t = (t - t.mean()) / (t.std() + 1e-12)
    t = np.clip(0.5 + 0.22 * t, 0.0, 1.0)
    return 0.05 + 0.7 * t**2.2  # spread in sRGB-ish terms, like a photograph's tones


def _text_block(cv: _Canvas, box: tuple[int, int, int, int]) -> None:
    y0, y1, x0, x1 = box
    mid = (y0 + y1) // 2
    light = (y0, mid, x0, x1)
    dark = (mid, y1, x0, x1)
    cv.fill(light, WHITE)
    cv.fill(dark, BLACK)
    lines = [
        ("GPU DECONV TEST CHART 0123456789", 1),
        ("QUICK BROWN FOX 1/2 (3.4) -5=?!", 1),
        ("SHARP 1:1 - 2:1", 2),
        ("0123456789", 3),
    ]
    for area, ink in ((light, BLACK), (dark, WHITE)):
        y = area[0] + 3
        for text, scale in lines:
            m = text_mask(text, scale)
            if y + m.shape[0] > area[1]:
                break
            cv.stamp(y, area[2] + 3, m, ink, area)
            y += m.shape[0] + 2 * scale + 1


def _colour_patches(cv: _Canvas, box: tuple[int, int, int, int]) -> None:
    colours = [
        (200, 40, 40), (40, 160, 60), (40, 70, 190), (220, 200, 40),
        (40, 180, 190), (180, 60, 170), (225, 170, 140), (110, 80, 60),
    ]
    y0, y1, x0, x1 = box
    n = len(colours)
    edges = np.linspace(x0, x1, n + 1).round().astype(int)
    for i, rgb in enumerate(colours):
        cv.fill((y0, y1, edges[i], edges[i + 1]), _srgb8_to_linear(rgb))


def _checkers(cv: _Canvas, box: tuple[int, int, int, int]) -> None:
    y0, y1, x0, x1 = box
    n = 4
    edges = np.linspace(x0, x1, n + 1).round().astype(int)
    for i, cell in enumerate((1, 2, 3, 4)):
        yy, xx = np.mgrid[y0:y1, edges[i] : edges[i + 1]]
        on = ((yy - y0) // cell + (xx - edges[i]) // cell) % 2 == 0
        cv.img[y0:y1, edges[i] : edges[i + 1]] = np.where(on, WHITE, BLACK)[..., None]


def _gray_steps(cv: _Canvas, box: tuple[int, int, int, int], n: int = 12) -> None:
    y0, y1, x0, x1 = box
    levels = _lstar_to_y(np.linspace(8.0, 96.0, n))
    edges = np.linspace(x0, x1, n + 1).round().astype(int)
    for i, v in enumerate(levels):
        cv.fill((y0, y1, edges[i], edges[i + 1]), float(v))


def _points(cv: _Canvas, box: tuple[int, int, int, int]) -> None:
    """Single-pixel points, small discs and close pairs on black."""
    y0, y1, x0, x1 = box
    cv.fill(box, 0.01)
    peak = 0.95
    step = max(8, int(round(20 * cv.s)))
    rows = list(range(y0 + step // 2, y1 - 4, step))
    cols = list(range(x0 + step // 2, x1 - 4, step))
    if not rows or not cols:
        return
    # Row 0: single pixels. Row 1: pairs 2, 3, 4, 5 px apart. Further rows: discs of growing radius.
    for j, x in enumerate(cols):
        cv.img[rows[0], x] = peak
        if len(rows) > 1:
            sep = 2 + j % 4
            if x + sep < x1:
                cv.img[rows[1], x] = peak
                cv.img[rows[1], x + sep] = peak
    radii = (0.5, 0.8, 1.2, 1.7, 2.5)
    for i, y in enumerate(rows[2:]):
        r = radii[i % len(radii)]
        for x in cols:
            cy, cx = y + 0.5, x + 0.5
            b = (max(y0, y - 4), min(y1, y + 5), max(x0, x - 4), min(x1, x + 5))
            cv.render(b, lambda yy, xx, cy=cy, cx=cx, r=r: np.where(
                (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r, peak, 0.01))


def test_chart(size: tuple[int, int] = DEFAULT_SIZE, *, color: bool = True, seed: int = 0) -> np.ndarray:
    """Draw the sharp reference chart (see the module docstring) in linear light.

    Parameters
    ----------
    size : (int, int)
        ``(height, width)`` in pixels; the 512 x 768 layout is scaled to fit and centred, while
        pixel-scale details (bar pitches, font pixels, points) keep their sizes in pixels.
    color : bool
        ``(H, W, 3)`` colour, or ``(H, W)`` luminance (BT.709 weights).
    seed : int
        Seed of the texture patch.

    Returns
    -------
    ndarray, float32
        Linear values in [0.01, 0.95].
    """
    h, w = (int(v) for v in size)
    if h < 16 or w < 16:
        raise ValueError(f"chart size must be at least 16 x 16, got {h} x {w}")
    cv = _Canvas(h, w)
    _siemens_star(cv, cv.box(8, 248, 8, 248))
    _zone_plate(cv, cv.box(8, 248, 260, 500))
    _slanted_square(cv, cv.box(8, 128, 512, 632))
    _disc(cv, cv.box(8, 128, 640, 760))
    _bars(cv, cv.box(136, 192, 512, 760), vertical=True)
    _bars(cv, cv.box(192, 248, 512, 760), vertical=False)
    tb = cv.box(256, 504, 8, 248)
    if tb[1] > tb[0] and tb[3] > tb[2]:
        cv.img[tb[0] : tb[1], tb[2] : tb[3]] = _pink_noise(tb[1] - tb[0], tb[3] - tb[2], seed)
    _text_block(cv, cv.box(256, 384, 260, 500))
    _colour_patches(cv, cv.box(392, 440, 260, 500))
    _checkers(cv, cv.box(448, 504, 260, 500))
    _gray_steps(cv, cv.box(256, 320, 512, 760))
    _points(cv, cv.box(328, 504, 512, 760))
    img = np.clip(cv.img, 0.01, 0.95).astype(np.float32)
    if not color:
        return (img @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)).astype(np.float32)
    return img


test_chart.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name


# ---------------------------------------------------------------------------------------------------
# degradation and scoring


def _gaussian_taps(sigma: float) -> np.ndarray:
    """Pixel-integrated Gaussian taps, radius ceil(4 sigma) + 1, normalised (same rule as
    :class:`gpu_deconv.core.blur.Gaussian`, used where that class refuses the sigma)."""
    from scipy.special import erf

    r = math.ceil(4.0 * sigma) + 1
    x = np.arange(-r, r + 1, dtype=np.float64)
    s = sigma * math.sqrt(2.0)
    t = 0.5 * (erf((x + 0.5) / s) - erf((x - 0.5) / s))
    t = 0.5 * (t + t[::-1])
    return t / t.sum()


def gaussian_taps(sigma: float) -> np.ndarray:
    """``gpu_deconv.core.blur.Gaussian(sigma).taps``, or the same formula outside that class's sigma range."""
    try:
        from .blur import Gaussian

        return np.asarray(Gaussian(sigma).taps, dtype=np.float64)
    except (ImportError, ValueError):
        return _gaussian_taps(float(sigma))


def blur_and_noise(
    image: np.ndarray,
    sigma: float,
    noise: float = 0.0,
    seed: int | None = 0,
    *,
    clip: bool = False,
) -> np.ndarray:
    """Degrade a linear image: pixel-integrated Gaussian blur (mirror boundary) plus Gaussian noise.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, C)
        Linear light (converted to float32).
    sigma : float
        Blur sigma in pixels; 0 skips the blur. Separable taps from :func:`gaussian_taps`, applied
        with :func:`gpu_deconv.core.reference.convolve_axis` (edge pixel repeated at the border).
    noise : float
        Standard deviation of additive white Gaussian noise, linear units.
    seed : int or None
        Noise seed.
    clip : bool
        Clip the result to [0, 1] like a sensor would (changes the noise statistics near 0 and 1).

    Returns
    -------
    ndarray, float32, same shape
    """
    from .reference import convolve_axis

    x = np.asarray(image, dtype=np.float32)
    s = float(sigma)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    if not math.isfinite(float(noise)) or noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    if s > 0:
        t = gaussian_taps(s).astype(np.float32)
        x = convolve_axis(convolve_axis(x, t, axis=1), t, axis=0)
    else:
        x = x.copy()
    if noise > 0:
        rng = np.random.default_rng(seed)
        x = x + np.float32(noise) * rng.standard_normal(x.shape, dtype=np.float32)
    if clip:
        x = np.clip(x, 0.0, 1.0)
    return x.astype(np.float32, copy=False)


def _to_linear(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return decode_lut(8)[a].astype(np.float64)
    if a.dtype == np.uint16:
        return decode_lut(16)[a].astype(np.float64)
    if a.dtype.kind == "f":
        return a.astype(np.float64)
    raise TypeError(f"psnr needs uint8, uint16 (sRGB) or float (linear) images, got {a.dtype}")


def psnr(a: np.ndarray, b: np.ndarray, border: int = 16, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, in linear light, ignoring ``border`` pixels on each side.

    Integer inputs are sRGB-encoded and decoded to linear first; float inputs are linear. Identical
    images give ``inf``.
    """
    x, y = _to_linear(a), _to_linear(b)
    if x.shape != y.shape:
        raise ValueError(f"psnr needs equal shapes, got {x.shape} and {y.shape}")
    bd = int(border)
    if bd > 0:
        if 2 * bd >= x.shape[0] or 2 * bd >= x.shape[1]:
            raise ValueError(f"border {bd} leaves nothing of a {x.shape[0]} x {x.shape[1]} image")
        x, y = x[bd:-bd, bd:-bd], y[bd:-bd, bd:-bd]
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)
