"""Atomic, no-clobber file writes - the one way gpu_deconv writes an output file.

``atomic_write(path, writer)`` calls ``writer(fh)`` on a temp file in the target's folder, fsyncs it and
moves it into place, so a reader never sees half a file and an interrupted run (Ctrl-C, a crash, SIGTERM
from a CI timeout or ``docker stop``) leaves no partial output:

* the temp file sits in the target folder (the final rename never crosses a file system) under a short
  hidden name ``.gd-XXXXXXXX.tmp`` - short, so a target whose name is near the 255-byte limit still gets
  a temp file; a process that sets a tag (:func:`set_temp_tag`) names them ``.gd-TAG-XXXXXXXX.tmp``, so
  when it is killed (a distributed worker, :mod:`gpu_deconv.apps.distributed`) another process can remove
  exactly its temp files (:func:`remove_tagged_temp_files`);
* without ``overwrite`` the final step is a hard link, which fails if the target appeared meanwhile
  (falling back to check-then-rename where hard links are unsupported); with it, ``os.replace``;
* every live temp file is registered; :func:`remove_live_temp_files` deletes them and is what the CLI's
  SIGTERM/SIGHUP handlers call (Ctrl-C unwinds through ``atomic_write`` itself);
* the final file gets the permissions a plain ``open(path, 'w')`` would (mkstemp makes 0600 files).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ..errors import FileError, one_line

_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()
_UMASK: list[int] = []
_TAG: list[str] = []  # this process's temp-file tag, if set


def set_temp_tag(tag: str | None) -> None:
    """Name this process's temp files ``.gd-TAG-XXXXXXXX.tmp`` from now on (None: ``.gd-XXXXXXXX.tmp``).

    ``tag`` is letters and digits only (at most 16), so a glob for one tag never matches another's files.
    """
    if tag is not None and not (tag.isascii() and tag.isalnum() and 0 < len(tag) <= 16):
        raise ValueError(f"temp-file tag must be 1..16 ASCII letters or digits, got {tag!r}")
    _TAG[:] = [] if tag is None else [tag]


def _temp_prefix() -> str:
    return f".gd-{_TAG[0]}-" if _TAG else ".gd-"


def remove_tagged_temp_files(folder: str | os.PathLike[str], tag: str) -> int:
    """Delete the temp files that a process with ``tag`` left in ``folder`` (it was killed mid-write).

    Returns how many were removed. Only call this once that process is gone: a live one may be writing them.
    """
    if not (tag.isascii() and tag.isalnum()):
        raise ValueError(f"not a temp-file tag: {tag!r}")
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    prefix = f".gd-{tag}-"  # mkstemp's random part has no '-': an untagged or other tag's name never matches
    doomed = [name for name in names if name.startswith(prefix)]
    for name in doomed:
        unlink_quietly(os.path.join(folder, name))
    return len(doomed)


def default_mode() -> int:
    """Permissions a plain ``open(..., 'w')`` would give under the current umask."""
    if not _UMASK:
        mask = os.umask(0o022)
        os.umask(mask)
        _UMASK.append(mask)
    return 0o666 & ~_UMASK[0]


def unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def exists_message(path: str) -> str:
    return f"{path}: output exists; pass --overwrite to replace it"


@contextlib.contextmanager
def temp_path(path: str, error: type[FileError] = FileError, suffix: str = ".tmp") -> Iterator[str]:
    """A registered temp file name next to ``path`` (created empty); removed on exit unless renamed away."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(), suffix=suffix, dir=folder)
    except OSError as e:
        raise error(path, f"cannot write to folder {folder}: {e.strerror or e}") from None
    os.close(fd)
    with _LIVE_LOCK:
        _LIVE.add(tmp)
    try:
        yield tmp
    finally:
        unlink_quietly(tmp)
        with _LIVE_LOCK:
            _LIVE.discard(tmp)


def commit_temp(tmp: str, path: str, *, overwrite: bool, error: type[FileError] = FileError) -> None:
    """Move a finished temp file onto ``path`` atomically (no-clobber unless ``overwrite``); fsync the folder.

    Leaves ``tmp`` in place on failure (the caller removes it).
    """
    os.chmod(tmp, default_mode())
    if overwrite:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise error(path, "output exists; pass --overwrite to replace it") from None
        except OSError:  # no hard links on this file system: check, then rename
            if os.path.lexists(path):
                raise error(path, "output exists; pass --overwrite to replace it") from None
            os.replace(tmp, path)
        else:
            unlink_quietly(tmp)
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def atomic_write(path: str | os.PathLike[str], writer: Callable[[BinaryIO], None], *, overwrite: bool = False,
                 error: type[FileError] = FileError) -> None:
    """Call ``writer(fh)`` on a temp file next to ``path``, fsync it, and move it into place.

    On any exception, ``KeyboardInterrupt`` included, the temp file is removed and the target is untouched;
    OS and encoder failures become ``error(path, reason)`` (one line).
    """
    p = os.fspath(path)
    with temp_path(p, error) as tmp:
        try:
            with open(tmp, "wb") as fh:
                writer(fh)
                fh.flush()
                os.fsync(fh.fileno())
            commit_temp(tmp, p, overwrite=overwrite, error=error)
        except FileError:
            raise
        except OSError as e:
            raise error(p, f"cannot write: {e.strerror or one_line(e)}") from None
        except Exception as e:  # an encoder failure
            raise error(p, f"cannot encode: {one_line(e)}") from None


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = False,
                      error: type[FileError] = FileError) -> None:
    """:func:`atomic_write` of UTF-8 text with ``\\n`` line ends."""
    data = text.encode("utf-8")
    atomic_write(path, lambda fh: fh.write(data), overwrite=overwrite, error=error)


def remove_live_temp_files() -> int:
    """Delete every temp file an unfinished :func:`atomic_write` holds (signal handlers call this)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
        _LIVE.clear()
    for tmp in live:
        unlink_quietly(tmp)
    return len(live)
