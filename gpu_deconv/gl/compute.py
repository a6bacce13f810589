"""Fused compute-shader path: a whole mixture stage in one dispatch, and a per-driver choice by measurement.

The fragment path (:mod:`gpu_deconv.gl.executor`) runs a stage as two passes: the H pass writes every
level's horizontal blur ``H_k`` to an intermediate texture, the V pass reads them back with the
vertical taps. On Mesa llvmpipe its cost is its fetch count (71 texel fetches per pixel for the 5-level
laplacian) plus the K intermediate writes. Here one compute dispatch does the stage
(``shaders/mixture_fused.comp``): each invocation owns a block of ``cols`` columns and walks down
``rows`` rows of it with a *sliding window* of H rows in registers. Per step it fetches one source row
of the block (``cols + 2R`` texels, each once), forms that row's ``H_k`` for every level and column,
combines one output row from the window and shifts the window. Per pixel that is about
``(cols + 2R) / cols * (1 + 2R / rows) + 1`` fetches (the laplacian at 4 x 64: 6.5 instead of 71), one
write, no intermediate texture - and the program is one H row and one output row per column whatever
the strip height, so it compiles in 1-2x the fragment pair's time (cold, llvmpipe: comb 0.5 s for both,
laplacian 2.4 s against 1.2 s). On llvmpipe the fused stage is 1.5-2.9x faster than the fragment pair
(wall time, 1080p and 4K RGBA, every method: benchmarks/RESULTS.md, section ``compute``); the
arithmetic (H of every level per row, window shifts) is what is left, not fetches.

Variants (:class:`FusedVariant`: ``rows``, ``cols``, invocations per workgroup ``local_x``) trade
halo re-fetching against registers and parallelism: a CPU rasteriser (8 SIMD lanes per thread, a few
threads) wants long, wide strips; a GPU wants many threads (tens of thousands) with few registers each.
:data:`CPU_VARIANTS` / :data:`GPU_VARIANTS` are the candidates :class:`PathChooser` measures.
Tried on llvmpipe and dropped: fully unrolled blocks (no faster than the rolled strip, 5-15x longer
to compile: 24-33 s cold for the laplacian against 2.3 s for the fragment pair, on a loaded 2-core
machine) and shared-memory tiles of the source window (5-7x slower than reading the texture: llvmpipe's
barriers are coroutine switches and its shared memory is plain memory).

Arithmetic: the same taps, boundary rule and order of operations as the fragment passes and
:func:`gpu_deconv.core.reference.apply_plan`; at precision 16 the ``H_k`` (and a non-final stage's
output) are rounded to half precision in the shader with the executor's probed rounding (toward zero on
llvmpipe, to nearest on GPUs), i.e. to exactly the values the fragment path's RGBA16F targets would hold.
On llvmpipe the result is bit-identical to the reference (tests/test_compute.py).

Output: ``imageStore`` straight into the target texture when it is a texture of ours or the caller's
in a storable format (R/RGBA 8, 16 unorm, 16F, 32F) - sRGB encode and the bit-exact alpha copy happen in
the shader, as in ``mixture_v.frag``; otherwise (a framebuffer without a texture attachment, e.g. a
window's default framebuffer) into a pooled RGBA32F texture that the executor's ``copy`` pass draws
(and encodes) into the target.

Which path is faster depends on the driver, the plan shape and the image size, so :class:`PathChooser`
times the fragment path and each candidate variant once per (plan shape, layout, precision, size class)
with GL timestamp queries and remembers the answer; :meth:`PathChooser.run_stages` is a drop-in
replacement for :meth:`PlanExecutor.run_stages` (a dict lookup per frame after the first).

Needs OpenGL 4.3 (compute shaders, image load/store); :func:`compute_available` says whether a context
has it (macOS stops at 4.1: there the fragment path is the only path).
"""

from __future__ import annotations

import ctypes
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import moderngl
import numpy as np

from ..core.plan import MixtureStage, Plan
from .context import RawGL
from .executor import DrawTarget, Layout, PlanExecutor, Region, pack_taps, stage_shape
from .shaders import build_source

#: GL version (code) the compute path needs: compute shaders and image load/store are core in 4.3.
REQUIRED_GL = 430
#: Image format qualifier for a texture of (components, moderngl dtype) that imageStore can write.
IMAGE_FORMATS = {
    (4, "f4"): "rgba32f", (4, "f2"): "rgba16f", (4, "f1"): "rgba8", (4, "nu2"): "rgba16",
    (1, "f4"): "r32f", (1, "f2"): "r16f", (1, "f1"): "r8", (1, "nu2"): "r16",
}
_GL_ALL_BARRIER_BITS = 0xFFFFFFFF
_GL_IMAGE_BINDING_NAME = 0x8F3A
_GL_IMAGE_BINDING_LEVEL = 0x8F3B
_GL_IMAGE_BINDING_LAYERED = 0x8F3C
_GL_IMAGE_BINDING_LAYER = 0x8F3D
_GL_IMAGE_BINDING_ACCESS = 0x8F3E
_GL_IMAGE_BINDING_FORMAT = 0x906E
_GL_READ_ONLY = 0x88B8
_GL_RGBA32F = 0x8814
_GL_TIMESTAMP = 0x8E28
_GL_QUERY_RESULT = 0x8866


def compute_available(ctx: moderngl.Context) -> bool:
    """True when ``ctx`` runs compute shaders with image stores (OpenGL >= 4.3)."""
    return int(getattr(ctx, "version_code", 0)) >= REQUIRED_GL


@dataclass(frozen=True)
class FusedVariant:
    """How the fused stage is laid out on the invocations (see the module docstring).

    Attributes
    ----------
    rows : int
        Output rows per invocation (the strip walked down with the sliding window), 1..1024.
    cols : int
        Output columns per invocation (they share the fetches of each source row), 1..16.
    local_x : int
        Invocations per workgroup, side by side along x, 1..1024.
    """

    rows: int = 64
    cols: int = 4
    local_x: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.rows <= 1024:
            raise ValueError(f"rows must be 1..1024, got {self.rows}")
        if not 1 <= self.cols <= 16:
            raise ValueError(f"cols must be 1..16, got {self.cols}")
        if not 1 <= self.local_x <= 1024:
            raise ValueError(f"local_x must be 1..1024, got {self.local_x}")

    @property
    def label(self) -> str:
        return f"strip{self.cols}x{self.rows}/{self.local_x}"

    def groups(self, width: int, height: int) -> tuple[int, int]:
        """Workgroups along x and y for a ``width x height`` region."""
        return math.ceil(width / (self.local_x * self.cols)), math.ceil(height / self.rows)


#: Candidates on CPU rasterisers (llvmpipe: 8 SIMD lanes per thread, 2 threads here): long, wide strips
#: re-fetch the least halo. 4 x 64 was the fastest of 4 x 16..8 x 32 on llvmpipe (bench_compute.py).
CPU_VARIANTS = (FusedVariant(rows=64, cols=4, local_x=8),)
#: Candidates on GPUs (not measured yet - benchmarks/gpu_run.sh decides): one column per thread keeps the
#: register window small (about 3 * sum_k (R + r_k) floats), short strips give >= 100k threads at 1080p.
GPU_VARIANTS = (FusedVariant(rows=16, cols=1, local_x=64), FusedVariant(rows=8, cols=1, local_x=128),
                FusedVariant(rows=32, cols=2, local_x=64))


def candidate_variants(ctx: moderngl.Context) -> tuple[FusedVariant, ...]:
    """The variants :class:`PathChooser` measures on this driver (none without OpenGL 4.3)."""
    if not compute_available(ctx):
        return ()
    return CPU_VARIANTS if _cpu_rasteriser(ctx) else GPU_VARIANTS


def _cpu_rasteriser(ctx: moderngl.Context) -> bool:
    renderer = str(ctx.info.get("GL_RENDERER", "")).lower()
    return any(n in renderer for n in ("llvmpipe", "softpipe", "swiftshader", "lavapipe"))


def _reach(shape: tuple[tuple[int, ...], ...]) -> int:
    return max((abs(o) for offs in shape for o in offs), default=0)


def _slot(k: int, i: int) -> tuple[int, str]:
    # the u_taps layout of executor.pack_taps: tap i of level k at row (k//4)*31 + i + 15, lane k%4
    return (k // 4) * 31 + i + 15, "xyzw"[k % 4]


def _off(i: int) -> str:
    return f"m{-i}" if i < 0 else f"p{i}"


def strip_body(shape: tuple[tuple[int, ...], ...], variant: FusedVariant, round_h: bool,
               emit_row: Callable[[Callable[[str], None], int, Callable[[int, int], str]], None],
               start: tuple[str, str] | None = None) -> str:
    """The ``main()`` body of a sliding-window strip (see the module docstring): a loop down the strip.

    The window of level k at output row s of the strip holds ``H_k`` of source rows ``y0 + s - R + t``
    for ``t = R - r_k .. 2R`` in variables ``w{k}_{c}_{t}`` (column c of the block; slot 2R is the row
    just formed). A prologue forms the first 2R rows; then each iteration forms one new H row (every
    level, every column: the texel at block column q is fetched once and feeds every (c, i) with
    c + i = q, in ascending i), emits output row s of every column (``emit_row``) and shifts the window by
    one row. The code is one H row and one output row per column whatever ``rows`` is; the price per pixel
    is the window shift (register moves, free next to a fetch).

    Parameters
    ----------
    shape : tuple of tuples of int
        Per level, the offsets of its non-zero taps (:func:`gpu_deconv.gl.executor.stage_shape`).
    variant : FusedVariant
    round_h : bool
        Round every H value to half precision (``half_round`` of the shader).
    emit_row : callable
        ``emit_row(add, c, window)`` adds the statements of output row ``(x0 + c, y0 + row)`` with
        ``add(line)``; ``window(k, j)`` names the window variable holding ``H_k`` at vertical offset ``j``.
        The statements run inside a ``{ }`` block of their own.
    start : (str, str), optional
        GLSL expressions of the strip's first column ``x0`` and row ``y0`` (default: ``gid.x * COLS`` and
        ``gid.y * ROWS``, strips side by side from the origin); the statistics dispatch
        (:mod:`gpu_deconv.gl.stats_gpu`) starts at a region of interest and can skip tiles.

    Returns
    -------
    str
        GLSL statements for the body of ``main()``.
    """
    cols = variant.cols
    reach = _reach(shape)
    offsets = sorted(set().union(*shape))
    lo = [reach - max((abs(o) for o in offs), default=0) for offs in shape]  # first window slot level k reads
    qs = sorted({c + i for c in range(cols) for i in offsets})
    lines: list[str] = []
    add = lines.append
    x0, y0 = start or ("int(gl_GlobalInvocationID.x) * COLS", "int(gl_GlobalInvocationID.y) * ROWS")
    add(f"    int x0 = {x0};")
    add(f"    int y0 = {y0};")
    add("    if (x0 >= u_region.x) return;")
    for q in qs:
        add(f"    int x_{_off(q)} = mirror_index(x0 + ({q}), u_region.x);")
    add("    COL v;")
    for k in range(len(shape)):
        for c in range(cols):
            for t in range(lo[k], 2 * reach):
                add(f"    COL w{k}_{c}_{t} = COL(0.0);")

    def h_row(y: str) -> None:
        add(f"        int yr = mirror_index({y}, u_region.y);")
        for c in range(cols):
            for k in range(len(shape)):
                add(f"        PRECISE COL w{k}_{c}_{2 * reach} = COL(0.0);")
        for q in qs:
            users = [(c, k) for c in range(cols) for k in range(len(shape)) if q - c in shape[k]]
            add(f"        v = CSW(FETCH(u_src, ivec2(x_{_off(q)}, yr), u_src_inv));")
            for c, k in users:
                sl, comp = _slot(k, q - c)
                add(f"        w{k}_{c}_{2 * reach} += u_taps[{sl}].{comp} * v;")
        if round_h:
            for c in range(cols):
                for k in range(len(shape)):
                    add(f"        w{k}_{c}_{2 * reach} = half_round(w{k}_{c}_{2 * reach});")

    def shift() -> None:
        for k in range(len(shape)):
            for c in range(cols):
                for t in range(lo[k], 2 * reach):
                    add(f"        w{k}_{c}_{t} = w{k}_{c}_{t + 1};")

    if reach:
        add(f"    for (int r = 0; r < {2 * reach}; ++r) {{  // prologue: rows y0 - R .. y0 + R - 1")
        h_row(f"y0 - {reach} + r")
        shift()
        add("    }")
    add("    for (int row = 0; row < ROWS; ++row) {")
    h_row(f"y0 + {reach} + row")
    for c in range(cols):
        add("        {")
        emit_row(lambda line: add("            " + line), c, lambda k, j, c=c: f"w{k}_{c}_{reach + j}")
        add("        }")
    shift()
    add("    }")
    return "\n".join(lines)


def fused_body(shape: tuple[tuple[int, ...], ...], variant: FusedVariant, *, alpha: bool, encode: bool,
               round_h: bool, store_half: bool) -> str:
    """The ``main()`` body of ``mixture_fused.comp`` for one stage shape (:func:`strip_body`): output row s
    combines the window in the reference's order, ``acc = d0 base + sum_k d_k sum_j g_k[j] H_k(j)``.

    Parameters
    ----------
    shape : tuple of tuples of int
        Per level, the offsets of its non-zero taps (:func:`gpu_deconv.gl.executor.stage_shape`).
    variant : FusedVariant
    alpha : bool
        Copy alpha from the base texel (else 1).
    encode : bool
        sRGB-encode the colour before the store.
    round_h, store_half : bool
        Round every H value / the output to half precision (``half_round`` of the shader).
    """

    def emit_row(add: Callable[[str], None], c: int, window: Callable[[int, int], str]) -> None:
        add(f"vec4 b = FETCH(u_base, ivec2(x0 + {c}, y0 + row), u_base_inv);")
        add("PRECISE COL acc = u_d[0] * CSW(b);")
        for k, offs in enumerate(shape):
            add("{")
            add("    PRECISE COL s = COL(0.0);")
            for j in offs:
                sl, comp = _slot(k, j)
                add(f"    s += u_taps[{sl}].{comp} * {window(k, j)};")
            add(f"    acc += u_d[{k + 1}] * s;")
            add("}")
        if encode:
            add("acc = linear_to_srgb(acc);")
        if store_half:
            add("acc = half_round(acc);")
        a = "b.a" if alpha else "1.0"
        add(f"if (x0 + {c} < u_region.x && y0 + row < u_region.y)")
        add(f"    imageStore(u_out, u_origin + ivec2(x0 + {c}, y0 + row), COL_TO_VEC4(acc, {a}));")

    return strip_body(shape, variant, round_h, emit_row)


def fallback_comps(layout: Layout) -> int:
    """Components of the pooled output texture the copy pass reads when the target is no storable image
    (RGB-only targets, as a caller's 3-component texture makes in ``apply``, get RGBA: no RGB image format)."""
    return 1 if layout.comps == 1 else 4


class _ComputeGL(RawGL):
    """The raw entry points the compute path needs beyond :class:`RawGL`'s (image units, timestamps)."""

    _SIGS = {
        **RawGL._SIGS,
        "glGetIntegeri_v": (None, (ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_int))),
        "glBindImageTexture": (None, (ctypes.c_uint, ctypes.c_uint, ctypes.c_int, ctypes.c_ubyte, ctypes.c_int,
                                      ctypes.c_uint, ctypes.c_uint)),
        "glQueryCounter": (None, (ctypes.c_uint, ctypes.c_uint)),
    }


class ComputeExecutor:
    """Runs the mixture stages of a plan as fused compute dispatches, next to a :class:`PlanExecutor`.

    Shares the executor's context, NEAREST sampler, texture pool (its own names, prefixed ``fused_``),
    probed fp16 rounding and copy pass, so either path can run any frame.

    Parameters
    ----------
    executor : PlanExecutor
    variant : FusedVariant, optional
        Layout of the dispatch (default: this driver's first :func:`candidate_variants`).

    Raises
    ------
    RuntimeError
        Without OpenGL 4.3 (see :func:`compute_available`).
    """

    def __init__(self, executor: PlanExecutor, variant: FusedVariant | None = None) -> None:
        if not compute_available(executor.ctx):
            raise RuntimeError(f"the fused compute path needs OpenGL 4.3; this context is "
                               f"{executor.ctx.version_code // 100}.{executor.ctx.version_code % 100 // 10}")
        self.executor = executor
        self.ctx = executor.ctx
        self.variant = variant if variant is not None else candidate_variants(self.ctx)[0]
        self.raw = _ComputeGL(self.ctx)
        self._programs: OrderedDict[tuple, moderngl.ComputeShader] = OrderedDict()
        self._uniforms: dict[tuple[int, str], Any] = {}
        self._packed: dict[int, tuple[MixtureStage, bytes, bytes]] = {}
        #: Number of programs compiled so far.
        self.compiles = 0

    # -- programs ---------------------------------------------------------------------------------
    def _program(self, stage: MixtureStage, colour: int, *, alpha: bool, encode: bool, half: str | None,
                 store_half: bool, out_format: str, periodic: bool) -> moderngl.ComputeShader:
        """The cached program of a stage shape and output variant (compiled on a miss; tap values and
        weights are uniforms, so a re-design with the same shape reuses it)."""
        shape = stage_shape(stage)
        v = self.variant
        key = (shape, colour, alpha, encode, half, store_half, out_format, periodic)
        p = self._programs.get(key)
        if p is not None:
            self._programs.move_to_end(key)
            return p
        defines: dict[str, object] = {
            "LOCAL_X": v.local_x, "ROWS": v.rows, "COLS": v.cols, "COLOUR": colour, "OUT_FORMAT": out_format,
            "HALF_TZ": half == "toward_zero", "HALF_RNE": half == "nearest", "MIRROR_PERIODIC": periodic,
        }
        body = fused_body(shape, v, alpha=alpha, encode=encode, round_h=half is not None, store_half=store_half)
        p = self.ctx.compute_shader(build_source("mixture_fused.comp", defines, body))
        for name, unit in (("u_src", 1), ("u_base", 0)):
            u = p.get(name, None)
            if u is not None:
                u.value = unit
        self.compiles += 1
        self._programs[key] = p
        if len(self._programs) > 64:  # bound the cache like the executor's
            self._drop_program(self._programs.popitem(last=False)[1])
        return p

    def _drop_program(self, p: moderngl.ComputeShader) -> None:
        for k in [k for k in self._uniforms if k[0] == id(p)]:
            del self._uniforms[k]
        p.release()

    def _set(self, p: moderngl.ComputeShader, name: str, value: Any = None, data: bytes | None = None) -> None:
        key = (id(p), name)
        if key not in self._uniforms:
            self._uniforms[key] = p.get(name, None)
        u = self._uniforms[key]
        if u is None:
            return
        if data is not None:
            u.write(data[: u.array_length * (16 if name == "u_taps" else 4)])
        else:
            u.value = value

    def _uniform_bytes(self, stage: MixtureStage) -> tuple[bytes, bytes]:
        hit = self._packed.get(id(stage))
        if hit is not None and hit[0] is stage:
            return hit[1], hit[2]
        d = np.zeros(8, dtype=np.float32)
        d[: stage.levels + 1] = stage.weights
        if len(self._packed) >= 32:
            self._packed.clear()
        packed = (stage, pack_taps(stage).tobytes(), d.tobytes())
        self._packed[id(stage)] = packed
        return packed[1], packed[2]

    # -- dispatch ---------------------------------------------------------------------------------
    @staticmethod
    def direct_image(target: DrawTarget, layout: Layout) -> tuple[moderngl.Texture, str] | None:
        """The target's colour attachment 0 and its image format, if imageStore can write it."""
        atts = getattr(target.fbo, "color_attachments", ())
        tex = atts[0] if atts else None
        if not isinstance(tex, moderngl.Texture) or tex.components != layout.comps:
            return None
        fmt = IMAGE_FORMATS.get((tex.components, tex.dtype))
        return (tex, fmt) if fmt is not None else None

    def _stage_programs(self, plan: Plan, layout: Layout, target: DrawTarget, precision: int, encode_srgb: bool,
                        size: tuple[int, int]) -> list[tuple]:
        direct = self.direct_image(target, layout)
        half = self.executor.fp16_rounding if precision == 16 else None
        out = []
        n = len(plan.stages)
        for s, st in enumerate(plan.stages):
            last = s == n - 1
            fmt = (direct[1] if direct else IMAGE_FORMATS[(fallback_comps(layout), "f4")]) if last else \
                IMAGE_FORMATS[(layout.inter_comps, "f4")]
            out.append((st, layout.colour, {
                "alpha": layout.alpha and last,
                "encode": encode_srgb and last and direct is not None, "half": half,
                "store_half": half is not None and not last, "out_format": fmt,
                "periodic": st.radius > min(size)}))
        return out

    def run_stages(self, plan: Plan, base: Region, target: DrawTarget, layout: Layout, *, precision: int,
                   encode_srgb: bool, guard: Any | None = None) -> None:
        """The mixture stages of ``plan`` on a linear ``base`` into ``target`` - the signature and
        result of :meth:`PlanExecutor.run_stages <gpu_deconv.gl.executor.PlanExecutor.run_stages>`.

        ``guard`` (a :class:`~gpu_deconv.gl.state.GLStateGuard`) must be given when ``target`` is a
        caller's framebuffer; the image units used are then restored as well (the guard does not save
        them).
        """
        if precision not in (16, 32):
            raise ValueError(f"precision must be 16 or 32, got {precision!r}")
        w, h = base.width, base.height
        if (target.viewport[2], target.viewport[3]) != (w, h):
            raise ValueError(f"target viewport {target.viewport[2:]} differs from the source size {(w, h)}")
        if not plan.stages:
            raise ValueError("the compute path runs mixture stages; an identity plan is one copy pass")
        ex = self.executor
        direct = self.direct_image(target, layout)
        saved = self.save_image_units() if guard is not None else None
        try:
            prev = base
            progs = self._stage_programs(plan, layout, target, precision, encode_srgb, (w, h))
            for s, (stage, colour, kw) in enumerate(progs):
                last = s == len(progs) - 1
                p = self._program(stage, colour, **kw)
                src = base if stage.src == "input" else prev
                if last and direct is not None:
                    out_tex, origin = direct[0], target.viewport[:2]
                else:
                    comps = fallback_comps(layout) if last else layout.inter_comps
                    out_tex, origin = ex.pool.get(f"fused_{'out' if last else s % 2}", w, h, comps, "f4"), (0, 0)
                taps, d = self._uniform_bytes(stage)
                ex.bind(0, base.texture)
                ex.bind(1, src.texture)
                self._set(p, "u_base_inv", base.inv)
                self._set(p, "u_src_inv", src.inv)
                self._set(p, "u_region", (w, h))
                self._set(p, "u_origin", tuple(origin))
                self._set(p, "u_taps", data=taps)
                self._set(p, "u_d", data=d)
                out_tex.bind_to_image(0, read=False, write=True)
                p.run(*self.variant.groups(w, h), 1)
                # the next stage samples this image, the copy pass or a read-back reads it
                self.ctx.memory_barrier(_GL_ALL_BARRIER_BITS)
                prev = Region(out_tex, w, h)
            if direct is None:
                ex.copy(prev, target, layout, encode=encode_srgb, guard=guard)
        finally:
            self.restore_image_units(saved)

    def save_image_units(self, count: int = 1) -> list[tuple[int, ...]] | None:
        """The bindings of image units ``0 .. count-1`` (None where no raw GL loader exists), so a dispatch
        into a caller's context can put them back (:class:`~gpu_deconv.gl.state.GLStateGuard` does not save
        image units)."""
        if not self.raw.available:
            return None
        buf = (ctypes.c_int * 4)()
        saved = []
        for unit in range(count):
            vals = []
            for enum in (_GL_IMAGE_BINDING_NAME, _GL_IMAGE_BINDING_LEVEL, _GL_IMAGE_BINDING_LAYERED,
                         _GL_IMAGE_BINDING_LAYER, _GL_IMAGE_BINDING_ACCESS, _GL_IMAGE_BINDING_FORMAT):
                self.raw.glGetIntegeri_v(enum, unit, buf)
                vals.append(buf[0])
            saved.append(tuple(vals))
        return saved

    def restore_image_units(self, saved: list[tuple[int, ...]] | None) -> None:
        for unit, (name, level, layered, layer, access, fmt) in enumerate(saved or ()):
            # an unbound unit reports format 0 / access READ_ONLY; binding name 0 with any valid format unbinds
            self.raw.glBindImageTexture(unit, name, level, layered, layer, access or _GL_READ_ONLY, fmt or _GL_RGBA32F)

    def release(self) -> None:
        for p in self._programs.values():
            self._drop_program(p)
        self._programs.clear()
        self._packed.clear()


def plan_shape(plan: Plan) -> tuple:
    """What a plan's cost depends on, coarsely: per stage its level count, reach (largest non-zero tap
    offset) and what it reads - not the tap values, nor which inner taps are zero, so a blur slider that
    moves the inner radii does not trigger a new measurement; the reach does (the halo cost grows with it)."""
    return tuple((st.levels, _reach(stage_shape(st)), st.src) for st in plan.stages)


def size_class(width: int, height: int) -> int:
    """Pixel count rounded to the nearest power of two, as its exponent (1080p -> 21, 4K -> 23).

    Both paths' costs are linear in the pixel count above a few hundred thousand pixels, so a class
    spans a factor of 2 and the choice made for one size holds for the class.
    """
    return max(0, round(math.log2(max(1, width * height))))


@dataclass
class PathTiming:
    """One measurement: milliseconds (median of the timed runs) of the fragment path and of each candidate."""

    size: tuple[int, int]
    ms: dict[str, float] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """The fastest: 'fragment' or a variant label."""
        return min(self.ms, key=self.ms.__getitem__)


class PathChooser:
    """Run a plan's stages on the fragment path or a fused compute variant, whichever measured fastest here.

    ``mode='auto'``: on CPU rasterisers (Mesa llvmpipe, softpipe, SwiftShader) the fused path, without
    measuring: benchmarks/bench_compute.py measured it 1.5-2.9x faster than the fragment pair for every method
    at 1080p and 4K there, and a measurement costs seconds on a CPU - more than a one-photo run takes. On GPUs,
    ``'measure'`` behaviour: ``mode='measure'``: the first time a (plan shape, colour layout, precision, size
    class) comes up, the
    fragment path and every candidate variant run it ``reps`` times, interleaved, on scratch textures of
    that size (after one warm-up run each, which also compiles the programs); the fastest median wins
    from then on. That costs a few frames' time once per key. The clock (``clock='auto'``): on GPUs
    GL_TIMESTAMP queries around the commands - unlike GL_TIME_ELAPSED they may be issued while a
    caller's elapsed-time query is open, so the measurement can happen inside a timed frame; on CPU
    rasterisers the wall clock between two ``glFinish`` (the work runs on the CPU, and llvmpipe's
    queries were measured to leave ~30% of a 3-dispatch chain out). ``'fragment'`` / ``'compute'``
    force a path (``'compute'``: the first candidate; needs OpenGL 4.3).

    Parameters
    ----------
    executor : PlanExecutor
    variants : sequence of FusedVariant, optional
        Candidates (default :func:`candidate_variants`: none without OpenGL 4.3 - then the fragment path
        is always chosen).
    mode : {'auto', 'measure', 'fragment', 'compute'}
    reps : int
        Timed runs per candidate per decision.
    clock : {'auto', 'gpu', 'wall'}
        How candidates are timed (see above).

    Attributes
    ----------
    decisions : dict
        ``key -> PathTiming`` of every measurement made; see :meth:`key`.
    computes : dict
        ``label -> ComputeExecutor`` of the candidates.
    """

    def __init__(self, executor: PlanExecutor, variants: Sequence[FusedVariant] | None = None,
                 mode: str = "auto", reps: int = 3, clock: str = "auto") -> None:
        if mode not in ("auto", "measure", "fragment", "compute"):
            raise ValueError(f"path mode must be 'auto', 'measure', 'fragment' or 'compute', got {mode!r}")
        if clock not in ("auto", "gpu", "wall"):
            raise ValueError(f"clock must be 'auto', 'gpu' or 'wall', got {clock!r}")
        cands = tuple(candidate_variants(executor.ctx) if variants is None else variants)
        if cands and not compute_available(executor.ctx):
            raise ValueError("fused compute variants need OpenGL 4.3")
        if mode == "compute" and not cands:
            raise ValueError("path mode 'compute' needs OpenGL 4.3 and at least one fused variant")
        self.executor = executor
        #: 'auto' resolved: CPU rasterisers take the fused path as measured once and for all (see above).
        self.mode = ("compute" if cands and _cpu_rasteriser(executor.ctx) else "measure") if mode == "auto" else mode
        self.reps = max(1, int(reps))
        self.computes = {v.label: ComputeExecutor(executor, v) for v in cands}
        self.decisions: dict[tuple, PathTiming] = {}
        raw = next(iter(self.computes.values())).raw if self.computes else None
        if clock == "auto":
            clock = "wall" if _cpu_rasteriser(executor.ctx) else "gpu"
        #: The clock in use: 'gpu' (timestamp queries) or 'wall' (also where no raw GL loader exists).
        self.clock = "gpu" if clock == "gpu" and raw is not None and raw.available else "wall"
        self._raw = raw
        self._queries: list[int] = []

    @staticmethod
    def key(plan: Plan, layout: Layout, size: tuple[int, int], precision: int) -> tuple:
        """What a decision is remembered by: plan shape, colour layout, precision, size class."""
        return plan_shape(plan), layout.colour, layout.alpha, precision, size_class(*size)

    def choose(self, plan: Plan, layout: Layout, size: tuple[int, int], precision: int) -> str:
        """'fragment' or the label of the fused variant to run (measuring once per key in 'auto' mode)."""
        if self.mode == "fragment" or not self.computes or not plan.stages:
            return "fragment"
        if self.mode == "compute":
            return next(iter(self.computes))
        key = self.key(plan, layout, size, precision)
        hit = self.decisions.get(key)
        if hit is None:
            hit = self.decisions[key] = self.measure(plan, layout, size, precision)
        return hit.path

    def fused_without_measuring(self) -> ComputeExecutor | None:
        """The fused variant when this chooser takes it without measuring (mode 'compute': CPU rasterisers
        in 'auto', or forced), else None - what the adaptive mode's passes 1-2 follow (their fused dispatch,
        :mod:`gpu_deconv.gl.adaptive`, is not measured per key yet: on GPUs they stay on the fragment pair
        until benchmarks/gpu_run.sh has compared the two there)."""
        return next(iter(self.computes.values())) if self.mode == "compute" and self.computes else None

    def run_stages(self, plan: Plan, base: Region, target: DrawTarget, layout: Layout, *, precision: int,
                   encode_srgb: bool, guard: Any | None = None) -> None:
        """:meth:`PlanExecutor.run_stages` on the chosen path (a drop-in replacement for it)."""
        path = self.choose(plan, layout, (base.width, base.height), precision)
        runner: Any = self.executor if path == "fragment" else self.computes[path]
        runner.run_stages(plan, base, target, layout, precision=precision, encode_srgb=encode_srgb, guard=guard)

    def measure(self, plan: Plan, layout: Layout, size: tuple[int, int], precision: int) -> PathTiming:
        """Time every candidate on scratch float32 textures of ``size`` (a linear frame's format)."""
        ctx = self.executor.ctx
        w, h = size
        src = ctx.texture((w, h), layout.comps, dtype="f4")
        dst = ctx.texture((w, h), layout.comps, dtype="f4")
        fbo = ctx.framebuffer([dst])
        runners: dict[str, Any] = {"fragment": self.executor, **self.computes}
        times: dict[str, list[float]] = {n: [] for n in runners}
        try:
            region, target = Region(src, w, h), DrawTarget(fbo, (0, 0, w, h))

            def run(r: Any) -> None:
                r.run_stages(plan, region, target, layout, precision=precision, encode_srgb=False)

            for r in runners.values():  # warm-up: compile, allocate, first-dispatch JIT
                run(r)
            for _ in range(self.reps):  # interleaved, so a load spike hits every candidate alike
                for n, r in runners.items():
                    times[n].append(self._time(lambda r=r: run(r)))
        finally:
            self.executor.pool._release_fbo(fbo)  # (un-tracks it first if moderngl has it bound)
            src.release()
            dst.release()
        return PathTiming((w, h), {n: float(np.median(t)) for n, t in times.items()})

    def _time(self, fn: Callable[[], None]) -> float:
        """Milliseconds of ``fn``'s GL commands: GL_TIMESTAMP queries, or wall clock with glFinish."""
        raw = self._raw
        if self.clock == "wall" or raw is None:
            self.executor.ctx.finish()
            t0 = time.perf_counter()
            fn()
            self.executor.ctx.finish()
            return (time.perf_counter() - t0) * 1e3
        if not self._queries:
            ids = (ctypes.c_uint * 2)()
            raw.glGenQueries(2, ids)
            self._queries = list(ids)
        q0, q1 = self._queries
        self.executor.ctx.finish()  # nothing queued before may land inside the bracket
        raw.glQueryCounter(q0, _GL_TIMESTAMP)
        fn()
        raw.glQueryCounter(q1, _GL_TIMESTAMP)
        t0, t1 = ctypes.c_uint64(0), ctypes.c_uint64(0)
        raw.glGetQueryObjectui64v(q0, _GL_QUERY_RESULT, ctypes.byref(t0))  # waits for the GPU to get there
        raw.glGetQueryObjectui64v(q1, _GL_QUERY_RESULT, ctypes.byref(t1))
        return (t1.value - t0.value) / 1e6

    def release(self) -> None:
        if self._queries and self._raw is not None:
            ids = (ctypes.c_uint * len(self._queries))(*self._queries)
            self._raw.glDeleteQueries(len(self._queries), ids)
        self._queries = []
        for ce in self.computes.values():
            ce.release()
