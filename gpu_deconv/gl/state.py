"""Save and restore the caller's GL state around the engine's passes.

:meth:`gpu_deconv.gl.engine.Deconvolver.apply` renders into a framebuffer the caller owns, in the middle
of the caller's own frame, so it must leave the context as it found it *and* must not inherit state
that would corrupt its own passes (blending, a scissor rectangle, a colour mask, wireframe mode, an
sRGB-converting framebuffer...). :class:`GLStateGuard` reads the real GL state with ``glGet*`` (through
:class:`gpu_deconv.gl.context.RawGL`, so it sees state set by raw GL code and other libraries, not just
what moderngl remembers), puts the context in a neutral state for the passes, and restores everything
on exit - including moderngl's own notion of the bound framebuffer, which it re-binds behind the scenes
(e.g. in ``Framebuffer.clear``): leaving it pointing at one of our framebuffers would redirect or break
(GL_INVALID_OPERATION once ours is released) the caller's next moderngl call.

Saved and restored: draw/read framebuffer bindings, viewport, scissor box, program, vertex array,
active texture unit, the 2D texture and sampler bound on every unit the passes use, the enables
(blend, depth, stencil, scissor, cull, framebuffer sRGB, rasterizer discard, logic op, dither,
alpha-to-coverage), colour write mask, polygon mode, pixel pack/unpack buffers, alignments, row lengths,
skips and byte swapping (zeroed for the passes), and the draw buffers of a caller framebuffer we render
into (restored after moderngl's re-bind, which would otherwise rewrite them). Not touched (so not
saved): blend/depth/stencil functions and masks other than the colour mask - they only matter while
the matching test is enabled, and the passes run with every test disabled.

Without a raw loader (exotic backends) only moderngl's framebuffer tracking is restored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import moderngl

from .context import GL_TEXTURE0, GL_TEXTURE_2D, RawGL

GL_BLEND = 0x0BE2
GL_DEPTH_TEST = 0x0B71
GL_STENCIL_TEST = 0x0B90
GL_SCISSOR_TEST = 0x0C11
GL_CULL_FACE = 0x0B44
GL_FRAMEBUFFER_SRGB = 0x8DB9
GL_RASTERIZER_DISCARD = 0x8C89
GL_COLOR_LOGIC_OP = 0x0BF2
GL_DITHER = 0x0BD0
GL_SAMPLE_ALPHA_TO_COVERAGE = 0x809E
#: Capabilities disabled during the passes and restored afterwards.
CAPS = (
    GL_BLEND, GL_DEPTH_TEST, GL_STENCIL_TEST, GL_SCISSOR_TEST, GL_CULL_FACE, GL_FRAMEBUFFER_SRGB,
    GL_RASTERIZER_DISCARD, GL_COLOR_LOGIC_OP, GL_DITHER, GL_SAMPLE_ALPHA_TO_COVERAGE,
)

GL_DRAW_FRAMEBUFFER_BINDING = 0x8CA6
GL_READ_FRAMEBUFFER_BINDING = 0x8CAA
GL_DRAW_FRAMEBUFFER = 0x8CA9
GL_READ_FRAMEBUFFER = 0x8CA8
GL_VIEWPORT = 0x0BA2
GL_SCISSOR_BOX = 0x0C10
GL_CURRENT_PROGRAM = 0x8B8D
GL_VERTEX_ARRAY_BINDING = 0x85B5
GL_ACTIVE_TEXTURE = 0x84E0
GL_TEXTURE_BINDING_2D = 0x8069
GL_SAMPLER_BINDING = 0x8919
GL_COLOR_WRITEMASK = 0x0C23
GL_POLYGON_MODE = 0x0B40
GL_FRONT_AND_BACK = 0x0408
GL_FILL = 0x1B02
GL_PIXEL_PACK_BUFFER = 0x88EB
GL_PIXEL_UNPACK_BUFFER = 0x88EC
GL_PIXEL_PACK_BUFFER_BINDING = 0x88ED
GL_PIXEL_UNPACK_BUFFER_BINDING = 0x88EF
GL_PACK_ALIGNMENT = 0x0D05
GL_UNPACK_ALIGNMENT = 0x0CF5
#: Pixel-store parameters other than the alignments (which moderngl sets on every read/write): a caller's
#: non-zero row length or skips would make our uploads and read-backs address the wrong bytes, so they
#: are zeroed for the passes and restored afterwards. (name, neutral value)
PIXEL_STORE = (
    (0x0D02, 0), (0x0D03, 0), (0x0D04, 0),  # GL_PACK_ROW_LENGTH, _SKIP_ROWS, _SKIP_PIXELS
    (0x0CF2, 0), (0x0CF3, 0), (0x0CF4, 0),  # GL_UNPACK_ROW_LENGTH, _SKIP_ROWS, _SKIP_PIXELS
    (0x806C, 0), (0x806B, 0),  # GL_PACK_IMAGE_HEIGHT, GL_PACK_SKIP_IMAGES
    (0x806E, 0), (0x806D, 0),  # GL_UNPACK_IMAGE_HEIGHT, GL_UNPACK_SKIP_IMAGES
    (0x0D00, 0), (0x0CF0, 0),  # GL_PACK_SWAP_BYTES, GL_UNPACK_SWAP_BYTES
)
GL_DRAW_BUFFER0 = 0x8825
GL_MAX_DRAW_BUFFERS = 0x8824


class GLStateGuard:
    """Context manager: snapshot caller state, neutralise it for our passes, restore on exit.

    Parameters
    ----------
    ctx : moderngl.Context
    raw : RawGL
        Raw entry points of ``ctx`` (``raw.available`` False -> moderngl-level restore only).
    units : iterable of int
        Texture units the passes bind textures/samplers on.

    Notes
    -----
    Usage::

        with GLStateGuard(ctx, raw, units=range(9)) as guard:
            ...                                  # our passes; moderngl calls are fine in here
            guard.bind_target(caller_fbo, viewport)   # to draw into a caller's framebuffer
    """

    def __init__(self, ctx: moderngl.Context, raw: RawGL, units: Iterable[int]) -> None:
        self.ctx = ctx
        self.raw = raw
        self.units = tuple(units)
        self._saved: dict[str, Any] = {}
        self._draw_buffers: list[tuple[int, list[int]]] = []
        self._detected: dict[int, moderngl.Framebuffer] = {}
        self._ext_fbos: list[moderngl.Framebuffer] = []

    # -- snapshot ------------------------------------------------------------------------------
    def __enter__(self) -> GLStateGuard:
        ctx, raw = self.ctx, self.raw
        s = self._saved
        s.clear()
        self._draw_buffers.clear()
        s["mgl_fbo"] = ctx.fbo
        self._ext_fbos.clear()
        if not raw.available:
            return self
        s["draw_fb"] = raw.get_int(GL_DRAW_FRAMEBUFFER_BINDING)[0]
        s["read_fb"] = raw.get_int(GL_READ_FRAMEBUFFER_BINDING)[0]
        if s["draw_fb"]:  # the caller's own draw-buffer selection (moderngl's re-bind on exit rewrites it)
            n = min(8, raw.get_int(GL_MAX_DRAW_BUFFERS)[0])
            self._draw_buffers.append((s["draw_fb"], [raw.get_int(GL_DRAW_BUFFER0 + i)[0] for i in range(n)]))
        s["viewport"] = raw.get_int(GL_VIEWPORT, 4)
        s["scissor"] = raw.get_int(GL_SCISSOR_BOX, 4)
        s["program"] = raw.get_int(GL_CURRENT_PROGRAM)[0]
        s["vao"] = raw.get_int(GL_VERTEX_ARRAY_BINDING)[0]
        s["active"] = raw.get_int(GL_ACTIVE_TEXTURE)[0]
        units = []
        for u in self.units:
            raw.glActiveTexture(GL_TEXTURE0 + u)
            units.append((u, raw.get_int(GL_TEXTURE_BINDING_2D)[0], raw.get_int(GL_SAMPLER_BINDING)[0]))
        s["units"] = units
        s["caps"] = [(cap, raw.is_enabled(cap)) for cap in CAPS]
        s["colormask"] = raw.get_bool(GL_COLOR_WRITEMASK, 4)
        s["polygon"] = raw.get_int(GL_POLYGON_MODE, 2)[0]
        s["pack_buf"] = raw.get_int(GL_PIXEL_PACK_BUFFER_BINDING)[0]
        s["unpack_buf"] = raw.get_int(GL_PIXEL_UNPACK_BUFFER_BINDING)[0]
        s["pack_align"] = raw.get_int(GL_PACK_ALIGNMENT)[0]
        s["unpack_align"] = raw.get_int(GL_UNPACK_ALIGNMENT)[0]
        s["pixel_store"] = [(name, raw.get_int(name)[0]) for name, _ in PIXEL_STORE]
        # neutral state for the passes
        for name, neutral in PIXEL_STORE:
            raw.glPixelStorei(name, neutral)
        for cap, _ in s["caps"]:
            raw.glDisable(cap)
        raw.glColorMask(1, 1, 1, 1)
        raw.glPolygonMode(GL_FRONT_AND_BACK, GL_FILL)
        raw.glBindBuffer(GL_PIXEL_PACK_BUFFER, 0)
        raw.glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0)
        return self

    def bind_target(self, fbo: moderngl.Framebuffer, viewport: tuple[int, int, int, int]) -> None:
        """Bind a caller's framebuffer for drawing at ``viewport``.

        Records the framebuffer's draw buffers first (moderngl's ``use()`` rewrites them) and sets the
        viewport with raw GL, so the caller's moderngl object keeps its own remembered viewport.
        """
        raw = self.raw
        if not raw.available:
            if fbo.glo not in {g for g, _ in self._draw_buffers}:
                self._draw_buffers.append((fbo.glo, list(fbo.viewport)))
                self._ext_fbos.append(fbo)
            fbo.use()
            fbo.viewport = viewport
            return
        if fbo.glo not in {g for g, _ in self._draw_buffers}:
            raw.glBindFramebuffer(GL_DRAW_FRAMEBUFFER, fbo.glo)
            n = min(8, raw.get_int(GL_MAX_DRAW_BUFFERS)[0])
            self._draw_buffers.append((fbo.glo, [raw.get_int(GL_DRAW_BUFFER0 + i)[0] for i in range(n)]))
        fbo.use()
        # moderngl's use() applies the framebuffer's remembered viewport and scissor; override both.
        raw.glDisable(GL_SCISSOR_TEST)
        raw.glViewport(*viewport)

    # -- restore -------------------------------------------------------------------------------
    def _restore_moderngl_binding(self, glo: int | None) -> None:
        """Point moderngl's internal 'bound framebuffer' back at the caller's (see module docstring)."""
        saved = self._saved["mgl_fbo"]
        try:
            if saved is not None and (glo is None or saved.glo == glo):
                saved.use()
            elif glo is not None:
                fb = self._detected.get(glo)
                if fb is None:
                    fb = self.ctx.detect_framebuffer(glo)
                    self._detected[glo] = fb
                fb.use()
        finally:
            self.ctx.fbo = saved

    def __exit__(self, *exc: object) -> None:
        ctx, raw = self.ctx, self.raw
        s = self._saved
        if not raw.available:
            for fbo, (_, vp) in zip(self._ext_fbos, self._draw_buffers, strict=True):
                fbo.viewport = tuple(vp)
            self._restore_moderngl_binding(None)
            return
        import ctypes

        # moderngl's re-bind (use()) rewrites the bound framebuffer's draw buffers, so it goes first
        self._restore_moderngl_binding(s["draw_fb"])
        for glo, bufs in self._draw_buffers:
            raw.glBindFramebuffer(GL_DRAW_FRAMEBUFFER, glo)
            n = len(bufs)
            while n > 1 and bufs[n - 1] == 0:  # GL_NONE tail
                n -= 1
            arr = (ctypes.c_uint * n)(*bufs[:n])
            raw.glDrawBuffers(n, arr)
        raw.glBindFramebuffer(GL_DRAW_FRAMEBUFFER, s["draw_fb"])
        raw.glBindFramebuffer(GL_READ_FRAMEBUFFER, s["read_fb"])
        raw.glViewport(*s["viewport"])
        raw.glScissor(*s["scissor"])
        # A program deleted while current stays in use until unbound - and our passes unbound it, so the
        # name may be gone now; re-binding a dead name is GL_INVALID_VALUE. (Deleted textures, samplers,
        # VAOs, buffers and framebuffers are unbound by GL itself, so their saved bindings are valid.)
        prog = s["program"]
        raw.glUseProgram(prog if prog and raw.glIsProgram(prog) else 0)
        raw.glBindVertexArray(s["vao"])
        for u, tex, smp in s["units"]:
            raw.glActiveTexture(GL_TEXTURE0 + u)
            raw.glBindTexture(GL_TEXTURE_2D, tex)
            raw.glBindSampler(u, smp)
        raw.glActiveTexture(s["active"])
        for cap, on in s["caps"]:
            (raw.glEnable if on else raw.glDisable)(cap)
        raw.glColorMask(*(int(b) for b in s["colormask"]))
        raw.glPolygonMode(GL_FRONT_AND_BACK, s["polygon"])
        raw.glBindBuffer(GL_PIXEL_PACK_BUFFER, s["pack_buf"])
        raw.glBindBuffer(GL_PIXEL_UNPACK_BUFFER, s["unpack_buf"])
        raw.glPixelStorei(GL_PACK_ALIGNMENT, s["pack_align"])
        raw.glPixelStorei(GL_UNPACK_ALIGNMENT, s["unpack_align"])
        for name, value in s["pixel_store"]:
            raw.glPixelStorei(name, value)
        del ctx
