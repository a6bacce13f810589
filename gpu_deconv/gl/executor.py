"""Run a :class:`~gpu_deconv.core.plan.Plan` on GL textures: programs, intermediates, passes.

One mixture stage = an H pass (``mixture_h.frag``: one fetch loop along x, all K levels written to K
render targets) and a V pass (``mixture_v.frag``: vertical blurs fused with ``d0*base + sum d_k ...``);
a plan is its stages in order, the last V pass drawing into the destination. sRGB decode (a ``copy.frag``
pass into a float32 linear texture) happens first when the source is sRGB; the encode is folded into
the last pass. The identity plan is one ``copy.frag`` pass.

Two program families (``specialize``):

* **specialised** (default): the H and V bodies are generated unrolled for the stage's *shape* - the
  level count and, per level, the offsets of its non-zero taps. Tap values and weights stay uniforms,
  so re-designing a filter with the same shape (the usual case while a slider moves: radii change in
  whole pixels, rarely) reuses the program; a new shape compiles once (tens of ms on llvmpipe) and is
  cached. On Mesa llvmpipe this is 1.3-1.6x faster than the generic loops, because llvmpipe executes
  both sides of every branch and gathers dynamically indexed uniforms per lane.
* **generic**: loops bounded by uniform radii, one program per level count - nothing ever recompiles
  when the blur changes (what a GPU driver with a slow compiler may prefer).

Both read texels with ``textureLod`` at texel centres through a NEAREST sampler object bound on every
unit (identical to ``texelFetch`` - see ``shaders/common.glsl``) and mirror with integer arithmetic.

Precision 16 (the default) stores intermediates as half floats. The driver's rounding mode is probed at
start-up (:attr:`PlanExecutor.fp16_rounding`: Mesa llvmpipe rounds toward zero, GPUs to nearest) so the
reference can emulate it; on CPU rasterisers the rounding is done in the shader into RGBA32F targets
instead (``fp16_storage``), bit-identical but cheaper than llvmpipe's software half conversion. With
``pack_levels`` the H targets of a specialised stage may carry several levels' channels
(:func:`choose_packing`).

Intermediate textures (H targets, stage ping-pong, the linear copy of an sRGB input) live in a
:class:`TexturePool` keyed by role: they are reallocated only when a larger region, another format or
another component count is needed, never per frame; regions smaller than the textures are drawn with a
viewport and the mirror period is the region size, not the texture size.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import moderngl
import numpy as np

from ..core.plan import MAX_LEVELS, MAX_RADIUS, MixtureStage, Plan
from .context import RawGL
from .shaders import build_source
from .state import GLStateGuard

#: Units the passes bind textures (and the NEAREST sampler) on; the state guard saves exactly these.
TEXTURE_UNITS = tuple(range(MAX_LEVELS + 1))
_SLOTS = 2 * (2 * MAX_RADIUS + 1)  # u_taps length (62 vec4)


@dataclass(frozen=True)
class Layout:
    """How an image's channels sit in textures.

    Attributes
    ----------
    colour : int
        Filtered channels: 1 (gray, or the L of LA) or 3 (RGB, RGBA).
    comps : int
        Components of the input/output textures: 1 (gray) or 4 (everything else - RGB textures are
        4-10x slower to upload and read on common drivers, so RGB is padded to RGBA).
    alpha : bool
        The image has an alpha channel (texture channel 3), copied through bit-exactly.
    """

    colour: int
    comps: int
    alpha: bool

    @property
    def inter_comps(self) -> int:
        """Components of intermediate textures: only the filtered channels need storage."""
        return 1 if self.colour == 1 else 4

    @staticmethod
    def for_channels(channels: int) -> Layout:
        """Layout for an image with 1 (gray), 2 (LA), 3 (RGB) or 4 (RGBA) channels."""
        if channels == 1:
            return Layout(1, 1, False)
        if channels == 2:
            return Layout(1, 4, True)
        if channels == 3:
            return Layout(3, 4, False)
        if channels == 4:
            return Layout(3, 4, True)
        raise ValueError(f"images must have 1..4 channels, got {channels}")


@dataclass
class Region:
    """A ``width x height`` region at the origin of a texture (which may be larger)."""

    texture: moderngl.Texture
    width: int
    height: int

    @property
    def inv(self) -> tuple[float, float]:
        return (1.0 / self.texture.width, 1.0 / self.texture.height)


@dataclass
class DrawTarget:
    """Where a pass draws: a framebuffer and the viewport ``(x, y, w, h)`` of the region in it."""

    fbo: moderngl.Framebuffer
    viewport: tuple[int, int, int, int]
    external: bool = False  # a caller's framebuffer (the state guard must record its draw buffers)


class _Program:
    """A compiled program, its fullscreen VAO and cached uniform handles."""

    def __init__(self, ctx: moderngl.Context, vert: str, frag: str, samplers: dict[str, int]) -> None:
        self.program = ctx.program(vertex_shader=vert, fragment_shader=frag)
        self.vao = ctx.vertex_array(self.program, [])
        self._u: dict[str, Any] = {}
        for name, unit in samplers.items():
            u = self.uniform(name)
            if u is not None:
                u.value = unit

    def uniform(self, name: str) -> Any:
        """The uniform handle, or None if the compiler optimised it out (never guessed at)."""
        if name not in self._u:
            self._u[name] = self.program.get(name, None)
        return self._u[name]

    def set(self, name: str, value: Any) -> None:
        u = self.uniform(name)
        if u is not None:
            u.value = value

    def set_array(self, name: str, data: np.ndarray) -> None:
        """Write the first ``array_length`` rows of ``data`` (drivers trim unused array tails)."""
        u = self.uniform(name)
        if u is not None:
            n = u.array_length
            u.write(np.ascontiguousarray(data[:n]).tobytes())

    def draw(self) -> None:
        self.vao.render(moderngl.TRIANGLES, vertices=3)

    def release(self) -> None:
        self.vao.release()
        self.program.release()


class TexturePool:
    """Named intermediate textures that grow on demand and are otherwise reused frame after frame."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self._tex: dict[str, moderngl.Texture] = {}
        self._fbos: dict[tuple[str, ...], tuple[tuple[int, ...], moderngl.Framebuffer]] = {}
        #: Number of textures created so far (tests use it to check nothing is reallocated per frame).
        self.allocations = 0
        self._null: moderngl.Framebuffer | None = None

    def get(self, name: str, width: int, height: int, comps: int, dtype: str) -> moderngl.Texture:
        t = self._tex.get(name)
        if t is not None and t.components == comps and t.dtype == dtype:
            if t.width >= width and t.height >= height:
                return t
            width, height = max(width, t.width), max(height, t.height)
        if t is not None:
            self._drop(name)
        t = self.ctx.texture((width, height), comps, dtype=dtype)
        t.filter = (moderngl.NEAREST, moderngl.NEAREST)
        t.repeat_x = t.repeat_y = False
        self._tex[name] = t
        self.allocations += 1
        return t

    def get_group(self, names: tuple[str, ...], width: int, height: int, comps: int, dtype: str
                  ) -> list[moderngl.Texture]:
        """Textures that will be attached to one framebuffer: all the same size (GL framebuffers with
        mixed attachment sizes are legal but moderngl rejects them), grown together."""
        same = [t for n in names if (t := self._tex.get(n)) is not None and t.components == comps
                and t.dtype == dtype]
        w = max([width] + [t.width for t in same])
        h = max([height] + [t.height for t in same])
        return [self.get(n, w, h, comps, dtype) for n in names]

    def fbo(self, names: tuple[str, ...]) -> moderngl.Framebuffer:
        """A framebuffer over the named textures (cached while none of them is reallocated)."""
        glos = tuple(self._tex[n].glo for n in names)
        hit = self._fbos.get(names)
        if hit is not None and hit[0] == glos:
            return hit[1]
        if hit is not None:
            self._release_fbo(hit[1])
        fb = self.ctx.framebuffer(color_attachments=[self._tex[n] for n in names])
        self._fbos[names] = (glos, fb)
        return fb

    def _release_fbo(self, fb: moderngl.Framebuffer) -> None:
        """Release one of our framebuffers without leaving moderngl tracking it as bound.

        moderngl re-binds "its" current framebuffer after reads and clears; if that is a released one,
        the next such call fails with GL_INVALID_OPERATION. So switch its tracking away first.
        """
        if self.ctx.fbo is fb:
            if self._null is None:
                self._null = self.ctx.detect_framebuffer(0)
            self._null.use()
        fb.release()

    def _drop(self, name: str) -> None:
        for key in [k for k in self._fbos if name in k]:
            self._release_fbo(self._fbos.pop(key)[1])
        self._tex.pop(name).release()

    def nbytes(self) -> int:
        size = {"f1": 1, "nu2": 2, "f2": 2, "f4": 4}
        return sum(t.width * t.height * t.components * size.get(t.dtype, 4) for t in self._tex.values())

    def release(self) -> None:
        for name in list(self._tex):
            self._drop(name)


def _nonzero_offsets(taps: np.ndarray) -> tuple[int, ...]:
    r = taps.size // 2
    return tuple(int(i) - r for i in np.flatnonzero(taps))


def stage_shape(stage: MixtureStage) -> tuple[tuple[int, ...], ...]:
    """The specialisation key of a stage: per level, the offsets of its non-zero taps."""
    return tuple(_nonzero_offsets(t) for t in stage.taps)


def _slot(k: int, i: int) -> tuple[int, str]:
    return (k // 4) * (2 * MAX_RADIUS + 1) + i + MAX_RADIUS, "xyzw"[k % 4]


#: A packing of a stage's H targets: per texture, the (level, colour channel) in each RGBA component.
Packing = tuple[tuple[tuple[int, int], ...], ...]
#: Cost of one extra render target in the H pass, in V-pass fetches (measured on llvmpipe: ~0.5-1).
_OUTPUT_COST = 0.75


def choose_packing(shape: tuple[tuple[int, ...], ...], colour: int) -> Packing | None:
    """Pack the levels' channels into RGBA targets when that needs fewer fetches, else None.

    Packed, channels fill the four components of target 0, then target 1...; the V pass fetches a
    packed target once per offset any of its levels uses. Two fill orders are tried - levels in plan
    order and by decreasing reach - and the cheaper kept. Gray images gain most (4 levels per texel:
    the 5-level laplacian drops from 55 to 28 V fetches); RGB gains when neighbouring levels have
    similar radii (laplacian 55 -> 46) and loses when they differ (the comb: 10 -> 14, so it stays
    unpacked).
    """
    k = len(shape)

    def cost(groups: list[set[int]]) -> float:
        return sum(len(set().union(*(set(shape[lv]) for lv in g))) for g in groups) + _OUTPUT_COST * len(groups)

    best: Packing | None = None
    best_cost = cost([{lv} for lv in range(k)])
    reach = [max((abs(o) for o in offs), default=-1) for offs in shape]
    for order in (list(range(k)), sorted(range(k), key=lambda lv: (-reach[lv], lv))):
        chans = [(lv, c) for lv in order for c in range(colour)]
        packed = tuple(tuple(chans[i:i + 4]) for i in range(0, len(chans), 4))
        c = cost([{lv for lv, _ in t} for t in packed])
        if c < best_cost:
            best, best_cost = packed, c
    return best


def _runs(slots: tuple[tuple[int, int], ...]) -> list[tuple[int, int, int, int]]:
    """Group consecutive components holding consecutive channels of one level: (level, c0, comp0, n)."""
    out: list[tuple[int, int, int, int]] = []
    for comp, (lv, c) in enumerate(slots):
        if out and out[-1][0] == lv and out[-1][1] + out[-1][3] == c and out[-1][2] + out[-1][3] == comp:
            lv0, c0, p0, n = out[-1]
            out[-1] = (lv0, c0, p0, n + 1)
        else:
            out.append((lv, c, comp, 1))
    return out


def _chan(var: str, colour: int, c0: int, n: int) -> str:
    return var if colour == 1 or (c0 == 0 and n == 3) else f"{var}.{'rgb'[c0:c0 + n]}"


def h_body(shape: tuple[tuple[int, ...], ...], packing: Packing | None = None, colour: int = 3) -> str:
    """Unrolled H-pass body: each needed texel fetched once, in ascending offset order (+ packed writes)."""
    lines = []
    for i in sorted(set().union(*shape)):
        lines.append(f"    v = FETCH_X({i});")
        for k, offs in enumerate(shape):
            if i in offs:
                s, c = _slot(k, i)
                lines.append(f"    h{k} += u_taps[{s}].{c} * v;")
    for t, slots in enumerate(packing or ()):
        parts = [_chan(f"h{lv}", colour, c0, n) for lv, c0, _, n in _runs(slots)]
        pad = 4 - len(slots)
        parts += ["0.0"] * pad
        lines.append(f"    o_p{t} = STORE(vec4({', '.join(parts)}));")
    return "\n".join(lines)


def h_decls(packing: Packing) -> str:
    return "\n".join(f"layout(location = {t}) out vec4 o_p{t};" for t in range(len(packing)))


def v_body(shape: tuple[tuple[int, ...], ...], packing: Packing | None = None, colour: int = 3) -> str:
    """Unrolled V-pass body: per level its vertical sum over ascending offsets, then, in plan order,
    ``acc += d_k * s_k``. Packed: each packed texel is fetched once per offset and its components feed
    the channel sums they hold."""
    lines = []
    if packing is None:
        for k, offs in enumerate(shape):
            lines.append("    {")
            lines.append("        PRECISE COL s = COL(0.0);")
            for j in offs:
                s, c = _slot(k, j)
                lines.append(f"        s += u_taps[{s}].{c} * FETCH_Y(u_h{k}, {j});")
            lines.append(f"        acc += u_d[{k + 1}] * s;")
            lines.append("    }")
        return "\n".join(lines)
    for k in range(len(shape)):
        lines.append(f"    PRECISE COL s{k} = COL(0.0);")
    lines.append("    vec4 f;")
    lines += packed_v_sums(shape, packing, colour)
    for k in range(len(shape)):
        lines.append(f"    acc += u_d[{k + 1}] * s{k};")
    return "\n".join(lines)


def packed_v_sums(shape: tuple[tuple[int, ...], ...], packing: Packing, colour: int) -> list[str]:
    """The vertical sums ``s_k`` of a packed V pass (``s_k`` and ``vec4 f`` declared by the caller): each
    packed texel fetched once per offset, its components added to the sums of the levels they hold, every
    sum over ascending offsets (the reference's order)."""
    lines = []
    for t, slots in enumerate(packing):
        runs = _runs(slots)
        for j in sorted(set().union(*(set(shape[lv]) for lv, _ in slots))):
            lines.append(f"    f = FETCH_T(u_h{t}, {j});")
            for lv, c0, p0, n in runs:
                if j in shape[lv]:
                    s, c = _slot(lv, j)
                    lines.append(f"    {_chan(f's{lv}', colour, c0, n)} += u_taps[{s}].{c} * f.{'xyzw'[p0:p0 + n]};")
    return lines


def pack_taps(stage: MixtureStage) -> np.ndarray:
    """The ``u_taps`` array (62 x vec4) of a stage: tap i of level k at row (k//4)*31 + i + 15, lane k%4."""
    arr = np.zeros((_SLOTS, 4), dtype=np.float32)
    for k, g in enumerate(stage.taps):
        r = g.size // 2
        base = (k // 4) * (2 * MAX_RADIUS + 1) + MAX_RADIUS
        arr[base - r: base + r + 1, k % 4] = g
    return arr


class PlanExecutor:
    """Compiles, caches and runs the passes of a plan (see the module docstring).

    Parameters
    ----------
    ctx : moderngl.Context
    specialize : bool
        Shape-specialised unrolled programs (fast) or generic uniform-loop programs (never recompile).
    raw : RawGL, optional
        Raw GL entry points of ``ctx`` (made if not given).
    pack_levels : bool
        Allow packed H targets in specialised programs.
    fp16_storage : {'auto', 'native', 'emulated'}
        Precision-16 storage: RGBA16F targets, or RGBA32F with toward-zero rounding in the shader
        ('auto': emulated on CPU rasterisers whose native rounding is toward zero, where it is
        bit-identical and faster).
    """

    def __init__(self, ctx: moderngl.Context, *, specialize: bool = True, raw: RawGL | None = None,
                 pack_levels: bool = True, fp16_storage: str = "auto") -> None:
        self.ctx = ctx
        #: Let specialised stages pack several levels into one RGBA intermediate (:func:`choose_packing`).
        self.pack_levels = bool(pack_levels)
        self.raw = raw if raw is not None else RawGL(ctx)
        self.specialize = bool(specialize)
        self.pool = TexturePool(ctx)
        self._programs: OrderedDict[tuple, _Program] = OrderedDict()
        self._vert = build_source("fullscreen.vert")
        self.sampler = ctx.sampler(filter=(moderngl.NEAREST, moderngl.NEAREST), repeat_x=False,
                                   repeat_y=False)
        self.max_texture_size = int(ctx.info.get("GL_MAX_TEXTURE_SIZE", 4096))
        #: Number of programs compiled so far (tests check that re-designs do not add any).
        self.compiles = 0
        self._packed: dict[int, tuple[MixtureStage, np.ndarray, np.ndarray]] = {}
        self._luts: dict[int, moderngl.Texture] = {}
        #: How this driver rounds float32 into RGBA16F targets: 'toward_zero' or 'nearest' (probed).
        self.fp16_rounding = self._probe_fp16_rounding()
        if fp16_storage not in ("auto", "native", "emulated"):
            raise ValueError(f"fp16_storage must be 'auto', 'native' or 'emulated', got {fp16_storage!r}")
        renderer = str(ctx.info.get("GL_RENDERER", "")).lower()
        cpu_raster = any(n in renderer for n in ("llvmpipe", "softpipe", "swiftshader"))
        #: Precision-16 intermediates rounded in the shader (toward zero) and kept in RGBA32F instead of
        #: RGBA16F targets: bit-identical where the driver itself rounds toward zero, and much faster on
        #: CPU rasterisers, which convert half floats in software. 'auto' picks it exactly there.
        self.emulate_fp16 = fp16_storage == "emulated" or (
            fp16_storage == "auto" and cpu_raster and self.fp16_rounding == "toward_zero")
        if self.emulate_fp16:
            self.fp16_rounding = "toward_zero"

    # -- programs ---------------------------------------------------------------------------------
    def program(self, key: tuple, frag: str, defines: dict[str, object], body: str | None = None,
                samplers: dict[str, int] | None = None) -> _Program:
        """Cached program for ``key`` (built from ``frag`` with ``defines``/``body`` on a miss)."""
        return self._program_with(key, frag, defines, body, None, samplers)

    def _program_with(self, key: tuple, frag: str, defines: dict[str, object], body: str | None,
                      decls: str | None, samplers: dict[str, int] | None) -> _Program:
        p = self._programs.get(key)
        if p is not None:
            self._programs.move_to_end(key)
            return p
        src = build_source(frag, defines, body, decls)
        p = _Program(self.ctx, self._vert, src, samplers or {})
        self.compiles += 1
        self._programs[key] = p
        if len(self._programs) > 64:  # bound the cache; shapes seen long ago are recompiled if needed
            self._programs.popitem(last=False)[1].release()
        return p

    def _copy_program(self, layout: Layout, decode: bool, encode: bool, lut: bool = False) -> _Program:
        key = ("copy", layout.colour, decode, encode, lut)
        return self.program(key, "copy.frag", {"COLOUR": layout.colour, "DECODE_SRGB": decode,
                                               "DECODE_LUT": decode and lut, "ENCODE_SRGB": encode},
                            samplers={"u_src": 0, "u_lut": 1})

    def decode_lut(self, bits: int) -> moderngl.Texture:
        """The sRGB decode table of ``bits``-bit codes as an R32F texture (256 wide; made once)."""
        t = self._luts.get(bits)
        if t is None:
            from ..core.colour import decode_lut

            lut = decode_lut(bits)
            t = self.ctx.texture((256, max(1, lut.size // 256)), 1, lut.astype(np.float32).tobytes(), dtype="f4")
            t.filter = (moderngl.NEAREST, moderngl.NEAREST)
            self._luts[bits] = t
        return t

    @staticmethod
    def lut_bits(texture: moderngl.Texture) -> int | None:
        """8 or 16 for unsigned normalized textures (decoded through a table), else None."""
        return {"f1": 8, "nu2": 16}.get(texture.dtype)

    def packing(self, stage: MixtureStage, colour: int) -> Packing | None:
        """How the stage's H targets are laid out (None: one target per level; generic mode never packs)."""
        if not self.specialize or not self.pack_levels:
            return None
        return choose_packing(stage_shape(stage), colour)

    def _h_program(self, stage: MixtureStage, colour: int, periodic: bool, e16: bool = False) -> _Program:
        k = stage.levels
        defines: dict[str, object] = {"LEVELS": k, "COLOUR": colour, "MIRROR_PERIODIC": periodic,
                                      "EMULATE_FP16": e16}
        if self.specialize:
            shape = stage_shape(stage)
            pk = self.packing(stage, colour)
            defines["SPECIALIZED"] = True
            defines["PACKED"] = pk is not None
            return self._program_with(("h", shape, colour, periodic, pk, e16), "mixture_h.frag", defines,
                                      h_body(shape, pk, colour), h_decls(pk) if pk else None, {"u_src": 0})
        return self.program(("hg", k, colour, periodic, e16), "mixture_h.frag", defines, None, {"u_src": 0})

    def _v_program(self, stage: MixtureStage, colour: int, alpha: bool, encode: bool,
                   periodic: bool, store16: bool = False) -> _Program:
        k = stage.levels
        defines: dict[str, object] = {"LEVELS": k, "COLOUR": colour, "HAS_ALPHA": alpha,
                                      "ENCODE_SRGB": encode, "MIRROR_PERIODIC": periodic,
                                      "EMULATE_FP16": store16, "STORE_FP16": store16}
        samplers = {"u_base": 0, **{f"u_h{i}": 1 + i for i in range(k)}}
        if self.specialize:
            shape = stage_shape(stage)
            pk = self.packing(stage, colour)
            defines["SPECIALIZED"] = True
            defines["PACKED"] = pk is not None
            return self.program(("v", shape, colour, alpha, encode, periodic, pk, store16), "mixture_v.frag",
                                defines, v_body(shape, pk, colour), samplers)
        return self.program(("vg", k, colour, alpha, encode, periodic, store16), "mixture_v.frag", defines,
                            None, samplers)

    def warm(self, plan: Plan, layout: Layout, encode: bool = False) -> None:
        """Compile (without drawing) every program ``plan`` needs, e.g. before a timed loop."""
        for i, st in enumerate(plan.stages):
            last = i == len(plan.stages) - 1
            self._h_program(st, layout.colour, False, self.emulate_fp16)
            self._v_program(st, layout.colour, layout.alpha and last, encode and last, False,
                            self.emulate_fp16 and not last)

    # -- passes -----------------------------------------------------------------------------------
    def bind(self, unit: int, texture: moderngl.Texture) -> None:
        texture.use(unit)
        self.sampler.use(unit)

    @staticmethod
    def _use_target(target: DrawTarget, guard: Any | None) -> None:
        """Bind ``target`` and set its viewport (a caller's framebuffer goes through the guard)."""
        if target.external:
            if guard is None:
                raise ValueError("drawing into a caller's framebuffer needs a GLStateGuard")
            guard.bind_target(target.fbo, target.viewport)
        else:
            target.fbo.use()
            target.fbo.viewport = target.viewport

    def copy(self, src: Region, target: DrawTarget, layout: Layout, *, decode: bool = False,
             encode: bool = False, guard: Any | None = None) -> None:
        """One ``copy.frag`` pass: ``src`` region -> ``target`` (identity / decode / encode).

        Decoding an 8/16-bit unorm texture goes through the exact table (:meth:`decode_lut`).
        """
        bits = self.lut_bits(src.texture) if decode else None
        p = self._copy_program(layout, decode, encode, bits is not None)
        self._use_target(target, guard)
        if bits is not None:
            self.bind(1, self.decode_lut(bits))
            p.set("u_lut_max", float((1 << bits) - 1))
        self.bind(0, src.texture)
        p.set("u_src_inv", src.inv)
        p.set("u_origin", target.viewport[:2])
        p.draw()

    def internal_target(self, names: tuple[str, ...], width: int, height: int) -> DrawTarget:
        return DrawTarget(self.pool.fbo(names), (0, 0, width, height))

    def decode(self, src: Region, layout: Layout) -> Region:
        """sRGB-decode ``src`` into the pooled float32 'linear' texture (alpha copied)."""
        w, h = src.width, src.height
        self.pool.get("lin", w, h, layout.comps, "f4")
        self.copy(src, self.internal_target(("lin",), w, h), layout, decode=True)
        return Region(self.pool.get("lin", w, h, layout.comps, "f4"), w, h)

    def run_stages(self, plan: Plan, base: Region, target: DrawTarget, layout: Layout, *, precision: int,
                   encode_srgb: bool, guard: Any | None = None) -> None:
        """Draw the mixture stages of ``plan`` applied to the linear ``base`` into ``target``.

        Parameters
        ----------
        plan : Plan
        base : Region
            The chain input, linear light.
        target : DrawTarget
            Destination framebuffer and viewport (its size must equal the region's).
        layout : Layout
        precision : {16, 32}
            Storage of intermediates (H targets and non-final stage outputs).
        encode_srgb : bool
            sRGB-encode the output in the last pass.
        guard : GLStateGuard, optional
            Needed when ``target`` is a caller's framebuffer.
        """
        if precision not in (16, 32):
            raise ValueError(f"precision must be 16 or 32, got {precision!r}")
        if (target.viewport[2], target.viewport[3]) != (base.width, base.height):
            raise ValueError(f"target viewport {target.viewport[2:]} differs from the source size "
                             f"{(base.width, base.height)}")
        w, h = base.width, base.height
        e16 = precision == 16 and self.emulate_fp16
        dt = "f2" if precision == 16 and not e16 else "f4"
        ic = layout.inter_comps
        prev = base
        n = len(plan.stages)
        for s, stage in enumerate(plan.stages):
            last = s == n - 1
            src = base if stage.src == "input" else prev
            k = stage.levels
            taps, d = self._uniform_arrays(stage)
            # H pass
            pk = self.packing(stage, layout.colour)
            names = tuple(f"h{i}" for i in range(k if pk is None else len(pk)))
            htex = self.pool.get_group(names, w, h, ic if pk is None else 4, dt)
            hp = self._h_program(stage, layout.colour, stage.radius > w, e16)
            self._use_target(self.internal_target(names, w, h), guard)
            self.bind(0, src.texture)
            hp.set("u_src_inv", src.inv)
            hp.set("u_region", (w, h))
            hp.set("u_radius", stage.radius)
            hp.set_array("u_taps", taps)
            hp.draw()
            # V pass
            if last:
                out = target
            else:
                pname = f"p{s % 2}"
                self.pool.get(pname, w, h, ic, dt)
                out = self.internal_target((pname,), w, h)
            vp = self._v_program(stage, layout.colour, layout.alpha and last, encode_srgb and last,
                                 stage.radius > h, e16 and not last)
            self._use_target(out, guard)
            self.bind(0, base.texture)
            for i, t in enumerate(htex):
                self.bind(1 + i, t)
            hinv = (1.0 / htex[0].width, 1.0 / htex[0].height)
            vp.set("u_base_inv", base.inv)
            vp.set("u_h_inv", hinv)
            vp.set("u_region", (w, h))
            vp.set("u_origin", out.viewport[:2])
            vp.set_array("u_taps", taps)
            vp.set_array("u_d", d)
            if not self.specialize:
                rad = np.zeros(7, dtype=np.int32)
                rad[:k] = [t.size // 2 for t in stage.taps]
                vp.set_array("u_rad", rad)
            vp.draw()
            if not last:
                prev = Region(self.pool.get(f"p{s % 2}", w, h, ic, dt), w, h)

    def _uniform_arrays(self, stage: MixtureStage) -> tuple[np.ndarray, np.ndarray]:
        """``u_taps`` and ``u_d`` of a stage, packed once per stage object (no per-frame allocation)."""
        hit = self._packed.get(id(stage))
        if hit is not None and hit[0] is stage:
            return hit[1], hit[2]
        d = np.zeros(8, dtype=np.float32)
        d[: stage.levels + 1] = stage.weights
        taps = pack_taps(stage)
        if len(self._packed) >= 32:
            self._packed.clear()
        self._packed[id(stage)] = (stage, taps, d)
        return taps, d

    # -- probes -----------------------------------------------------------------------------------
    def _probe_fp16_rounding(self) -> str:
        """Render values that sit between two float16 numbers into an RGBA16F target and look."""
        ulp = np.float32(2.0 ** -10)
        vals = np.array([1 + 0.75 * ulp, 1 + 0.6 * ulp, -(1 + 0.75 * ulp), 2 + 1.5 * ulp], np.float32)
        src = self.ctx.texture((1, 1), 4, vals.tobytes(), dtype="f4")
        dst = self.ctx.texture((1, 1), 4, dtype="f2")
        fb = self.ctx.framebuffer([dst])
        try:
            with GLStateGuard(self.ctx, self.raw, TEXTURE_UNITS):
                self.copy(Region(src, 1, 1), DrawTarget(fb, (0, 0, 1, 1)), Layout(3, 4, True))
            got = np.frombuffer(dst.read(), dtype=np.float16).astype(np.float32)
        finally:
            fb.release()
            src.release()
            dst.release()
        nearest = vals.astype(np.float16).astype(np.float32)
        if np.array_equal(got, nearest):
            return "nearest"
        if np.all(np.abs(got) <= np.abs(vals)):
            return "toward_zero"
        return "nearest"

    def release(self) -> None:
        for t in self._luts.values():
            t.release()
        self._luts.clear()
        for p in self._programs.values():
            p.release()
        self._programs.clear()
        self.pool.release()
        self.sampler.release()
