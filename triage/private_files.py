"""Files that may hold personal data: created ``0600``, in directories created ``0700``.

Issue 9 found the ``poll-atp`` state (every case member's CPR number and benefits) and the
events written by ``ingest --out`` world-readable, and the worker's data under the fixed, shared
``/tmp/triage-worker``. Everything the service writes goes through these helpers (and the
command line sets ``umask 077`` besides, so whatever a library creates is private too):

* :func:`private_dir` — create a directory ``0700`` (parents too), or accept an existing one
  only if it is a real directory owned by this user, and tighten it to ``0700``;
* :func:`open_private` — open a file for writing, created ``0600`` (an existing file is
  tightened to ``0600`` before anything is written);
* :func:`write_private_atomic` — replace a file's content atomically, ``0600``;
* :func:`state_dir` — the per-user default place for the service's own state
  (``$XDG_STATE_HOME/triage`` or ``~/.local/state/triage``), never a shared ``/tmp`` path.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Literal

__all__ = ["PrivatePathError", "open_private", "private_dir", "state_dir",
           "write_private_atomic"]

FILE_MODE = 0o600
DIR_MODE = 0o700
PRIVATE_UMASK = 0o077


class PrivatePathError(OSError):
    """A path that cannot be made private: not a directory, a symlink, or another user's."""


def state_dir(*parts: str, environ: dict[str, str] | None = None) -> Path:
    """The per-user state directory of the service (not created here)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home())
                                            / ".local" / "state")
    return Path(base, "triage", *parts)


def private_dir(path: str | Path) -> Path:
    """Make sure ``path`` is a directory only this user can enter; returns it.

    Missing directories are created ``0700`` (missing parents too). An existing directory must
    not be a symlink and must belong to this user (a directory planted by someone else in a
    shared place is refused); its mode is tightened to ``0700``.
    """
    path = Path(path)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=DIR_MODE, parents=True)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise PrivatePathError(f"{path}: is a symbolic link; refusing it as a private directory")
    if not stat.S_ISDIR(info.st_mode):
        raise PrivatePathError(f"{path}: not a directory")
    if info.st_uid != os.geteuid():
        raise PrivatePathError(f"{path}: belongs to another user (uid {info.st_uid}); "
                               "refusing it as a private directory")
    if stat.S_IMODE(info.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def open_private(path: str | Path, mode: Literal["wb", "ab"] = "wb") -> BinaryIO:
    """Open ``path`` for writing (``wb`` truncates, ``ab`` appends), created ``0600``."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_APPEND if mode == "ab" else os.O_TRUNC
    fd = os.open(path, flags, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)  # an existing file keeps its mode on open: tighten it
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def write_private_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a crash leaves the old content or the new, never half;
    the file is ``0600`` throughout (the temporary file is created so)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
