"""Fused compute-shader path: a whole mixture stage in one dispatch, and a per-driver choice by measurement.

The fragment path (:mod:`gpu_deconv.gl.executor`) runs a stage as two passes: the H pass writes every
level's horizontal blur ``H_k`` to an intermediate texture, the V pass reads them back with the
vertical taps. Its cost on Mesa llvmpipe is its fetch count (71 texel fetches per pixel for the 5-level
laplacian) plus the K intermediate writes. Here one compute dispatch does the stage
(``shaders/mixture_fused.comp``): each invocation owns a vertical strip of ``rows`` pixels of one column,
fetches the ``rows + 2R`` source rows it reaches once per horizontal offset, keeps every ``H_k`` of the
strip in registers and forms the outputs from them - per pixel ``(rows + 2R) * n_offsets / rows + 1``
fetches and no intermediate texture. Variants (:class:`FusedVariant`):

* ``rows``: strip height (more rows amortise the halo rows better, but hold more registers and make a
  bigger program);
* ``local_x``: invocations per workgroup, side by side along x;
* ``shared``: the workgroup first copies its source window into shared memory (one texture fetch per
  window texel instead of one per offset) - the classic GPU tile; on CPU rasterisers shared memory is
  ordinary memory and the barrier is a coroutine switch, so it is measured, not assumed.

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
times both once per (renderer, plan shape, layout, precision, size class) with GL timer queries and
remembers the answer; ``PathChooser.choose`` is what an engine calls per frame (a dict lookup after the
first time).

Needs OpenGL 4.3 (compute shaders, image load/store); :func:`compute_available` says whether a context
has it (macOS stops at 4.1: there the fragment path is the only path).
"""

from __future__ import annotations

import ctypes
import math
from collections import OrderedDict
from dataclasses import dataclass
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
_IMAGE_FORMATS = {
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
_GL_MAX_COMPUTE_SHARED_MEMORY_SIZE = 0x8262
_GL_READ_ONLY = 0x88B8
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
        Output rows per invocation (strip height), >= 1.
    local_x : int
        Invocations per workgroup, side by side along x.
    shared : bool
        Copy the workgroup's source window into shared memory first.
    """

    rows: int = 8
    cols: int = 1
    local_x: int = 8
    shared: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.rows <= 64:
            raise ValueError(f"rows must be 1..64, got {self.rows}")
        if not 1 <= self.cols <= 16:
            raise ValueError(f"cols must be 1..16, got {self.cols}")
        if not 1 <= self.local_x <= 256:
            raise ValueError(f"local_x must be 1..256, got {self.local_x}")

    @property
    def label(self) -> str:
        return f"{'tile' if self.shared else 'block'}{self.cols}x{self.rows}/{self.local_x}"


#: The variant used unless told otherwise (fastest on Mesa llvmpipe, benchmarks/bench_compute.py).
DEFAULT_VARIANT = FusedVariant(rows=8, cols=1, local_x=8, shared=False)


def _reach(shape: tuple[tuple[int, ...], ...]) -> int:
    return max((abs(o) for offs in shape for o in offs), default=0)


def _slot(k: int, i: int) -> tuple[int, str]:
    # the u_taps layout of executor.pack_taps: tap i of level k at row (k//4)*31 + i + 15, lane k%4
    return (k // 4) * 31 + i + 15, "xyzw"[k % 4]


def _off(i: int) -> str:
    return f"m{-i}" if i < 0 else f"p{i}"


def fused_body(shape: tuple[tuple[int, ...], ...], variant: FusedVariant, *, same_src: bool, alpha: bool,
               encode: bool, round_h: bool, store_half: bool) -> str:
    """The unrolled ``main()`` body of ``mixture_fused.comp`` for one stage shape.

    Parameters
    ----------
    shape : per level, the offsets of its non-zero taps (:func:`gpu_deconv.gl.executor.stage_shape`)
    variant : FusedVariant
    same_src : the stage blurs the chain input itself (src is base): the centre fetch of an output pixel
        doubles as its base texel
    alpha, encode : copy alpha from base / sRGB-encode the colour before the store
    round_h, store_half : round the H values / the output to half precision (``half_round``)

    Returns
    -------
    str
        GLSL statements. The invocation's block is columns ``x0 + c`` (c < cols) and rows ``y0 + s``
        (s < rows); strip row ``r = 0 .. rows + 2R - 1`` is source row ``y0 - R + r``; ``H_k`` of column c
        and strip row r is ``h{k}_{c}_{r}``; the texel at column ``x0 + q`` of the current row is fetched
        once for every c and i with ``c + i = q``.
    """
    rows, cols = variant.rows, variant.cols
    reach = _reach(shape)
    n_src = rows + 2 * reach
    offsets = sorted(set().union(*shape))
    lines: list[str] = []
    add = lines.append
    if variant.shared:
        add("    int lx = int(gl_LocalInvocationID.x);")
        add("    int x0 = (int(gl_WorkGroupID.x) * LOCAL_X + lx) * COLS;")
        add("    int y0 = int(gl_WorkGroupID.y) * ROWS;")
        add(f"    int wx0 = int(gl_WorkGroupID.x) * LOCAL_X * COLS - {reach};")
        add("    for (int t = lx; t < TILE_W * TILE_H; t += LOCAL_X) {")
        add("        int ty = t / TILE_W;")
        add(f"        ivec2 p = ivec2(mirror_index(wx0 + t - ty * TILE_W, u_region.x), "
            f"mirror_index(y0 - {reach} + ty, u_region.y));")
        add("        s_tile[t] = CSW(FETCH(u_src, p, u_src_inv));")
        add("    }")
        add("    memoryBarrierShared();")
        add("    barrier();")
    else:
        add("    int x0 = int(gl_GlobalInvocationID.x) * COLS;")
        add("    int y0 = int(gl_GlobalInvocationID.y) * ROWS;")
        add("    if (x0 >= u_region.x) return;")
    # texel columns q the block reads: c + i for every column c and offset i
    qs = sorted({c + i for c in range(cols) for i in offsets})
    if not variant.shared:
        for q in qs:
            add(f"    int x_{_off(q)} = mirror_index(x0 + ({q}), u_region.x);")
    add("    COL v;")
    reuse_centre = same_src and 0 in offsets

    def needed(k: int, r: int) -> bool:
        # does some output row s in [0, rows) read H_k at strip row r (= s + R + j, j an offset of k)?
        return any(0 <= r - reach - j < rows for j in shape[k])

    def emit_output(s: int) -> None:
        for c in range(cols):
            add("    {")
            if reuse_centre:
                add(f"        vec4 b = c{c}_{s};")
            else:
                add(f"        vec4 b = FETCH(u_base, ivec2(x0 + {c}, y0 + {s}), u_base_inv);")
            add("        PRECISE COL acc = u_d[0] * CSW(b);")
            for k, offs in enumerate(shape):
                add("        {")
                add("            PRECISE COL s = COL(0.0);")
                for j in offs:
                    sl, comp = _slot(k, j)
                    add(f"            s += u_taps[{sl}].{comp} * h{k}_{c}_{s + reach + j};")
                add(f"            acc += u_d[{k + 1}] * s;")
                add("        }")
            if encode:
                add("        acc = linear_to_srgb(acc);")
            if store_half:
                add("        acc = half_round(acc);")
            a = "b.a" if alpha else "1.0"
            add(f"        if (x0 + {c} < u_region.x && y0 + {s} < u_region.y)")
            add(f"            imageStore(u_out, u_origin + ivec2(x0 + {c}, y0 + {s}), COL_TO_VEC4(acc, {a}));")
            add("    }")

    for r in range(n_src):
        levels = [k for k in range(len(shape)) if needed(k, r)]
        if levels:
            if not variant.shared:
                add(f"    int y_{r} = mirror_index(y0 + ({r - reach}), u_region.y);")
            for c in range(cols):
                for k in levels:
                    add(f"    PRECISE COL h{k}_{c}_{r} = COL(0.0);")
        centre_row = reuse_centre and reach <= r < reach + rows
        for q in qs:
            # (column c, offset i = q - c) pairs this texel feeds, per level; ascending q keeps every H sum
            # in ascending i
            users = [(c, k) for c in range(cols) for k in levels if q - c in shape[k]]
            centre = centre_row and 0 <= q < cols
            if not users and not centre:
                continue
            if variant.shared:
                add(f"    v = SRC_AT(lx * COLS + {reach + q}, {r});")
                if centre:
                    add(f"    vec4 c{q}_{r - reach} = FETCH(u_base, ivec2(x0 + {q}, y0 + {r - reach}), u_base_inv);")
            elif centre:
                add(f"    vec4 c{q}_{r - reach} = FETCH(u_src, ivec2(x_{_off(q)}, y_{r}), u_src_inv);")
                add(f"    v = CSW(c{q}_{r - reach});")
            else:
                add(f"    v = CSW(FETCH(u_src, ivec2(x_{_off(q)}, y_{r}), u_src_inv));")
            for c, k in users:
                sl, comp = _slot(k, q - c)
                add(f"    h{k}_{c}_{r} += u_taps[{sl}].{comp} * v;")
        if round_h:
            for c in range(cols):
                for k in levels:
                    add(f"    h{k}_{c}_{r} = half_round(h{k}_{c}_{r});")
        if 0 <= r - 2 * reach < rows:  # every H row output r - 2R reads is formed now
            emit_output(r - 2 * reach)
    return "\n".join(lines)


class _ComputeGL(RawGL):
    """The raw entry points the compute path needs beyond :class:`RawGL`'s (image unit bindings)."""

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
    variant : FusedVariant
        Layout of the dispatch (default :data:`DEFAULT_VARIANT`).
    """

    def __init__(self, executor: PlanExecutor, variant: FusedVariant = DEFAULT_VARIANT) -> None:
        if not compute_available(executor.ctx):
            raise RuntimeError(f"the fused compute path needs OpenGL 4.3; this context is "
                               f"{executor.ctx.version_code // 100}.{executor.ctx.version_code % 100 // 10}")
        self.executor = executor
        self.ctx = executor.ctx
        self.variant = variant
        self.raw = _ComputeGL(self.ctx)
        self._programs: OrderedDict[tuple, moderngl.ComputeShader] = OrderedDict()
        self._uniforms: dict[tuple[int, str], Any] = {}
        self._packed: dict[int, tuple[MixtureStage, bytes, bytes]] = {}
        #: Number of programs compiled so far.
        self.compiles = 0
        size = self.raw.get_int(_GL_MAX_COMPUTE_SHARED_MEMORY_SIZE)[0] if self.raw.available else 0
        #: Shared memory per workgroup (bytes; GL 4.3 guarantees 32 KiB).
        self.max_shared_bytes = size if size > 0 else 32768

    @staticmethod
    def available(ctx: moderngl.Context) -> bool:
        """Same as :func:`compute_available`."""
        return compute_available(ctx)

    # -- programs ---------------------------------------------------------------------------------
    def _variant_for(self, stage: MixtureStage, colour: int) -> FusedVariant:
        """The configured variant, without shared memory when its tile would not fit."""
        v = self.variant
        if v.shared:
            r = _reach(stage_shape(stage))
            if (v.local_x * v.cols + 2 * r) * (v.rows + 2 * r) * 4 * colour > self.max_shared_bytes:
                return FusedVariant(v.rows, v.cols, v.local_x, False)
        return v

    def _program(self, stage: MixtureStage, colour: int, *, same_src: bool, alpha: bool, encode: bool,
                 half: str | None, store_half: bool, out_format: str, periodic: bool
                 ) -> tuple[moderngl.ComputeShader, FusedVariant]:
        shape = stage_shape(stage)
        v = self._variant_for(stage, colour)
        key = (shape, colour, same_src, alpha, encode, half, store_half, out_format, periodic, v)
        p = self._programs.get(key)
        if p is not None:
            self._programs.move_to_end(key)
            return p, v
        reach = _reach(shape)
        defines: dict[str, object] = {
            "LOCAL_X": v.local_x, "ROWS": v.rows, "COLS": v.cols, "COLOUR": colour, "OUT_FORMAT": out_format,
            "HALF_TZ": half == "toward_zero", "HALF_RNE": half == "nearest", "MIRROR_PERIODIC": periodic,
            "SHARED_TILE": v.shared, "TILE_W": v.local_x * v.cols + 2 * reach, "TILE_H": v.rows + 2 * reach,
        }
        body = fused_body(shape, v, same_src=same_src, alpha=alpha, encode=encode, round_h=half is not None,
                          store_half=store_half)
        p = self.ctx.compute_shader(build_source("mixture_fused.comp", defines, body))
        for name, unit in (("u_src", 1), ("u_base", 0)):
            u = p.get(name, None)
            if u is not None:
                u.value = unit
        self.compiles += 1
        self._programs[key] = p
        if len(self._programs) > 64:  # bound the cache like the executor's
            self._drop_program(*self._programs.popitem(last=False))
        return p, v

    def _drop_program(self, key: tuple, p: moderngl.ComputeShader) -> None:
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

    def warm(self, plan: Plan, layout: Layout, target: DrawTarget, precision: int = 16,
             encode_srgb: bool = False) -> None:
        """Compile every program :meth:`run_stages` will use for these arguments (e.g. before timing)."""
        for args in self._stage_programs(plan, layout, target, precision, encode_srgb, plan_size(target)):
            self._program(*args[:2], **args[2])

    # -- dispatch ---------------------------------------------------------------------------------
    @staticmethod
    def _direct(target: DrawTarget, layout: Layout) -> tuple[moderngl.Texture, str] | None:
        """The target's colour attachment 0 and its image format, if imageStore can write it."""
        atts = getattr(target.fbo, "color_attachments", ())
        tex = atts[0] if atts else None
        if not isinstance(tex, moderngl.Texture) or tex.components != layout.comps:
            return None
        fmt = _IMAGE_FORMATS.get((tex.components, tex.dtype))
        return (tex, fmt) if fmt is not None else None

    def _stage_programs(self, plan: Plan, layout: Layout, target: DrawTarget, precision: int, encode_srgb: bool,
                        size: tuple[int, int]) -> list[tuple]:
        direct = self._direct(target, layout)
        half = self.executor.fp16_rounding if precision == 16 else None
        out = []
        n = len(plan.stages)
        for s, st in enumerate(plan.stages):
            last = s == n - 1
            fmt = (direct[1] if direct else _IMAGE_FORMATS[(layout.comps, "f4")]) if last else \
                _IMAGE_FORMATS[(layout.inter_comps, "f4")]
            out.append((st, layout.colour, {
                "same_src": st.src == "input", "alpha": layout.alpha and last,
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
        direct = self._direct(target, layout)
        saved = self._save_image_unit() if guard is not None else None
        try:
            prev = base
            progs = self._stage_programs(plan, layout, target, precision, encode_srgb, (w, h))
            for s, (stage, colour, kw) in enumerate(progs):
                last = s == len(progs) - 1
                p, v = self._program(stage, colour, **kw)
                src = base if stage.src == "input" else prev
                if last and direct is not None:
                    out_tex, origin = direct[0], target.viewport[:2]
                else:
                    comps = layout.comps if last else layout.inter_comps
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
                p.run(math.ceil(w / (v.local_x * v.cols)), math.ceil(h / v.rows), 1)
                # the next stage samples this image, the copy pass or a read-back reads it
                self.ctx.memory_barrier(_GL_ALL_BARRIER_BITS)
                prev = Region(out_tex, w, h)
            if direct is None:
                ex.copy(prev, target, layout, encode=encode_srgb, guard=guard)
        finally:
            if saved is not None:
                self._restore_image_unit(saved)

    def _save_image_unit(self) -> tuple[int, ...] | None:
        if not self.raw.available:
            return None
        buf = (ctypes.c_int * 4)()
        vals = []
        for enum in (_GL_IMAGE_BINDING_NAME, _GL_IMAGE_BINDING_LEVEL, _GL_IMAGE_BINDING_LAYERED,
                     _GL_IMAGE_BINDING_LAYER, _GL_IMAGE_BINDING_ACCESS, _GL_IMAGE_BINDING_FORMAT):
            self.raw.glGetIntegeri_v(enum, 0, buf)
            vals.append(buf[0])
        return tuple(vals)

    def _restore_image_unit(self, saved: tuple[int, ...]) -> None:
        name, level, layered, layer, access, fmt = saved
        # an unbound unit reports format 0 / access READ_ONLY; binding name 0 with any valid format unbinds
        self.raw.glBindImageTexture(0, name, level, layered, layer, access or _GL_READ_ONLY,
                                    fmt or 0x8814)  # GL_RGBA32F

    def release(self) -> None:
        for key, p in list(self._programs.items()):
            self._drop_program(key, p)
        self._programs.clear()
        self._packed.clear()


def plan_size(target: DrawTarget) -> tuple[int, int]:
    """(width, height) of the region a target's viewport covers."""
    return int(target.viewport[2]), int(target.viewport[3])


def plan_shape(plan: Plan) -> tuple:
    """What a plan's cost depends on: per stage, its tap shape and what it reads (not the tap values)."""
    return tuple((stage_shape(st), st.src) for st in plan.stages)


def size_class(width: int, height: int) -> int:
    """Pixel count rounded to the nearest power of two, as its exponent (1080p -> 21, 4K -> 23).

    Both paths' costs are linear in the pixel count above a few hundred thousand pixels, so a class
    spans a factor of 2 and the choice made for one size holds for the class.
    """
    return max(0, round(math.log2(max(1, width * height))))


@dataclass
class PathTiming:
    """One measured choice: GPU milliseconds (median of the timed runs) of each path."""

    fragment_ms: float
    compute_ms: float
    size: tuple[int, int]

    @property
    def path(self) -> str:
        return "compute" if self.compute_ms < self.fragment_ms else "fragment"


class PathChooser:
    """Run a plan's stages on the fragment or the fused compute path, whichever measured faster here.

    ``mode='auto'``: the first time a (plan shape, colour layout, precision, size class) comes up, both
    paths run it ``reps`` times on scratch textures of that size (after one warm-up run each, which
    also compiles the programs) between GL_TIMESTAMP queries, and the faster median wins from then
    on; the measurement costs a few frames' time once. Timestamp queries - unlike GL_TIME_ELAPSED -
    may be issued while a caller's elapsed-time query is open, so this can run inside a timed frame.
    ``'fragment'`` / ``'compute'`` force a path (``'compute'`` needs OpenGL 4.3).

    Parameters
    ----------
    executor : PlanExecutor
    compute : ComputeExecutor or None
        None (or a context without OpenGL 4.3): always the fragment path.
    mode : {'auto', 'fragment', 'compute'}
    reps : int
        Timed runs per path per decision.

    Attributes
    ----------
    decisions : dict
        ``key -> PathTiming`` of every measurement made; the key is
        ``(renderer, plan_shape, colour, alpha, precision, size_class)``.
    """

    def __init__(self, executor: PlanExecutor, compute: ComputeExecutor | None, mode: str = "auto",
                 reps: int = 3) -> None:
        if mode not in ("auto", "fragment", "compute"):
            raise ValueError(f"path mode must be 'auto', 'fragment' or 'compute', got {mode!r}")
        if mode == "compute" and compute is None:
            raise ValueError("path mode 'compute' needs a ComputeExecutor (OpenGL 4.3)")
        self.executor = executor
        self.compute = compute
        self.mode = mode
        self.reps = max(1, int(reps))
        self.renderer = f"{executor.ctx.info.get('GL_RENDERER', '')} | {executor.ctx.info.get('GL_VERSION', '')}"
        self.decisions: dict[tuple, PathTiming] = {}
        self._queries: list[int] = []

    def key(self, plan: Plan, layout: Layout, size: tuple[int, int], precision: int) -> tuple:
        return (self.renderer, plan_shape(plan), layout.colour, layout.alpha, precision, size_class(*size))

    def choose(self, plan: Plan, layout: Layout, size: tuple[int, int], precision: int) -> str:
        """'fragment' or 'compute' for this plan at this size (measuring once per key in 'auto' mode)."""
        if self.mode != "auto" or self.compute is None:
            return "compute" if self.mode == "compute" else "fragment"
        if not plan.stages:
            return "fragment"
        key = self.key(plan, layout, size, precision)
        hit = self.decisions.get(key)
        if hit is None:
            hit = self.decisions[key] = self.measure(plan, layout, size, precision)
        return hit.path

    def run_stages(self, plan: Plan, base: Region, target: DrawTarget, layout: Layout, *, precision: int,
                   encode_srgb: bool, guard: Any | None = None) -> None:
        """:meth:`PlanExecutor.run_stages` on the chosen path (a drop-in replacement for it)."""
        path = self.choose(plan, layout, (base.width, base.height), precision)
        runner: Any = self.compute if path == "compute" else self.executor
        runner.run_stages(plan, base, target, layout, precision=precision, encode_srgb=encode_srgb, guard=guard)

    def measure(self, plan: Plan, layout: Layout, size: tuple[int, int], precision: int) -> PathTiming:
        """Time both paths on scratch textures of ``size`` (float32 in and out, like a linear frame)."""
        assert self.compute is not None
        ctx = self.executor.ctx
        w, h = size
        src = ctx.texture((w, h), layout.comps, dtype="f4")
        dst = ctx.texture((w, h), layout.comps, dtype="f4")
        fbo = ctx.framebuffer([dst])
        try:
            region, target = Region(src, w, h), DrawTarget(fbo, (0, 0, w, h))
            runners: dict[str, Any] = {"fragment": self.executor, "compute": self.compute}
            times: dict[str, list[float]] = {n: [] for n in runners}
            for r in runners.values():  # warm-up: compile, allocate, first-dispatch JIT
                r.run_stages(plan, region, target, layout, precision=precision, encode_srgb=False)
            for _ in range(self.reps):  # interleaved, so a load spike hits both alike
                for n, r in runners.items():
                    times[n].append(self._time(lambda r=r: r.run_stages(plan, region, target, layout,
                                                                         precision=precision, encode_srgb=False)))
        finally:
            self.executor.pool._release_fbo(fbo)
            src.release()
            dst.release()
        return PathTiming(float(np.median(times["fragment"])), float(np.median(times["compute"])), (w, h))

    def _time(self, fn: Any) -> float:
        """GPU milliseconds of ``fn``'s commands (GL_TIMESTAMP queries; wall clock + glFinish without raw GL)."""
        raw = self.compute.raw if self.compute is not None else None
        if raw is None or not raw.available:
            import time

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
        raw.glQueryCounter(q0, _GL_TIMESTAMP)
        fn()
        raw.glQueryCounter(q1, _GL_TIMESTAMP)
        t0, t1 = ctypes.c_uint64(0), ctypes.c_uint64(0)
        raw.glGetQueryObjectui64v(q0, _GL_QUERY_RESULT, ctypes.byref(t0))  # blocks until the GPU is there
        raw.glGetQueryObjectui64v(q1, _GL_QUERY_RESULT, ctypes.byref(t1))
        return (t1.value - t0.value) / 1e6

    def release(self) -> None:
        if self._queries and self.compute is not None and self.compute.raw.available:
            ids = (ctypes.c_uint * len(self._queries))(*self._queries)
            self.compute.raw.glDeleteQueries(len(self._queries), ids)
        self._queries = []
