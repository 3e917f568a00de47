"""Blocking file helpers for models.yaml (run them in a thread): read with an
identity signature, and replace atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MISSING", "FileSnapshot", "atomic_write", "read_snapshot", "signature", "version_of"]

#: Version token of a file that does not exist.
MISSING = "missing"

#: Larger files are refused (a model map is a few kilobytes).
MAX_SIZE = 8 * 1024 * 1024

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


def read_snapshot(path: Path) -> FileSnapshot:
    """Read the file and its signature together. OSError other than
    not-found (permissions, a directory, too large) propagates."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return FileSnapshot(None, None)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"{path} is a directory")
        if st.st_size > MAX_SIZE:
            raise OSError(f"{path} is larger than {MAX_SIZE // (1024 * 1024)} MiB")
        data = f.read(MAX_SIZE + 1)
    sig = _sig(st)
    return FileSnapshot(data, sig, unstable=signature(path) != sig or len(data) != st.st_size)


def atomic_write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never half.

    A temporary file in the same folder is written, flushed and fsynced, given
    the old file's permissions (and owner, when allowed), then renamed over
    the target. A symlink is followed, so the link itself stays. A new file
    gets 0644, or 0600 when ``private`` (it holds a token); an existing file
    that is ``private`` loses its group and other permissions.
    """
    target = Path(os.path.realpath(path))
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
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

