"""The package's errors and their one-line form.

Every failure a user can cause is reported as ONE line naming what failed and why: ``"<path>: <reason>"``
for a file, ``"<reason>"`` for a parameter. Tracebacks are for ``--debug`` only. Two types carry that:

* :class:`FileError` - a file (image, video, parameter file, shader, output folder) could not be read or
  written. :class:`ImageError` and :class:`VideoError` are its two kinds, kept as separate types so a
  caller can tell them apart; ``str()`` is the same one-line form for all three.
* :class:`UsageError` - a bad command line or parameter value (the CLI exits with 2, before touching any
  file). Parameter validation in :mod:`gpu_deconv.core.params` raises ``ValueError``; the CLI turns it into
  a ``UsageError`` with the same text.

:func:`one_line` formats any exception that way, so no module writes its own formatter.
"""

from __future__ import annotations

import os
from typing import Any

#: Longest reason :func:`one_line` keeps from a foreign exception's text.
MAX_REASON = 300


class FileError(ValueError):
    """A file could not be read or written; ``str(err)`` is ``"<path>: <reason>"``.

    Parameters
    ----------
    path : str or path-like
        The file concerned.
    reason : str
        What went wrong; newlines and runs of spaces are folded into one line.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (type(self), (self.path, self.reason))


class ImageError(FileError):
    """A still image could not be read or written."""


class VideoError(FileError):
    """A video could not be probed, read or written."""


class UsageError(Exception):
    """Bad command line or parameter values (exit code 2)."""


def one_line(err: BaseException, path: str | os.PathLike[str] | None = None) -> str:
    """``err`` as one line: a :class:`FileError` as it is, anything else as ``"<path>: <message>"``.

    The message is the exception's text with whitespace folded (cut at :data:`MAX_REASON` characters), or
    its type name when it has no text.
    """
    if isinstance(err, FileError):
        return str(err)
    msg = " ".join(str(err).split()) or type(err).__name__
    if len(msg) > MAX_REASON:  # a decoder may put a whole buffer in its message
        msg = msg[: MAX_REASON - 3] + "..."
    return msg if path is None else f"{os.fspath(path)}: {msg}"
