"""GL passes of the locally adaptive filter (the maths and its NumPy mirror: :mod:`gpu_deconv.core.adaptive`).

=====  =========================  ====================================  ================================
 pass   shader                     draws                                  reads
=====  =========================  ====================================  ================================
 1      ``mixture_h.frag``         ``H_k`` (K lowpasses) + ``hx``,       the linear input (one fetch loop
                                   packed RGBA32F (``choose_packing``)    along x, radius <= 15)
 2      ``adaptive_bands.frag``    bands ``L_k``, ``e``, ``q`` (fp16 at  input + packed ``H`` texels (each
                                   precision 16), packed RGBA             fetched once per y offset)
 3      ``adaptive_energy.frag``   half resolution: ``D`` + 2x2 sums     4x4 ``(e, q)`` texels per texel
 4      ``adaptive_reduce.frag``   per 16x16 tile: sums of ``e``, ``q``  8x8 half-resolution texels
 5      ``adaptive_apply.frag``    the output (sRGB encode, alpha)       input, bands, 2x2 of ``D``, table
=====  =========================  ====================================  ================================

Pass 1 *is* the global filter's H pass (``mixture_h.frag``, shape-specialised and packed) run on a stage
whose levels are the basis lowpasses plus the noise band's horizontal factor ``[-1/4, 1/2, -1/4]``; its
targets are fp32 whatever the precision (see the core module: fp16 lowpass sums cost 0.33 dB). Passes
2 and 5 have bodies generated for the basis' shape and the packing (this module); 3 and 4 are fixed.

Statistics: pass 4's grid (120 x 68 at 1080p, like :mod:`gpu_deconv.gl.stats_gpu`) is all that is read
back; :class:`~gpu_deconv.core.adaptive.AdaptiveStats` turns it into the frame's noise (the diagonal-band
estimator of :mod:`gpu_deconv.core.noise`, same band, same percentile) and level - the global
statistics passes are not needed in this mode.

Noise 'auto': the energy bands (pass 2) depend on the noise through the table. :meth:`AdaptiveExecutor.prepare`
runs passes 1-4 with a provisional band pair; :meth:`AdaptiveExecutor.apply` re-runs passes 2-4 only if the
table finally solved from the measured noise wants another pair (for video: solve from the previous
frame's noise and :meth:`AdaptiveExecutor.run` everything at once).

Fused path (``AdaptiveExecutor(compute=...)``, which the engine takes where its
:class:`~gpu_deconv.gl.compute.PathChooser` takes fused stages without measuring - CPU rasterisers): two
compute dispatches on the sliding-window strip of :func:`gpu_deconv.gl.compute.strip_body` replace passes
1, 2 and 5:

=====  ==================================  ===========================================================
 1+2    ``adaptive_bands_fused.comp``       ``e`` and ``q`` only (the energy pair compiled in), one
                                            R32UI (two halves) or RG target
 3, 4   as above                            unchanged
 5      ``adaptive_apply_fused.comp``       forms the bands in registers on its own window (rounded as
                                            pass 2 would store them), then ``adaptive_pixel`` of
                                            ``adaptive_apply.glsl`` - the fragment pass 5's code
=====  ==================================  ===========================================================

No lowpass or band texture exists then: at 1080p RGB the fragment path holds five RGBA32F lowpass
targets and three RGBA32UI band targets (266 MB), the fused path one R32UI target (8 MB) - the whole
one-photo process peaks at 232 MB instead of 471 MB - and it is faster on llvmpipe (bench_adaptive.py).
It needs the bands' storage rounding reproducible in registers (fp32, or fp16 emulated: CPU rasterisers);
native RGBA16F targets round in the driver, so GPUs keep the fragment passes until benchmarks/gpu_run.sh
has compared the two there.

On Mesa llvmpipe every pass is bit-identical to the NumPy reference except the optional sRGB encode and
the limiter (``pow``, division: a few ulp), checked by tests/test_adaptive_gl.py - on both paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import moderngl
import numpy as np

from ..core.adaptive import (
    ENERGY_SCALE,
    HH_TAPS,
    TABLE_SIZE,
    TABLE_START,
    AdaptiveStats,
    AdaptiveTable,
    ChannelTable,
    SigmaTable,
)
from ..core.basis import Basis
from ..core.plan import MixtureStage
from ..core.stats import BLOCK
from .compute import IMAGE_FORMATS, ComputeExecutor, FusedVariant, fallback_comps, strip_body
from .executor import (
    DrawTarget,
    Layout,
    Packing,
    PlanExecutor,
    Region,
    _slot,
    choose_packing,
    h_body,
    h_decls,
    pack_taps,
    packed_v_sums,
    stage_shape,
)
from .shaders import build_source

_XYZW = "xyzw"


@dataclass(frozen=True)
class BandLayout:
    """Where pass 2 stores what. Values go in *lanes*: 4 per texel (one per component of an RGBA float
    target) or, with ``halves``, 8 per texel (two fp16 values per component of an RGBA32UI target,
    ``packHalf2x16``). Band channels fill lanes in order (band 1's channels, band 2's, ...), then ``e`` and
    ``q`` take two adjacent lanes of one texel - one component when halved - so pass 3 fetches both at once.

    Why halves: on CPU rasterisers (``PlanExecutor.emulate_fp16``) the fp16 rounding happens in the shader
    and the targets are 32-bit, so storing two rounded values per 32-bit component halves the targets
    pass 2 writes and the texels pass 5 fetches (RGB laplacian: 3 targets instead of 5, 2 band fetches
    instead of 4) with identical values - fp16 values are exact in fp16. An unsigned integer target, not a
    float one, carries the bits: a pair read as a float32 may be a denormal, which drivers may flush.

    Attributes
    ----------
    slots : tuple (K) of tuple (colour) of (texture, lane)
    eq : (texture, lane)
        ``e`` at ``lane``, ``q`` at ``lane + 1``.
    textures : int
        Number of pass-2 targets.
    band_textures : int
        Targets holding band channels (what pass 5 fetches).
    halves : bool
    """

    slots: tuple[tuple[tuple[int, int], ...], ...]
    eq: tuple[int, int]
    textures: int
    band_textures: int
    halves: bool = False

    @property
    def lanes(self) -> int:
        return 8 if self.halves else 4

    @staticmethod
    def of(k: int, colour: int, halves: bool = False) -> BandLayout:
        lanes = 8 if halves else 4
        chans = [(b, c) for b in range(k) for c in range(colour)]
        slots = [[(0, 0)] * colour for _ in range(k)]
        for i, (b, c) in enumerate(chans):
            slots[b][c] = (i // lanes, i % lanes)
        n = len(chans)
        start = n + (n % 2 if halves else 0)  # halved: e and q share one component
        if start % lanes > lanes - 2:
            start = -(-start // lanes) * lanes
        return BandLayout(tuple(tuple(s) for s in slots), (start // lanes, start % lanes), start // lanes + 1,
                          -(-n // lanes), halves)

    def lane_exprs(self, t: int, band_expr: Callable[[int, int], str], e: str, q: str) -> list[str]:
        """The expressions stored in texture ``t``'s lanes (``band_expr(band, channel)``; '0.0' if free)."""
        out = ["0.0"] * self.lanes
        for b, chans in enumerate(self.slots):
            for c, (tt, lane) in enumerate(chans):
                if tt == t:
                    out[lane] = band_expr(b, c)
        if self.eq[0] == t:
            out[self.eq[1]], out[self.eq[1] + 1] = e, q
        return out


def _col(colour: int, parts: list[str]) -> str:
    return parts[0] if colour == 1 else f"vec3({', '.join(parts)})"


def bands_decls(h_textures: int, bl: BandLayout) -> str:
    """Pass 2 declarations: the H samplers and the band targets (``uvec4`` when halved)."""
    lines = [f"uniform sampler2D u_h{t};" for t in range(h_textures)]
    kind = "uvec4" if bl.halves else "vec4"
    lines += [f"layout(location = {t}) out {kind} o_b{t};" for t in range(bl.textures)]
    return "\n".join(lines)


def bands_body(shape: tuple[tuple[int, ...], ...], packing: Packing | None, colour: int, bl: BandLayout) -> str:
    """Pass 2 body: vertical sums ``s_k`` (each H texel fetched once per offset, every channel summed
    over ascending offsets), bands, energies, packed STOREs (see ``adaptive_bands.frag``).

    The energy bands are chosen by the uniform weights ``u_ew[k]`` (1 for the table's two bands, 0 for the
    others) rather than compiled in, so a change of band pair (a slider moving sigma or the noise across a
    threshold) never recompiles: ``en = 0; en += w_k (L_k.c L_k.c)`` over every band and channel in order
    adds exactly the pair's squares in the pair's order (``0 + x``, ``1 * x`` and ``+ 0 * x`` are exact), so
    the result is bit-identical to summing the pair alone."""
    nlev = len(shape)
    k = nlev - 1
    lines = [f"    PRECISE COL s{lv} = COL(0.0);" for lv in range(nlev)]
    if packing is None:
        for lv, offs in enumerate(shape):
            for j in offs:
                s, c = _slot(lv, j)
                lines.append(f"    s{lv} += u_taps[{s}].{c} * FETCH_Y(u_h{lv}, {j});")
    else:
        lines += packed_v_sums(shape, packing, colour)
    lines += band_outputs(k, colour, bl, lambda t, expr: f"    o_b{t} = {expr};")
    return "\n".join(lines)


def band_outputs(k: int, colour: int, bl: BandLayout, store: Callable[[int, str], str],
                 pair: tuple[int, int] | None = None) -> list[str]:
    """The statements of pass 2 after the vertical sums ``s0 .. s{K}`` (and ``x``) are formed: the bands,
    the energy ``en``, the noise energy ``qn`` and one ``store(t, value)`` statement per target ``t``
    (a fragment output or an ``imageStore``), in the order and with the roundings of
    :func:`gpu_deconv.core.adaptive` - shared by the fragment pass and the fused compute dispatches.

    ``pair``: the energy bands compiled in instead of weighted by ``u_ew`` - the same sum bit for bit
    (``0 + x``, ``1 * x`` and ``+ 0 * x`` are exact), and the bands and lowpasses past the pair become dead
    code the compiler drops (the e/q-only dispatch of the fused path)."""
    lines = ["    PRECISE COL L0 = x - s0;"]
    lines += [f"    PRECISE COL L{b} = s{b - 1} - s{b};" for b in range(1, k)]
    ch = [""] if colour == 1 else [".r", ".g", ".b"]

    def energy(name: str, vecs: list[str]) -> None:
        terms = [f"{v}{c} * {v}{c}" for v in vecs for c in ch]
        lines.append(f"    PRECISE float {name} = {terms[0]};")
        lines.extend(f"    {name} += {t};" for t in terms[1:])
        lines.append(f"    {name} *= {ENERGY_SCALE!r};")

    lines.append("    PRECISE float en = 0.0;")
    if pair is None:
        lines.extend(f"    en += u_ew[{b}] * (L{b}{c} * L{b}{c});" for b in range(k) for c in ch)
    else:
        lines.extend(f"    en += L{b}{c} * L{b}{c};" for b in sorted(pair) for c in ch)
    lines.append(f"    en *= {ENERGY_SCALE!r};")
    energy("qn", [f"s{k}"])
    for t in range(bl.textures):
        lanes = bl.lane_exprs(t, lambda b, c: f"L{b}{ch[c]}", "en", "qn")
        if not bl.halves:
            lines.append(store(t, f"STORE(vec4({', '.join(lanes)}))"))
            continue
        lines.append(f"    vec4 h{t}a = STORE(vec4({', '.join(lanes[:4])}));")
        lines.append(f"    vec4 h{t}b = STORE(vec4({', '.join(lanes[4:])}));")
        lines.append(store(t, f"uvec4(packHalf2x16(h{t}a.xy), packHalf2x16(h{t}a.zw), packHalf2x16(h{t}b.xy), "
                              f"packHalf2x16(h{t}b.zw))"))
    return lines


def _window_sums(shape: tuple[tuple[int, ...], ...], window: Callable[[int, int], str]) -> list[str]:
    """``s{k} = sum_{j ascending} g_k[j] H_k(j)`` from a fused walk's window: pass 2's vertical sums, in its
    order (shared by both fused dispatches)."""
    lines = []
    for lv, offs in enumerate(shape):
        lines.append(f"PRECISE COL s{lv} = COL(0.0);")
        for j in offs:
            sl, comp = _slot(lv, j)
            lines.append(f"s{lv} += u_taps[{sl}].{comp} * {window(lv, j)};")
    return lines


def bands_fused_body(shape: tuple[tuple[int, ...], ...], variant: FusedVariant, colour: int, bl: BandLayout,
                     pair: tuple[int, int]) -> str:
    """Passes 1 and 2 in one compute dispatch (``adaptive_bands_fused.comp``): the sliding-window strip of
    :func:`gpu_deconv.gl.compute.strip_body` forms the H rows of pass 1 (fp32, as pass 1's targets hold
    them) and, per output pixel, the vertical sums in pass 2's order (ascending offsets per level), then
    :func:`band_outputs` (``pair`` compiled in, see there) - bit-identical to the two fragment passes,
    without their K + 1 fp32 intermediate textures."""

    def emit_row(add: Callable[[str], None], c: int, window: Callable[[int, int], str]) -> None:
        add(f"ivec2 p = ivec2(x0 + {c}, y0 + row);")
        add("COL x = CSW(FETCH(u_src, p, u_src_inv));")
        for line in _window_sums(shape, window):
            add(line)
        add("bool inside = p.x < u_region.x && p.y < u_region.y;")
        for line in band_outputs(len(shape) - 1, colour, bl, lambda t, v: f"if (inside) imageStore(u_b{t}, p, {v});",
                                 pair):
            add(line.strip())

    return strip_body(shape, variant, False, emit_row)


def apply_decls(bl: BandLayout) -> str:
    kind = "usampler2D" if bl.halves else "sampler2D"
    return "\n".join(f"uniform {kind} u_b{t};" for t in range(bl.band_textures))


def apply_fused_walk(shape: tuple[tuple[int, ...], ...], variant: FusedVariant) -> str:
    """The walk of ``adaptive_apply_fused.comp`` (:func:`gpu_deconv.gl.compute.strip_body` over the basis
    lowpasses, without the noise band's level): per pixel inside the region the vertical sums in pass 2's
    order, the bands rounded as pass 2 stores them (``STORE``) into ``g_L``, then ``adaptive_pixel``."""
    k = len(shape)

    def emit_row(add: Callable[[str], None], c: int, window: Callable[[int, int], str]) -> None:
        add(f"ivec2 p = ivec2(x0 + {c}, y0 + row);")
        add("if (p.x < u_region.x && p.y < u_region.y) {")
        add("    COL x = CSW(FETCH(u_src, p, u_src_inv));")
        for line in _window_sums(shape, window):
            add("    " + line)
        add("    PRECISE COL L0 = x - s0;")
        add("    g_L[0] = STORE(L0);")
        for b in range(1, k):
            add(f"    PRECISE COL L{b} = s{b - 1} - s{b};")
            add(f"    g_L[{b}] = STORE(L{b});")
        add("    imageStore(u_out, u_origin + p, adaptive_pixel(p));")
        add("}")

    return strip_body(shape, variant, False, emit_row)


def apply_body(k: int, colour: int, bl: BandLayout | None, per_channel: bool = False) -> str:
    """Pass 5 body: ``L_k`` - unpacked from the band texels of ``bl``, or (``bl`` None) read from the fused
    walk's registers ``g_L`` - then ``acc += c_k L_k`` in band order. ``per_channel`` (RGB): first
    interpolate the table's rows at the level (``p{row}``; channel ch's coefficient k is lane ``ch K + k``),
    then ``acc += vec3(c_k^R, c_k^G, c_k^B) * L_k`` (:class:`~gpu_deconv.core.adaptive.ChannelTable`)."""
    lines = []
    if per_channel:  # the 3K coefficients densely in ceil(3K / 4) rows (:meth:`AdaptiveExecutor.channel_table_texture`)
        for r in range(-(-3 * k // 4)):
            lines.append(f"    vec4 pa{r} = texelFetch(u_table, ivec2(i, {r}), 0);")
            lines.append(f"    vec4 pb{r} = texelFetch(u_table, ivec2(i + 1, {r}), 0);")
            lines.append(f"    PRECISE vec4 p{r} = pa{r} + f * (pb{r} - pa{r});")

    def coefficient(b: int) -> str:
        if per_channel:
            return "vec3(" + ", ".join(f"p{(ch * k + b) // 4}.{_XYZW[(ch * k + b) % 4]}" for ch in range(3)) + ")"
        return f"c{b // 4}.{_XYZW[b % 4]}"

    if bl is None:
        for b in range(k):
            lines.append(f"    COL L{b} = g_L[{b}];")
            lines.append(f"    acc += {coefficient(b)} * L{b};")
        return "\n".join(lines)
    for t in range(bl.band_textures):
        if bl.halves:
            lines.append(f"    uvec4 u{t} = texelFetch(u_b{t}, c, 0);")
            lines.append(f"    vec4 b{t}a = vec4(unpackHalf2x16(u{t}.x), unpackHalf2x16(u{t}.y));")
            lines.append(f"    vec4 b{t}b = vec4(unpackHalf2x16(u{t}.z), unpackHalf2x16(u{t}.w));")
        else:
            lines.append(f"    vec4 b{t} = FETCH(u_b{t}, c, u_b_inv);")

    def lane(t: int, ln: int) -> str:
        return f"b{t}{'ab'[ln // 4]}.{_XYZW[ln % 4]}" if bl.halves else f"b{t}.{_XYZW[ln]}"

    for b, chans in enumerate(bl.slots):
        lines.append(f"    COL L{b} = {_col(colour, [lane(t, ln) for t, ln in chans])};")
        lines.append(f"    acc += {coefficient(b)} * L{b};")
    return "\n".join(lines)


@dataclass
class PendingAdaptiveStats:
    """An asynchronous grid read (:meth:`AdaptiveExecutor.stats_async`), resolved by ``.result()``."""

    buffer: moderngl.Buffer
    shape: tuple[int, int]
    width: int
    height: int
    channels: int
    block: int

    def result(self) -> AdaptiveStats:
        ny, nx = self.shape
        data = np.frombuffer(self.buffer.read(size=ny * nx * 16), dtype=np.float32).reshape(ny, nx, 4)
        return AdaptiveStats.from_grid(data, self.width, self.height, self.channels, self.block)


@dataclass
class _Prepared:
    src: Region
    layout: Layout
    basis_key: tuple
    bands: tuple[int, int]
    precision: int
    roi: tuple[int, int, int, int]


class AdaptiveExecutor:
    """Runs the adaptive passes on a :class:`~gpu_deconv.gl.executor.PlanExecutor`'s context, program cache,
    texture pool and sampler (so one engine owns every GL object).

    Parameters
    ----------
    executor : PlanExecutor
    block : int
        Statistics tile edge in pixels (even; 16 like the global statistics).
    compute : ComputeExecutor, optional
        Run passes 1 and 2 as one fused compute dispatch on its variant (``adaptive_bands_fused.comp``):
        the same values in the same targets, without pass 1's K + 1 fp32 textures (166 MB at 1080p RGB).
    """

    #: Texture units the passes use (a subset of the executor's, which its state guard saves).
    UNITS = tuple(range(8))

    def __init__(self, executor: PlanExecutor, block: int = BLOCK, compute: ComputeExecutor | None = None) -> None:
        if block < 2 or block % 2:
            raise ValueError(f"statistics block must be an even number >= 2, got {block!r}")
        self.ex = executor
        #: When set, passes 1 and 2 run as one fused compute dispatch on its variant (identical output).
        self.compute = compute
        self._fused_programs: dict[tuple, moderngl.ComputeShader] = {}
        self.ctx = executor.ctx
        self.block = int(block)
        self._prepared: _Prepared | None = None
        self._stage_cache: dict[tuple, MixtureStage] = {}
        self._table_tex: moderngl.Texture | None = None
        self._table_key: tuple | None = None
        self._textures: dict[str, tuple[tuple, moderngl.Texture]] = {}  # sigma-map table and map, by content
        #: the last sigma map's table (:func:`adaptive_frame`) and what it was solved for
        self.sigma_table: SigmaTable | None = None
        self._sigma_table_key: tuple | None = None
        #: the last per-channel sigma's table (:func:`adaptive_frame`) and what it was solved for
        self.channel_table: ChannelTable | None = None
        self._channel_table_key: tuple | None = None
        self._pbos: list[moderngl.Buffer] = []
        self._pbo_next = 0
        self._grid_shape = (0, 0)
        #: packHalf2x16 available (GLSL 4.20 or GL_ARB_shading_language_packing): halved band storage
        self._packing = "GL_ARB_shading_language_packing" in executor.ctx.extensions or \
            executor.ctx.version_code >= 420

    # -- helpers ---------------------------------------------------------------------------------
    def _stage(self, basis: Basis) -> MixtureStage:
        """Pass 1's stage: the basis lowpasses plus the noise band's horizontal factor as a last level."""
        key = basis.key()
        st = self._stage_cache.get(key)
        if st is None:
            taps = tuple(basis.lowpass_taps) + (HH_TAPS.astype(np.float64),)
            st = self._stage_cache[key] = MixtureStage(taps=taps, weights=np.zeros(len(taps) + 1))
        return st

    def _storage(self, k: int, colour: int, precision: int) -> tuple[BandLayout, str, bool]:
        """``(layout, texture dtype, emulated fp16)`` of pass 2's targets: halved lanes in RGBA32UI where
        the fp16 rounding is emulated (CPU rasterisers), RGBA16F natively, RGBA32F at precision 32. On the
        fused path pass 2 stores only ``e`` and ``q`` (the layout of zero bands, in a 1-component R32UI
        or 2-component RG target: :meth:`_target_comps`); pass 5 forms the bands itself."""
        e16 = precision == 16 and self.ex.emulate_fp16
        k = 0 if self._fused(precision) else k
        if e16 and self._packing:
            return BandLayout.of(k, colour, halves=True), "u4", True
        return BandLayout.of(k, colour), ("f2" if precision == 16 and not e16 else "f4"), e16

    def _fused(self, precision: int) -> bool:
        """Passes 1-2 and 5 as fused compute dispatches: with a ComputeExecutor, where the bands' storage
        rounding can be reproduced in registers (fp32, or fp16 emulated in the shader: CPU rasterisers;
        native RGBA16F targets round in the driver, so GPUs keep the fragment passes)."""
        return self.compute is not None and (precision == 32 or self.ex.emulate_fp16)

    @staticmethod
    def _target_comps(bl: BandLayout) -> int:
        """Components of pass 2's targets: 4, or for the fused path's e/q-only target 1 (two halves) or 2."""
        return 4 if bl.slots else (1 if bl.halves else 2)

    @staticmethod
    def _band_name(bl: BandLayout, i: int) -> str:
        """Pool name of pass-2 target ``i`` (halved, float and e/q-only targets never share a texture)."""
        return f"ad_{'u' if bl.halves else 'b'}{i}" if bl.slots else f"ad_eq{'u' if bl.halves else 'f'}"

    def _target(self, names: tuple[str, ...], w: int, h: int) -> DrawTarget:
        t = self.ex.internal_target(names, w, h)
        self.ex._use_target(t, None)
        return t

    # -- passes 1-4 ------------------------------------------------------------------------------
    def prepare(self, src: Region, layout: Layout, basis: Basis, bands: tuple[int, int], *,
                precision: int = 16, roi: tuple[int, int, int, int] | None = None) -> None:
        """Passes 1-4 on the linear ``src`` (bands ``bands`` for the energy): leaves the bands, the
        half-resolution energy and the statistics grid in the pool for :meth:`apply` / :meth:`stats`.

        Parameters
        ----------
        src : Region
            Linear input (colour channels as ``layout`` says).
        layout : Layout
        basis : Basis
            The table's basis (its lowpasses).
        bands : (int, int)
            Energy bands (:attr:`AdaptiveTable.bands`).
        precision : {16, 32}
            Storage of bands and energies.
        roi : (x0, y0, x1, y1), optional
            Pixels counted by the statistics (default all); ``x0, y0`` on the block grid.
        """
        if precision not in (16, 32):
            raise ValueError(f"precision must be 16 or 32, got {precision!r}")
        w, h = src.width, src.height
        roi = roi if roi is not None else (0, 0, w, h)
        if roi[0] % self.block or roi[1] % self.block:
            raise ValueError(f"statistics region origin {roi[:2]} must sit on the {self.block}-pixel grid")
        self._prepared = _Prepared(src, layout, basis.key(), tuple(bands), precision, roi)
        if not self._fused(precision):
            self._pass_h(src, layout, basis)
        self._passes_2_to_4(basis)

    def _pass_h(self, src: Region, layout: Layout, basis: Basis) -> None:
        ex = self.ex
        w, h = src.width, src.height
        stage = self._stage(basis)
        shape = stage_shape(stage)
        colour = layout.colour
        pk = choose_packing(shape, colour)
        periodic = stage.radius > w
        names = tuple(f"ad_h{i}" for i in range(stage.levels if pk is None else len(pk)))
        ex.pool.get_group(names, w, h, layout.inter_comps if pk is None else 4, "f4")
        defines = {"LEVELS": stage.levels, "COLOUR": colour, "MIRROR_PERIODIC": periodic, "SPECIALIZED": True,
                   "PACKED": pk is not None}
        p = ex._program_with(("ad_h", shape, colour, periodic, pk), "mixture_h.frag", defines,
                             h_body(shape, pk, colour), h_decls(pk) if pk else None, {"u_src": 0})
        self._target(names, w, h)
        ex.bind(0, src.texture)
        p.set("u_src_inv", src.inv)
        p.set("u_region", (w, h))
        p.set_array("u_taps", pack_taps(stage))
        p.draw()

    def _passes_2_to_4(self, basis: Basis) -> None:
        """Passes 2-4 (with the fused path: 1-4, since no H texture is kept)."""
        if self._fused(self._prepared.precision):
            self._pass_eq_fused(basis)
        else:
            self._pass_bands(basis)
        self._pass_energy(basis)
        self._pass_reduce()

    def _pass_eq_fused(self, basis: Basis) -> None:
        """Passes 1 and 2 as one compute dispatch (``adaptive_bands_fused.comp``) storing ``e`` and ``q``
        only. The energy pair is compiled in and the lowpasses past it get no taps (their sums stay 0 and
        feed only bands nobody stores), so the window reaches only as far as the pair's and the noise
        band's lowpasses: at the usual fine pair a few pixels instead of the coarsest lowpass's 15."""
        pr = self._prepared
        ex, comp = self.ex, self.compute
        src, colour = pr.src, pr.layout.colour
        w, h = src.width, src.height
        stage = self._stage(basis)
        full = stage_shape(stage)
        needed = max(pr.bands)  # L_b = s_{b-1} - s_b: the pair needs lowpasses 0..max(pair), plus the noise band
        shape = tuple(offs if lv <= needed or lv == len(full) - 1 else () for lv, offs in enumerate(full))
        bl, dt, e16 = self._storage(basis.size, colour, pr.precision)
        comps = self._target_comps(bl)
        btex = [ex.pool.get(self._band_name(bl, 0), w, h, comps, dt)]
        periodic = stage.radius > min(w, h)
        fmt = {(1, "u4"): "r32ui", (2, "f2"): "rg16f", (2, "f4"): "rg32f"}[(comps, dt)]
        key = (shape, colour, periodic, e16, bl, comp.variant, pr.bands)
        p = self._fused_programs.get(key)
        if p is None:
            v = comp.variant
            defines = {"LOCAL_X": v.local_x, "ROWS": v.rows, "COLS": v.cols, "COLOUR": colour,
                       "MIRROR_PERIODIC": periodic, "EMULATE_FP16": e16}
            kind = "uimage2D" if bl.halves else "image2D"
            decls = "\n".join(f"layout(binding = {t}, {fmt}) writeonly uniform {kind} u_b{t};"
                              for t in range(bl.textures))
            p = self.ctx.compute_shader(build_source("adaptive_bands_fused.comp", defines,
                                                     bands_fused_body(shape, v, colour, bl, pr.bands), decls))
            p["u_src"].value = 0
            self._fused_programs[key] = p
        ex.bind(0, src.texture)
        p["u_src_inv"].value = src.inv
        p["u_region"].value = (w, h)
        _write_array(p, "u_taps", pack_taps(stage).tobytes(), 16)
        saved = comp.save_image_units(len(btex))
        try:
            for t, tex in enumerate(btex):
                tex.bind_to_image(t, read=False, write=True)
            p.run(*comp.variant.groups(w, h), 1)
            self.ctx.memory_barrier(0xFFFFFFFF)  # pass 3 samples the targets, pass 5 fetches them
        finally:
            comp.restore_image_units(saved)

    def _pass_bands(self, basis: Basis) -> None:
        pr = self._prepared
        ex = self.ex
        src, layout = pr.src, pr.layout
        w, h = src.width, src.height
        colour = layout.colour
        stage = self._stage(basis)
        shape = stage_shape(stage)
        pk = choose_packing(shape, colour)
        hnames = tuple(f"ad_h{i}" for i in range(stage.levels if pk is None else len(pk)))
        htex = ex.pool.get_group(hnames, w, h, layout.inter_comps if pk is None else 4, "f4")
        bl, dt, e16 = self._storage(basis.size, colour, pr.precision)
        bnames = tuple(self._band_name(bl, i) for i in range(bl.textures))
        ex.pool.get_group(bnames, w, h, 4, dt)
        periodic = stage.radius > h
        defines = {"COLOUR": colour, "MIRROR_PERIODIC": periodic, "EMULATE_FP16": e16}
        samplers = {"u_base": 0, **{f"u_h{i}": 1 + i for i in range(len(hnames))}}
        p = ex._program_with(("ad_bands", shape, colour, periodic, pk, e16, bl.halves), "adaptive_bands.frag",
                             defines, bands_body(shape, pk, colour, bl),
                             bands_decls(len(hnames), bl), samplers)
        self._target(bnames, w, h)
        ex.bind(0, src.texture)
        for i, t in enumerate(htex):
            ex.bind(1 + i, t)
        p.set("u_base_inv", src.inv)
        p.set("u_h_inv", (1.0 / htex[0].width, 1.0 / htex[0].height))
        p.set("u_region", (w, h))
        p.set_array("u_taps", pack_taps(stage))
        ew = np.zeros(8, np.float32)
        ew[list(pr.bands)] = 1.0
        p.set_array("u_ew", ew)
        p.draw()

    def _pass_energy(self, basis: Basis) -> None:
        """Pass 3: half-resolution energy and 2x2 sums from pass 2's (e, q) texel."""
        pr = self._prepared
        ex = self.ex
        w, h = pr.src.width, pr.src.height
        bl, dt, _ = self._storage(basis.size, pr.layout.colour, pr.precision)
        eq_tex = ex.pool.get(self._band_name(bl, bl.eq[0]), w, h, self._target_comps(bl), dt)
        nw, nh = -(-w // 2), -(-h // 2)
        ex.pool.get("ad_d", nw, nh, 4, "f4")
        small = w < 2 or h < 2
        lane = bl.eq[1]
        eq = "xyzw"[lane // 2] if bl.halves else "xyzw"[lane:lane + 2]
        p = ex.program(("ad_energy", eq, bl.halves, small), "adaptive_energy.frag",
                       {"EQ": eq, "EQ_HALVES": bl.halves, "MIRROR_PERIODIC": small}, samplers={"u_eq": 0})
        self._target(("ad_d",), nw, nh)
        ex.bind(0, eq_tex)
        p.set("u_eq_inv", (1.0 / eq_tex.width, 1.0 / eq_tex.height))
        p.set("u_region", (w, h))
        p.draw()

    def _pass_reduce(self) -> None:
        """Pass 4: per-tile sums over the statistics region of interest."""
        pr = self._prepared
        ex = self.ex
        w, h = pr.src.width, pr.src.height
        nw, nh = -(-w // 2), -(-h // 2)
        half = self.block // 2
        x0, y0, x1, y1 = pr.roi
        hx0, hy0, hx1, hy1 = x0 // 2, y0 // 2, -(-x1 // 2), -(-y1 // 2)
        gx, gy = -(-(hx1 - hx0) // half), -(-(hy1 - hy0) // half)
        ex.pool.get("ad_grid", gx, gy, 4, "f4")
        dtex = ex.pool.get("ad_d", nw, nh, 4, "f4")
        p = ex.program(("ad_reduce", half), "adaptive_reduce.frag", {"HALF": half}, samplers={"u_d": 0})
        self._target(("ad_grid",), gx, gy)
        ex.bind(0, dtex)
        p.set("u_d_inv", (1.0 / dtex.width, 1.0 / dtex.height))
        p.set("u_roi_origin", (hx0, hy0))
        p.set("u_roi_end", (hx1, hy1))
        p.draw()
        self._grid_shape = (gy, gx)

    # -- statistics ------------------------------------------------------------------------------
    def stats(self) -> AdaptiveStats:
        """The statistics of the prepared frame, read back now (a pipeline sync)."""
        pr = self._require()
        gy, gx = self._grid_shape
        data = np.empty(gy * gx * 4, dtype=np.float32)
        self.ex.pool.fbo(("ad_grid",)).read_into(data, viewport=(0, 0, gx, gy), components=4, dtype="f4")
        return AdaptiveStats.from_grid(data.reshape(gy, gx, 4), *self._roi_size(pr), pr.layout.colour, self.block)

    def stats_async(self) -> PendingAdaptiveStats:
        """Start reading the statistics into a pixel-pack buffer (two alternate); ``.result()`` later."""
        pr = self._require()
        gy, gx = self._grid_shape
        need = gy * gx * 16
        if len(self._pbos) < 2 or self._pbos[0].size < need:
            for b in self._pbos:
                b.release()
            self._pbos = [self.ctx.buffer(reserve=need) for _ in range(2)]
        buf = self._pbos[self._pbo_next]
        self._pbo_next ^= 1
        self.ex.pool.fbo(("ad_grid",)).read_into(buf, viewport=(0, 0, gx, gy), components=4, dtype="f4")
        w, h = self._roi_size(pr)
        return PendingAdaptiveStats(buf, (gy, gx), w, h, pr.layout.colour, self.block)

    @staticmethod
    def _roi_size(pr: _Prepared) -> tuple[int, int]:
        x0, y0, x1, y1 = pr.roi
        return x1 - x0, y1 - y0

    def _require(self) -> _Prepared:
        if self._prepared is None:
            raise RuntimeError("AdaptiveExecutor: prepare() a frame first")
        return self._prepared

    # -- pass 5 ----------------------------------------------------------------------------------
    def table_texture(self, table: AdaptiveTable) -> moderngl.Texture:
        """The table as an RGBA32F texture (TABLE_SIZE wide, one row per 4 coefficients), uploaded when
        the table changes - what the mpv/GLSL export embeds too."""
        key = (id(table), table.coefficients.tobytes())
        if self._table_tex is None or self._table_key != key:
            k = table.size
            rows = -(-k // 4)
            data = np.zeros((rows, TABLE_SIZE, 4), np.float32)
            for r in range(rows):
                part = table.coefficients[:, 4 * r:4 * r + 4]
                data[r, :, :part.shape[1]] = part
            if self._table_tex is None or self._table_tex.height != rows:
                if self._table_tex is not None:
                    self._table_tex.release()
                self._table_tex = self.ctx.texture((TABLE_SIZE, rows), 4, dtype="f4")
                self._table_tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
            self._table_tex.write(data.tobytes())
            self._table_key = key
        return self._table_tex

    def _upload(self, name: str, data: np.ndarray) -> moderngl.Texture:
        """A small float32 texture (NEAREST, read with texelFetch) holding ``data`` (rows, cols, comps),
        re-uploaded only when the contents change."""
        key = (data.shape, data.tobytes())
        have = self._textures.get(name)
        if have is not None and have[0] == key:
            return have[1]
        if have is not None:
            have[1].release()
        tex = self.ctx.texture((data.shape[1], data.shape[0]), data.shape[2], data.tobytes(), dtype="f4")
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._textures[name] = (key, tex)
        return tex

    def sigma_table_texture(self, table: SigmaTable, channels: int) -> moderngl.Texture:
        """The 2D table as RGBA32F: ``TABLE_SIZE + 1`` wide, ``ROWS = ceil(K / 4)`` rows per sigma node
        (node j's coefficients 4r..4r+3 in row ``j ROWS + r``), the level scales ``(inv_j, inv_{j+1})`` in
        column ``TABLE_SIZE`` of row ``j ROWS`` (:class:`~gpu_deconv.core.adaptive.SigmaTable`). With K = 5 the
        second row of node j holds ``(c_5[j][i], c_5[j][i + 1], c_5[j + 1][i], c_5[j + 1][i + 1])`` at column i:
        the four values pass 5 interpolates, in one fetch instead of four."""
        k, n = table.size, table.nodes
        rows = -(-k // 4)
        data = np.zeros((n * rows, TABLE_SIZE + 1, 4), np.float32)
        coef = table.coefficients()
        inv = table.inv_scales(channels)
        for j in range(n):
            for r in range(rows):
                part = coef[j][:, 4 * r:4 * r + 4]
                data[j * rows + r, :TABLE_SIZE, :part.shape[1]] = part
            data[j * rows, TABLE_SIZE, :2] = inv[j], inv[min(j + 1, n - 1)]
        if k == 5:  # row 1 holds one coefficient: pack it for (j, j + 1) x (i, i + 1), one fetch (the shader's K == 5)
            c4 = coef[:, :, 4]
            i1 = np.minimum(np.arange(TABLE_SIZE) + 1, TABLE_SIZE - 1)
            for j in range(n):
                j1 = min(j + 1, n - 1)
                data[j * rows + 1, :TABLE_SIZE] = np.stack([c4[j], c4[j][i1], c4[j1], c4[j1][i1]], axis=-1)
        return self._upload("sigma_table", data)

    def channel_table_texture(self, table: ChannelTable) -> moderngl.Texture:
        """The R, G, B tables as RGBA32F, ``TABLE_SIZE`` wide, the ``3 K`` coefficients of a level packed
        densely in ``ceil(3 K / 4)`` rows: lane ``l = ch K + k`` (channel ch's coefficient k) in row ``l // 4``,
        component ``l % 4`` (K = 5: 4 texels per level instead of 6 with a row block per channel, so pass 5
        fetches 8 table texels, not 12; :class:`~gpu_deconv.core.adaptive.ChannelTable`)."""
        coef = table.coefficients()  # (3, TABLE_SIZE, K)
        lanes = np.moveaxis(coef, 0, 1).reshape(TABLE_SIZE, -1)  # (TABLE_SIZE, 3K): lane ch K + k
        rows = -(-lanes.shape[1] // 4)
        data = np.zeros((TABLE_SIZE, rows * 4), np.float32)
        data[:, :lanes.shape[1]] = lanes
        return self._upload("channel_table", np.ascontiguousarray(data.reshape(TABLE_SIZE, rows, 4).transpose(1, 0, 2)))

    def map_texture(self, table: SigmaTable, sigma_map: Any) -> moderngl.Texture:
        """The map as node coordinates, RGBA32F ``mx x my``: texel (x, y) holds the cells (x, y), (x1, y),
        (x, y1), (x1, y1), ``x1 = min(x + 1, mx - 1)``, ``y1 = min(y + 1, my - 1)`` - the four a pixel
        interpolates, in one fetch."""
        cells = table.cell_coordinates(sigma_map)
        my, mx = cells.shape
        xs, ys = np.minimum(np.arange(mx) + 1, mx - 1), np.minimum(np.arange(my) + 1, my - 1)
        quad = np.stack([cells, cells[:, xs], cells[ys], cells[ys][:, xs]], axis=-1).astype(np.float32)
        return self._upload("sigma_map", quad)

    def apply(self, table: AdaptiveTable | ChannelTable | SigmaTable, target: DrawTarget, *, encode_srgb: bool = False,
              limiter: float | None = None, level_map: bool = False, guard: Any | None = None,
              sigma_map: Any = None, map_origin: tuple[int, int] = (0, 0)) -> None:
        """Pass 5 into ``target`` for the prepared frame (re-running passes 2-4 first if ``table`` wants
        other energy bands than the prepared ones).

        Parameters
        ----------
        table : AdaptiveTable, ChannelTable or SigmaTable
            Same basis as prepared (a ChannelTable: one sigma per colour channel, RGB/RGBA frames).
        target : DrawTarget
            Destination (viewport size = the frame's).
        encode_srgb : bool
            sRGB-encode the colour channels.
        limiter : float or None
            Halo limiter margin (:func:`gpu_deconv.core.adaptive.limit_overshoot`), None = off.
        level_map : bool
            Draw ``(plog2(A / sigma^2), E, A / sigma^2, 1)`` instead of the image (the viewer's overlay).
        guard : GLStateGuard, optional
            Needed when ``target`` is a caller's framebuffer.
        sigma_map : SigmaMap, optional
            With a :class:`~gpu_deconv.core.adaptive.SigmaTable`: the blur per cell of the whole frame
            (:mod:`gpu_deconv.core.sigma_map`); the coefficients are then bilinear in (sigma, level) per pixel.
        map_origin : (int, int)
            The prepared region's origin in the frame the map covers (a tile's, halo included).
        """
        pr = self._require()
        if isinstance(table, SigmaTable) != (sigma_map is not None):
            raise ValueError("a sigma map needs a SigmaTable, and a SigmaTable a sigma map")
        if table.basis.key() != pr.basis_key:
            raise ValueError("the table's basis differs from the prepared frame's")
        if tuple(table.bands) != pr.bands:
            pr.bands = tuple(table.bands)
            self._passes_2_to_4(table.basis)
        if limiter is not None and not (np.isfinite(limiter) and limiter >= 0):
            raise ValueError(f"limiter margin must be a finite number >= 0, got {limiter!r}")
        ex = self.ex
        src, layout = pr.src, pr.layout
        w, h = src.width, src.height
        if (target.viewport[2], target.viewport[3]) != (w, h):
            raise ValueError(f"target viewport {target.viewport[2:]} differs from the frame size {(w, h)}")
        k = table.size
        colour = layout.colour
        per_channel = isinstance(table, ChannelTable)
        if per_channel and colour != 3:
            raise ValueError(f"a per-channel sigma (R, G, B) needs a colour image, this one has {colour} colour "
                             "channel")
        bl, dt, e16 = self._storage(k, colour, pr.precision)
        fused = self._fused(pr.precision) and not level_map  # (the level map reads no band: a fragment pass)
        nb = 0 if fused else bl.band_textures
        btex = [ex.pool.get(self._band_name(bl, i), w, h, 4, dt) for i in range(nb)]
        nw, nh = -(-w // 2), -(-h // 2)
        dtex = ex.pool.get("ad_d", nw, nh, 4, "f4")
        use_map = sigma_map is not None
        ttex = (self.sigma_table_texture(table, colour) if use_map else
                self.channel_table_texture(table) if per_channel else self.table_texture(table))
        small = w < 2 or h < 2
        alpha = layout.alpha and not level_map
        direct = self.compute.direct_image(target, layout) if fused else None
        encode = encode_srgb and not level_map and (direct is not None or not fused)
        lim = limiter is not None and not level_map
        defines = {"COLOUR": colour, "K": k, "SIZE": TABLE_SIZE, "HAS_ALPHA": alpha, "ENCODE_SRGB": encode,
                   "LIMITER": lim, "LEVEL_MAP": level_map, "MIRROR_PERIODIC": small, "SIGMA_MAP": use_map,
                   "PER_CHANNEL": per_channel}
        samplers = {"u_base": 0, **{f"u_b{i}": 1 + i for i in range(nb)}, "u_d": nb + 1, "u_table": nb + 2}
        if use_map:
            samplers["u_map"] = nb + 3
        key = (k, colour, alpha, encode, lim, level_map, small, bl.halves, use_map, per_channel)
        if fused:
            periodic = small or self._stage(table.basis).radius > min(w, h)  # the walk's reach, as pass 1-2's
            p = self._apply_fused_program(table.basis, key, {**defines, "MIRROR_PERIODIC": periodic}, samplers,
                                          direct, layout, e16)
            setter: Callable[[str, Any], None] = lambda name, value: _set_uniform(p, name, value)  # noqa: E731
        else:
            p = ex._program_with(("ad_apply", *key), "adaptive_apply.frag", defines,
                                 apply_body(k, colour, bl, per_channel and not level_map), apply_decls(bl), samplers)
            setter = p.set
            ex._use_target(target, guard)
            p.set("u_b_inv", (1.0 / btex[0].width, 1.0 / btex[0].height) if btex else (0.0, 0.0))
        ex.bind(0, src.texture)
        for i, t in enumerate(btex):
            ex.bind(1 + i, t)
        ex.bind(nb + 1, dtex)
        ex.bind(nb + 2, ttex)
        if use_map:
            mtex = self.map_texture(table, sigma_map)
            mx, my = mtex.size
            ex.bind(nb + 3, mtex)
            setter("u_map_size", (mx, my))
            setter("u_map_scale", (mx / sigma_map.width, my / sigma_map.height))
            setter("u_map_origin", tuple(int(v) for v in map_origin))
            setter("u_nodes", table.nodes)
        # with a map, noise_energy and floor are shared by the nodes and inv is per pixel (the table's column)
        n_e, fl, inv = (table.tables[0] if use_map else table).energy_constants(colour)
        setter("u_base_inv", src.inv)
        setter("u_d_inv", (1.0 / dtex.width, 1.0 / dtex.height))
        setter("u_region", (w, h))
        setter("u_half", (nw, nh))
        setter("u_noise_e", float(n_e))
        setter("u_floor", float(fl))
        setter("u_inv", float(inv))
        setter("u_table_start", TABLE_START)
        setter("u_limit", 0.0 if limiter is None else float(limiter))
        if not fused:
            p.set("u_origin", target.viewport[:2])
            p.draw()
            return
        self._run_apply_fused(p, table.basis, src, target, layout, direct, encode_srgb, guard)

    def _apply_fused_program(self, basis: Basis, key: tuple, defines: dict, samplers: dict,
                             direct: tuple[moderngl.Texture, str] | None, layout: Layout,
                             e16: bool) -> moderngl.ComputeShader:
        """The cached ``adaptive_apply_fused.comp`` program for a pass-5 variant and basis shape."""
        v = self.compute.variant
        shape = stage_shape(self._stage(basis))[:-1]  # the lowpasses (not the noise band's level)
        fmt = direct[1] if direct is not None else IMAGE_FORMATS[(fallback_comps(layout), "f4")]
        full_key = ("apply", key, shape, fmt, e16, v, defines["MIRROR_PERIODIC"])
        p = self._fused_programs.get(full_key)
        if p is None:
            defs = {**defines, "LOCAL_X": v.local_x, "ROWS": v.rows, "COLS": v.cols, "OUT_FORMAT": fmt,
                    "EMULATE_FP16": e16}
            k, colour = key[0], key[1]
            body = apply_body(k, colour, None, defines["PER_CHANNEL"])
            p = self.ctx.compute_shader(build_source("adaptive_apply_fused.comp", defs, body,
                                                     sections={"walk": apply_fused_walk(shape, v)}))
            for name, unit in {**samplers, "u_src": 0}.items():
                _set_uniform(p, name, unit)
            self._fused_programs[full_key] = p
        return p

    def _run_apply_fused(self, p: moderngl.ComputeShader, basis: Basis, src: Region, target: DrawTarget,
                         layout: Layout, direct: tuple[moderngl.Texture, str] | None, encode_srgb: bool,
                         guard: Any | None) -> None:
        """Dispatch pass 5 into the target's texture (or a pooled one that the copy pass draws into it)."""
        ex, comp = self.ex, self.compute
        w, h = src.width, src.height
        if direct is not None:
            out_tex, origin = direct[0], target.viewport[:2]
        else:
            out_tex, origin = ex.pool.get("ad_fused_out", w, h, fallback_comps(layout), "f4"), (0, 0)
        _set_uniform(p, "u_src_inv", src.inv)
        _set_uniform(p, "u_origin", tuple(origin))
        _write_array(p, "u_taps", pack_taps(self._stage(basis)).tobytes(), 16)
        saved = comp.save_image_units(1) if guard is not None else None
        try:
            out_tex.bind_to_image(0, read=False, write=True)
            p.run(*comp.variant.groups(w, h), 1)
            self.ctx.memory_barrier(0xFFFFFFFF)  # a read-back, the copy pass or the caller samples the output
        finally:
            comp.restore_image_units(saved)
        if direct is None:
            ex.copy(Region(out_tex, w, h), target, layout, encode=encode_srgb, guard=guard)

    def run(self, src: Region, table: AdaptiveTable, target: DrawTarget, layout: Layout, *, precision: int = 16,
            decode_srgb: bool = False, encode_srgb: bool = False, limiter: float | None = None,
            guard: Any | None = None) -> Region:
        """All passes: ``table`` applied to ``src`` into ``target``; the statistics stay readable
        (:meth:`stats`, :meth:`stats_async`). Returns the linear input region (``src`` or its decoded copy)."""
        base = self.ex.decode(src, layout) if decode_srgb else src
        self.prepare(base, layout, table.basis, table.bands, precision=precision)
        self.apply(table, target, encode_srgb=encode_srgb, limiter=limiter, guard=guard)
        return base

    def release(self) -> None:
        """Release what this object created (pool textures belong to the executor)."""
        for b in self._pbos:
            b.release()
        self._pbos = []
        if self._table_tex is not None:
            self._table_tex.release()
            self._table_tex = None
        for _, tex in self._textures.values():
            tex.release()
        self._textures = {}
        for p in self._fused_programs.values():
            p.release()
        self._fused_programs = {}
        self._prepared = None


__all__ = ["AdaptiveExecutor", "BandLayout", "PendingAdaptiveStats"]


def _set_uniform(p: moderngl.ComputeShader, name: str, value: Any) -> None:
    """Set a compute program's uniform if the compiler kept it."""
    u = p.get(name, None)
    if u is not None:
        u.value = value


def _write_array(p: moderngl.ComputeShader, name: str, data: bytes, element: int) -> None:
    """Write a uniform array of a compute program; the compiler may have dropped its unused trailing elements
    (or the whole array), so only what is left is written."""
    u = p.get(name, None)
    if u is not None:
        u.write(data[: u.array_length * element])


# ---------------------------------------------------------------------------------------------------------------
# one frame of the engine in the adaptive mode
def _stitch(parts: list[tuple[AdaptiveStats, int, int]], width: int, height: int, channels: int,
            block: int) -> AdaptiveStats:
    """Tiles' statistics (each with the global tile index of its first cell) as one frame's grid."""
    ny, nx = -(-height // block), -(-width // block)
    energy, hh = np.zeros((ny, nx)), np.zeros((ny, nx))
    for st, by, bx in parts:
        gy, gx = st.energy_sums.shape
        energy[by:by + gy, bx:bx + gx] = st.energy_sums
        hh[by:by + gy, bx:bx + gx] = st.hh_sums
    full = AdaptiveStats.from_grid(np.zeros((ny, nx, 2)), width, height, channels, block)
    return AdaptiveStats(energy, hh, full.block_counts, channels, block)


def _sigma_table(ad: AdaptiveExecutor, solver: Any, params: Any, noise_var: float, sigma_map: Any) -> SigmaTable:
    """The sigma map's :class:`SigmaTable` (one solve per 0.1 px node), kept on ``ad`` while the basis, the
    noise and the map's range and median stay the same (video: re-solved only when the noise moves)."""
    from ..core.blur import make_blur

    lo, hi = sigma_map.range
    median = float(np.median(sigma_map.values))
    key = (solver.basis.key(), params.blur, params.binomial_order, noise_var, lo, hi, median)
    if ad.sigma_table is None or ad._sigma_table_key != key:
        ad.sigma_table = solver.solve_map(lambda s: make_blur(params.blur, s, params.binomial_order), noise_var,
                                          (lo, hi), median)
        ad._sigma_table_key = key
    return ad.sigma_table


def _channel_table(ad: AdaptiveExecutor, solver: Any, params: Any, noise_var: float,
                   sigmas: tuple[float, float, float]) -> ChannelTable:
    """The per-channel sigma's :class:`ChannelTable` (three solves), kept on ``ad`` while the basis, the blurs
    and the noise stay the same."""
    from ..core.blur import make_blur

    key = (solver.basis.key(), params.blur, params.binomial_order, sigmas, noise_var)
    if ad.channel_table is None or ad._channel_table_key != key:
        blurs = tuple(make_blur(params.blur, s, params.binomial_order) for s in sigmas)
        ad.channel_table = solver.solve_channels(blurs, noise_var)
        ad._channel_table_key = key
    return ad.channel_table


def adaptive_frame(ad: AdaptiveExecutor, designer: Any, params: Any, frame: Any, linear: Callable[[Any], Region],
                   max_size: int, *, previous: Any = None, temporal: Any = None, want_next: bool = False,
                   sigma_map: Any = None) -> tuple[Any, Any, Any]:
    """One frame of the engine's adaptive mode over ``frame.tiles`` (the engine's ``_Frame``).

    The noise ('auto'): from ``previous`` (the previous frame's statistics, ``stats_latency=1``) when given,
    else measured now - passes 1-4 with the energy bands of a provisional noise, their grid read back (one
    sync), the table solved for the measured noise, and passes 2-4 again only if it wants other bands. The
    statistics go through ``temporal`` (a :class:`~gpu_deconv.core.temporal.TemporalSmoother`) when given.
    Tiles carry a halo of 16 px (the lowpass radius, the energy window's reach and the limiter's, rounded up
    to the statistics grid, which keeps tile origins even), so tiled output equals untiled.

    Parameters
    ----------
    ad : AdaptiveExecutor
    designer : FilterDesigner
    params : DeconvParams
        Numeric sigma (``'auto'`` resolved by the caller), a method with an adaptive mode. A per-channel
        sigma (R, G, B; colour frames only) runs pass 5 with a
        :class:`~gpu_deconv.core.adaptive.ChannelTable` (kept in ``ad.channel_table``): the basis is the one
        ``params`` picks at the largest sigma, ``design`` the plain design at the median sigma (its noise,
        its summary); three equal sigmas are the scalar sigma.
    frame : engine frame
        ``tiles``, ``width``, ``height``, ``layout``, ``encode``, ``guard``, ``format``, ``target(rect)``,
        ``store(interior, rect, target)``.
    linear : callable
        The decoded input of a rectangle.
    max_size : int
        GL_MAX_TEXTURE_SIZE (tiles with their halo must fit).
    previous : BandStats or object with ``.result()``, optional
        The previous frame's statistics (latency 1).
    want_next : bool
        Start an asynchronous read of this frame's statistics for the next frame (latency 1).
    sigma_map : SigmaMap, optional
        A spatially varying blur for this frame's size (:mod:`gpu_deconv.core.sigma_map`): it replaces
        ``params.sigma``; the basis is the one ``params`` picks at the map's largest sigma, the coefficients
        come from a :class:`~gpu_deconv.core.adaptive.SigmaTable` over the map's range (pass 5 interpolates
        them per pixel), and ``design`` is the plain design at the map's median sigma (its noise, its
        summary); the table used stays in ``ad.sigma_table``.

    Returns
    -------
    (Design, BandStats or None, next statistics or None)
        The design used (``design.table``), the statistics that steered it (None when the noise was given),
        and what the next frame should use (a pending read, or statistics).
    """
    from ..core.adaptive import PROVISIONAL_NOISE, WINDOW_HALO, noise_variance
    from ..core.blur import make_blur
    from ..core.noise import noise_from_stats
    from .frames import with_halos

    layout, size, fmt = frame.layout, (frame.width, frame.height), frame.format
    channel_sigmas = None
    if params.sigma_per_channel:
        if layout.colour != 3:
            raise ValueError(f"a per-channel sigma (R,G,B) needs a colour image, this one has {layout.colour} "
                             "colour channel")
        channel_sigmas = params.sigma if len(set(params.sigma)) > 1 else None
        params = params.replace(sigma=sorted(params.sigma)[1])
    if sigma_map is not None:
        if (sigma_map.width, sigma_map.height) != size:
            raise ValueError(f"the sigma map is for {sigma_map.width}x{sigma_map.height}, the frame is "
                             f"{size[0]}x{size[1]}")
        from ..core.blur import GAUSSIAN_SIGMA_RANGE

        floor = GAUSSIAN_SIGMA_RANGE[0]
        median = float(np.median(sigma_map.values))
        params = params.replace(sigma=max(median, floor), sigma_map=None)
        basis = designer.adaptive_basis(params.replace(sigma=max(sigma_map.range[1], floor)))
    elif channel_sigmas is not None:
        basis = designer.adaptive_basis(params.replace(sigma=max(channel_sigmas)))
    else:
        basis = designer.adaptive_basis(params)
    blur = make_blur(params.blur, params.sigma, params.binomial_order)
    reach = max(t.size // 2 for t in basis.lowpass_taps) + WINDOW_HALO + (1 if params.limiter is not None else 0)
    halo = -(-reach // ad.block) * ad.block
    tiles = list(with_halos(frame.tiles, halo, *size, max_size))

    def prepare(r: tuple, interior: tuple, bands: tuple[int, int]) -> None:
        x0, y0, x1, y1 = interior
        ad.prepare(linear(r), layout, basis, bands, precision=params.precision,
                   roi=(x0 - r[0], y0 - r[1], x1 - r[0], y1 - r[1]))

    measured, stats, astats, still_prepared = None, None, None, False
    if params.noise_is_auto:
        if previous is not None:
            astats = previous.result() if hasattr(previous, "result") else previous
        else:
            bands = designer.adaptive_solver(basis).solve(blur, noise_variance(PROVISIONAL_NOISE, fmt.bits)).bands
            parts = []
            for interior, r in tiles:
                prepare(r, interior, bands)
                parts.append((ad.stats(), interior[1] // ad.block, interior[0] // ad.block))
            astats = _stitch(parts, *size, layout.colour, ad.block)
            still_prepared = len(tiles) == 1  # apply() re-runs passes 2-4 itself if the bands change
        stats = astats.band_stats()
        if temporal is not None:
            stats = temporal.update(stats)
        measured = noise_from_stats(stats)
    design = designer.adaptive(params, fmt, measured)
    table = design.table
    if astats is not None:
        design.level = astats.level(table)
    if sigma_map is not None:
        table = _sigma_table(ad, designer.adaptive_solver(basis), params, table.noise_var, sigma_map)
    elif channel_sigmas is not None:
        table = _channel_table(ad, designer.adaptive_solver(basis), params, table.noise_var, channel_sigmas)
    pending = None
    for interior, r in tiles:
        if not still_prepared:
            prepare(r, interior, table.bands)
        dst = frame.target(r)
        ad.apply(table, dst, encode_srgb=frame.encode, limiter=params.limiter, guard=frame.guard,
                 sigma_map=sigma_map, map_origin=(r[0], r[1]))
        frame.store(interior, r, dst)
    if want_next and params.noise_is_auto and len(tiles) == 1:
        pending = ad.stats_async()
    return design, stats, pending


class AdaptiveFrames:
    """What the engine keeps for its adaptive mode between frames: the passes (made on first use), the
    sigma map resampled to the last frame size, and - with sigma 'auto' - the smoother of the global
    statistics the blind estimate reads (the adaptive statistics have their own, the engine's ``temporal``).

    Parameters
    ----------
    executor : PlanExecutor
        The engine's; its pool holds the passes' textures.
    compute : ComputeExecutor, optional
        Run passes 1-2 as one fused compute dispatch on it (the engine's choice: see
        :meth:`~gpu_deconv.gl.compute.PathChooser.fused_without_measuring`).
    """

    def __init__(self, executor: PlanExecutor, compute: ComputeExecutor | None = None) -> None:
        self.executor = executor
        self.compute = compute  # passes 1-2 as one fused dispatch (AdaptiveExecutor's ``compute``)
        #: The passes (:class:`AdaptiveExecutor`), None until the first adaptive frame.
        self.passes: AdaptiveExecutor | None = None
        self._map: tuple[tuple, Any] | None = None  # (params.sigma_map, centre, corner, w, h) -> SigmaMap
        self._blur_smoother: tuple[Any, Any] | None = None  # (engine temporal, its copy for the blind sigma)
        self._per_channel = False  # the last frame ran a per-channel sigma (its level map needs that table)

    def run(self, designer: Any, params: Any, frame: Any, linear: Callable[[Any], Region], *,
            previous: Any = None, temporal: Any = None, want_next: bool = False) -> tuple[Any, Any, Any]:
        """:func:`adaptive_frame` on this engine's passes with ``params.sigma_map`` for the frame's size."""
        if self.passes is None:
            self.passes = AdaptiveExecutor(self.executor, compute=self.compute)
        self._per_channel = params.sigma_per_channel and len(set(params.sigma)) > 1
        return adaptive_frame(self.passes, designer, params, frame, linear, self.executor.max_texture_size,
                              previous=previous, temporal=temporal, want_next=want_next,
                              sigma_map=self.sigma_map(params, frame.width, frame.height))

    def sigma_map(self, params: Any, width: int, height: int) -> Any:
        """``params.sigma_map`` for this frame size (:func:`gpu_deconv.core.sigma_map.sigma_map_for`), loaded
        and resampled once per (map, size); None without one. A bad map raises ValueError ``"sigma map
        <file>: <reason>"`` - a problem of the frame being processed, which the batch names first."""
        if params.sigma_map is None:
            return None
        from ..core.sigma_map import sigma_map_for
        from ..errors import FileError

        key = (params.sigma_map, params.sigma_center, params.sigma_corner, width, height)
        if self._map is None or self._map[0] != key:
            try:
                value = sigma_map_for(params.sigma_map, height, width, params.sigma_center, params.sigma_corner)
            except (FileError, ValueError) as e:
                raise ValueError(f"sigma map {e}") from None
            self._map = (key, value)
        return self._map[1]

    def blur_smoother(self, temporal: Any) -> Any:
        """A smoother like ``temporal`` (None: none) for the global statistics of a blind sigma."""
        from ..core.temporal import TemporalSmoother

        if temporal is not None and (self._blur_smoother is None or self._blur_smoother[0] is not temporal):
            self._blur_smoother = (temporal, TemporalSmoother(temporal.time_constant, temporal.cut_ratio))
        return None if temporal is None else self._blur_smoother[1]

    def draw_level_map(self, table: Any, target: DrawTarget, guard: Any) -> bool:
        """The last frame's ``(v, E, A / sigma^2, 1)`` per pixel into ``target``; False before any frame. After a
        per-channel sigma the level is the one its :class:`ChannelTable` read (not ``table``'s, the median
        channel's design)."""
        if self.passes is None:
            return False
        if self._per_channel and self.passes.channel_table is not None:
            table = self.passes.channel_table
        self.passes.apply(table, target, level_map=True, guard=guard)
        return True

    def release(self) -> None:
        if self.passes is not None:
            self.passes.release()
            self.passes = None
