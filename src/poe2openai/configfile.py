"""Blocking file helpers for models.yaml (run them in a thread): read with an
identity signature, replace atomically, and replace only if unchanged."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MISSING", "FileChanged", "FileSnapshot", "FileTooLarge", "atomic_write",
           "read_snapshot", "replace_if_unchanged", "signature", "version_of"]

#: Version token of a file that does not exist.
MISSING = "missing"

#: Larger files are refused by default (callers may set a smaller limit).
MAX_SIZE = 8 * 1024 * 1024


class FileTooLarge(OSError):
    """The file is over the size limit; it was not read."""


class FileChanged(Exception):
    """The file is no longer what the caller based its new content on."""


#: What identifies one state of the file: device, inode, size, mtime in ns. An
#: editor that saves by rename (vim, most IDEs) changes the inode; an in-place
#: write changes size and/or mtime.
Signature = tuple[int, int, int, int]


def signature(path: Path) -> Signature | None:
    """The file's signature, or None when it does not exist."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return _sig(st)


def _sig(st: os.stat_result) -> Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def version_of(data: bytes | None) -> str:
    """The version token for file content (what the admin page saw)."""
    return MISSING if data is None else hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    data: bytes | None  #: None: the file does not exist
    sig: Signature | None
    #: True when the file changed while it was read (a write in progress).
    unstable: bool = False

    @property
    def version(self) -> str:
        return version_of(self.data)


def read_snapshot(path: Path, max_size: int = MAX_SIZE) -> FileSnapshot:
    """Read the file and its signature together. OSError other than
    not-found (permissions, a directory, :class:`FileTooLarge`) propagates."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return FileSnapshot(None, None)
    with os.fdopen(fd, "rb") as f:
        st, data = _read_open(f.fileno(), path, max_size)
    sig = _sig(st)
    return FileSnapshot(data, sig, unstable=signature(path) != sig or len(data) != st.st_size)


def _read_open(fd: int, path: Path, max_size: int) -> tuple[os.stat_result, bytes]:
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{path} is a directory")
    if st.st_size > max_size:
        raise FileTooLarge(f"{path} is larger than {_size(max_size)}")
    chunks = []
    left = max_size + 1
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return st, b"".join(chunks)  # longer or shorter than st_size: changed while read


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


def atomic_write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never half.

    A temporary file in the same folder is written, flushed and fsynced, given
    the old file's permissions (and owner, when allowed), then renamed over
    the target. A symlink is followed, so the link itself stays. A new file
    gets 0644, or 0600 when ``private`` (it holds a token); an existing file
    that is ``private`` loses its group and other permissions.
    """
    target = Path(os.path.realpath(path))
    tmp = _write_temp(target, data, private)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(target.parent)


def replace_if_unchanged(path: Path, data: bytes, expected: bytes | None, *,
                         private: bool = False, max_size: int = MAX_SIZE) -> Signature:
    """:func:`atomic_write`, but only while the file still holds ``expected``
    (None: does not exist); else :class:`FileChanged` and nothing is written.

    The slow part (writing and syncing the new content) comes first; then,
    holding a lock (one writer at a time, across processes too), the file is
    read again and compared, and replaced at once. On Linux the replace is an
    atomic exchange, and the file taken out is compared again: an edit that
    arrived between the comparison and the exchange is put back, never lost.
    Returns the new file's signature.
    """
    target = Path(os.path.realpath(path))
    tmp = _write_temp(target, data, private)
    new_st = os.stat(tmp)
    try:
        with _folder_lock(target.parent):
            if _current(target, max_size) != expected:
                raise FileChanged(str(target))
            if expected is None:
                _create(tmp, target)
            elif _exchange(tmp, target):
                # ``tmp`` now names what was at ``target`` an instant ago.
                try:
                    same = _current(Path(tmp), max_size) == expected
                except (FileChanged, OSError):
                    same = False
                if not same:
                    _exchange(tmp, target)  # a hand edit arrived: it goes back in place
                    raise FileChanged(str(target))
                with contextlib.suppress(OSError):  # the old file; the save is done
                    os.unlink(tmp)
            else:
                os.replace(tmp, target)
    except BaseException:
        # Only our own file is removed: should a second edit have landed in the
        # instant above, it stays on disk under the temporary name.
        with contextlib.suppress(OSError):
            if _same_file(os.stat(tmp), new_st):
                os.unlink(tmp)
        raise
    _sync_folder(target.parent)
    return _sig(new_st)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _current(path: Path, max_size: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return _read_open(fd, path, max_size)[1]
    except FileTooLarge:
        raise FileChanged(str(path)) from None
    finally:
        os.close(fd)


def _create(tmp: str, target: Path) -> None:
    """Give ``tmp`` the name ``target`` only if nothing has that name yet."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileChanged(str(target)) from None
    except OSError:  # no hard links here: a plain rename (the check was just made)
        os.replace(tmp, target)
        return
    os.unlink(tmp)


_RENAME_EXCHANGE = 2
_renameat2: object = None


def _exchange(a: str, b: Path) -> bool:
    """Swap two names atomically (Linux renameat2). False where that is not possible."""
    global _renameat2
    if not sys.platform.startswith("linux") or _renameat2 is False:
        return False
    if _renameat2 is None:
        try:
            func = ctypes.CDLL(None, use_errno=True).renameat2
        except (OSError, AttributeError):
            _renameat2 = False
            return False
        func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
        func.restype = ctypes.c_int
        _renameat2 = func
    at_fdcwd = -100
    if _renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b),  # type: ignore[operator]
                  _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM):
        return False  # this file system cannot exchange: a plain rename
    raise OSError(err, os.strerror(err), str(b))


#: One replace at a time within this process (the folder lock below is per open file).
_THREAD_LOCK = threading.Lock()


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive flock on the folder (no lock file is left behind), where
    the platform and file system allow it."""
    with _THREAD_LOCK:
        try:
            import fcntl
            fd = os.open(folder, os.O_RDONLY)
        except (ImportError, OSError):  # pragma: no cover - Windows
            yield
            return
        try:
            with contextlib.suppress(OSError):  # e.g. NFS: the thread lock still holds
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _write_temp(target: Path, data: bytes, private: bool) -> str:
    """A fsynced temporary file beside ``target`` holding ``data``, with the
    permissions (and owner) ``target`` has, or 0644/0600 for a new file."""
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if old is not None:
            mode = stat.S_IMODE(old.st_mode)
            # A file that holds a token is never left readable by group or others.
            os.chmod(tmp, mode & 0o700 if private else mode)
            if hasattr(os, "chown"):
                with contextlib.suppress(OSError):  # only root may give files away
                    if (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                        os.chown(tmp, old.st_uid, old.st_gid)
        else:
            os.chmod(tmp, 0o600 if private else 0o644)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
