"""A small per-frame driver for interactive and batch use (the viewer and the batch tool build on it).

Each :meth:`RenderLoop.frame` (textures, for a viewer) or :meth:`RenderLoop.process` (arrays, for a
batch/video tool):

1. reads the current parameters from the source it was given (a fixed :class:`DeconvParams` or a
   callable, e.g. the viewer's UI state) and hands changed ones to the engine (CPU only);
2. lets the engine measure the frame's band statistics and re-solve the filter - with the engine's
   ``stats_latency=1`` (the default here) the statistics of frame n steer frame n + 1, so nothing in
   the loop waits for the GPU, and with ``temporal=True`` (the default here) they are smoothed over time
   and reset at scene cuts (:mod:`gpu_deconv.core.temporal`), so the filter does not flicker;
3. runs the passes;
4. collects GPU milliseconds from double-buffered timer queries: :attr:`FrameInfo.gpu_ms` of frame n
   is the GPU time of the newest finished frame (normally n - 1), never a stalling read.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import moderngl
import numpy as np

from ..core.design import Design
from ..core.params import DeconvParams
from ..core.temporal import TemporalSmoother
from ..gl.engine import Deconvolver


@dataclass(frozen=True)
class FrameInfo:
    """What one frame did.

    Attributes
    ----------
    index : int
        Frame number (0-based).
    design : Design or None
        The design the frame used.
    gpu_ms : float or None
        GPU time of the newest finished frame (normally the previous one); None until one is done.
    cpu_ms : float
        CPU wall time of the frame call (parameter read, statistics read-back, solve, submission, and
        for :meth:`RenderLoop.process` upload and download).
    solve_ms : float
        Part of ``cpu_ms`` spent designing the filter.
    """

    index: int
    design: Design | None
    gpu_ms: float | None
    cpu_ms: float
    solve_ms: float


class RenderLoop:
    """Drive a :class:`~gpu_deconv.gl.engine.Deconvolver` frame after frame.

    Parameters
    ----------
    engine : Deconvolver, optional
        The engine to drive; if None one is made on ``ctx`` (or its own headless context) with
        ``stats_latency`` and released by :meth:`release`.
    params : DeconvParams or callable returning one, optional
        Where each frame's parameters come from (a callable is polled once per frame).
    ctx : moderngl.Context, optional
        Context for an engine made here.
    stats_latency : {0, 1}
        For an engine made here (1: statistics steer the next frame; see :mod:`gpu_deconv.gl.engine`).
    temporal : bool
        Smooth the statistics over frames, resetting at scene cuts (sets the engine's ``temporal``; call
        :meth:`reset` after a seek or when the source changes).
    history : int
        Number of :class:`FrameInfo` kept in :attr:`history`.
    """

    def __init__(
        self,
        engine: Deconvolver | None = None,
        params: DeconvParams | Callable[[], DeconvParams] | None = None,
        *,
        ctx: moderngl.Context | None = None,
        stats_latency: int = 1,
        temporal: bool = True,
        history: int = 120,
    ) -> None:
        self._own = engine is None
        self.engine = engine if engine is not None else Deconvolver(ctx, stats_latency=stats_latency)
        if temporal and self.engine.temporal is None:
            self.engine.temporal = TemporalSmoother()
        self._source = params
        self.history: deque[FrameInfo] = deque(maxlen=max(1, int(history)))
        self.index = 0

    def reset(self) -> None:
        """A new scene starts (a seek, another source): forget the smoothed statistics."""
        if self.engine.temporal is not None:
            self.engine.temporal.reset()

    # -- per frame ----------------------------------------------------------------------------------
    def _poll_params(self) -> None:
        src = self._source
        if src is None:
            return
        p = src() if callable(src) else src
        if p is not self.engine.params and p != self.engine.params:
            self.engine.set_params(p)

    def _record(self, t0: float) -> FrameInfo:
        info = FrameInfo(self.index, self.engine.design, self.engine.last_gpu_ms,
                         (time.perf_counter() - t0) * 1e3, self.engine.timings.get("design", 0.0))
        self.history.append(info)
        self.index += 1
        return info

    def frame(
        self,
        src: moderngl.Texture,
        dst: moderngl.Framebuffer | moderngl.Texture,
        *,
        viewport: tuple[int, int, int, int] | None = None,
        src_is_srgb: bool = False,
        encode_srgb: bool = False,
        bits: int | None = None,
    ) -> FrameInfo:
        """One frame texture -> caller's target (see :meth:`Deconvolver.apply`)."""
        t0 = time.perf_counter()
        self._poll_params()
        self.engine.apply(src, dst, viewport=viewport, src_is_srgb=src_is_srgb, encode_srgb=encode_srgb, bits=bits)
        return self._record(t0)

    def process(self, image: np.ndarray, **kwargs: object) -> tuple[np.ndarray, FrameInfo]:
        """One frame array -> array (keyword arguments go to :meth:`Deconvolver.process`)."""
        t0 = time.perf_counter()
        self._poll_params()
        out = self.engine.process(image, **kwargs)  # type: ignore[arg-type]
        return out, self._record(t0)

    def run(self, frames: Iterable[np.ndarray], **kwargs: object) -> Iterator[tuple[np.ndarray, FrameInfo]]:
        """Process a sequence of frames lazily (a video): yields ``(output, info)`` per frame."""
        for image in frames:
            yield self.process(image, **kwargs)

    # -- summaries ----------------------------------------------------------------------------------
    def gpu_ms_mean(self, last: int = 30) -> float | None:
        """Mean GPU ms over the last ``last`` frames that have a value (None if none has)."""
        vals = [f.gpu_ms for f in list(self.history)[-last:] if f.gpu_ms is not None]
        return float(np.mean(vals)) if vals else None

    def release(self) -> None:
        if self._own:
            self.engine.release()

    def __enter__(self) -> RenderLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
