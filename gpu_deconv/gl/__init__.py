"""OpenGL side of gpu_deconv: headless contexts, shader loading, plan execution, GPU statistics, state and timers.

Most users want :class:`gpu_deconv.gl.engine.Deconvolver`; these modules are its parts:

* :mod:`.context` - headless context creation (EGL on Linux) and a raw-GL function table;
* :mod:`.shaders` - locating ``shaders/`` (checkout or wheel) and expanding its markers;
* :mod:`.executor` - programs, pooled intermediates and the passes of a :class:`~gpu_deconv.core.plan.Plan`;
* :mod:`.stats_gpu` - :class:`~gpu_deconv.core.stats.BandStats` by GPU reduction;
* :mod:`.state` - saving/restoring the caller's GL state around the passes;
* :mod:`.timing` - non-stalling GPU timer queries.

Importing this package needs moderngl but no GL context.
"""

from __future__ import annotations

from .context import GLUnavailableError, RawGL, create_headless_context
from .executor import DrawTarget, Layout, PlanExecutor, Region
from .shaders import ShaderNotFoundError, build_source, shader_dir
from .state import GLStateGuard
from .stats_gpu import GpuBandStats, StatsAccumulator
from .timing import GpuTimer

__all__ = [
    "GLStateGuard", "GLUnavailableError", "GpuBandStats", "GpuTimer", "Layout", "PlanExecutor", "RawGL", "Region",
    "ShaderNotFoundError", "StatsAccumulator", "DrawTarget", "build_source", "create_headless_context", "shader_dir",
]
