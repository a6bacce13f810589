"""CAS- and RCAS-style single-pass sharpeners (GLSL in ``cas.frag`` / ``rcas.frag``), their NumPy references
and a ground-truth sharpness tuner, used as peers by ``benchmarks/quality.py`` and ``benchmarks/speed.py``.

Both are written for this project from the published descriptions of the two filters (the maths is in the
shader headers); they are contrast-adaptive *sharpeners*, not deconvolvers: they know nothing about the
blur or the noise, and their strength is one ``sharpness`` in [0, 1].

Images are linear-light float32 ``(H, W)`` or ``(H, W, C)`` with C in {1, 3, 4} (alpha, C=4, is copied);
the boundary is the engine's mirror rule (edge pixel repeated).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

KINDS = ("cas", "rcas")
DEFAULT_SHARPNESS = {"cas": 0.5, "rcas": 0.8}
#: Sharpness grid searched by :func:`tune`.
SHARPNESS_GRID = tuple(float(s) for s in np.linspace(0.0, 1.0, 11))
RCAS_LOBE_CAP = np.float32(0.1875)
_EPS = np.float32(1e-8)
_DIR = Path(__file__).resolve().parent

_VERT = """#version 330 core
void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""


def cas_peak(sharpness: float) -> np.float32:
    """CAS's negative lobe scale ``-1 / (8 - 3 sharpness)`` (float32, the shader's ``u_peak``)."""
    s = float(np.clip(sharpness, 0.0, 1.0))
    return np.float32(-1.0 / (8.0 - 3.0 * s))


def _as3(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour channels (H, W, c) as float32 and the alpha plane (or None)."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.shape[2] == 4:
        return x[:, :, :3], x[:, :, 3]
    if x.shape[2] not in (1, 3):
        raise ValueError(f"expected 1, 3 or 4 channels, got shape {image.shape}")
    return x, None


def _neighbour(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``x`` shifted so that out[y, x] = x[mirror(y + dy), mirror(x + dx)] (mirror: edge pixel repeated)."""
    h, w = x.shape[:2]
    iy = np.clip(np.arange(h) + dy, -1, h)
    ix = np.clip(np.arange(w) + dx, -1, w)
    iy = np.where(iy < 0, -1 - iy, np.where(iy >= h, 2 * h - 1 - iy, iy))
    ix = np.where(ix < 0, -1 - ix, np.where(ix >= w, 2 * w - 1 - ix, ix))
    return x[iy][:, ix]


def _finish(out: np.ndarray, image: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if alpha is not None:
        out = np.concatenate([out, alpha[:, :, None]], axis=2)
    out = out.astype(np.float32, copy=False)
    return out[:, :, 0] if np.ndim(image) == 2 else out


def cas_reference(image: np.ndarray, sharpness: float = DEFAULT_SHARPNESS["cas"]) -> np.ndarray:
    """NumPy mirror of ``cas.frag`` (float32)."""
    e, alpha = _as3(image)
    n = {(dy, dx): _neighbour(e, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)}
    b, d, f, h = n[(-1, 0)], n[(0, -1)], n[(0, 1)], n[(1, 0)]
    a, c, g, i = n[(-1, -1)], n[(-1, 1)], n[(1, -1)], n[(1, 1)]
    mn_cross = np.minimum(np.minimum(np.minimum(b, d), np.minimum(f, h)), e)
    mx_cross = np.maximum(np.maximum(np.maximum(b, d), np.maximum(f, h)), e)
    mn_box = np.minimum(mn_cross, np.minimum(np.minimum(a, c), np.minimum(g, i)))
    mx_box = np.maximum(mx_cross, np.maximum(np.maximum(a, c), np.maximum(g, i)))
    half = np.float32(0.5)
    mn = half * (mn_cross + mn_box)
    mx = half * (mx_cross + mx_box)
    amp = np.sqrt(np.clip(np.minimum(mn, np.float32(1) - mx) / np.maximum(mx, _EPS), 0.0, 1.0))
    w = amp * cas_peak(sharpness)
    s = (b + d) + (f + h)
    return _finish((e + w * s) / (np.float32(1) + np.float32(4) * w), image, alpha)


def rcas_reference(image: np.ndarray, sharpness: float = DEFAULT_SHARPNESS["rcas"]) -> np.ndarray:
    """NumPy mirror of ``rcas.frag`` (float32)."""
    e, alpha = _as3(image)
    b, d, f, h = (_neighbour(e, dy, dx) for dy, dx in ((-1, 0), (0, -1), (0, 1), (1, 0)))
    mn = np.minimum(np.minimum(np.minimum(b, d), np.minimum(f, h)), e)
    mx = np.maximum(np.maximum(np.maximum(b, d), np.maximum(f, h)), e)
    s = (b + d) + (f + h)
    four = np.float32(4)
    lo = -(e - mn) / np.maximum(s - four * mn, _EPS)
    hi = -(mx - e) / np.maximum(four * mx - s, _EPS)
    lim = np.maximum(lo, hi).max(axis=2, keepdims=True)
    lobe = np.float32(np.clip(sharpness, 0.0, 1.0)) * np.maximum(lim, -RCAS_LOBE_CAP)
    return _finish((e + lobe * s) / (np.float32(1) + four * lobe), image, alpha)


def apply_reference(image: np.ndarray, kind: str, sharpness: float | None = None) -> np.ndarray:
    fn = {"cas": cas_reference, "rcas": rcas_reference}[kind]
    return fn(image, DEFAULT_SHARPNESS[kind] if sharpness is None else sharpness)


class Sharpener:
    """The two shaders compiled in a moderngl context (borrowed: not released by :meth:`release`, which
    frees only this object's programs, textures and framebuffers)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.programs = {k: ctx.program(vertex_shader=_VERT, fragment_shader=(_DIR / f"{k}.frag").read_text())
                         for k in KINDS}
        self._vaos = {k: ctx.vertex_array(p, []) for k, p in self.programs.items()}
        self._targets: dict[tuple[int, int], tuple] = {}

    def render(self, kind: str, src, fbo, sharpness: float | None = None) -> None:
        """Draw one pass: RGBA texture ``src`` (bound to unit 0, NEAREST) -> framebuffer ``fbo``, same size."""
        s = DEFAULT_SHARPNESS[kind] if sharpness is None else float(sharpness)
        prog = self.programs[kind]
        if kind == "cas":
            prog["u_peak"].value = float(cas_peak(s))
        else:
            prog["u_sharpness"].value = float(np.float32(np.clip(s, 0.0, 1.0)))
        if "u_src" in prog:
            prog["u_src"].value = 0
        src.filter = (self.ctx.NEAREST, self.ctx.NEAREST)
        src.use(0)
        fbo.use()
        fbo.viewport = (0, 0, *src.size)
        self._vaos[kind].render(self.ctx.TRIANGLES, vertices=3)

    def _target(self, w: int, h: int) -> tuple:
        t = self._targets.get((w, h))
        if t is None:
            src = self.ctx.texture((w, h), 4, dtype="f4")
            dst = self.ctx.texture((w, h), 4, dtype="f4")
            t = self._targets[(w, h)] = (src, dst, self.ctx.framebuffer([dst]))
        return t

    def apply(self, image: np.ndarray, kind: str, sharpness: float | None = None) -> np.ndarray:
        """Sharpen a float32 (H, W) / (H, W, C) image on the GPU; float32 of the same shape."""
        x = np.asarray(image, dtype=np.float32)
        x3 = x[:, :, None] if x.ndim == 2 else x
        h, w, c = x3.shape
        if c not in (1, 3, 4):
            raise ValueError(f"expected 1, 3 or 4 channels, got shape {x.shape}")
        rgba = np.empty((h, w, 4), np.float32)
        rgba[:, :, :3] = x3[:, :, :1] if c == 1 else x3[:, :, :3]  # gray: replicated, so RCAS's lobe is its own
        rgba[:, :, 3] = x3[:, :, 3] if c == 4 else 1.0
        src, dst, fbo = self._target(w, h)
        src.write(rgba.tobytes())
        self.render(kind, src, fbo, sharpness)
        out = np.frombuffer(fbo.read(components=4, dtype="f4"), np.float32).reshape(h, w, 4)
        out = out[:, :, :1] if c == 1 else out[:, :, :c]
        return np.array(out[:, :, 0] if x.ndim == 2 else out, dtype=np.float32)

    def release(self) -> None:
        for t in self._targets.values():
            for o in t:
                o.release()
        self._targets.clear()
        for v in self._vaos.values():
            v.release()
        for p in self.programs.values():
            p.release()


def _psnr(truth: np.ndarray, out: np.ndarray, border: int) -> float:
    t, o = np.asarray(truth, np.float64), np.asarray(out, np.float64)
    if border > 0:
        t, o = t[border:-border, border:-border], o[border:-border, border:-border]
    mse = float(np.mean((o - t) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def tune(observed: np.ndarray, truth: np.ndarray, kind: str, sharpener: Sharpener | None = None,
         grid: tuple[float, ...] = SHARPNESS_GRID, border: int = 16) -> tuple[np.ndarray, float]:
    """Pick the sharpness on the GROUND TRUTH (optimistic - no real user has it): the grid value with the best
    linear PSNR (``border`` px excluded). Runs on ``sharpener`` (GL) when given, else the NumPy reference.
    Returns ``(output, sharpness)``."""
    run = (lambda s: sharpener.apply(observed, kind, s)) if sharpener is not None else (
        lambda s: apply_reference(observed, kind, s))
    best, best_s, best_p = None, None, -math.inf
    for s in grid:
        out = run(s)
        p = _psnr(truth, out, border)
        if p > best_p:
            best, best_s, best_p = out, s, p
    return best, float(best_s)
