"""Shared fixtures: ONE headless OpenGL context for the whole GL test session.

Creating a context costs ~0.3 s on Mesa llvmpipe and every program compiled in it is cached by the
engine, so the GL tests share one. Without a usable context (no EGL driver) the GL tests *skip* with
the reason, so the pure-maths tests still run anywhere; CI sets ``GPU_DECONV_REQUIRE_GL=1`` to turn that
skip into a failure, because a silently skipped GL suite is worse than a red one.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_GL = os.environ.get("GPU_DECONV_REQUIRE_GL", "") not in ("", "0")
_SESSION: dict[str, object] = {}


def _no_gl(reason: str) -> None:
    if REQUIRE_GL:
        pytest.fail(f"GPU_DECONV_REQUIRE_GL=1 but no OpenGL context: {reason}", pytrace=False)
    pytest.skip(f"no OpenGL context: {reason}")


@pytest.fixture(scope="session")
def gl_ctx():
    """A standalone moderngl context (EGL on Linux), shared by the session and released at its end."""
    try:
        from gpu_deconv.gl.context import create_headless_context

        ctx = create_headless_context()
    except Exception as e:  # noqa: BLE001 - any failure means "no GL here"
        _no_gl(f"{type(e).__name__}: {e}")
        return
    _SESSION["ctx"] = ctx
    yield ctx
    _SESSION.pop("ctx", None)
    ctx.release()


@pytest.fixture(autouse=True)
def _session_context_current():
    """Make the shared context current again before every test.

    Code under test may create (and release) contexts of its own - the CLI's ``info``, an engine with
    its own headless context, a viewer window - and moderngl leaves whatever it created last current,
    so a later test on the shared context would otherwise talk to no context at all. Two more pieces
    of hygiene keep each test accountable for its own GL errors only: error flags left by an earlier
    test are drained, and if moderngl still tracks an already released framebuffer as bound (a test
    released the framebuffer it last used), tracking is pointed back at framebuffer 0 - otherwise the
    next moderngl read or clear would re-bind the dead one and raise GL_INVALID_OPERATION.
    """
    ctx = _SESSION.get("ctx")
    if ctx is not None:
        ctx.__enter__()
        fbo = ctx.fbo
        if fbo is not None and type(fbo.mglo).__name__ == "InvalidObject":
            ctx.detect_framebuffer(0).use()
            ctx.fbo = None
        for _ in range(16):
            if ctx.error == "GL_NO_ERROR":
                break
    yield


@pytest.fixture(scope="session")
def engine(gl_ctx):
    """A :class:`gpu_deconv.gl.engine.Deconvolver` on the shared context (borrowed, so not released by it)."""
    from gpu_deconv.gl.engine import Deconvolver

    dec = Deconvolver(gl_ctx)
    yield dec
    dec.release()
