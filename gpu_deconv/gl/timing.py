"""GPU timers that never stall the pipeline.

Reading a GL timer query's result before the GPU has finished the timed commands blocks the CPU until
it has - exactly the stall a real-time loop must avoid. :class:`GpuTimer` therefore keeps a small ring
of ``GL_TIME_ELAPSED`` queries: frame n times its passes into slot n, and the value reported is the
newest slot whose ``GL_QUERY_RESULT_AVAILABLE`` is already true (normally frame n - 1: "double
buffered"), checked without waiting. Slots still pending when the ring wraps are skipped, never waited
on. :meth:`GpuTimer.latest` is therefore the *previous* frame's time, None until one is available.

With a raw GL loader the queries are plain ``glGenQueries`` objects (the availability check needs
``glGetQueryObjectiv``, which moderngl does not expose). Without one it falls back to moderngl's
``Query`` and reads a slot only ``ring - 1`` frames later, which in practice never waits either.
:meth:`GpuTimer.result_now` is the explicitly *blocking* variant, for callers that have just
synchronised anyway (``process()`` after its read-back).
"""

from __future__ import annotations

import ctypes

import moderngl

from .context import RawGL

GL_TIME_ELAPSED = 0x88BF
GL_QUERY_RESULT = 0x8866
GL_QUERY_RESULT_AVAILABLE = 0x8867


class GpuTimer:
    """Ring of GL_TIME_ELAPSED queries (see the module docstring).

    Parameters
    ----------
    ctx : moderngl.Context
    raw : RawGL
    ring : int
        Number of query slots (>= 2).
    """

    def __init__(self, ctx: moderngl.Context, raw: RawGL, ring: int = 3) -> None:
        self.ctx = ctx
        self.raw = raw
        self.ring = max(2, int(ring))
        self._raw_mode = raw.available
        self._ids: list[int] = []
        self._mgl: list[moderngl.Query] = []
        if self._raw_mode:
            try:
                arr = (ctypes.c_uint * self.ring)()
                raw.glGenQueries(self.ring, arr)
                self._ids = list(arr)
            except AttributeError:
                self._raw_mode = False
        if not self._raw_mode:
            self._mgl = [ctx.query(time=True) for _ in range(self.ring)]
        self._frame = -1  # index of the last begun frame
        self._pending: list[int] = []  # frame numbers whose slot holds an unread result
        self._open = False
        self._latest: float | None = None
        self._latest_frame = -1

    def begin(self) -> None:
        """Start timing a frame (call :meth:`end` after its last pass)."""
        if self._open:
            raise RuntimeError("GpuTimer.begin() called twice without end()")
        self.poll()
        self._frame += 1
        slot = self._frame % self.ring
        # a slot still pending from `ring` frames ago is abandoned, not waited for
        self._pending = [f for f in self._pending if f % self.ring != slot]
        if self._raw_mode:
            self.raw.glBeginQuery(GL_TIME_ELAPSED, self._ids[slot])
        else:
            self._mgl[slot].mglo.begin()
        self._open = True

    def end(self) -> None:
        if not self._open:
            return
        slot = self._frame % self.ring
        if self._raw_mode:
            self.raw.glEndQuery(GL_TIME_ELAPSED)
        else:
            self._mgl[slot].mglo.end()
        self._pending.append(self._frame)
        self._open = False

    def _available(self, frame: int) -> bool:
        if self._raw_mode:
            v = ctypes.c_int(0)
            self.raw.glGetQueryObjectiv(self._ids[frame % self.ring], GL_QUERY_RESULT_AVAILABLE,
                                        ctypes.byref(v))
            return bool(v.value)
        return self._frame - frame >= self.ring - 1

    def _read(self, frame: int) -> float:
        if self._raw_mode:
            v = ctypes.c_uint64(0)
            self.raw.glGetQueryObjectui64v(self._ids[frame % self.ring], GL_QUERY_RESULT, ctypes.byref(v))
            return v.value / 1e6
        return self._mgl[frame % self.ring].elapsed / 1e6

    def poll(self) -> float | None:
        """Collect every finished result without waiting; return :meth:`latest`."""
        keep = []
        for f in self._pending:
            if self._available(f):
                ms = self._read(f)
                if f > self._latest_frame:
                    self._latest, self._latest_frame = ms, f
            else:
                keep.append(f)
        self._pending = keep
        return self._latest

    def latest(self) -> float | None:
        """GPU milliseconds of the newest finished frame (normally the previous one); None if none yet."""
        return self.poll()

    def result_now(self) -> float | None:
        """Blocking read of the last ended frame - only for callers that already synchronised."""
        if self._open or self._frame < 0:
            return None
        ms = self._read(self._frame)
        self._pending = [f for f in self._pending if f != self._frame]
        if self._frame > self._latest_frame:
            self._latest, self._latest_frame = ms, self._frame
        return ms

    def release(self) -> None:
        if self._raw_mode and self._ids:
            arr = (ctypes.c_uint * len(self._ids))(*self._ids)
            try:
                self.raw.glDeleteQueries(len(self._ids), arr)
            except AttributeError:
                pass
            self._ids = []
        for q in self._mgl:
            q.release()
        self._mgl = []
