"""Headless OpenGL contexts and a tiny raw-GL function table.

gpu_deconv renders offscreen, so it needs no window: on Linux the context comes from EGL (works with
no X server, on Mesa llvmpipe as on NVIDIA/AMD drivers); elsewhere from the platform default backend
of glcontext (WGL on Windows, CGL on macOS). The raw table (:class:`RawGL`) is for the few things
moderngl does not expose - reading back caller GL state (:mod:`gpu_deconv.gl.state`) and non-stalling
timer queries (:mod:`gpu_deconv.gl.timing`); its function pointers come from the same loader moderngl
uses (glcontext's ``load_opengl_function``), so it works with whatever backend made the context.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from typing import Any

import moderngl

#: OpenGL version the shaders need (``#version 330 core``).
REQUIRED_GL = 330


class GLUnavailableError(RuntimeError):
    """No usable OpenGL 3.3 context could be created."""


def create_headless_context(require: int = REQUIRED_GL, device_index: int | None = None) -> moderngl.Context:
    """Create a standalone (windowless) OpenGL context.

    Parameters
    ----------
    require : int
        Minimum GL version code (330 = 3.3 core).
    device_index : int, optional
        Linux only: render on this EGL device, an index into the list ``eglQueryDevicesEXT`` returns
        (:func:`egl_devices`; :func:`egl_device_for_cuda` finds the one of a CUDA device). None: the
        driver's default device, falling back to the platform's default backend. glcontext lets the
        ``GLCONTEXT_DEVICE_INDEX`` environment variable override either.

    Raises
    ------
    GLUnavailableError
        With the backend errors and what to install, instead of moderngl's terse message; with a
        ``device_index``, also when that device cannot be used (no silent fall back to another device).
    """
    attempts: list[tuple[dict[str, Any], str]] = []
    if device_index is not None:
        if not sys.platform.startswith("linux"):
            raise GLUnavailableError(f"choosing EGL device {device_index} needs Linux (EGL device enumeration)")
        attempts.append(({"backend": "egl", "device_index": int(device_index)}, f"EGL device {device_index}"))
    else:
        if sys.platform.startswith("linux"):
            attempts.append(({"backend": "egl"}, "EGL"))
        attempts.append(({}, "platform default"))
    errors = []
    for kwargs, label in attempts:
        try:
            return moderngl.create_context(standalone=True, require=require, **kwargs)
        except Exception as e:  # noqa: BLE001 - every backend failure is reported together below
            errors.append(f"{label}: {type(e).__name__}: {e}")
    hint = (
        "on Linux install an EGL driver (Mesa: libegl1 + libgl1-mesa-dri for llvmpipe, or the GPU vendor's "
        "driver)" if sys.platform.startswith("linux") else "install an OpenGL 3.3 capable graphics driver"
    )
    raise GLUnavailableError(
        f"could not create a headless OpenGL {require // 100}.{require % 100 // 10} context; "
        + "; ".join(errors) + f". Hint: {hint}."
    )


# EGL device enumeration (EGL_EXT_device_enumeration, EGL_EXT_device_query, EGL_NV_device_cuda).
EGL_EXTENSIONS = 0x3055
EGL_CUDA_DEVICE_NV = 0x323A
EGL_DRM_DEVICE_FILE_EXT = 0x3233
#: Most EGL devices :func:`egl_devices` lists.
MAX_EGL_DEVICES = 64


@dataclass(frozen=True)
class EGLDevice:
    """One EGL device: its index (what ``create_headless_context(device_index=)`` takes), its device
    extensions, the CUDA device it is (``EGL_CUDA_DEVICE_NV``; None without ``EGL_NV_device_cuda``) and
    its DRM device file (None for a software device)."""

    index: int
    extensions: tuple[str, ...]
    cuda_device: int | None
    drm_file: str | None


def egl_devices() -> list[EGLDevice]:
    """The EGL devices, in ``eglQueryDevicesEXT``'s order - the order glcontext's ``device_index`` uses.

    Empty off Linux, without libEGL, or when the EGL client lacks device enumeration.
    """
    egl = _libegl()
    if egl is None:
        return []
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]

    def proc(name: str, restype: Any, *argtypes: Any) -> Any:
        addr = egl.eglGetProcAddress(name.encode())
        return ctypes.CFUNCTYPE(restype, *argtypes)(addr) if addr else None

    query_devices = proc("eglQueryDevicesEXT", ctypes.c_uint, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                         ctypes.POINTER(ctypes.c_int))
    query_string = proc("eglQueryDeviceStringEXT", ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)
    query_attrib = proc("eglQueryDeviceAttribEXT", ctypes.c_uint, ctypes.c_void_p, ctypes.c_int,
                        ctypes.POINTER(ctypes.c_ssize_t))  # EGLAttrib is intptr_t
    if query_devices is None:
        return []
    handles = (ctypes.c_void_p * MAX_EGL_DEVICES)()
    count = ctypes.c_int(0)
    if not query_devices(MAX_EGL_DEVICES, handles, ctypes.byref(count)):
        return []
    out = []
    for i in range(count.value):
        exts = query_string(handles[i], EGL_EXTENSIONS) if query_string is not None else None
        names = tuple((exts or b"").decode("ascii", "replace").split())
        cuda = None
        value = ctypes.c_ssize_t(-1)
        if "EGL_NV_device_cuda" in names and query_attrib is not None and query_attrib(
                handles[i], EGL_CUDA_DEVICE_NV, ctypes.byref(value)):
            cuda = int(value.value)
        drm = query_string(handles[i], EGL_DRM_DEVICE_FILE_EXT) if (
            query_string is not None and "EGL_EXT_device_drm" in names) else None
        out.append(EGLDevice(i, names, cuda, drm.decode() if drm else None))
    return out


def egl_device_for_cuda(cuda_device: int) -> int | None:
    """The index of the EGL device that is CUDA device ``cuda_device``, or None when no device says so.

    EGL does not read ``CUDA_VISIBLE_DEVICES``: NVIDIA's EGL devices report their CUDA ordinal among all
    the machine's GPUs (``EGL_NV_device_cuda``), so ``cuda_device`` is that physical ordinal - the id Ray
    or a scheduler put in ``CUDA_VISIBLE_DEVICES`` - not the 0 a CUDA program in that environment sees.
    None where the extension is missing (Mesa, AMD, Intel drivers): the caller picks a fall back.
    """
    return next((d.index for d in egl_devices() if d.cuda_device == cuda_device), None)


# GL enums used by the raw table's clients.
GL_TEXTURE0 = 0x84C0
GL_TEXTURE_2D = 0x0DE1
GL_DRAW_FRAMEBUFFER = 0x8CA9
GL_READ_FRAMEBUFFER = 0x8CA8


class RawGL:
    """ctypes entry points for a handful of GL functions, loaded through the context's own loader.

    Attributes are looked up lazily; :attr:`available` is False when the context offers no loader
    (then callers fall back to what moderngl tracks itself).
    """

    _SIGS: dict[str, tuple[Any, tuple[Any, ...]]] = {
        "glGetIntegerv": (None, (ctypes.c_uint, ctypes.POINTER(ctypes.c_int))),
        "glGetBooleanv": (None, (ctypes.c_uint, ctypes.POINTER(ctypes.c_ubyte))),
        "glGetError": (ctypes.c_uint, ()),
        "glIsEnabled": (ctypes.c_ubyte, (ctypes.c_uint,)),
        "glEnable": (None, (ctypes.c_uint,)),
        "glDisable": (None, (ctypes.c_uint,)),
        "glViewport": (None, (ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int)),
        "glScissor": (None, (ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int)),
        "glColorMask": (None, (ctypes.c_ubyte,) * 4),
        "glPolygonMode": (None, (ctypes.c_uint, ctypes.c_uint)),
        "glBindFramebuffer": (None, (ctypes.c_uint, ctypes.c_uint)),
        "glUseProgram": (None, (ctypes.c_uint,)),
        "glIsProgram": (ctypes.c_ubyte, (ctypes.c_uint,)),
        "glActiveTexture": (None, (ctypes.c_uint,)),
        "glBindTexture": (None, (ctypes.c_uint, ctypes.c_uint)),
        "glBindSampler": (None, (ctypes.c_uint, ctypes.c_uint)),
        "glBindVertexArray": (None, (ctypes.c_uint,)),
        "glBindBuffer": (None, (ctypes.c_uint, ctypes.c_uint)),
        "glPixelStorei": (None, (ctypes.c_uint, ctypes.c_int)),
        "glDrawBuffers": (None, (ctypes.c_int, ctypes.POINTER(ctypes.c_uint))),
        "glGenQueries": (None, (ctypes.c_int, ctypes.POINTER(ctypes.c_uint))),
        "glDeleteQueries": (None, (ctypes.c_int, ctypes.POINTER(ctypes.c_uint))),
        "glBeginQuery": (None, (ctypes.c_uint, ctypes.c_uint)),
        "glEndQuery": (None, (ctypes.c_uint,)),
        "glGetQueryObjectiv": (None, (ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_int))),
        "glGetQueryObjectui64v": (None, (ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint64))),
    }

    def __init__(self, ctx: moderngl.Context) -> None:
        self._loader = None
        inner = getattr(getattr(ctx, "mglo", None), "_context", None)
        load = getattr(inner, "load_opengl_function", None) or getattr(inner, "load", None)
        if callable(load):
            self._loader = load
        self._funcs: dict[str, Any] = {}

    @property
    def available(self) -> bool:
        if self._loader is None:
            return False
        try:
            self.glGetIntegerv  # noqa: B018 - probe one entry point
        except (AttributeError, OSError):
            return False
        return True

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("gl"):
            raise AttributeError(name)
        fn = self._funcs.get(name)
        if fn is None:
            if self._loader is None or name not in self._SIGS:
                raise AttributeError(f"GL function {name} is not available")
            addr = self._loader(name)
            if not addr:
                raise AttributeError(f"GL function {name} is not available")
            restype, argtypes = self._SIGS[name]
            fn = ctypes.CFUNCTYPE(restype, *argtypes)(addr)
            self._funcs[name] = fn
        return fn

    def get_int(self, enum: int, n: int = 1) -> list[int]:
        buf = (ctypes.c_int * max(n, 4))()
        self.glGetIntegerv(enum, buf)
        return list(buf[:n])

    def get_bool(self, enum: int, n: int = 1) -> list[bool]:
        buf = (ctypes.c_ubyte * max(n, 4))()
        self.glGetBooleanv(enum, buf)
        return [bool(b) for b in buf[:n]]

    def is_enabled(self, enum: int) -> bool:
        return bool(self.glIsEnabled(enum))


def raw_gl(ctx: moderngl.Context) -> RawGL:
    """A :class:`RawGL` for a context (cheap; entry points load on first use)."""
    return RawGL(ctx)


class CurrentContext:
    """Make a context current for a block, then give the thread back what was current before.

    moderngl makes a new standalone context current when it creates it and never switches back, and a
    program may hold several contexts (a viewer's window, a headless engine, a test fixture). The
    engine therefore brackets its GL work with this guard: with EGL (Linux) it compares the thread's
    current context with this one (``eglGetCurrentContext``, microseconds), switches only when they
    differ, and afterwards restores the previous display/surfaces/context with ``eglMakeCurrent``.
    Without EGL it is a no-op for a borrowed context (the caller keeps it current, as moderngl
    requires) and makes an owned one current (``with ctx``), leaving it current.

    Parameters
    ----------
    ctx : moderngl.Context
    owned : bool
        The context was created for the engine (switch to it even without EGL).
    """

    EGL_DRAW = 0x3059
    EGL_READ = 0x305A

    def __init__(self, ctx: moderngl.Context, owned: bool = False) -> None:
        self.ctx = ctx
        self.owned = owned
        self._egl = _libegl()
        self.handle = None
        self._stack: list[tuple | None] = []
        if self._egl is not None:
            saved = self.current()
            ctx.__enter__()
            self.handle = self._egl.eglGetCurrentContext()
            self._restore(saved)

    def current(self) -> tuple:
        """(display, draw surface, read surface, context) current on this thread (EGL), else ()."""
        return _egl_current(self._egl)

    def _restore(self, saved: tuple | None) -> None:
        if saved and saved[3] and saved[3] != self.handle and self._egl is not None:
            self._egl.eglMakeCurrent(saved[0], saved[1], saved[2], saved[3])

    def __enter__(self) -> moderngl.Context:
        if self._egl is None:
            if self.owned:
                self.ctx.__enter__()
            self._stack.append(None)
            return self.ctx
        saved = self.current()
        if saved[3] != self.handle:
            self.ctx.__enter__()
            self._stack.append(saved)
        else:
            self._stack.append(None)  # already current: nothing to restore
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        self._restore(self._stack.pop())


def _libegl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return None
    for name in ("eglGetCurrentContext", "eglGetCurrentDisplay", "eglGetCurrentSurface"):
        getattr(egl, name).restype = ctypes.c_void_p
    egl.eglGetCurrentSurface.argtypes = [ctypes.c_int]
    egl.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
    egl.eglMakeCurrent.restype = ctypes.c_uint
    return egl


def _egl_current(egl: Any) -> tuple:
    if egl is None:
        return ()
    return (egl.eglGetCurrentDisplay(), egl.eglGetCurrentSurface(CurrentContext.EGL_DRAW),
            egl.eglGetCurrentSurface(CurrentContext.EGL_READ), egl.eglGetCurrentContext())


def current_egl_state() -> tuple:
    """What EGL has current on this thread (empty tuple off EGL)."""
    return _egl_current(_libegl())


def restore_egl_state(saved: tuple) -> None:
    """Make ``saved`` (from :func:`current_egl_state`) current again, if it held a context."""
    egl = _libegl()
    if egl is not None and saved and saved[3]:
        egl.eglMakeCurrent(saved[0], saved[1], saved[2], saved[3])
